package store

import (
	"time"

	"github.com/sidekickhq/sidekick/platform/outbox"
	"github.com/sidekickhq/sidekick/platform/pg/prune"
)

// RetentionRules are rotation's pruning rules (docs/operations.md,
// Retention): API-created overrides that ended more than keepOverrides
// ago and were announced (an unannounced one waits for its
// override_created event whatever its age), configuration versions
// applied more than keepConfigs ago, never the one in force, and outbox
// events published more than keepOutbox ago, with the gap announcements
// of gaps that ended as long ago (a past gap is never looked at again).
func RetentionRules(keepOverrides, keepConfigs, keepOutbox time.Duration) []prune.Rule {
	return []prune.Rule{
		outbox.PruneRule(keepOutbox),
		{Table: "gap_announcements", Keep: keepOutbox, SQL: `DELETE FROM gap_announcements WHERE gap_id = ANY (ARRAY(
			SELECT gap_id FROM gap_announcements WHERE ends_at < $1 AND NOT open_end
			ORDER BY ends_at LIMIT $2 FOR UPDATE SKIP LOCKED))`},
		{Table: "overrides", Keep: keepOverrides, SQL: `DELETE FROM overrides WHERE id = ANY (ARRAY(
			SELECT id FROM overrides WHERE announced AND ends_at < $1
			ORDER BY ends_at LIMIT $2 FOR UPDATE SKIP LOCKED))`},
		{Table: "config_versions", Keep: keepConfigs, SQL: `DELETE FROM config_versions WHERE version = ANY (ARRAY(
			SELECT version FROM config_versions
			WHERE applied_at < $1 AND version < (SELECT max(version) FROM config_versions)
			ORDER BY version LIMIT $2 FOR UPDATE SKIP LOCKED))`},
	}
}
