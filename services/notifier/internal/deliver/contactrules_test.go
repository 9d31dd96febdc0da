package deliver_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sidekickhq/sidekick/services/notifier/internal/deliver"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notifiertest"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
	"github.com/sidekickhq/sidekick/services/notifier/internal/store"
)

// aliceRules are the example: Slack at once, email after 5
// minutes unacknowledged, PagerDuty after 10 for pages.
var aliceRules = map[string][]notify.ContactRule{"alice": {
	{Channel: "slack"},
	{Channel: "email", After: 5 * time.Minute},
	{Channel: "pagerduty", After: 10 * time.Minute, Urgency: notify.Page},
}}

type contactChannels struct {
	slack, email, pager *notifiertest.Recorder
}

func (e *env) contactDispatcher(t *testing.T, rules map[string][]notify.ContactRule) (*deliver.Dispatcher, contactChannels) {
	t.Helper()
	cs := contactChannels{
		slack: &notifiertest.Recorder{ChannelName: "slack"},
		email: &notifiertest.Recorder{ChannelName: "email"},
		pager: &notifiertest.Recorder{ChannelName: "pagerduty"},
	}
	d := e.deps
	d.Channels = []notify.Channel{cs.slack, cs.email}
	d.Pager = cs.pager
	disp, err := deliver.New(deliver.Config{ContactRules: rules, RateLimit: -1}, d)
	if err != nil {
		t.Fatal(err)
	}
	return disp, cs
}

func toAlice(key string, u notify.Urgency) deliver.Request {
	return deliver.Request{IdempotencyKey: key, Origin: "test", Targets: []deliver.Target{{PersonID: "alice"}},
		Urgency: u, Title: "t", ConversationID: "conv-" + key}
}

// byChannel is the status of each delivery of a notification by channel.
func byChannel(t *testing.T, st *store.Store, notificationID string) map[string]store.Delivery {
	t.Helper()
	ds, err := st.Deliveries(context.Background(), notificationID)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]store.Delivery{}
	for _, d := range ds {
		if _, dup := out[d.Channel]; dup {
			t.Fatalf("two deliveries through %s: %+v", d.Channel, ds)
		}
		out[d.Channel] = d
	}
	return out
}

// A ping follows the person's rules: Slack at once, email five minutes
// later because nobody acknowledged, never PagerDuty (a rule for pages).
func TestContactRulesTellAPersonStepByStepUntilAcknowledged(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	disp, cs := e.contactDispatcher(t, aliceRules)

	n, _, err := disp.Notify(ctx, toAlice("ping", notify.Ping))
	if err != nil {
		t.Fatal(err)
	}
	got := byChannel(t, e.store, n.ID)
	if len(got) != 2 || got["slack"].Status != store.StatusDelivered || got["email"].Status != store.StatusPending {
		t.Fatalf("at once: %+v, want slack delivered and email pending", got)
	}
	if !got["email"].NextAttemptAt.Equal(e.clock.Now().Add(5 * time.Minute)) {
		t.Errorf("email due %s, want 5 minutes after %s", got["email"].NextAttemptAt, e.clock.Now())
	}
	e.clock.Advance(4*time.Minute + 59*time.Second)
	if k, err := disp.Sweep(ctx); err != nil || k != 0 {
		t.Fatalf("before 5 minutes the sweep attempted %d (%v)", k, err)
	}
	e.clock.Advance(time.Second)
	if k, err := disp.Sweep(ctx); err != nil || k != 1 {
		t.Fatalf("at 5 minutes the sweep attempted %d (%v), want the email", k, err)
	}
	if len(cs.slack.Sent()) != 1 || len(cs.email.Sent()) != 1 || len(cs.pager.Sent()) != 0 {
		t.Errorf("sent slack %d, email %d, pagerduty %d; want 1, 1, 0", len(cs.slack.Sent()), len(cs.email.Sent()), len(cs.pager.Sent()))
	}

	// A page: Slack at once; acknowledged after the email went out, so
	// PagerDuty at 10 minutes is cancelled, never sent.
	p, _, err := disp.Notify(ctx, toAlice("page", notify.Page))
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(5 * time.Minute)
	if _, err := disp.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Minute)
	if _, err := disp.Acknowledge(ctx, deliver.Ack{NotificationID: p.ID, Actor: "alice", Source: "test"}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	if _, err := disp.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	got = byChannel(t, e.store, p.ID)
	if got["slack"].Status != store.StatusDelivered || got["email"].Status != store.StatusDelivered || got["pagerduty"].Status != store.StatusCancelled {
		t.Errorf("page deliveries %+v, want slack and email delivered, pagerduty cancelled", got)
	}
	if len(cs.pager.Sent()) != 0 || len(cs.email.Sent()) != 2 {
		t.Errorf("pagerduty sent %d, email %d; want 0 and 2", len(cs.pager.Sent()), len(cs.email.Sent()))
	}
}

