#!/usr/bin/env bash
# Makes sure a Chromium the console's browser test can drive is on this
# machine. Installs Debian's chromium package when it is missing and we are
# root; otherwise explains what to install. The browser test skips with a
# message when no browser is found, so this script never fails `make test`:
# it exits 0 either way and says what happened on stderr.
#
# SIDEKICK_CHROMIUM names a browser binary to use instead (the test honours
# it too).
set -euo pipefail

find_browser() {
	if [ -n "${SIDEKICK_CHROMIUM:-}" ] && [ -x "${SIDEKICK_CHROMIUM}" ]; then
		return 0
	fi
	for b in chromium chromium-browser google-chrome google-chrome-stable headless-shell; do
		command -v "$b" >/dev/null 2>&1 && return 0
	done
	return 1
}

if find_browser; then
	exit 0
fi

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "Chromium not found: installing Debian's chromium package (for the console's browser test)" >&2
	export DEBIAN_FRONTEND=noninteractive
	if apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; then
		find_browser && exit 0
	fi
	echo "installing chromium failed; the console's browser test will be skipped" >&2
	exit 0
fi

cat >&2 <<'MSG'
Chromium is missing, so the console's browser test will be skipped.
Install it (Debian/Ubuntu: sudo apt-get install chromium; macOS: brew install --cask chromium),
or point SIDEKICK_CHROMIUM at a Chrome or Chromium binary.
MSG
exit 0
