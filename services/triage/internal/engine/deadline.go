package engine

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/classify"
	"github.com/sidekickhq/sidekick/services/triage/internal/conv"
	"github.com/sidekickhq/sidekick/services/triage/internal/coverage"
	"github.com/sidekickhq/sidekick/services/triage/internal/store"
	"github.com/sidekickhq/sidekick/services/triage/internal/worktime"
)

// Deadlines.
//
// A conversation's first-response clock (worktime.Clock, stored with it)
// starts when a customer writes, stops at a staff reply (or when the
// conversation closes) and starts again when the customer writes again;
// its elapsed time is the covered working time summed over the spans it
// ran. schedule evaluates the clock against the tier's thresholds with the
// working windows: it records the level reached, publishes one DEADLINE
// event per threshold passed, sets next_deadline_at to the instant the
// next threshold passes, and arms the conversation's timer for that
// instant. The timer loop (FireDue) calls schedule again when it is due.

// noClock reports whether c takes no response clock: closed conversations,
// spam, business proposals, which go to business contacts, and alerts,
// measured by time to acknowledge and resolve instead.
func (e *Engine) noClock(c *supportv1.Conversation) bool {
	if c.GetStatus() == supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED || conv.IsAlertConversation(c) {
		return true
	}
	cats := c.GetCategories()
	return len(cats) > 0 && (cats[0] == string(classify.Business) || cats[0] == string(classify.Spam))
}

// track moves the clock for an inbound message and reports whether it
// changed.
func (e *Engine) track(c *supportv1.Conversation, st *store.State, m *supportv1.InboundMessage, now time.Time) bool {
	at := conv.MessageTime(m, now)
	switch conv.Kind(m) {
	case supportv1.MessageKind_MESSAGE_KIND_POSTED:
		switch conv.Role(m) {
		case supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER:
			if e.noClock(c) {
				return st.Clock.Running() && st.Clock.StaffReplied(at)
			}
			return st.Clock.CustomerWrote(at)
		case supportv1.AuthorRole_AUTHOR_ROLE_STAFF:
			return st.Clock.StaffReplied(at)
		}
	case supportv1.MessageKind_MESSAGE_KIND_THREAD_CLOSED:
		return stopClock(st, now)
	}
	return false
}

// stopClock stops a running clock at now.
func stopClock(st *store.State, now time.Time) bool {
	return st.Clock.Running() && st.Clock.StaffReplied(now)
}

// windowsFor returns the working windows of coverage cov the clock needs
// at now: from its first unsettled span to Horizon ahead (further when no
// threshold falls inside).
func (e *Engine) windowsFor(ctx context.Context, cov worktime.Coverage, clock *worktime.Clock, now time.Time, horizon time.Duration) (worktime.Windows, error) {
	from := clock.Since()
	if from.IsZero() || from.After(now) {
		from = now
	}
	return e.coverage(cov).Windows(ctx, from, now.Add(horizon))
}

// coverage is where the working windows of a tier's coverage come from.
func (e *Engine) coverage(cov worktime.Coverage) coverage.Source {
	switch cov {
	case worktime.CoverageAlways:
		return coverage.Always{}
	case worktime.CoverageRoster:
		return e.cfg.Roster
	}
	return e.cfg.Coverage
}

