#!/usr/bin/env bash
# Runs every Fuzz* target in the workspace for a short time each (CI uses it
# to keep the parsers of outside input honest). Usage: fuzz-all.sh [duration]
set -euo pipefail
fuzztime=${1:-10s}
cd "$(dirname "$0")/.."
status=0
while IFS= read -r line; do
	file=${line%%:*}
	name=$(sed -E 's/.*func (Fuzz[A-Za-z0-9_]+).*/\1/' <<<"${line#*:}")
	dir=$(dirname "$file")
	echo "fuzz $dir $name ($fuzztime)"
	if ! (cd "$dir" && go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" . >/tmp/fuzz.$$.log 2>&1); then
		cat /tmp/fuzz.$$.log
		status=1
	fi
done < <(grep -rEn --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+\(' services platform sidekick 2>/dev/null || true)
rm -f /tmp/fuzz.$$.log
exit $status
