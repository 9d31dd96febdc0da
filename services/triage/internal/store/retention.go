package store

import (
	"time"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/outbox"
	"github.com/sidekickhq/sidekick/platform/pg/prune"
)

// MinKeepInbox is the shortest time inbound message ids are kept: the
// inbound stream's max age and a week. A message stays replayable for the
// stream's max age after each copy a channel redelivers (GitHub redelivers
// a delivery up to 3 days later), and its id must be remembered as long.
const MinKeepInbox = bus.DefaultEventMaxAge + 7*24*time.Hour

// RetentionRules are triage's pruning rules (docs/operations.md,
// Retention): outbox rows sent more than keepSent ago (unsent rows are
// never pruned), and inbox ids handled more than keepInbox ago, never less
// than MinKeepInbox. The inbox is what drops a redelivered message, so
// keepInbox must outlive the inbound stream's max age. Conversations,
// messages, notes and audit are the product's history and are not pruned.
func RetentionRules(keepSent, keepInbox time.Duration) []prune.Rule {
	return []prune.Rule{
		outbox.PruneRule(keepSent),
		{Table: "inbox", Keep: max(keepInbox, MinKeepInbox), SQL: `DELETE FROM inbox WHERE message_id = ANY (ARRAY(
			SELECT message_id FROM inbox WHERE handled_at < $1
			ORDER BY handled_at LIMIT $2 FOR UPDATE SKIP LOCKED))`},
	}
}
