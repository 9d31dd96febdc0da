#!/usr/bin/env bash
# Makes sure PostgreSQL server binaries (initdb, pg_ctl, postgres) are on this
# machine, because `make run` and `make test` start throwaway clusters from
# them. Installs Debian's postgresql package when they are missing and we are
# root; otherwise explains what to install. SIDEKICK_DATABASE_URL (dev) and
# SIDEKICK_TEST_DATABASE_URL (tests) skip the need for local binaries.
set -euo pipefail

have_binaries() {
	command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && return 0
	compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && return 0
	return 1
}

if [ -n "${SIDEKICK_TEST_DATABASE_URL:-}${SIDEKICK_DATABASE_URL:-}" ] || have_binaries; then
	exit 0
fi

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "PostgreSQL server binaries not found: installing Debian's postgresql package" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends postgresql >/dev/null
	# The package starts a system cluster we do not use; stop it so it does
	# not hold port 5432 for nothing.
	if command -v pg_ctlcluster >/dev/null 2>&1; then
		for c in /etc/postgresql/*/main; do
			[ -d "$c" ] || continue
			v=$(basename "$(dirname "$c")")
			pg_ctlcluster "$v" main stop >/dev/null 2>&1 || true
		done
	fi
	have_binaries && exit 0
fi

cat >&2 <<'MSG'
PostgreSQL server binaries (initdb, pg_ctl) are missing.
Install them (Debian/Ubuntu: sudo apt-get install postgresql; macOS: brew install postgresql),
or point Sidekick at a server you run: SIDEKICK_DATABASE_URL for `make run`,
SIDEKICK_TEST_DATABASE_URL for `make test`.
MSG
exit 1
