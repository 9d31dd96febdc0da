package store

import (
	"time"

	"github.com/sidekickhq/sidekick/platform/outbox"
	"github.com/sidekickhq/sidekick/platform/pg/prune"
)

// RetentionRules are the notifier's pruning rules (docs/operations.md,
// Retention). keep applies to the delivery log and to what makes event
// handling idempotent, so it must outlive the event streams' max age (a
// replayed event finds what it did the first time); keepOutbox applies to
// published support.notify events, already in JetStream.
//
// Never pruned whatever their age: a notification with a delivery still
// pending or being sent, or whose escalation is open (active or done: its
// messages are refreshed and acknowledged); an open escalation; a digest
// item not yet sent; a response deadline an open escalation is anchored on;
// a burst still open, being sent or to be rewritten.
// Deliveries go with their notification (ON DELETE CASCADE).
func RetentionRules(keep, keepOutbox time.Duration) []prune.Rule {
	return []prune.Rule{
		outbox.PruneRule(keepOutbox),
		{Table: "notifications", Keep: keep, SQL: `DELETE FROM notifications WHERE id = ANY (ARRAY(
			SELECT n.id FROM notifications n
			WHERE n.created_at < $1
			  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.notification_id = n.id AND d.status IN ('pending', 'sending'))
			  AND NOT EXISTS (SELECT 1 FROM escalations e WHERE e.id = n.escalation_id AND e.status IN ('active', 'done'))
			ORDER BY n.created_at LIMIT $2 FOR UPDATE OF n SKIP LOCKED))`},
		{Table: "bursts", Keep: keep, SQL: `DELETE FROM bursts WHERE id = ANY (ARRAY(
			SELECT id FROM bursts WHERE status = 'closed' AND lease_until IS NULL AND NOT dirty AND opened_at < $1
			ORDER BY opened_at LIMIT $2 FOR UPDATE SKIP LOCKED))`},
		{Table: "escalations", Keep: keep, SQL: `DELETE FROM escalations WHERE id = ANY (ARRAY(
			SELECT id FROM escalations WHERE status IN ('acked', 'stopped') AND ack_due_at IS NULL AND updated_at < $1
			ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED))`},
		{Table: "digest_items", Keep: keep, SQL: `DELETE FROM digest_items WHERE key = ANY (ARRAY(
			SELECT key FROM digest_items WHERE (notification_id IS NOT NULL OR dropped) AND added_at < $1
			ORDER BY added_at LIMIT $2 FOR UPDATE SKIP LOCKED))`},
		{Table: "group_updates", Keep: keep, SQL: `DELETE FROM group_updates WHERE group_key = ANY (ARRAY(
			SELECT group_key FROM group_updates WHERE updated_at < $1
			ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED))`},
		{Table: "hero_shifts", Keep: keep, SQL: `DELETE FROM hero_shifts WHERE event_id = ANY (ARRAY(
			SELECT event_id FROM hero_shifts WHERE start_at < $1
			ORDER BY start_at LIMIT $2 FOR UPDATE SKIP LOCKED))`},
		{Table: "conversation_stops", Keep: keep, SQL: `DELETE FROM conversation_stops WHERE conversation_id = ANY (ARRAY(
			SELECT conversation_id FROM conversation_stops WHERE occurred_at < $1
			ORDER BY occurred_at LIMIT $2 FOR UPDATE SKIP LOCKED))`},
		{Table: "conversation_deadlines", Keep: keep, SQL: `DELETE FROM conversation_deadlines WHERE conversation_id = ANY (ARRAY(
			SELECT c.conversation_id FROM conversation_deadlines c
			WHERE c.updated_at < $1
			  AND NOT EXISTS (SELECT 1 FROM escalations e WHERE e.conversation_id = c.conversation_id AND e.status IN ('active', 'done'))
			ORDER BY c.updated_at LIMIT $2 FOR UPDATE OF c SKIP LOCKED))`},
	}
}
