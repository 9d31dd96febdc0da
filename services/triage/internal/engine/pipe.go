package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sidekickhq/sidekick/platform/outbox"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/conv"
	"github.com/sidekickhq/sidekick/services/triage/internal/store"
)

// pipe is the writer of one transaction. Its writes are collected and
// sent set-based, before the next read (Query, QueryRow: reads see every
// earlier write) or at flush: each table's rows for everything since the
// last flush in one statement (COPY where nothing can conflict and there
// are copyMin rows or more), the statements in one round trip besides the
// COPYs. A conversation is written once per flush, with its latest fields
// (and the latest state a save carried): a conversation opened since the
// last flush is inserted with its final state rather than inserted and
// then updated; a timer armed and disarmed is written once. Exec queues
// any other write, in order; its command tag is empty, so writes whose
// result matters go through Query.
type pipe struct {
	tx pgx.Tx
	b  *pgx.Batch

	convs  []*convWrite // to write at the next flush, in first-write order
	known  map[string]*convWrite
	msgs   []store.MessageRow
	attach []*supportv1.Conversation
	audit  []store.AuditRow
	// facts are the report's facts the audit lines recorded (first
	// responder, last close), by conversation id; factN their ids in
	// first-write order.
	facts  map[string]*store.ReportFact
	factN  []string
	events []outbox.Event
	timers map[string]*timerWrite // since the last flush
	timerN []string               // their conversation ids in first-write order
	fired  []string
	// notified is set once the relay's notification is queued.
	notified bool
	firedAt  time.Time
	// earliest is the soonest due time armed through the pipe.
	earliest time.Time
	// mirrors are the support-channel mirrors loaded or written, by
	// conversation id (nil: the conversation has none).
	mirrors map[string]*store.Mirror
}

// convWrite is a conversation the pipe writes.
type convWrite struct {
	c  *supportv1.Conversation
	st *store.State // nil: the fields only
	// fresh: not in the database yet (insert); queued: written at the next
	// flush.
	fresh, queued bool
}

// timerWrite is what the transaction did to a conversation's timer:
// armed (status TimerArmed, or TimerIdle when disarmed after arming) or
// only disarmed.
type timerWrite struct {
	armed, idled bool
	row          store.TimerRow
}

func newPipe(tx pgx.Tx) *pipe {
	return &pipe{tx: tx, b: &pgx.Batch{}, known: map[string]*convWrite{}, timers: map[string]*timerWrite{},
		mirrors: map[string]*store.Mirror{}, facts: map[string]*store.ReportFact{}}
}

func (p *pipe) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	p.b.Queue(sql, args...)
	return pgconn.CommandTag{}, nil
}

func (p *pipe) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := p.flush(ctx); err != nil {
		return nil, err
	}
	return p.tx.Query(ctx, sql, args...)
}

func (p *pipe) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if err := p.flush(ctx); err != nil {
		return errRow{err}
	}
	return p.tx.QueryRow(ctx, sql, args...)
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

var _ store.Querier = (*pipe)(nil)

// create inserts a new conversation, with st, at the next flush (it fails
// there when its thread already has one).
func (p *pipe) create(c *supportv1.Conversation, st *store.State) {
	w := &convWrite{c: c, st: st, fresh: true, queued: true}
	p.known[c.GetId()] = w
	p.convs = append(p.convs, w)
}

// save writes c's fields, and st unless it is nil.
func (p *pipe) save(c *supportv1.Conversation, st *store.State) {
	w := p.known[c.GetId()]
	if w == nil {
		w = &convWrite{}
		p.known[c.GetId()] = w
	}
	w.c = c
	if st != nil {
		w.st = st
	}
	if !w.queued {
		w.queued = true
		p.convs = append(p.convs, w)
	}
}

// insertMessage records m, attached to conversationID unless it is empty.
func (p *pipe) insertMessage(m *supportv1.InboundMessage, conversationID string, at time.Time) {
	p.msgs = append(p.msgs, store.MessageRow{Message: m, ConversationID: conversationID, ReceivedAt: at})
}

// attachThread attaches the messages of c's thread recorded without a
// conversation to c.
func (p *pipe) attachThread(c *supportv1.Conversation) { p.attach = append(p.attach, c) }

// auditLine appends a line to the conversation's audit trail; a first
// response or a close also goes on the conversation's row for the report
// (store.ReportFact), in the same transaction.
func (p *pipe) auditLine(conversationID, actor, action, detail string, at time.Time) {
	p.audit = append(p.audit, store.AuditRow{ConversationID: conversationID, Actor: actor, Action: action, Detail: detail, At: at})
	first := action == conv.ActionResponded && detail == conv.FirstResponse
	if !first && action != conv.ActionClosed {
		return
	}
	f := p.facts[conversationID]
	if f == nil {
		f = &store.ReportFact{ConversationID: conversationID}
		p.facts[conversationID] = f
		p.factN = append(p.factN, conversationID)
	}
	switch {
	case first && f.FirstResponder == "":
		f.FirstResponder = actor
	case action == conv.ActionClosed && (f.ClosedAt == nil || at.After(*f.ClosedAt)):
		f.ClosedAt = &at
	}
}

