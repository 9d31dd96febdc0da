#!/usr/bin/env bash
# Restore drill: proves that a base backup plus the WAL archive of a running
# Sidekick's PostgreSQL restore to a point in time, and that the services
# start on the restored database with every record written before that
# point and none written after it.
#
#   scripts/restore-drill.sh            (about a minute or two; needs the
#                                        PostgreSQL server binaries and Go)
#
# What it does, all on loopback in a temp directory:
#  1. starts a PostgreSQL server with WAL archiving on (archive_command
#     copies each finished WAL segment to archive/), and the whole stack on
#     it (`sidekick dev` with SIDEKICK_DATABASE_URL);
#  2. writes phase A through the services: emails (conversations and their
#     messages), a note on each, an override, a notification (deliveries);
#  3. takes a base backup (pg_basebackup);
#  4. writes phase B the same way; waits until it is stored; records the
#     row counts and the time T;
#  5. writes phase C (after T), switches and archives the WAL, then stops
#     the stack and kills the server (immediate stop: a crash);
#  6. restores the base backup into a fresh data directory with
#     restore_command reading the archive and recovery_target_time = T,
#     and times it until the server is promoted;
#  7. starts the stack on the restored database, waits until it is ready,
#     and checks: every phase A and B record is there, no phase C record is,
#     and each table has the rows it had at T; the conversations are also
#     read back through the services (sidekick conversations list).
# The runbook for doing this on a real cluster is in docs/operations.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bindir=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
[[ -x "$bindir/initdb" ]] || { echo "restore-drill: PostgreSQL server binaries not found (scripts/ensure-postgres.sh installs them)" >&2; exit 1; }
export PATH="$bindir:$PATH"

work=$(mktemp -d /tmp/sidekick-restore-drill.XXXXXX)
chmod 755 "$work"
stack_pid=""
cleanup() {
  [[ -n "$stack_pid" ]] && kill "$stack_pid" 2>/dev/null && wait "$stack_pid" 2>/dev/null
  for d in primary restored; do
    [[ -f "$work/$d/postmaster.pid" ]] && as_pg pg_ctl -D "$work/$d" stop -m immediate >/dev/null 2>&1
  done
  [[ -n "${KEEP:-}" ]] || rm -rf "$work"
}
trap cleanup EXIT

# initdb and postgres refuse to run as root.
as_pg() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
log() { echo "restore-drill: $*" >&2; }
now_ms() { date +%s%3N; }

pgport=$(free_port)
psql_() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pgport" -U postgres "$@"; }
q() { psql_ -d sidekick -Atc "$1"; }

mkdir -p "$work/archive" "$work/pglog" "$work/base"
[[ $(id -u) -eq 0 ]] && chown postgres "$work/archive" "$work/pglog" "$work/base"

log "building sidekick"
go build -o "$work/sidekick" ./sidekick/cmd/sidekick

log "PostgreSQL ($(postgres --version)) on 127.0.0.1:$pgport, WAL archived to $work/archive"
[[ $(id -u) -eq 0 ]] && install -d -o postgres "$work/primary"
as_pg initdb -D "$work/primary" -U postgres --auth=trust >/dev/null
cat >>"$work/primary/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $pgport
unix_socket_directories = '$work/pglog'
wal_level = replica
archive_mode = on
archive_command = 'test ! -f $work/archive/%f && cp %p $work/archive/%f'
EOF
as_pg pg_ctl -D "$work/primary" -l "$work/pglog/primary.log" -w start >/dev/null
psql_ -d postgres -c 'CREATE DATABASE sidekick'

