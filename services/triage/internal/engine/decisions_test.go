package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/clock"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/classify"
	"github.com/sidekickhq/sidekick/services/triage/internal/coverage"
	"github.com/sidekickhq/sidekick/services/triage/internal/store"
	"github.com/sidekickhq/sidekick/services/triage/internal/tier"
	"github.com/sidekickhq/sidekick/services/triage/internal/worktime"
)

// These tests run the engine's decisions without a database: what an
// inbound message or a fired deadline timer does to a conversation (its
// status, tier, team, categories, response clock and deadline), which
// events it emits and what happens to the timer. The writes go to a pipe
// that only records them (nothing reads the database on these paths but
// the category model, installed here), and the conversation and its state
// carry over from one transaction to the next as the store would hand
// them back.

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC) // a Monday

// newTestEngine is an engine without a database on c, with the default
// category rules and an empty learned model, and cov's working windows
// (nil: always covered).
func newTestEngine(t *testing.T, c *clock.Fake, cov coverage.Source, policy worktime.Policy) *Engine {
	t.Helper()
	e, err := newEngine(Config{
		ConsoleURL: "https://sidekick.example.com/console", Coverage: cov, Policy: policy,
		Rules: tier.Rules{PriorityRevenueCents: 200000}, ModelRefresh: 1000 * time.Hour,
	}, c, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	model, err := classify.LoadModel(nil)
	if err != nil {
		t.Fatal(err)
	}
	e.install(classify.New(e.model.rules, model), 0)
	return e
}

// thread is one thread as the engine sees it between transactions.
type thread struct {
	key string
	n   int
	l   *store.Locked // nil until a conversation is opened
}

// msg is a message of the thread by author in role, sent now.
func (th *thread) msg(kind supportv1.MessageKind, role supportv1.AuthorRole, author, text string, now time.Time) *supportv1.InboundMessage {
	th.n++
	return &supportv1.InboundMessage{
		Id: fmt.Sprintf("%s#%d", th.key, th.n), Channel: supportv1.Channel_CHANNEL_SLACK, ThreadKey: th.key,
		SourceId: fmt.Sprintf("%s.%d", th.key, th.n), Kind: kind, Text: text, SentAt: timestamppb.New(now),
		Author: &supportv1.Author{Id: author, Name: author, Role: role},
	}
}

// outcome is what one transaction did to a thread.
type outcome struct {
	result Result
	events []*supportv1.ConversationEvent
	// timer: "armed" with due, "idle", or "" when untouched.
	timer string
	due   time.Time
}

func record(t *testing.T, p *pipe, id string) outcome {
	t.Helper()
	var o outcome
	for _, row := range p.events {
		var ev supportv1.ConversationEvent
		if err := proto.Unmarshal(row.Payload, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.GetId() != row.ID || row.Subject != "support.conversation."+EventName(ev.GetType()) {
			t.Fatalf("event %s written as %s on %s", ev.GetId(), row.ID, row.Subject)
		}
		o.events = append(o.events, &ev)
	}
	if tw := p.timers[id]; tw != nil {
		switch {
		case tw.armed && tw.row.Status == store.TimerArmed:
			o.timer, o.due = "armed", tw.row.Due
		default:
			o.timer = "idle"
		}
	}
	return o
}

// receive applies m to th as one transaction of HandleInbound would.
func (th *thread) receive(t *testing.T, e *Engine, m *supportv1.InboundMessage, customer *triagev1.Customer) outcome {
	t.Helper()
	p := newPipe(nil)
	res, l, err := e.receive(context.Background(), p, m, th.l, customer, e.now())
	if err != nil {
		t.Fatalf("receive %s: %v", m.GetId(), err)
	}
	th.l = l
	o := record(t, p, th.id())
	o.result = res
	return o
}

// fire fires th's timer as FireDue would.
func (th *thread) fire(t *testing.T, e *Engine) outcome {
	t.Helper()
	p := newPipe(nil)
	if err := e.fire(context.Background(), p, th.l.Conversation, th.l.State, e.now()); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.fired, []string{th.id()}) {
		t.Fatalf("fired %v, want the thread's timer", p.fired)
	}
	return record(t, p, th.id())
}

func (th *thread) id() string {
	if th.l == nil {
		return ""
	}
	return th.l.Conversation.GetId()
}

// names are the events' names, and levels those of their deadlines.
func names(evs []*supportv1.ConversationEvent) (names, levels string) {
	var ns, ls []string
	for _, ev := range evs {
		ns = append(ns, EventName(ev.GetType()))
		if ev.GetType() == supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_DEADLINE {
			ls = append(ls, worktime.Level(ev.GetDeadlineLevel()).String())
		}
	}
	return strings.Join(ns, " "), strings.Join(ls, " ")
}

var (
	customer = supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER
	staff    = supportv1.AuthorRole_AUTHOR_ROLE_STAFF
	bot      = supportv1.AuthorRole_AUTHOR_ROLE_BOT
	posted   = supportv1.MessageKind_MESSAGE_KIND_POSTED
)

// step is one transaction of a thread: a message received, or (m nil) its
// deadline timer firing, at the clock's time after advancing by after.
type step struct {
	name  string
	after time.Duration
	kind  supportv1.MessageKind
	role  supportv1.AuthorRole
	text  string
	// What it must do.
	result   Result
	events   string        // their names (EventName), in order
	levels   string        // of the DEADLINE events, in order
	timer    string        // "armed", "idle" or "" (untouched)
	due      time.Duration // after t0, when armed
	status   supportv1.ConversationStatus
	level    string
	next     time.Duration // next_deadline_at after t0; 0: none
	firstRsp time.Duration // covered time to the first response; 0: none yet
}

const timer = -1 // a step's kind when the deadline timer fires

var authors = map[supportv1.AuthorRole]string{customer: "U0CUST", staff: "U0HERO", bot: "B0BOT"}

// TestDecisions follows threads through messages and timer firings on
// wall-clock coverage with the handbook's thresholds (great under 15
// minutes, okay under 1 hour, breached from 8 hours).
func TestDecisions(t *testing.T) {
	open := supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN
	awaiting := supportv1.ConversationStatus_CONVERSATION_STATUS_AWAITING_CUSTOMER
	closedStatus := supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED
	question := "The dashboards are slow since this morning"
	// The customer opens the thread: great passes in 15 minutes.
	opens := step{name: "the customer opens", kind: posted, role: customer, text: question,
		result: Applied, events: "opened triaged",
		timer: "armed", due: 15 * time.Minute, status: open, level: "great", next: 15 * time.Minute}
	threads := []struct {
		name  string
		steps []step
	}{{
		name: "answered within the hour",
		steps: []step{
			opens,
			{name: "great passes", after: 15 * time.Minute, kind: timer,
				events: "deadline", levels: "okay",
				timer: "armed", due: time.Hour, status: open, level: "okay", next: time.Hour},
			{name: "staff replies", after: 5 * time.Minute, kind: posted, role: staff, text: "Looking into it",
				result: Applied, events: "responded assigned",
				timer: "idle", status: awaiting, level: "okay", firstRsp: 20 * time.Minute},
			{name: "the customer writes again: the clock resumes from 20 minutes", after: 2 * time.Hour, kind: posted, role: customer, text: "Thanks, still slow",
				result: Applied, events: "reopened message",
				timer: "armed", due: 2*time.Hour + 60*time.Minute, status: open, level: "okay", next: 2*time.Hour + 60*time.Minute, firstRsp: 20 * time.Minute},
		},
	}, {
		name: "never answered: each threshold once, then breached",
		steps: []step{
			opens,
			{name: "a timer firing late passes two thresholds", after: 2 * time.Hour, kind: timer,
				events: "deadline deadline", levels: "okay late",
				timer: "armed", due: 8 * time.Hour, status: open, level: "late", next: 8 * time.Hour},
			{name: "breached: the timer is idle, the deadline stays at the breach", after: 6 * time.Hour, kind: timer,
				events: "deadline", levels: "breached",
				timer: "idle", status: open, level: "breached", next: 8 * time.Hour},
			{name: "another look announces nothing again", after: time.Hour, kind: timer,
				timer: "idle", status: open, level: "breached", next: 8 * time.Hour},
		},
	}, {
		name: "a reply that raced the timer records the level passed, announcing nothing",
		steps: []step{
			opens,
			{name: "staff replies after 20 minutes, before the timer fired", after: 20 * time.Minute, kind: posted, role: staff, text: "On it",
				result: Applied, events: "responded assigned",
				timer: "idle", status: awaiting, level: "okay", firstRsp: 20 * time.Minute},
		},
	}, {
		name: "thread closed stops the clock without a reply",
		steps: []step{
			opens,
			{name: "the thread is closed", after: 10 * time.Minute, kind: supportv1.MessageKind_MESSAGE_KIND_THREAD_CLOSED, role: staff,
				result: Applied, events: "closed",
				timer: "idle", status: closedStatus, level: "great"},
			{name: "reopened by a customer's message: the clock runs again", after: time.Hour, kind: posted, role: customer, text: "It is back",
				result: Applied, events: "reopened message",
				timer: "armed", due: 75 * time.Minute, status: open, level: "great", next: 75 * time.Minute},
		},
	}, {
		name: "messages that open nothing are recorded",
		steps: []step{
			{name: "a bot posts first", kind: posted, role: bot, text: "Reminder: include your project id", result: Recorded},
			{name: "staff writes in a thread nobody opened", kind: posted, role: staff, text: "A note for the team", result: Recorded},
			{name: "then the customer opens it", after: time.Minute, kind: posted, role: customer, text: question,
				result: Applied, events: "opened triaged",
				timer: "armed", due: 16 * time.Minute, status: open, level: "great", next: 16 * time.Minute},
		},
	}}
	for _, tc := range threads {
		t.Run(tc.name, func(t *testing.T) {
			c := clock.NewFake(t0)
			e := newTestEngine(t, c, nil, worktime.Policy{})
			th := &thread{key: "T0/C0/" + strings.ReplaceAll(tc.name, " ", "-")}
			for _, st := range tc.steps {
				c.Advance(st.after)
				var got outcome
				if st.kind == timer {
					got = th.fire(t, e)
				} else {
					got = th.receive(t, e, th.msg(st.kind, st.role, authors[st.role], st.text, c.Now()), nil)
				}
				checkStep(t, st, got, th)
			}
		})
	}
}

func checkStep(t *testing.T, st step, got outcome, th *thread) {
	t.Helper()
	if got.result != st.result {
		t.Errorf("%s: result %q, want %q", st.name, got.result, st.result)
	}
	if evs, lvls := names(got.events); evs != st.events || lvls != st.levels {
		t.Errorf("%s: events %q at levels %q, want %q at %q", st.name, evs, lvls, st.events, st.levels)
	}
	if got.timer != st.timer || (st.timer == "armed" && !got.due.Equal(t0.Add(st.due))) {
		t.Errorf("%s: timer %q due %v, want %q due %v", st.name, got.timer, got.due, st.timer, t0.Add(st.due))
	}
	if th.l == nil {
		if st.status != supportv1.ConversationStatus_CONVERSATION_STATUS_UNSPECIFIED {
			t.Errorf("%s: no conversation, want one %s", st.name, st.status)
		}
		return
	}
	c, s := th.l.Conversation, th.l.State
	if lvl := worktime.Level(c.GetDeadlineLevel()).String(); c.GetStatus() != st.status || lvl != st.level {
		t.Errorf("%s: %s at level %s, want %s at %s", st.name, c.GetStatus(), lvl, st.status, st.level)
	}
	var next time.Time
	if st.next != 0 {
		next = t0.Add(st.next)
	}
	if got := c.GetNextDeadlineAt(); (got == nil) != next.IsZero() || (got != nil && !got.AsTime().Equal(next)) {
		t.Errorf("%s: next deadline %v, want %v", st.name, got.AsTime(), next)
	}
	var first time.Duration
	if s.FirstResponseWork != nil {
		first = *s.FirstResponseWork
	}
	if first != st.firstRsp {
		t.Errorf("%s: first response after %v of covered time, want %v", st.name, first, st.firstRsp)
	}
	// Every event carries the conversation as it is after the change.
	for _, ev := range got.events {
		if ev.GetConversation().GetId() != c.GetId() || ev.GetConversation().GetStatus() != c.GetStatus() ||
			ev.GetConversation().GetShareUrl() != "https://sidekick.example.com/console/conversations/"+c.GetId() {
			t.Errorf("%s: %s event carries %v", st.name, ev.GetType(), ev.GetConversation())
		}
	}
}

// TestOpeningDecisions: the opening message decides the tier (from the
// customer directory, with that tier's thresholds), the categories and
// the route: spam is closed with no clock, a business proposal goes to
// the business team with no clock.
func TestOpeningDecisions(t *testing.T) {
	policy := worktime.Policy{Priority: worktime.Thresholds{Great: 5 * time.Minute, Okay: 30 * time.Minute, TooLate: 4 * time.Hour}}
	acme := &triagev1.Customer{Id: "acme", Name: "Acme", Plan: "enterprise"}
	cases := []struct {
		name     string
		customer *triagev1.Customer
		text     string
		attrs    map[string]string
		// What the opening must decide.
		tier       supportv1.Tier
		status     supportv1.ConversationStatus
		closeAs    supportv1.CloseReason
		team       string
		category   string
		events     string
		timer      string
		due        time.Duration
		customerID string
	}{{
		name: "an unknown author is community, on the default thresholds",
		text: "How do I export events to S3?",
		tier: supportv1.Tier_TIER_COMMUNITY, status: supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN,
		events: "opened triaged", timer: "armed", due: 15 * time.Minute,
	}, {
		name: "an enterprise customer is priority, on priority's thresholds", customer: acme,
		text: "Our dashboards are slow and time out since yesterday",
		tier: supportv1.Tier_TIER_PRIORITY, status: supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN, category: "performance",
		events: "opened triaged", timer: "armed", due: 5 * time.Minute, customerID: "acme",
	}, {
		name:  "spam is closed at once, with no clock",
		text:  "Dear Sir/Madam, I came across your website and would like to offer a guest post with do-follow backlinks.",
		attrs: map[string]string{"auth_failed": "true"},
		tier:  supportv1.Tier_TIER_COMMUNITY, status: supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED,
		closeAs: supportv1.CloseReason_CLOSE_REASON_SPAM, category: string(classify.Spam),
		events: "opened triaged closed", timer: "idle",
	}, {
		name: "a business proposal goes to the business team, with no clock",
		text: "Hi! We'd love to explore a co marketing partnership and a joint webinar with your team. Who is the right person to talk to?",
		tier: supportv1.Tier_TIER_COMMUNITY, status: supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN,
		team: "business", category: string(classify.Business),
		events: "opened triaged", timer: "idle",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := clock.NewFake(t0)
			e := newTestEngine(t, c, nil, policy)
			th := &thread{key: "T0/C0/opening"}
			m := th.msg(posted, customer, "U0AUTHOR", tc.text, c.Now())
			m.Attributes = tc.attrs
			got := th.receive(t, e, m, tc.customer)
			conv := th.l.Conversation
			if got.result != Applied || conv.GetTier() != tc.tier || conv.GetStatus() != tc.status || conv.GetCloseReason() != tc.closeAs ||
				conv.GetTeam() != tc.team || conv.GetCustomer().GetId() != tc.customerID {
				t.Errorf("%s: tier %s, %s (%s), team %q, customer %q", got.result, conv.GetTier(), conv.GetStatus(), conv.GetCloseReason(), conv.GetTeam(), conv.GetCustomer().GetId())
			}
			if tc.category != "" && (len(conv.GetCategories()) == 0 || conv.GetCategories()[0] != tc.category) {
				t.Errorf("categories %v, want %s first", conv.GetCategories(), tc.category)
			}
			if evs, _ := names(got.events); evs != tc.events {
				t.Errorf("events %q, want %q", evs, tc.events)
			}
			if got.timer != tc.timer || (tc.timer == "armed" && !got.due.Equal(t0.Add(tc.due))) {
				t.Errorf("timer %q due %v, want %q due %v", got.timer, got.due, tc.timer, t0.Add(tc.due))
			}
			if tc.timer == "idle" && (conv.GetNextDeadlineAt() != nil || th.l.State.Clock.Running()) {
				t.Errorf("no clock wanted: next deadline %v, clock running %t", conv.GetNextDeadlineAt(), th.l.State.Clock.Running())
			}
		})
	}
}

