#!/usr/bin/env bash
# Posts a correctly signed Slack Events API message event to a running
# `sidekick dev` (or any ingest-slack), as Slack would: a customer from
# another workspace (Slack Connect, user_team T0ACME) writing in the shared
# support channel.
# Usage: scripts/slack-demo.sh ["message text"] [user id]
# Env: SIDEKICK_HTTP_ADDR (127.0.0.1:8080), SIDEKICK_SLACK_SIGNING_SECRET
# (the dev default).
set -euo pipefail
text=${1:-"Hi! Our dashboards stopped loading after upgrading to the latest version."}
user=${2:-U0CUSTOMER1}
addr=${SIDEKICK_HTTP_ADDR:-127.0.0.1:8080}
secret=${SIDEKICK_SLACK_SIGNING_SECRET:-dev-slack-signing-secret}
ts=$(date +%s)
msg_ts="${ts}.$(printf '%06d' $((RANDOM * 10)))"
event_id="Ev$(date +%s%N | tail -c 11)"
body=$(cat <<JSON
{"token":"demo","team_id":"T0DEMO","api_app_id":"A0SIDEKICK","type":"event_callback","event_id":"${event_id}","event_time":${ts},
"event":{"type":"message","channel":"C0SUPPORT","channel_type":"channel","user":"${user}","text":$(printf '%s' "$text" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))' 2>/dev/null || printf '"%s"' "$text"),"ts":"${msg_ts}","event_ts":"${msg_ts}","team":"T0DEMO","user_team":"T0ACME"}}
JSON
)
sig="v0=$(printf 'v0:%s:%s' "$ts" "$body" | openssl dgst -sha256 -hmac "$secret" | sed 's/^.*= //')"
curl -sS -w '\nHTTP %{http_code}\n' -X POST "http://${addr}/slack/events" \
	-H 'Content-Type: application/json' \
	-H "X-Slack-Request-Timestamp: ${ts}" \
	-H "X-Slack-Signature: ${sig}" \
	--data-binary "$body"