# The stack: every service, an embedded NATS, on the database above.
http=127.0.0.1:$(free_port); grpc=127.0.0.1:$(free_port)
start_stack() {
  SIDEKICK_DATABASE_URL="postgres://postgres@127.0.0.1:$pgport/sidekick?sslmode=disable" \
  SIDEKICK_DATA_DIR="$work/dev-$1" SIDEKICK_HTTP_ADDR=$http SIDEKICK_GRPC_ADDR=$grpc \
  SIDEKICK_SMTP_ADDR=127.0.0.1:$(free_port) SIDEKICK_NATS_ADDR=127.0.0.1:$(free_port) \
    "$work/sidekick" dev >"$work/stack-$1.log" 2>&1 &
  stack_pid=$!
  for _ in $(seq 600); do
    if curl -fs "http://$http/readyz" >/dev/null 2>&1; then return 0; fi
    kill -0 "$stack_pid" 2>/dev/null || { cat "$work/stack-$1.log" >&2; return 1; }
    sleep 0.2
  done
  echo "restore-drill: the stack did not become ready" >&2; return 1
}
stop_stack() { kill "$stack_pid"; wait "$stack_pid" || true; stack_pid=""; }
sk() { "$work/sidekick" --addr "$grpc" "$@"; }

# write PHASE N: N emails, a note on each resulting conversation, an
# override and a notification, each marked with the phase.
write() {
  local phase=$1 n=$2 i id
  for i in $(seq "$n"); do
    printf 'From: Customer %s <drill-%s-%s@customer.example>\r\nTo: support@example.com\r\nSubject: drill-%s-%s\r\nMessage-ID: <drill-%s-%s-%s@customer.example>\r\nDate: %s\r\n\r\nPhase %s message %s.\r\n' \
      "$i" "$phase" "$i" "$phase" "$i" "$phase" "$i" "$$" "$(date -R)" "$phase" "$i" |
      curl -fs -X POST -H 'Authorization: Bearer dev-email-inbound-token' -H 'Content-Type: message/rfc822' \
        --data-binary @- "http://$http/email/inbound" >/dev/null
  done
  for _ in $(seq 300); do
    [[ $(q "SELECT count(*) FROM triage.conversations WHERE subject LIKE 'drill-$phase-%'") -eq $n ]] && break
    sleep 0.2
  done
  for id in $(q "SELECT id FROM triage.conversations WHERE subject LIKE 'drill-$phase-%'"); do
    sk conversations note --actor restore-drill "$id" "drill note $phase" >/dev/null
  done
  sk override --rotation hero --start "$(date -u -d '+1 day' +%F)" --end "$(date -u -d '+2 days' +%F)" \
    --add carol --note "drill-$phase" >/dev/null
  sk notify --to alice --key "drill-$phase" --text "drill notification $phase" >/dev/null
  # Deliveries are recorded by the notifier as it handles the notification.
  for _ in $(seq 300); do
    [[ $(q "SELECT count(*) FROM notifier.deliveries d JOIN notifier.notifications n ON n.id = d.notification_id WHERE n.idempotency_key = 'grpc/drill-$phase'") -gt 0 ]] && break
    sleep 0.2
  done
}

# marked PHASE: the phase's records, one count per kind.
marked() {
  q "SELECT (SELECT count(*) FROM triage.conversations WHERE subject LIKE 'drill-$1-%')
        || ' ' || (SELECT count(*) FROM triage.notes WHERE text = 'drill note $1')
        || ' ' || (SELECT count(*) FROM rotation.overrides WHERE note = 'drill-$1')
        || ' ' || (SELECT count(*) FROM notifier.deliveries d JOIN notifier.notifications n ON n.id = d.notification_id WHERE n.idempotency_key = 'grpc/drill-$1')"
}
tables="triage.conversations triage.messages triage.notes rotation.overrides notifier.notifications notifier.deliveries"
counts() {
  local t sql="SELECT ''"
  for t in $tables; do sql="$sql || ' ' || (SELECT count(*) FROM $t)"; done
  q "$sql"
}

log "starting the stack"
start_stack before
write A 5
log "phase A written: $(marked A) (conversations notes overrides deliveries)"

log "base backup"
t=$(now_ms)
as_pg pg_basebackup -h 127.0.0.1 -p "$pgport" -U postgres -D "$work/base" -X stream -c fast
log "base backup: $(du -sh "$work/base" | cut -f1) in $(( $(now_ms) - t )) ms"