// TestDeadlinesFollowCoverage: the clock counts only covered time; when
// rotation cannot say who works the message still applies and the
// deadline is tried again after RetryDelay; with nobody covering within
// the horizon there is no deadline and the timer looks again when the
// known windows end.
func TestDeadlinesFollowCoverage(t *testing.T) {
	office := coverage.Func(func(_ context.Context, from, to time.Time) (worktime.Windows, error) {
		// 09:00–17:00 UTC every day.
		var w worktime.Windows
		for d := from.Truncate(24 * time.Hour); d.Before(to); d = d.Add(24 * time.Hour) {
			w = append(w, worktime.Interval{Start: d.Add(9 * time.Hour), End: d.Add(17 * time.Hour)})
		}
		return w.Clip(from, to), nil
	})
	down := coverage.Func(func(context.Context, time.Time, time.Time) (worktime.Windows, error) {
		return nil, errors.New("rotation unavailable")
	})
	nobody := coverage.Func(func(context.Context, time.Time, time.Time) (worktime.Windows, error) { return nil, nil })
	cases := []struct {
		name  string
		cov   coverage.Source
		wrote time.Time
		timer time.Time // due
		next  time.Time // next deadline; zero: none
	}{
		{"office hours: written at 16:50, great passes at 09:05 the next day", office,
			t0.Add(6*time.Hour + 50*time.Minute), t0.Add(23*time.Hour + 5*time.Minute), t0.Add(23*time.Hour + 5*time.Minute)},
		{"rotation unavailable: tried again after RetryDelay", down, t0, t0.Add(30 * time.Second), time.Time{}},
		{"nobody covers: looked at again after the horizon", nobody, t0, t0.Add(14 * 24 * time.Hour), time.Time{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := clock.NewFake(tc.wrote)
			e := newTestEngine(t, c, tc.cov, worktime.Policy{})
			th := &thread{key: "T0/C0/coverage"}
			got := th.receive(t, e, th.msg(posted, customer, "U0CUST", "Exports stopped", c.Now()), nil)
			if got.result != Applied || got.timer != "armed" || !got.due.Equal(tc.timer) {
				t.Errorf("%s, timer %q due %v; want applied, armed due %v", got.result, got.timer, got.due, tc.timer)
			}
			next := th.l.Conversation.GetNextDeadlineAt()
			if (next == nil) != tc.next.IsZero() || (next != nil && !next.AsTime().Equal(tc.next)) {
				t.Errorf("next deadline %v, want %v", next.AsTime(), tc.next)
			}
		})
	}
}

