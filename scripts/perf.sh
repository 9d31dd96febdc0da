#!/usr/bin/env bash
# Runs the benchmarks behind docs/performance.md's targets (issue 19), each
# PERF_RUNS times, PostgreSQL with fsync on, and writes one table of what
# they measured, every figure beside its floor, ceiling or peer from the
# same run and the load average before and after each run:
#
#   make perf                                  # everything, three runs each
#   make perf PERF_ONLY='storm|slack'          # some of it
#   make perf PERF_HISTORY_DB=postgres://…/db  # history on a kept database
#
# PERF_OUT (default /tmp/sidekick-perf-<time>) receives each run's full
# output and table.md; a run whose output there passed is not run again, so
# the same PERF_OUT resumes an interrupted run or only rewrites the table.
# The history benchmark seeds 1,000,000 conversations (seven minutes on a
# quiet machine, 15 GB of disk) into a throwaway cluster in each run,
# unless PERF_HISTORY_DB names a database of a server of your own (fsync
# on): the first run into an empty one seeds it, later runs measure what it
# holds (after that first run's retention round). Run it on a quiet machine: the
# load average is written beside every figure because it moves them.
set -euo pipefail

runs=${PERF_RUNS:-3}
only=${PERF_ONLY:-.}
out=${PERF_OUT:-/tmp/sidekick-perf-$(date -u +%Y%m%dT%H%M%S)}
history_db=${PERF_HISTORY_DB:-}
root=$(cd "$(dirname "$0")/.." && pwd)
export SIDEKICK_TEST_FSYNC=on
mkdir -p "$out/bin"

load() { cut -d' ' -f1-3 /proc/loadavg; }

# bench NAME PACKAGE_DIR ARGS...: runs the package's test binary runs times,
# each run's output in $out/NAME-<run>.txt with the load average around it.
bench() {
	local name=$1 dir=$2
	shift 2
	[[ $name =~ $only ]] || return 0
	local bin="$out/bin/$(basename "$dir").test"
	[ -x "$bin" ] || (cd "$root/$dir" && go test -c -o "$bin" .)
	for i in $(seq 1 "$runs"); do
		local f="$out/$name-$i.txt"
		if [ -f "$f" ] && grep -q '^PASS' "$f"; then
			continue
		fi
		echo "$(date -u +%H:%M:%S) $name run $i of $runs" >&2
		{
			echo "command: cd $dir && SIDEKICK_TEST_FSYNC=on $(basename "$bin") -test.run '^\$' $*"
			echo "load-before: $(load)"
			(cd "$root/$dir" && "$bin" -test.run '^$' -test.v "$@") 2>&1
			echo "load-after: $(load)"
		} >"$f" || true
		grep -q '^PASS' "$f" || { echo "$name run $i failed: $f" >&2; tail -20 "$f" >&2; }
	done
}

bench notifier-100 services/notifier -test.bench 'EventToSlack$' -test.benchtime 6000x -notifier.rate 100
bench notifier-100-50ms services/notifier -test.bench 'EventToSlack/(floor-slack-pace|notifier)' -test.benchtime 6000x -notifier.rate 100 -notifier.burst-every 50ms
bench notifier-500 services/notifier -test.bench 'EventToSlack$' -test.benchtime 30000x -notifier.rate 500
bench storm services/ingest-sentry -test.bench StormVsAlertmanager -test.benchtime 1x -test.timeout 1h -sentry.am-ceiling -sentry.am-rounds 5
bench storm-memory services/ingest-sentry -test.bench SentryStormMemory -test.benchtime 1x
bench slack services/ingest-slack -test.bench EventsVsBareChild -test.benchtime 1x
if [[ history =~ $only ]]; then
	hist=(-test.bench BenchmarkHistory -test.benchtime 1x -test.timeout 3h
		-history.conversations=1000000 -history.calls=100 -history.budget=5s)
	if [ -n "$history_db" ]; then
		hist+=("-history.database=$history_db")
	fi
	bench history services/triage "${hist[@]}" "-history.plans=$out/history-plans.md"
fi