write B 5
log "phase B written: $(marked B)"
# Let the services' own follow-up writes (outbox, notifications of the new
# conversations) settle, then take the counts and T in one snapshot.
sleep 3
read -r -a before <<<"$(counts)"
target=$(q "SELECT to_char(clock_timestamp(), 'YYYY-MM-DD HH24:MI:SS.USOF')")
sleep 1
write C 3
log "phase C written after T=$target: $(marked C)"
read -r -a crash <<<"$(counts)"
log "archiving the last WAL segment"
seg=$(q "SELECT pg_walfile_name(pg_switch_wal())")
for _ in $(seq 300); do
  [[ -f "$work/archive/$seg" ]] && break
  sleep 0.2
done
[[ -f "$work/archive/$seg" ]] || { echo "restore-drill: $seg was not archived" >&2; exit 1; }
stop_stack
as_pg pg_ctl -D "$work/primary" stop -m immediate >/dev/null
log "primary killed; archive holds $(ls "$work/archive" | grep -c '^[0-9A-F]\{24\}$') WAL segments"

log "restoring to $target"
t=$(now_ms)
cp -a "$work/base" "$work/restored"
chmod 700 "$work/restored"
touch "$work/restored/recovery.signal"
cat >>"$work/restored/postgresql.auto.conf" <<EOF
restore_command = 'cp $work/archive/%f %p'
recovery_target_time = '$target'
recovery_target_action = 'promote'
archive_mode = off
EOF
[[ $(id -u) -eq 0 ]] && chown -R postgres "$work/restored"
as_pg pg_ctl -D "$work/restored" -l "$work/pglog/restored.log" -w start >/dev/null
for _ in $(seq 600); do
  [[ $(q "SELECT pg_is_in_recovery()" 2>/dev/null) == f ]] && break
  sleep 0.1
done
restore_ms=$(( $(now_ms) - t ))
log "restored and promoted in $restore_ms ms"
read -r -a restored <<<"$(counts)"

t=$(now_ms)
start_stack after
ready_ms=$(( $(now_ms) - t ))
sleep 2
read -r -a after <<<"$(counts)"
listed=$(sk conversations list --status open --status awaiting_customer --status closed | grep -c 'drill-[AB]-' || true)

fail=0
echo
printf '%-24s %8s %8s %8s %14s\n' table "at T" "at crash" restored "services up"
i=0
for t in $tables; do
  # Restored: exactly what there was at T. Once the services run on it they
  # carry on (a digest queued before T is sent, say): more, never fewer.
  mark=""
  [[ ${before[$i]} == "${restored[$i]}" ]] || { mark="  DIFFERS"; fail=1; }
  (( ${after[$i]} >= ${before[$i]} )) || { mark="  LOST"; fail=1; }
  printf '%-24s %8s %8s %8s %14s%s\n' "$t" "${before[$i]}" "${crash[$i]}" "${restored[$i]}" "${after[$i]}" "$mark"
  i=$((i + 1))
done
echo
for p in A B C; do
  got=$(marked "$p")
  want="5 5 1 1"; [[ $p == C ]] && want="0 0 0 0"
  # A notification may have one delivery or more: count "at least one".
  norm=$(awk '{print $1, $2, $3, ($4 > 0)}' <<<"$got")
  ok=ok; [[ $norm == "$want" ]] || { ok="WRONG (want $want)"; fail=1; }
  echo "phase $p records (conversations notes overrides deliveries): $got  $ok"
done
echo "conversations of phases A and B listed by the services: $listed (want 10)"
[[ $listed -eq 10 ]] || fail=1
echo "time to restore (copy base backup, replay WAL to T, promote): $restore_ms ms"
echo "time until the services answered /readyz on it: $ready_ms ms"
if [[ $fail -ne 0 ]]; then
  echo "restore-drill: FAILED (logs kept in $work)"; KEEP=1; exit 1
fi
echo "restore-drill: passed"
