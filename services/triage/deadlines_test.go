package triage

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/types/known/timestamppb"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/coverage"
	"github.com/sidekickhq/sidekick/services/triage/internal/triagetest"
)

var (
	levelGreat    = supportv1.DeadlineLevel_DEADLINE_LEVEL_GREAT
	levelOkay     = supportv1.DeadlineLevel_DEADLINE_LEVEL_OKAY
	levelLate     = supportv1.DeadlineLevel_DEADLINE_LEVEL_LATE
	levelBreached = supportv1.DeadlineLevel_DEADLINE_LEVEL_BREACHED
	typeDeadline  = supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_DEADLINE
)

func utc(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

// waitDeadline waits until the only conversation stands at level with its
// next deadline at next, and returns it.
func waitDeadline(t *testing.T, convs triagev1.ConversationServiceClient, level supportv1.DeadlineLevel, next time.Time) *supportv1.Conversation {
	t.Helper()
	var c *supportv1.Conversation
	triagetest.Eventually(t, fmt.Sprintf("deadline level %s, next %s", level, next.Format(time.RFC3339)), func() bool {
		list, err := convs.ListConversations(context.Background(), &triagev1.ListConversationsRequest{})
		if err != nil || len(list.GetConversations()) != 1 {
			return false
		}
		c = list.GetConversations()[0]
		return c.GetDeadlineLevel() == level && c.GetNextDeadlineAt() != nil && c.GetNextDeadlineAt().AsTime().Equal(next)
	})
	return c
}

// TestWorkingTimeDeadlines runs a conversation's clock through the timer
// loop on a fake clock, with working windows from a fake rotation service
// over gRPC: across a weekend, across a time-zone boundary (London and New
// York together) and across the March DST change in London.
func TestWorkingTimeDeadlines(t *testing.T) {
	london := func(t testing.TB) *time.Location { return mustLoc(t, "Europe/London") }
	newYork := func(t testing.TB) *time.Location { return mustLoc(t, "America/New_York") }
	type step struct {
		at    time.Time
		level supportv1.DeadlineLevel
		next  time.Time
	}
	cases := []struct {
		name   string
		roster func(t testing.TB) []office
		wrote  time.Time
		// first is the next deadline right after the customer wrote.
		first time.Time
		steps []step
	}{{
		// London office hours; the customer writes on Friday at 17:00 with
		// half an hour of the week left.
		name:   "weekend",
		roster: func(t testing.TB) []office { return []office{hours(london(t), "09:00", "17:30")} },
		wrote:  utc("2026-03-06 17:00"), // Friday, GMT
		first:  utc("2026-03-06 17:15"),
		steps: []step{
			{utc("2026-03-06 17:15"), levelOkay, utc("2026-03-09 09:30")},     // 30m Friday + 30m Monday
			{utc("2026-03-09 09:30"), levelLate, utc("2026-03-09 16:30")},     // 8h: 30m Friday + 7h30 Monday
			{utc("2026-03-09 16:30"), levelBreached, utc("2026-03-09 16:30")}, // breached at 16:30
		},
	}, {
		// London and New York: New York covers the evening in UTC after
		// London leaves (before either changes to summer time).
		name: "time-zone boundary",
		roster: func(t testing.TB) []office {
			return []office{hours(london(t), "09:00", "17:30"), hours(newYork(t), "09:00", "17:30")}
		},
		wrote: utc("2026-02-20 17:00"), // Friday: London 17:00 GMT, New York 12:00 EST
		first: utc("2026-02-20 17:15"),
		steps: []step{
			{utc("2026-02-20 17:15"), levelOkay, utc("2026-02-20 18:00")},     // New York covers 17:30-22:30 UTC
			{utc("2026-02-20 18:00"), levelLate, utc("2026-02-23 11:30")},     // 5h30 Friday + 2h30 Monday from 09:00 UTC
			{utc("2026-02-23 11:30"), levelBreached, utc("2026-02-23 11:30")}, //
		},
	}, {
		// London across the change to summer time (Sunday 29 March 2026):
		// Monday's 09:00 is 08:00 UTC.
		name:   "DST change",
		roster: func(t testing.TB) []office { return []office{hours(london(t), "09:00", "17:30")} },
		wrote:  utc("2026-03-27 17:00"), // Friday, GMT
		first:  utc("2026-03-27 17:15"),
		steps: []step{
			{utc("2026-03-27 17:15"), levelOkay, utc("2026-03-30 08:30")},     // Monday 09:30 BST
			{utc("2026-03-30 08:30"), levelLate, utc("2026-03-30 15:30")},     // Monday 16:30 BST
			{utc("2026-03-30 15:30"), levelBreached, utc("2026-03-30 15:30")}, //
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			rot := &fakeRotation{}
			rot.setRoster(tc.roster(t)...)
			h.deps.Rotation = serveRotation(t, rot)
			cfg := testConfig()
			cfg.Coverage = "rotation"
			s, _ := h.startConfig(t, cfg, h.deps)
			convs, _ := serve(t, s)

			triagetest.SetClock(h.clock, tc.wrote)
			h.send(t, at(h.clock, triagetest.Slack("deadline").Customer("U0CUST", "Our exports stopped this afternoon")))
			waitDeadline(t, convs, levelGreat, tc.first)
			for _, st := range tc.steps {
				triagetest.SetClock(h.clock, st.at)
				waitDeadline(t, convs, st.level, st.next)
			}
			breached, err := convs.ListConversations(context.Background(), &triagev1.ListConversationsRequest{BreachedOnly: true})
			if err != nil || len(breached.GetConversations()) != 1 {
				t.Fatalf("breached filter: %v %v", breached, err)
			}
			h.settled(t)
			events, _ := triagetest.ConversationEvents(t, h.js)
			deadlines := eventsOf(events, typeDeadline)
			var levels []supportv1.DeadlineLevel
			for _, e := range deadlines {
				levels = append(levels, e.GetDeadlineLevel())
				if e.GetConversation().GetDeadlineLevel() != e.GetDeadlineLevel() || e.GetReason() == "" {
					t.Errorf("deadline event %v", e)
				}
			}
			if want := []supportv1.DeadlineLevel{levelOkay, levelLate, levelBreached}; !slices.Equal(levels, want) {
				t.Fatalf("deadline events %v, want %v", levels, want)
			}
			if n, _ := rot.calls(); n == 0 {
				t.Fatal("working windows were never asked from rotation")
			}
		})
	}
}

func TestReplyStopsTheClockAndTheCustomerRestartsIt(t *testing.T) {
	h := newHarness(t)
	h.deps.Coverage = coverage.Always{}
	s, _ := h.start(t, h.deps)
	convs, _ := serve(t, s)
	t0 := utc("2026-03-02 10:00")
	triagetest.SetClock(h.clock, t0)
	th := triagetest.Slack("restart")
	h.send(t, at(h.clock, th.Customer("U0CUST", "Where do I find the API key?")))
	waitDeadline(t, convs, levelGreat, t0.Add(15*time.Minute))

	h.clock.Advance(10 * time.Minute)
	h.send(t, at(h.clock, th.Staff("U0HERO", "Project settings")))
	c := only(t, convs)
	if c.GetNextDeadlineAt() != nil || c.GetDeadlineLevel() != levelGreat {
		t.Fatalf("after the reply the clock stops: %v", c)
	}
	if n := triagetest.Count(t, h.pool, `SELECT count(*) FROM timers WHERE status = 1`); n != 0 {
		t.Fatalf("%d timers armed after the reply", n)
	}
	var fr float64
	var lvl int16
	if err := h.pool.QueryRow(context.Background(), `SELECT first_response_work_seconds, first_response_level FROM conversations`).Scan(&fr, &lvl); err != nil {
		t.Fatal(err)
	}
	if fr != 600 || supportv1.DeadlineLevel(lvl) != levelGreat {
		t.Fatalf("first response %vs at level %d, want 600s great", fr, lvl)
	}

	// The customer writes again two hours later: the clock resumes from
	// its 10 minutes, so "great" passes 5 minutes later.
	h.clock.Advance(2 * time.Hour)
	again := h.clock.Now()
	h.send(t, at(h.clock, th.Customer("U0CUST", "Thanks, and where is the project id?")))
	waitDeadline(t, convs, levelGreat, again.Add(5*time.Minute))
	h.clock.Advance(5 * time.Minute)
	waitDeadline(t, convs, levelOkay, again.Add(50*time.Minute))
}

// A conversation closed on a customer whose message nobody answered, then
// reopened: the customer waits again, so the clock re-arms at the
// reopening from the time already counted (issue 17: it showed "great"
// with no next threshold). Reopening an answered conversation arms
// nothing: its clock starts when the customer writes.
func TestReopenRearmsAnUnansweredConversation(t *testing.T) {
	h := newHarness(t)
	h.deps.Coverage = coverage.Always{}
	s, _ := h.start(t, h.deps)
	convs, _ := serve(t, s)
	ctx := context.Background()
	t0 := utc("2026-03-02 10:00")
	triagetest.SetClock(h.clock, t0)
	th := triagetest.Slack("reopen")
	h.send(t, at(h.clock, th.Customer("U0CUST", "Where do I find the API key?")))
	c := waitDeadline(t, convs, levelGreat, t0.Add(15*time.Minute))

	h.clock.Advance(5 * time.Minute)
	if _, err := convs.Close(ctx, &triagev1.CloseRequest{Id: c.GetId(), Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	if n := triagetest.Count(t, h.pool, `SELECT count(*) FROM timers WHERE status = 1`); n != 0 {
		t.Fatalf("%d timers armed after the close", n)
	}
	h.clock.Advance(time.Hour)
	reopened := h.clock.Now()
	re, err := convs.Reopen(ctx, &triagev1.ReopenRequest{Id: c.GetId(), Actor: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	// Five minutes were counted before the close: great passes ten
	// minutes after the reopening.
	if next := re.GetConversation().GetNextDeadlineAt(); next == nil || !next.AsTime().Equal(reopened.Add(10*time.Minute)) {
		t.Fatalf("reopened conversation's next deadline %v, want %s", next, reopened.Add(10*time.Minute))
	}
	h.clock.Advance(10 * time.Minute)
	waitDeadline(t, convs, levelOkay, reopened.Add(55*time.Minute))

	// Answered, closed, reopened: nobody is waiting.
	h.send(t, at(h.clock, th.Staff("U0HERO", "Project settings")))
	if _, err := convs.Close(ctx, &triagev1.CloseRequest{Id: c.GetId(), Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	re, err = convs.Reopen(ctx, &triagev1.ReopenRequest{Id: c.GetId(), Actor: "bob"})
	if err != nil || re.GetConversation().GetNextDeadlineAt() != nil {
		t.Fatalf("reopened answered conversation %v %v, want no deadline", re, err)
	}
}

// TestTwoInstancesFireEachDeadlineOnce runs two triage services on one
// database and one NATS server: every conversation's threshold fires
// exactly once.
func TestTwoInstancesFireEachDeadlineOnce(t *testing.T) {
	h := newHarness(t)
	h.deps.Coverage = coverage.Always{}
	cfg := testConfig()
	cfg.TimerBatch = 7 // small batches: the instances interleave
	reg1, reg2 := prometheus.NewRegistry(), prometheus.NewRegistry()
	h.deps.Registry = reg1
	s1, _ := h.startConfig(t, cfg, h.deps)
	second := h.deps
	second.Registry = reg2
	second.Logger = triagetest.Logger(t).With("instance", 2)
	one := cfg
	one.InboundBatch = 1 // the second instance takes inbound messages one by one
	h.startConfig(t, one, second)
	convs, _ := serve(t, s1)

	const n = 120
	t0 := utc("2026-03-02 10:00")
	triagetest.SetClock(h.clock, t0)
	for i := range n {
		triagetest.PublishInbound(t, h.js, at(h.clock, triagetest.Slack(fmt.Sprint("many-", i)).Customer("U0CUST", "Is ingestion delayed?")), "")
	}
	h.settled(t)
	if armed := triagetest.Count(t, h.pool, `SELECT count(*) FROM timers WHERE status = 1 AND due_at = $1`, t0.Add(15*time.Minute)); armed != n {
		t.Fatalf("%d timers armed for 10:15, want %d", armed, n)
	}
	h.clock.Advance(20 * time.Minute)
	triagetest.Eventually(t, "every conversation past great", func() bool {
		return triagetest.Count(t, h.pool, `SELECT count(*) FROM conversations WHERE deadline_level = 2`) == n
	})
	h.settled(t)
	events, _ := triagetest.ConversationEvents(t, h.js)
	perConversation := map[string]int{}
	for _, e := range eventsOf(events, typeDeadline) {
		if e.GetDeadlineLevel() != levelOkay {
			t.Fatalf("unexpected deadline event %v", e)
		}
		perConversation[e.GetConversation().GetId()]++
	}
	if len(perConversation) != n {
		t.Fatalf("deadline events for %d conversations, want %d", len(perConversation), n)
	}
	for id, k := range perConversation {
		if k != 1 {
			t.Fatalf("conversation %s: %d deadline events", id, k)
		}
	}
	if fired := triagetest.Count(t, h.pool, `SELECT coalesce(sum(fires), 0) FROM timers`); fired != n {
		t.Fatalf("timers fired %d times, want %d", fired, n)
	}
	f1 := metricSum(t, reg1, "sidekick_triage_timers_fired_total")
	f2 := metricSum(t, reg2, "sidekick_triage_timers_fired_total")
	t.Logf("instance 1 fired %v timers, instance 2 %v", f1, f2)
	if f1+f2 != n {
		t.Fatalf("instances fired %v + %v timers, want %d", f1, f2, n)
	}
	list, err := convs.ListConversations(context.Background(), &triagev1.ListConversationsRequest{PageSize: 1})
	if err != nil || list.GetConversations()[0].GetNextDeadlineAt().AsTime() != t0.Add(time.Hour) {
		t.Fatalf("next deadline after okay: %v %v", list, err)
	}
}

// metricSum adds up a counter's or gauge's series in a registry.
func metricSum(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				v += metricValue(m)
			}
		}
	}
	return v
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	}
	return 0
}

// TestOverrideRecomputesDeadlines: rotation announces an override (someone
// covers the weekend); the cached windows are dropped and the armed
// deadline moves.
func TestOverrideRecomputesDeadlines(t *testing.T) {
	h := newHarness(t)
	rot := &fakeRotation{}
	london := mustLoc(t, "Europe/London")
	rot.setRoster(hours(london, "09:00", "17:30"))
	h.deps.Rotation = serveRotation(t, rot)
	cfg := testConfig()
	cfg.Coverage = "rotation"
	s, _ := h.startConfig(t, cfg, h.deps)
	convs, _ := serve(t, s)

	triagetest.SetClock(h.clock, utc("2026-03-06 17:00")) // Friday
	h.send(t, at(h.clock, triagetest.Slack("weekend").Customer("U0CUST", "Ingestion stopped")))
	triagetest.SetClock(h.clock, utc("2026-03-06 17:15"))
	waitDeadline(t, convs, levelOkay, utc("2026-03-09 09:30")) // Monday

	weekend := hours(london, "09:00", "17:00")
	weekend.days = []time.Weekday{time.Saturday}
	rot.setRoster(hours(london, "09:00", "17:30"), weekend)
	triagetest.SetClock(h.clock, utc("2026-03-06 18:00"))
	publishRotation(t, h, &supportv1.RotationEvent{
		Id: "rotation:override_created:o1", Type: supportv1.RotationEventType_ROTATION_EVENT_TYPE_OVERRIDE_CREATED,
		RotationId: "hero", Hero: true, PersonId: "carol",
		Start: timestamppb.New(utc("2026-03-07 09:00")), End: timestamppb.New(utc("2026-03-07 17:00")),
	}, "")
	waitDeadline(t, convs, levelOkay, utc("2026-03-07 09:30")) // Saturday now
}

// TestCustomerReopeningRearmsTheDeadline: a closed conversation the
// customer writes to again is reopened by that message and its clock runs
// from it at once: ten minutes were counted before the staff reply, so
// "great" passes five minutes after the new message, then "okay" (issue
// 17: a reopened, unanswered conversation had no running deadline).
func TestCustomerReopeningRearmsTheDeadline(t *testing.T) {
	h := newHarness(t)
	h.deps.Coverage = coverage.Always{}
	s, _ := h.start(t, h.deps)
	convs, _ := serve(t, s)
	t0 := utc("2026-03-02 10:00")
	triagetest.SetClock(h.clock, t0)
	th := triagetest.Slack("reopen-by-customer")
	h.send(t, at(h.clock, th.Customer("U0CUST", "Where do I find the API key?")))
	c := waitDeadline(t, convs, levelGreat, t0.Add(15*time.Minute))
	h.clock.Advance(10 * time.Minute)
	h.send(t, at(h.clock, th.Staff("U0HERO", "Project settings")))
	if _, err := convs.Close(context.Background(), &triagev1.CloseRequest{Id: c.GetId(), Actor: "alice"}); err != nil {
		t.Fatal(err)
	}

	h.clock.Advance(2 * time.Hour)
	again := h.clock.Now()
	h.send(t, at(h.clock, th.Customer("U0CUST", "It is gone again")))
	c = waitDeadline(t, convs, levelGreat, again.Add(5*time.Minute))
	if c.GetStatus() != supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN {
		t.Fatalf("after the customer wrote again: status %s", c.GetStatus())
	}
	h.clock.Advance(5 * time.Minute)
	waitDeadline(t, convs, levelOkay, again.Add(50*time.Minute))
}

// TestRetieringRecomputesTheDeadline: a stranger's Community conversation
// waits under Community's thresholds; five minutes in, a customer import
// makes the author an Enterprise customer, and the deadline is Priority's
// counted from the message, not Community's.
func TestRetieringRecomputesTheDeadline(t *testing.T) {
	h := newHarness(t)
	h.deps.Coverage = coverage.Always{}
	cfg := testConfig()
	org, err := ParseOrg([]byte(`policies:
  - {tier: priority, first_response: 10m, okay: 30m, too_late: 4h}
  - {tier: community, first_response: 4h, okay: 8h, too_late: 24h}
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Org = org
	s, _ := h.startConfig(t, cfg, h.deps)
	convs, customers := serve(t, s)
	t0 := utc("2026-03-02 10:00")
	triagetest.SetClock(h.clock, t0)
	h.send(t, at(h.clock, triagetest.Slack("retier").Customer("U0NEWCUST", "Funnels are empty since this morning")))
	c := waitDeadline(t, convs, levelGreat, t0.Add(4*time.Hour))
	if c.GetTier() != supportv1.Tier_TIER_COMMUNITY {
		t.Fatalf("tier %s, want community", c.GetTier())
	}

	h.clock.Advance(5 * time.Minute)
	if _, err := customers.UpsertCustomers(context.Background(), &triagev1.UpsertCustomersRequest{Customers: []*triagev1.Customer{
		{Id: "initech", Name: "Initech", Plan: "enterprise", SlackUserIds: []string{"U0NEWCUST"}}}}); err != nil {
		t.Fatal(err)
	}
	c = waitDeadline(t, convs, levelGreat, t0.Add(10*time.Minute))
	if c.GetTier() != supportv1.Tier_TIER_PRIORITY {
		t.Fatalf("tier %s, want priority", c.GetTier())
	}
	h.clock.Advance(5 * time.Minute)
	waitDeadline(t, convs, levelOkay, t0.Add(30*time.Minute))
}
