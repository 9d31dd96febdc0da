#!/usr/bin/env bash
# Posts a customer's email to a running `sidekick dev` (or any
# ingest-email) through POST /email/inbound, as a mail relay would. With a
# Message-ID as third argument the email answers it (In-Reply-To), as the
# customer answering a reply from Sidekick does.
# Usage: scripts/email-demo.sh ["message text"] [from address] [in-reply-to Message-ID]
# Env: SIDEKICK_HTTP_ADDR (127.0.0.1:8080), SIDEKICK_EMAIL_INBOUND_TOKEN
# (the dev default), SUBJECT ("Exports failing"), NAME ("Jo Customer").
set -euo pipefail
text=${1:-"Hello, our exports to S3 have been failing since yesterday. Can you help?"}
from=${2:-jo@acme.example}
answers=${3:-}
addr=${SIDEKICK_HTTP_ADDR:-127.0.0.1:8080}
token=${SIDEKICK_EMAIL_INBOUND_TOKEN:-dev-email-inbound-token}
id="<demo-$(date +%s%N)@acme.example>"
subject=${SUBJECT:-"Exports failing"}
threading=""
if [ -n "$answers" ]; then
	answers="<${answers#<}"; answers="${answers%>}>"
	subject="Re: ${subject}"
	threading="In-Reply-To: ${answers}"$'\r\n'"References: ${answers}"$'\r\n'
fi
printf 'From: %s <%s>\r\nTo: Demo Support <support@sidekick.localhost>\r\nSubject: %s\r\nMessage-ID: %s\r\nDate: %s\r\n%sContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n' \
	"${NAME:-Jo Customer}" "$from" "$subject" "$id" "$(date -R)" "$threading" "$text" |
	curl -sS -w '\nHTTP %{http_code}\n' -X POST "http://${addr}/email/inbound" \
		-H "Authorization: Bearer ${token}" \
		-H 'Content-Type: message/rfc822' \
		--data-binary @-