// queueEvent writes an event to the outbox; the relay is woken once per
// transaction.
func (p *pipe) queueEvent(e outbox.Event) { p.events = append(p.events, e) }

func (p *pipe) timer(id string) *timerWrite {
	t := p.timers[id]
	if t == nil {
		t = &timerWrite{}
		p.timers[id] = t
		p.timerN = append(p.timerN, id)
	}
	return t
}

// armTimer makes a conversation's timer due at due.
func (p *pipe) armTimer(id string, due, now time.Time) {
	t := p.timer(id)
	t.armed, t.idled = true, false
	t.row = store.TimerRow{ConversationID: id, Status: store.TimerArmed, Due: due, ArmedAt: now}
	if p.earliest.IsZero() || due.Before(p.earliest) {
		p.earliest = due
	}
}

// idleTimer disarms a conversation's timer, if it has one.
func (p *pipe) idleTimer(id string) {
	t := p.timer(id)
	if t.armed {
		t.row.Status = store.TimerIdle
		return
	}
	t.idled = true
}

// firedTimer records that a claimed timer fired at at (one instant per
// flush: FireDue fires every timer of its pass at the same now).
func (p *pipe) firedTimer(id string, at time.Time) {
	p.fired = append(p.fired, id)
	p.firedAt = at
}

// copyMin is the fewest rows of a table a flush writes with COPY: a COPY
// is a round trip of its own, so fewer rows (a single message, a person's
// command) go with the flush's other statements.
const copyMin = 32

// flush writes what was collected, in one round trip plus one per table
// with copyMin rows or more: the new conversations first (the other rows
// refer to them), then the queued statements, the messages, the threads
// to attach, the updated conversations, the timers, the report's facts,
// the audit lines and the outbox events.
func (p *pipe) flush(ctx context.Context) error {
	var fresh, updated []store.ConversationWrite
	isNew := map[string]bool{}
	for _, w := range p.convs {
		cw := store.ConversationWrite{Conversation: w.c, State: w.st}
		if w.fresh {
			fresh = append(fresh, cw)
			isNew[w.c.GetId()] = true
		} else {
			updated = append(updated, cw)
		}
		w.fresh, w.queued, w.st = false, false, nil
	}
	p.convs = p.convs[:0]
	// A new conversation has no timer yet: its timer needs no upsert.
	var (
		armedNew, armed []store.TimerRow
		idle            []string
	)
	for _, id := range p.timerN {
		switch t := p.timers[id]; {
		case t.armed && isNew[id]:
			armedNew = append(armedNew, t.row)
		case t.armed:
			armed = append(armed, t.row)
		case t.idled:
			idle = append(idle, id)
		}
	}
	clear(p.timers)
	p.timerN = p.timerN[:0]
	if len(armedNew) < copyMin {
		armed, armedNew = append(armedNew, armed...), nil
	}

	queued := p.b.QueuedQueries
	p.b.QueuedQueries = nil
	if len(fresh) >= copyMin {
		if err := store.CopyConversations(ctx, p.tx, fresh); err != nil {
			return err
		}
	} else if err := store.InsertConversations(ctx, p, fresh); err != nil {
		return err
	}
	p.b.QueuedQueries = append(p.b.QueuedQueries, queued...)
	if err := store.InsertMessages(ctx, p, p.msgs); err != nil {
		return err
	}
	if err := store.AttachThreads(ctx, p, p.attach); err != nil {
		return err
	}
	if err := store.UpdateConversations(ctx, p, updated); err != nil {
		return err
	}
	if err := store.WriteTimers(ctx, p, armed, idle, p.fired, p.firedAt); err != nil {
		return err
	}
	facts := make([]store.ReportFact, 0, len(p.factN))
	for _, id := range p.factN {
		facts = append(facts, *p.facts[id])
	}
	clear(p.facts)
	p.factN = p.factN[:0]
	if err := store.WriteReportFacts(ctx, p, facts); err != nil {
		return err
	}
	p.msgs, p.attach, p.fired = p.msgs[:0], p.attach[:0], p.fired[:0]
	audit, events := p.audit, p.events
	p.audit, p.events = nil, nil
	if len(audit) < copyMin {
		if err := store.InsertAudit(ctx, p, audit); err != nil {
			return err
		}
		audit = nil
	}
	if len(events) < copyMin {
		if err := outbox.InsertRows(ctx, p, events); err != nil {
			return err
		}
	}
	if len(events) > 0 && !p.notified {
		p.notified = true
		if err := outbox.Notify(ctx, p); err != nil {
			return err
		}
	}
	if p.b.Len() > 0 {
		b := p.b
		p.b = &pgx.Batch{}
		if err := p.tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("write %d statements: %w", b.Len(), err)
		}
	}
	if err := store.CopyTimers(ctx, p.tx, armedNew); err != nil {
		return err
	}
	if err := store.CopyAudit(ctx, p.tx, audit); err != nil {
		return err
	}
	if len(events) >= copyMin {
		return outbox.CopyRows(ctx, p.tx, events)
	}
	return nil
}
