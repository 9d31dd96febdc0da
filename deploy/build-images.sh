#!/usr/bin/env bash
# Build the container images of every Sidekick binary from deploy/docker/Dockerfile.
#
#   deploy/build-images.sh                 build all images, tagged $VERSION
#   deploy/build-images.sh triage notifier build some
#   PUSH=1 deploy/build-images.sh          build and push
#   DRY_RUN=1 deploy/build-images.sh       print the docker commands only
#
# Environment:
#   REGISTRY  image prefix (default ghcr.io/sidekickhq/sidekick); images are $REGISTRY/<name>:$VERSION
#   VERSION   version stamped into the binaries and used as tag (default: git describe)
#   COMMIT    commit stamped into the binaries (default: git rev-parse HEAD)
#   PLATFORM  e.g. linux/amd64,linux/arm64 (needs a buildx builder); default: the engine's
#
# Needs a Docker engine with BuildKit (Docker 23+ has it by default). Where no
# engine is reachable the script says so and exits 2 without building anything.
set -euo pipefail
cd "$(dirname "$0")/.."

ALL=(ingest-slack ingest-email ingest-github ingest-sentry triage rotation notifier sidekick)
REGISTRY=${REGISTRY:-ghcr.io/sidekickhq/sidekick}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
COMMIT=${COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
DOCKERFILE=deploy/docker/Dockerfile

if [[ $# -gt 0 ]]; then targets=("$@"); else targets=("${ALL[@]}"); fi
for t in "${targets[@]}"; do
  if [[ " ${ALL[*]} " != *" $t "* ]]; then
    echo "build-images: unknown image '$t' (known: ${ALL[*]})" >&2
    exit 1
  fi
done
if [[ "$VERSION" == latest ]]; then
  echo "build-images: refusing the tag 'latest'; set VERSION to a release or commit" >&2
  exit 1
fi

run() {
  echo "+ $*"
  if [[ -z "${DRY_RUN:-}" ]]; then "$@"; fi
}

if [[ -z "${DRY_RUN:-}" ]]; then
  if ! command -v docker >/dev/null 2>&1; then
    echo "build-images: no 'docker' command on this machine: no images were built." >&2
    echo "build-images: install Docker (or run on CI with an engine); DRY_RUN=1 shows the commands." >&2
    exit 2
  fi
  if ! docker info >/dev/null 2>&1; then
    echo "build-images: the docker client is here but no Docker engine answers (docker info failed): no images were built." >&2
    echo "build-images: start dockerd or point DOCKER_HOST at an engine; DRY_RUN=1 shows the commands." >&2
    exit 2
  fi
fi

build=(docker build)
if [[ -n "${PLATFORM:-}" ]]; then build=(docker buildx build --platform "$PLATFORM"); fi
if [[ -n "${PUSH:-}" && -n "${PLATFORM:-}" ]]; then build+=(--push); fi

export DOCKER_BUILDKIT=1
for t in "${targets[@]}"; do
  image="$REGISTRY/$t:$VERSION"
  run "${build[@]}" -f "$DOCKERFILE" --target "$t" \
    --build-arg "VERSION=$VERSION" --build-arg "COMMIT=$COMMIT" \
    -t "$image" .
  if [[ -n "${PUSH:-}" && -z "${PLATFORM:-}" ]]; then run docker push "$image"; fi
done
echo "build-images: ${#targets[@]} image(s) at $REGISTRY/<name>:$VERSION"
