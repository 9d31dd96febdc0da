#!/usr/bin/env bash
# Checks that the images' binaries are reproducible: builds them twice with
# the Dockerfile's flags (CGO_ENABLED=0, -trimpath, -buildvcs=false, the
# same -ldflags), from two copies of the commit at different paths, each
# with an empty build cache of its own, cross-compiled for GOARCH (default
# arm64, so the cross-compilation is exercised too), and compares their
# SHA-256. Exit 0 when every binary is byte-for-byte the same.
#
#   deploy/check-reproducible.sh                 all eight binaries
#   deploy/check-reproducible.sh ./sidekick/cmd/sidekick
#   GOARCH=amd64 deploy/check-reproducible.sh
#
# Slow (two builds from cold caches); not part of make test.
set -euo pipefail
cd "$(dirname "$0")/.."

GOARCH=${GOARCH:-arm64}
VERSION=${VERSION:-$(git describe --tags --always 2>/dev/null || echo dev)}
COMMIT=${COMMIT:-$(git rev-parse HEAD)}
if [[ $# -gt 0 ]]; then pkgs=("$@"); else
  pkgs=(./services/ingest-slack/cmd/ingest-slack ./services/ingest-email/cmd/ingest-email
    ./services/ingest-github/cmd/ingest-github ./services/ingest-sentry/cmd/ingest-sentry
    ./services/triage/cmd/triage ./services/rotation/cmd/rotation ./services/notifier/cmd/notifier
    ./sidekick/cmd/sidekick)
fi
ldflags="-s -w -X github.com/sidekickhq/sidekick/platform/buildinfo.Version=${VERSION} -X github.com/sidekickhq/sidekick/platform/buildinfo.Commit=${COMMIT}"

tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
for run in a b; do
  # Different depths, so a path leaking into a binary would show.
  src="$tmp/$run/src"; [[ $run == b ]] && src="$tmp/$run/elsewhere/deeper/src"
  mkdir -p "$src" "$tmp/$run/out"
  git archive "$COMMIT" | tar -x -C "$src"
  start=$(date +%s)
  (cd "$src" && env CGO_ENABLED=0 GOOS=linux GOARCH="$GOARCH" GOTOOLCHAIN=local GOFLAGS= \
    GOCACHE="$tmp/$run/cache" go build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$tmp/$run/out/" "${pkgs[@]}")
  echo "build $run: $(( $(date +%s) - start ))s in $src" >&2
done
(cd "$tmp/a/out" && sha256sum -- *) | tee "$tmp/a.sum"
if (cd "$tmp/b/out" && sha256sum -c --quiet "$tmp/a.sum"); then
  echo "check-reproducible: ${#pkgs[@]} binaries for linux/$GOARCH identical across two builds"
else
  echo "check-reproducible: the builds differ" >&2
  exit 1
fi