// schedule evaluates c's clock at now (see the comment at the top of this
// file), appending DEADLINE events to out and the timer's change to p. It
// does not fail: when the working windows are unknown it tries again
// after RetryDelay.
func (e *Engine) schedule(ctx context.Context, p *pipe, c *supportv1.Conversation, st *store.State, now time.Time, out *conv.Outcome) {
	id := c.GetId()
	if st.Clock.Since().IsZero() {
		// Nothing unsettled: the clock never ran or was folded in.
		if c.GetNextDeadlineAt() != nil {
			c.NextDeadlineAt = nil
			out.Changed = true
		}
		p.idleTimer(id)
		return
	}
	th := e.policy().For(c.GetTier())
	w, err := e.windowsFor(ctx, th.Coverage, &st.Clock, now, e.cfg.Horizon)
	if err != nil {
		// Rotation cannot say when people work: keep what is known and
		// try again shortly rather than fail the message.
		e.cfg.Logger.Warn("cannot evaluate deadline; retrying", "conversation", id, "error", err, "retry_in", e.cfg.RetryDelay)
		e.windowFailures.Inc()
		p.armTimer(id, now.Add(e.cfg.RetryDelay), now)
		return
	}
	if !st.Clock.Running() {
		e.settle(p, c, st, w, th, now, out)
		return
	}
	status := st.Clock.Status(w, th, now)
	if status.MoreWindows {
		// Nobody works within the horizon: look much further ahead once.
		if far, err := e.windowsFor(ctx, th.Coverage, &st.Clock, now, 8*e.cfg.Horizon); err == nil {
			w, status = far, st.Clock.Status(far, th, now)
		}
	}
	reached := status.Level.Proto()
	from := c.GetDeadlineLevel()
	for l := max(from+1, supportv1.DeadlineLevel_DEADLINE_LEVEL_OKAY); l <= reached; l++ {
		out.Event(conv.Event{
			Type:   supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_DEADLINE,
			Actor:  conv.System,
			Reason: deadlineReason(worktime.Level(l), th, c.GetTier()),
			Level:  l,
		})
		out.AuditLine(conv.System, "deadline", worktime.Level(l).String())
		e.deadlines.WithLabelValues(worktime.Level(l).String()).Inc()
	}
	if reached > from {
		c.DeadlineLevel = reached
		out.Changed = true
	}
	switch {
	case status.Level == worktime.LevelBreached:
		// The deadline is behind: keep the instant it passed, so the queue
		// puts the most overdue first.
		at := reachedAt(&st.Clock, w, th.TooLate)
		if c.GetNextDeadlineAt() == nil || !c.GetNextDeadlineAt().AsTime().Equal(at) {
			c.NextDeadlineAt = timestamppb.New(at)
			out.Changed = true
		}
		p.idleTimer(id)
	case !status.NextAt.IsZero():
		if c.GetNextDeadlineAt() == nil || !c.GetNextDeadlineAt().AsTime().Equal(status.NextAt) {
			c.NextDeadlineAt = timestamppb.New(status.NextAt)
			out.Changed = true
		}
		p.armTimer(id, status.NextAt, now)
	default:
		// No covered time ahead at all: look again when the windows end.
		if c.GetNextDeadlineAt() != nil {
			c.NextDeadlineAt = nil
			out.Changed = true
		}
		again := w.End()
		if !again.After(now) {
			again = now.Add(e.cfg.Horizon)
		}
		p.armTimer(id, again, now)
	}
}

// settle handles a stopped clock: it records the first response's working
// time, folds the stopped spans in, clears the next deadline and idles
// the timer.
func (e *Engine) settle(p *pipe, c *supportv1.Conversation, st *store.State, w worktime.Windows, th worktime.Thresholds, now time.Time, out *conv.Outcome) {
	if st.FirstResponseWork == nil && c.GetFirstResponseAt() != nil {
		d := st.Clock.Elapsed(w, c.GetFirstResponseAt().AsTime())
		st.FirstResponseWork = &d
		st.FirstResponseLevel = th.Level(d).Proto()
		e.firstResponse.WithLabelValues(tierName(c.GetTier())).Observe(d.Seconds())
	}
	if lvl := th.Level(st.Clock.Elapsed(w, now)).Proto(); lvl > c.GetDeadlineLevel() {
		// Passed while nobody was looking (the reply raced the timer): record
		// the level without announcing a deadline already answered.
		c.DeadlineLevel = lvl
		out.Changed = true
	}
	st.Clock.Settle(w)
	if c.GetNextDeadlineAt() != nil {
		c.NextDeadlineAt = nil
		out.Changed = true
	}
	p.idleTimer(c.GetId())
}

// reachedAt returns when the running clock's elapsed time reached d: in
// its running span, or that span's start when d was reached before.
func reachedAt(clock *worktime.Clock, w worktime.Windows, d time.Duration) time.Time {
	last := clock.Spans[len(clock.Spans)-1]
	before := clock.Elapsed(w, last.Start)
	if before >= d {
		return last.Start.UTC()
	}
	if at, ok := worktime.Deadline(w, last.Start, d-before); ok {
		return at
	}
	return last.Start.UTC()
}

func deadlineReason(l worktime.Level, th worktime.Thresholds, t supportv1.Tier) string {
	switch l {
	case worktime.LevelOkay:
		return fmt.Sprintf("no response within %s of working time (great, %s tier)", th.Great, tierName(t))
	case worktime.LevelLate:
		return fmt.Sprintf("no response within %s of working time (okay, %s tier)", th.Okay, tierName(t))
	case worktime.LevelBreached:
		return fmt.Sprintf("no response within %s of working time: too late (%s tier)", th.TooLate, tierName(t))
	}
	return l.String()
}
