package store

import (
	"time"

	"github.com/sidekickhq/sidekick/platform/pg/prune"
)

// RetentionRules are triage's pruning rules (docs/operations.md,
// Retention): outbox rows sent more than keepSent ago (unsent rows are
// never pruned), and inbox ids handled more than keepInbox ago. The inbox
// is what drops a redelivered message, so keepInbox must outlive the
// inbound stream's max age. Conversations, messages, notes and audit are
// the product's history and are not pruned.
func RetentionRules(keepSent, keepInbox time.Duration) []prune.Rule {
	return []prune.Rule{
		{Table: "outbox", Keep: keepSent, SQL: `DELETE FROM outbox WHERE seq = ANY (ARRAY(
			SELECT seq FROM outbox WHERE sent_at IS NOT NULL AND sent_at < $1
			ORDER BY sent_at LIMIT $2 FOR UPDATE SKIP LOCKED))`},
		{Table: "inbox", Keep: keepInbox, SQL: `DELETE FROM inbox WHERE message_id = ANY (ARRAY(
			SELECT message_id FROM inbox WHERE handled_at < $1
			ORDER BY handled_at LIMIT $2 FOR UPDATE SKIP LOCKED))`},
	}
}