// Without acknowledgement the page reaches PagerDuty at 10 minutes; an
// answer (the conversation stopping) before the email's time cancels it.
func TestContactRulesReachThePagerAndStopWithTheConversation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	disp, cs := e.contactDispatcher(t, aliceRules)

	p, _, err := disp.Notify(ctx, toAlice("page", notify.Page))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		e.clock.Advance(5 * time.Minute)
		if _, err := disp.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if sent := cs.pager.Sent(); len(sent) != 1 || sent[0].Urgency != notify.Page || sent[0].Recipient.PersonID != "alice" {
		t.Fatalf("pagerduty got %+v, want alice's page at 10 minutes", sent)
	}
	if got := byChannel(t, e.store, p.ID); len(got) != 3 || got["pagerduty"].Status != store.StatusDelivered {
		t.Errorf("page deliveries %+v, want slack, email and pagerduty delivered", got)
	}

	n, _, err := disp.Notify(ctx, toAlice("answered", notify.Ping))
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	if err := disp.StopConversation(ctx, "conv-answered", "answered by bob", e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(10 * time.Minute)
	if _, err := disp.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if got := byChannel(t, e.store, n.ID); got["email"].Status != store.StatusCancelled {
		t.Errorf("email after the answer: %+v, want cancelled", got["email"])
	}
}

// A rule naming a channel this notifier does not have is recorded as
// failed with the reason; when no rule can be sent the person is told the
// default way. Rules for pages only leave pings as they were, and people
// without rules are untouched.
func TestContactRulesThatCannotBeSentFallBack(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.rot.AddPerson(notifiertest.Carol)
	disp, cs := e.contactDispatcher(t, map[string][]notify.ContactRule{
		"alice": {{Channel: "console"}},
		"bob":   {{Channel: "pagerduty", Urgency: notify.Page}},
	})

	n, _, err := disp.Notify(ctx, toAlice("a", notify.Ping))
	if err != nil {
		t.Fatal(err)
	}
	got := byChannel(t, e.store, n.ID)
	if c := got["console"]; c.Status != store.StatusFailed || !strings.Contains(c.LastError, "contact rule 1 (console at once): the console channel is not configured") {
		t.Errorf("console rule: %+v, want failed with the reason", c)
	}
	if got["slack"].Status != store.StatusDelivered || len(cs.slack.Sent()) != 1 {
		t.Errorf("fallback: %+v, want alice told on the first channel", got)
	}

	b, _, err := disp.Notify(ctx, deliver.Request{IdempotencyKey: "b", Origin: "test", Urgency: notify.Ping, Title: "t",
		Targets: []deliver.Target{{PersonID: "bob"}, {PersonID: "carol"}}})
	if err != nil {
		t.Fatal(err)
	}
	ds, err := e.store.Deliveries(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	var chans []string
	for _, d := range ds {
		chans = append(chans, d.Recipient.PersonID+":"+d.Channel)
	}
	slices.Sort(chans)
	if !slices.Equal(chans, []string{"bob:slack", "carol:slack"}) {
		t.Errorf("a ping to bob (page rules only) and carol (no rules) went %v, want the default", chans)
	}
}

// A test reaches a person at once through every channel their rules name,
// delays and urgencies left aside; without rules through every channel
// that can reach them; never a webhook. A rule's channel this notifier
// does not have is reported failed.
func TestATestGoesThroughEveryWayOfTellingAPersonAtOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	rules := map[string][]notify.ContactRule{
		"alice": aliceRules["alice"],
		"carol": {{Channel: "email"}, {Channel: "console", After: time.Minute}},
	}
	e.rot.AddPerson(notifiertest.Carol)
	hook := &notifiertest.Recorder{ChannelName: "webhook"}
	e.deps.Mirrors = []notify.Channel{hook}
	disp, cs := e.contactDispatcher(t, rules)

	test := func(person string) map[string]store.Delivery {
		t.Helper()
		n, _, err := disp.Notify(ctx, deliver.Request{IdempotencyKey: "test-" + person, Origin: "test", Urgency: notify.Ping,
			Title: "test", Targets: []deliver.Target{{PersonID: person}}, Test: true})
		if err != nil {
			t.Fatal(err)
		}
		return byChannel(t, e.store, n.ID)
	}
	got := test("alice")
	for _, ch := range []string{"slack", "email", "pagerduty"} {
		if got[ch].Status != store.StatusDelivered {
			t.Errorf("alice's %s: %+v, want delivered at once", ch, got[ch])
		}
	}
	if len(got) != 3 || len(cs.pager.Sent()) != 1 || len(hook.Sent()) != 0 {
		t.Errorf("alice's test: %+v, webhook got %d; want slack, email and pagerduty only", got, len(hook.Sent()))
	}

	got = test("bob") // no rules: every channel that reaches him
	if len(got) != 3 || got["slack"].Status != store.StatusDelivered || got["email"].Status != store.StatusDelivered || got["pagerduty"].Status != store.StatusDelivered {
		t.Errorf("bob's test: %+v, want slack, email and pagerduty delivered", got)
	}

	got = test("carol")
	if got["email"].Status != store.StatusDelivered || got["console"].Status != store.StatusFailed ||
		!strings.Contains(got["console"].LastError, "console, which is not configured") || len(got) != 2 {
		t.Errorf("carol's test: %+v, want email delivered and console failed as not configured", got)
	}
	if len(hook.Sent()) != 0 {
		t.Errorf("the webhook got %d test messages", len(hook.Sent()))
	}
}
