package engine

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/classify"
	"github.com/sidekickhq/sidekick/services/triage/internal/conv"
	"github.com/sidekickhq/sidekick/services/triage/internal/store"
)

// NeedsHandoffTag flags an open conversation that had no handoff note when
// the hero's shift ended; a handoff note removes it.
const NeedsHandoffTag = "needs-handoff"

// Handoff is the end of a Support Hero's shift.
type Handoff struct {
	// RotationID and At identify it: the hero rotation and the instant the
	// shift ended.
	RotationID string
	At         time.Time
	// From is the outgoing hero, To the incoming one ("" when unknown).
	From, To string
	// ShiftStart is when the outgoing shift began: handoff notes written
	// since count. Zero means a week before At.
	ShiftStart time.Time
}

// Handoff summarises a hero handoff once: every conversation not closed
// without a handoff note written during the shift is tagged needs-handoff,
// and a HANDOFF event carrying the HandoffSummary (the open conversations
// in queue order, business proposals left out, at most HandoffMaxOpen of them, and the ids of every one
// without a note) is queued for the next hero. It returns false when this
// handoff was summarised before.
func (e *Engine) Handoff(ctx context.Context, h Handoff) (bool, error) {
	if h.RotationID == "" || h.At.IsZero() {
		return false, fmt.Errorf("handoff needs a rotation and an instant: %w", ErrInvalid)
	}
	since := h.ShiftStart
	if since.IsZero() || !since.Before(h.At) {
		since = h.At.Add(-7 * 24 * time.Hour)
	}
	fresh := false
	err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		now := e.now()
		rec := store.Handoff{RotationID: h.RotationID, At: h.At, From: h.From, To: h.To, CreatedAt: now}
		var err error
		// Claimed first: a concurrent summary of the same handoff waits
		// here and then finds it done.
		if fresh, err = store.InsertHandoff(ctx, tx, rec); err != nil || !fresh {
			return err
		}
		open, err := store.OpenConversations(ctx, tx, since)
		if err != nil {
			return err
		}
		open = withoutProposals(open)
		summary, reason := e.summarise(h, open)
		if _, err := store.AddTag(ctx, tx, summary.GetMissingNotes(), NeedsHandoffTag, conv.System, "handoff flagged",
			"no handoff note when "+orHero(h.From)+"'s shift ended", now); err != nil {
			return err
		}
		p := newPipe(tx)
		rec.EventID, err = e.queue(p, nil, conv.Event{
			Type:    supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_HANDOFF,
			Actor:   conv.System,
			Reason:  reason,
			Handoff: summary,
		}, now)
		if err != nil {
			return err
		}
		if err := p.flush(ctx); err != nil {
			return err
		}
		rec.OpenCount, rec.MissingCount = len(open), len(summary.GetMissingNotes())
		return store.FinishHandoff(ctx, tx, rec)
	})
	if err != nil {
		return false, fmt.Errorf("handoff of %s at %s: %w", h.RotationID, h.At.UTC().Format(time.RFC3339), err)
	}
	return fresh, nil
}

// HandedOff reports whether the handoff of rotation at was summarised.
func (e *Engine) HandedOff(ctx context.Context, rotationID string, at time.Time) (bool, error) {
	return store.HandoffRecorded(ctx, e.pool, rotationID, at)
}

// summarise is the summary of a handoff for the conversations open at
// it, in queue order: each without a handoff note is listed as missing
// one (and shown tagged needs-handoff), at most HandoffMaxOpen are
// included whole; reason is the HANDOFF event's.
func (e *Engine) summarise(h Handoff, open []store.OpenForHandoff) (summary *supportv1.HandoffSummary, reason string) {
	summary = &supportv1.HandoffSummary{FromPerson: h.From, ToPerson: h.To}
	for _, o := range open {
		c := e.decorate(o.Conversation)
		if o.HasNote && len(summary.Open) < e.cfg.HandoffMaxOpen {
			summary.Notes = append(summary.Notes, &supportv1.HandoffNote{
				ConversationId: c.GetId(), Author: o.Note.Author, Text: o.Note.Text, CreatedAt: timestamppb.New(o.Note.CreatedAt),
			})
		}
		if !o.HasNote {
			summary.MissingNotes = append(summary.MissingNotes, c.GetId())
			if !slices.Contains(c.GetTags(), NeedsHandoffTag) {
				c = proto.Clone(c).(*supportv1.Conversation)
				c.Tags = append(c.Tags, NeedsHandoffTag)
			}
		}
		if len(summary.Open) < e.cfg.HandoffMaxOpen {
			summary.Open = append(summary.Open, c)
		}
	}
	reason = fmt.Sprintf("hero handoff from %s to %s: %d open, %d without a handoff note", orNobody(h.From), orNobody(h.To), len(open), len(summary.GetMissingNotes()))
	return summary, reason
}

// withoutProposals leaves out business proposals (marketing,
// partnerships): they go to the business contacts, not from hero to hero,
// so they neither fill the summary nor need a handoff note.
func withoutProposals(open []store.OpenForHandoff) []store.OpenForHandoff {
	out := open[:0:0]
	for _, o := range open {
		if !slices.Contains(o.Conversation.GetCategories(), string(classify.Business)) {
			out = append(out, o)
		}
	}
	return out
}

func orHero(s string) string {
	if s == "" {
		return "the hero"
	}
	return s
}

func orNobody(s string) string {
	if s == "" {
		return "nobody"
	}
	return s
}

// WithoutHandoffNote lists the open customer conversations, business
// proposals left out, that have no handoff note written at or after since
// (the outgoing hero's shift start), in queue order: what the handoff
// summary would flag if the shift ended now.
func (e *Engine) WithoutHandoffNote(ctx context.Context, since time.Time) ([]*supportv1.Conversation, error) {
	open, err := store.OpenConversations(ctx, e.pool, since)
	if err != nil {
		return nil, err
	}
	var out []*supportv1.Conversation
	for _, o := range withoutProposals(open) {
		if !o.HasNote {
			out = append(out, e.decorate(o.Conversation))
		}
	}
	return out, nil
}
