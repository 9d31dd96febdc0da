package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

// Handoff is one recorded hero handoff.
type Handoff struct {
	RotationID   string
	At           time.Time
	From, To     string
	OpenCount    int
	MissingCount int
	EventID      string
	CreatedAt    time.Time
}

// InsertHandoff records a handoff; false when one was recorded for the
// same rotation and instant before.
func InsertHandoff(ctx context.Context, q Querier, h Handoff) (bool, error) {
	tag, err := q.Exec(ctx, `INSERT INTO handoffs (rotation_id, at, from_person, to_person, open_count, missing_count, event_id, created_at)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (rotation_id, at) DO NOTHING`,
		h.RotationID, h.At, h.From, h.To, h.OpenCount, h.MissingCount, h.EventID, h.CreatedAt)
	if err != nil {
		return false, fmt.Errorf("record handoff of %s at %s: %w", h.RotationID, h.At, err)
	}
	return tag.RowsAffected() == 1, nil
}

// HandoffRecorded reports whether a handoff of rotation at was recorded.
func HandoffRecorded(ctx context.Context, q Querier, rotationID string, at time.Time) (bool, error) {
	var ok bool
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM handoffs WHERE rotation_id = $1 AND at = $2)`, rotationID, at).Scan(&ok); err != nil {
		return false, fmt.Errorf("handoff of %s at %s: %w", rotationID, at, err)
	}
	return ok, nil
}

// OpenForHandoff is an open conversation at a handoff.
type OpenForHandoff struct {
	Conversation *supportv1.Conversation
	// HasNote is true when a handoff note was written since the shift began.
	HasNote bool
	// Note is the latest of those notes (zero without one).
	Note HandoffNote
}

// HandoffNote is a conversation's handoff note.
type HandoffNote struct {
	Author, Text string
	CreatedAt    time.Time
}

// OpenConversations lists the customer conversations not closed (alerts
// belong to the teams' secondaries, not from hero to hero), in queue
// order, each saying whether it has a handoff note written at or after
// notesSince.
func OpenConversations(ctx context.Context, q Querier, notesSince time.Time) ([]OpenForHandoff, error) {
	rows, err := q.Query(ctx, `SELECT `+conversationColumns+`, hn.author, hn.text, hn.created_at`+
		conversationFrom+` LEFT JOIN LATERAL (SELECT n.author, n.text, n.created_at FROM notes n
			WHERE n.conversation_id = c.id AND n.handoff AND n.created_at >= $1
			ORDER BY n.created_at DESC, n.id DESC LIMIT 1) hn ON true
		WHERE c.status <> 3 AND c.alert IS NULL ORDER BY c.tier, c.next_deadline_at NULLS LAST, c.opened_at, c.id`, notesSince)
	if err != nil {
		return nil, fmt.Errorf("list open conversations: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (OpenForHandoff, error) {
		var o OpenForHandoff
		var author, text *string
		var at *time.Time
		c, err := scanConversationWith(r, &author, &text, &at)
		o.Conversation = c
		if at != nil {
			o.HasNote = true
			o.Note = HandoffNote{Author: deref(author), Text: deref(text), CreatedAt: *at}
		}
		return o, err
	})
	if err != nil {
		return nil, fmt.Errorf("list open conversations: %w", err)
	}
	return out, nil
}

// AddTag adds tag to the conversations with these ids that lack it, with
// an audit line each, and returns how many changed.
func AddTag(ctx context.Context, q Querier, ids []string, tag, actor, action, detail string, at time.Time) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	rows, err := q.Query(ctx, `UPDATE conversations SET tags = array_append(tags, $2::text), updated_at = $3
		WHERE id = ANY($1) AND NOT ($2::text = ANY(tags)) RETURNING id`, ids, tag, at)
	if err != nil {
		return 0, fmt.Errorf("tag %d conversations %s: %w", len(ids), tag, err)
	}
	changed, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("tag %d conversations %s: %w", len(ids), tag, err)
	}
	if len(changed) == 0 {
		return 0, nil
	}
	if _, err := q.Exec(ctx, `INSERT INTO audit (conversation_id, actor, action, detail, at)
		SELECT id, $2, $3, $4, $5 FROM unnest($1::text[]) AS id`, changed, actor, action, detail, at); err != nil {
		return 0, fmt.Errorf("audit %s: %w", action, err)
	}
	return int64(len(changed)), nil
}

// FinishHandoff records what a handoff summarised.
func FinishHandoff(ctx context.Context, q Querier, h Handoff) error {
	_, err := q.Exec(ctx, `UPDATE handoffs SET to_person = $3, open_count = $4, missing_count = $5, event_id = $6
		WHERE rotation_id = $1 AND at = $2`, h.RotationID, h.At, h.To, h.OpenCount, h.MissingCount, h.EventID)
	if err != nil {
		return fmt.Errorf("record handoff of %s at %s: %w", h.RotationID, h.At, err)
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