# metric FILE BENCHMARK UNIT: the value the benchmark reported in UNIT.
metric() {
	awk -v b="$2" -v u="$3" '
		$1 ~ "^"b"(-[0-9]+)?$" { for (i = 3; i < NF; i++) if ($(i+1) == u) { v = $i } }
		END { if (v == "") v = "–"; else if (v ~ /\./) sub(/\.?0+$/, "", v); print v }' "$1"
}
# row NAME 'LABEL' 'FORMAT' [BENCHMARK UNIT]...: one line per run.
row() {
	local name=$1 label=$2 format=$3
	shift 3
	for i in $(seq 1 "$runs"); do
		local f="$out/$name-$i.txt"
		[ -f "$f" ] || continue
		local vals=() args=("$@")
		for ((k = 0; k < ${#args[@]}; k += 2)); do
			vals+=("$(metric "$f" "${args[k]}" "${args[k+1]}")")
		done
		# shellcheck disable=SC2059
		printf "| %s, run %d | $format | %s → %s |\n" "$label" "$i" "${vals[@]}" \
			"$(sed -n 's/^load-before: //p' "$f" | cut -d' ' -f1)" "$(sed -n 's/^load-after: //p' "$f" | cut -d' ' -f1)"
	done
}

n=BenchmarkEventToSlack
s=BenchmarkStormVsAlertmanager
h=BenchmarkHistory
{
	mapfile -t done < <(ls -tr "$out"/*-[0-9]*.txt 2>/dev/null)
	[ ${#done[@]} -gt 0 ] || { echo "no runs in $out" >&2; exit 1; }
	echo "Written by \`make perf\` (scripts/perf.sh, PERF_RUNS=$runs) from runs that ended $(date -u -r "${done[0]}" '+%Y-%m-%d %H:%M')–$(date -u -r "${done[-1]}" '+%H:%M UTC'), $(nproc) cores, commit $(git -C "$root" rev-parse --short HEAD); PostgreSQL with fsync on. Each run's output and command: $out."
	echo
	echo "| target and run | measured | beside it, same run | load average, before → after |"
	echo "|---|---|---|---|"
	row notifier-100 '1. first ping at 100/s for 60 s (p99 ≤ 100 ms)' 'notifier p50 %s ms, **p99 %s ms**, drain %s ms; %s posts, %s rewrites | at Slack'"'"'s pace (one post a second): p50 %s ms, p99 %s ms; bare floor p50 %s ms, p99 %s ms' \
		$n/notifier p50-ms $n/notifier p99-ms $n/notifier drain-ms $n/notifier posts $n/notifier updates \
		$n/floor-slack-pace p50-ms $n/floor-slack-pace p99-ms $n/floor-bare-consume-post p50-ms $n/floor-bare-consume-post p99-ms
	row notifier-100-50ms '1. the same, rewrites every 50 ms (the notifier'"'"'s own delay)' 'notifier p50 %s ms, **p99 %s ms**, drain %s ms; %s posts, %s rewrites | posts every 50 ms: p50 %s ms, p99 %s ms' \
		$n/notifier p50-ms $n/notifier p99-ms $n/notifier drain-ms $n/notifier posts $n/notifier updates \
		$n/floor-slack-pace p50-ms $n/floor-slack-pace p99-ms
	row notifier-500 '1. 500/s for 60 s without a growing backlog' 'notifier **drain %s ms**, p50 %s ms, p99 %s ms; %s posts, %s rewrites | at Slack'"'"'s pace: drain %s ms, p99 %s ms; bare floor drain %s ms, p99 %s ms' \
		$n/notifier drain-ms $n/notifier p50-ms $n/notifier p99-ms $n/notifier posts $n/notifier updates \
		$n/floor-slack-pace drain-ms $n/floor-slack-pace p99-ms $n/floor-bare-consume-post drain-ms $n/floor-bare-consume-post p99-ms
	row storm '2. storm ≥ 1.0× Alertmanager, p99 no worse, first notification < 250 ms' '**%s×** Alertmanager (%s events/s against %s/s); p99 %s ms against %s ms; first notification **%s ms** against %s ms | ceiling (stores and waits for the PubAck) %s× Alertmanager, p99 %s ms; Sidekick / ceiling %s; read-only handler %s×' \
		$s rate-ratio $s sidekick-events/s $s alertmanager-alerts/s $s sidekick-p99-ms $s alertmanager-p99-ms $s sidekick-first-ms $s alertmanager-first-ms \
		$s ceiling-rate-ratio $s ceiling-p99-ms $s sidekick/ceiling $s bare-rate-ratio
	row storm-memory '2. ingest-sentry memory, 50,000-event storm (< 100 MB, returned within a minute)' 'peak RSS **%s MB** (heap %s MB); **%s MB** 60 s after | before the storm %s MB; %s events/s' \
		BenchmarkSentryStormMemory rss-peak-MB BenchmarkSentryStormMemory heap-peak-MB BenchmarkSentryStormMemory rss-60s-after-MB \
		BenchmarkSentryStormMemory rss-before-MB BenchmarkSentryStormMemory events/s
	row slack '4. Slack ingest ≥ 0.8× the ceiling (bare handler + publish)' 'with a bot token **%s×** (rounds %s–%s), without %s× | bare + publish %s/s, bare %s/s' \
		BenchmarkEventsVsBareChild events-token/bare-publish BenchmarkEventsVsBareChild events-token/bare-publish-min BenchmarkEventsVsBareChild events-token/bare-publish-max \
		BenchmarkEventsVsBareChild events/bare-publish BenchmarkEventsVsBareChild bare-publish/s BenchmarkEventsVsBareChild bare/s
	for phase in before after-retention; do
		row history "3. history, 1M conversations ($phase)" 'p99: queue open %s, breached %s, closed %s, all %s ms; conversation **%s ms**; search error code **%s**, two words **%s**, common word **%s ms**; 90-day report p50 %s, **p99 %s ms** | targets: queue 100, conversation 50, search 200, report 1,000 ms' \
			$h $phase/queue-open-p99-ms $h $phase/queue-breached-p99-ms $h $phase/queue-closed-p99-ms $h $phase/queue-all-p99-ms \
			$h $phase/conversation-p99-ms $h $phase/search-rare-p99-ms $h $phase/search-word-p99-ms $h $phase/search-common-p99-ms \
			$h $phase/report-90d-p50-ms $h $phase/report-90d-p99-ms
	done
} >"$out/table.md"
cat "$out/table.md"
