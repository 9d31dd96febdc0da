#!/usr/bin/env bash
# Makes sure bin/promtool exists: `go test ./deploy/...` runs the alert
# rules' unit tests with it (`promtool test rules`). promtool comes from
# Debian's prometheus package, unpacked into bin/ without installing the
# package (no Prometheus service is set up or started). PROMTOOL, if set,
# names a promtool to use instead and skips all this.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${PROMTOOL:-}" ] || [ -x bin/promtool ]; then
	exit 0
fi
if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-deb >/dev/null 2>&1; then
	echo "promtool not found: install Prometheus' promtool and set PROMTOOL=/path/to/promtool" >&2
	exit 1
fi

echo "promtool not found: unpacking it from Debian's prometheus package into bin/" >&2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# apt-get download needs the package lists; refresh them once if it fails.
if ! (cd "$tmp" && apt-get download -qq prometheus >/dev/null 2>&1); then
	apt-get update -qq
	(cd "$tmp" && apt-get download -qq prometheus >/dev/null)
fi
dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/root"
mkdir -p bin
install -m 0755 "$tmp/root/usr/bin/promtool" bin/promtool
bin/promtool --version 2>&1 | head -1 >&2