// TestHandoffSummary: conversations without a handoff note are listed as
// missing one and shown tagged; at most HandoffMaxOpen are included.
func TestHandoffSummary(t *testing.T) {
	e := newTestEngine(t, clock.NewFake(t0), nil, worktime.Policy{})
	e.cfg.HandoffMaxOpen = 2
	open := []store.OpenForHandoff{
		{Conversation: &supportv1.Conversation{Id: "a", Tags: []string{"vip"}}, HasNote: true},
		{Conversation: &supportv1.Conversation{Id: "b"}},
		{Conversation: &supportv1.Conversation{Id: "c", Tags: []string{NeedsHandoffTag}}},
	}
	summary, reason := e.summarise(Handoff{From: "alice", To: "bob"}, open)
	if !slices.Equal(summary.GetMissingNotes(), []string{"b", "c"}) {
		t.Errorf("missing notes %v, want b and c", summary.GetMissingNotes())
	}
	if len(summary.GetOpen()) != 2 || !slices.Equal(summary.GetOpen()[1].GetTags(), []string{NeedsHandoffTag}) ||
		!slices.Equal(summary.GetOpen()[0].GetTags(), []string{"vip"}) || summary.GetOpen()[0].GetShareUrl() == "" {
		t.Errorf("open %v, want a as it is and b tagged, c left out", summary.GetOpen())
	}
	if len(open[1].Conversation.GetTags()) != 0 {
		t.Error("the summary tagged the conversation it was given")
	}
	if want := "hero handoff from alice to bob: 3 open, 2 without a handoff note"; reason != want || summary.GetFromPerson() != "alice" || summary.GetToPerson() != "bob" {
		t.Errorf("reason %q, want %q", reason, want)
	}
	if _, reason := e.summarise(Handoff{}, nil); reason != "hero handoff from nobody to nobody: 0 open, 0 without a handoff note" {
		t.Errorf("empty handoff: %q", reason)
	}
}

// TestHandoffLeavesOutProposals: a business proposal goes to the business
// contacts, so it is neither in the summary nor missing a note.
func TestHandoffLeavesOutProposals(t *testing.T) {
	open := withoutProposals([]store.OpenForHandoff{
		{Conversation: &supportv1.Conversation{Id: "a", Categories: []string{"performance"}}},
		{Conversation: &supportv1.Conversation{Id: "p", Categories: []string{"business"}}},
		{Conversation: &supportv1.Conversation{Id: "b"}},
	})
	var ids []string
	for _, o := range open {
		ids = append(ids, o.Conversation.GetId())
	}
	if !slices.Equal(ids, []string{"a", "b"}) {
		t.Errorf("handed over %v, want a and b", ids)
	}
}
