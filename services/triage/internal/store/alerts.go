package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

// AddAlertReferences records that conversation refers to the alerts of
// these thread keys ("sentry:<issue id>"); a reference already recorded
// is kept.
func AddAlertReferences(ctx context.Context, q Querier, conversation string, keys []string, at time.Time) error {
	_, err := q.Exec(ctx, `INSERT INTO alert_references (thread_key, conversation_id, created_at)
		SELECT k, $2, $3 FROM unnest($1::text[]) k ON CONFLICT DO NOTHING`, keys, conversation, at)
	if err != nil {
		return fmt.Errorf("conversation %s: record alert references: %w", conversation, err)
	}
	return nil
}

// LinkedConversations are the ids of the conversations linked to c: for
// an alert, the conversations referring to its thread; for any other, the
// alerts it refers to that exist. Oldest first.
func LinkedConversations(ctx context.Context, q Querier, c *supportv1.Conversation) ([]string, error) {
	var (
		rows pgx.Rows
		err  error
	)
	if c.GetKind() == supportv1.ConversationKind_CONVERSATION_KIND_ALERT {
		rows, err = q.Query(ctx, `SELECT r.conversation_id FROM alert_references r
			JOIN conversations c ON c.id = r.conversation_id
			WHERE r.thread_key = $1 ORDER BY c.opened_at, c.id`, c.GetThreadKey())
	} else {
		rows, err = q.Query(ctx, `SELECT a.id FROM alert_references r
			JOIN conversations a ON a.thread_key = r.thread_key AND a.alert IS NOT NULL
			WHERE r.conversation_id = $1 ORDER BY a.opened_at, a.id`, c.GetId())
	}
	if err != nil {
		return nil, fmt.Errorf("conversation %s: linked conversations: %w", c.GetId(), err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("conversation %s: linked conversations: %w", c.GetId(), err)
	}
	return ids, nil
}
