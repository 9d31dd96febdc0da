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
		if grep -q 'context deadline exceeded' /tmp/fuzz.$$.log && ! grep -q 'Failing input written' /tmp/fuzz.$$.log; then
			# Go's fuzzer sometimes reports the end of -fuzztime itself as a
			# failure ("context deadline exceeded") with no failing input;
			# a real failure always writes its input under testdata/fuzz.
			echo "  (fuzz time ran out mid-run; no failing input: not a failure)"
			continue
		fi
		cat /tmp/fuzz.$$.log
		status=1
	fi
done < <(grep -rEn --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+\(' services platform sidekick 2>/dev/null || true)
rm -f /tmp/fuzz.$$.log
exit $status
