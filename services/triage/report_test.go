package triage

import (
	"context"
	"fmt"
	"io/fs"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/coverage"
	"github.com/sidekickhq/sidekick/services/triage/internal/triagetest"
)

// TestSummaryOnAKnownDataSet builds conversations with known first
// response times through the service (wall-clock coverage, fake clock)
// and checks every figure of ReportService.Summary.
func TestSummaryOnAKnownDataSet(t *testing.T) {
	h := newHarness(t)
	h.deps.Coverage = coverage.Always{}
	s, _ := h.start(t, h.deps)
	cc := serveConn(t, s)
	convs, customers := triagev1.NewConversationServiceClient(cc), triagev1.NewCustomerServiceClient(cc)
	reports := triagev1.NewReportServiceClient(cc)
	ctx := context.Background()
	if _, err := customers.UpsertCustomers(ctx, &triagev1.UpsertCustomersRequest{Customers: []*triagev1.Customer{
		{Id: "bigco", Name: "BigCo", Plan: "enterprise", SlackUserIds: []string{"U0BIG"}},
	}}); err != nil {
		t.Fatal(err)
	}

	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-6 }
	n := 0
	// answered opens a conversation at start, answers it after wait and
	// confirms its category.
	answered := func(author string, start time.Time, wait time.Duration, category string) {
		t.Helper()
		n++
		th := triagetest.Slack(fmt.Sprint("report-", n))
		triagetest.SetClock(h.clock, start)
		h.send(t, at(h.clock, th.Customer(author, "A question about our project")))
		triagetest.SetClock(h.clock, start.Add(wait))
		h.send(t, at(h.clock, th.Staff("U0HERO", "Here is the answer")))
		if _, err := convs.Tag(ctx, &triagev1.TagRequest{Id: byThread(t, convs, th.ThreadKey).GetId(), Categories: []string{category}}); err != nil {
			t.Fatal(err)
		}
	}
	day := utc("2026-03-02 00:00")
	answered("U0C1", day.Add(9*time.Hour), 5*time.Minute, "performance")
	answered("U0C2", day.Add(10*time.Hour), 10*time.Minute, "performance")
	answered("U0C3", day.Add(11*time.Hour), 30*time.Minute, "billing")
	answered("U0C4", day.Add(12*time.Hour), 2*time.Hour, "performance")
	answered("U0BIG", day.Add(15*time.Hour), time.Minute, "api")
	answered("U0BIG", day.Add(16*time.Hour), 20*time.Minute, "performance")
	// Spam by email, closed at once.
	spam := email("spam-1@seo.example").Customer("seller@seo.example", "Dear Sir, we offer a guest post with backlinks. Click here.")
	spam.Attributes = map[string]string{"auth_failed": "true"}
	triagetest.SetClock(h.clock, day.Add(17*time.Hour))
	h.send(t, at(h.clock, spam))
	// Never answered: breached after eight working hours.
	triagetest.SetClock(h.clock, day.Add(18*time.Hour))
	silent := triagetest.Slack("silent")
	h.send(t, at(h.clock, silent.Customer("U0C5", "Hello? Anyone?")))
	if _, err := convs.Tag(ctx, &triagev1.TagRequest{Id: byThread(t, convs, silent.ThreadKey).GetId(), Categories: []string{"api"}}); err != nil {
		t.Fatal(err)
	}
	triagetest.SetClock(h.clock, day.Add(27*time.Hour))
	triagetest.Eventually(t, "the unanswered conversation breached", func() bool {
		return triagetest.Count(t, h.pool, `SELECT count(*) FROM conversations WHERE deadline_level = 4 AND first_response_at IS NULL`) == 1
	})
	// The first conversation is closed 18 hours after it opened.
	if _, err := convs.Close(ctx, &triagev1.CloseRequest{Id: byThread(t, convs, triagetest.Slack("report-1").ThreadKey).GetId(), Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	// Outside the range.
	triagetest.SetClock(h.clock, day.Add(60*time.Hour))
	h.send(t, at(h.clock, triagetest.Slack("later").Customer("U0C6", "Later question")))
	h.clock.Advance(time.Minute)

	resp, err := reports.Summary(ctx, &triagev1.SummaryRequest{From: timestamppb.New(day), To: timestamppb.New(day.Add(48 * time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("summary: %s", protojson.Format(resp))
	counts := func(cs []*triagev1.Count) string {
		out := ""
		for _, c := range cs {
			out += fmt.Sprintf("%s=%d ", c.GetKey(), c.GetCount())
		}
		return out
	}
	if got, want := counts(resp.GetByCategory()), "performance=4 api=2 billing=1 spam=1 "; got != want {
		t.Errorf("by category %q, want %q", got, want)
	}
	// Seven conversations had their categories confirmed by people; the
	// report says how often the suggestion was right.
	// Each pair is one of exact, overlapping and none.
	if a := resp.GetAgreement(); a.GetPairs() != 7 || a.GetExact()+a.GetOverlapping()+a.GetNone() != 7 ||
		!near(a.GetExactRate()+a.GetOverlapRate()+a.GetNoneRate(), 1) || !near(a.GetExactRate(), float64(a.GetExact())/7) {
		t.Errorf("agreement %v, want 7 pairs, each exact, overlapping or none", a)
	}
	if got, want := counts(resp.GetByTier()), "priority=2 community=6 "; got != want {
		t.Errorf("by tier %q, want %q", got, want)
	}
	if got, want := counts(resp.GetByChannel()), "slack=7 email=1 "; got != want {
		t.Errorf("by channel %q, want %q", got, want)
	}
	type stats struct {
		conversations, responded             int64
		mean, median, p90, great, okay, late float64
	}
	want := map[supportv1.Tier]stats{
		// 60s and 1200s.
		supportv1.Tier_TIER_PRIORITY:   {2, 2, 630, 630, 60 + 0.9*1140, 0.5, 0.5, 0},
		supportv1.Tier_TIER_SUBSCRIBER: {},
		// 300, 600, 1800 and 7200s answered; one breached unanswered; spam
		// undecided. p90 interpolates between 1800 and 7200.
		supportv1.Tier_TIER_COMMUNITY: {6, 4, 2475, 1200, 1800 + 0.7*5400, 0.4, 0.2, 0.2},
	}
	if len(resp.GetResponse()) != 3 {
		t.Fatalf("response stats for %d tiers, want 3", len(resp.GetResponse()))
	}
	for _, r := range resp.GetResponse() {
		w := want[r.GetTier()]
		if r.GetConversations() != w.conversations || r.GetResponded() != w.responded ||
			!near(r.GetMeanSeconds(), w.mean) || !near(r.GetMedianSeconds(), w.median) || !near(r.GetP90Seconds(), w.p90) ||
			!near(r.GetGreatShare(), w.great) || !near(r.GetOkayShare(), w.okay) || !near(r.GetLateShare(), w.late) {
			t.Errorf("%s: got %v, want %+v", r.GetTier(), r, w)
		}
	}

	// Breached counts the unanswered conversation too, in its own column.
	for _, r := range resp.GetResponse() {
		var breached, decided int64
		if r.GetTier() == supportv1.Tier_TIER_COMMUNITY {
			breached, decided = 1, 5
		} else if r.GetTier() == supportv1.Tier_TIER_PRIORITY {
			decided = 2
		}
		if r.GetBreached() != breached || r.GetDecided() != decided || !near(r.GetBreachedShare(), float64(breached)/max(float64(decided), 1)) {
			t.Errorf("%s: breached %d of %d decided (%v), want %d of %d", r.GetTier(), r.GetBreached(), r.GetDecided(), r.GetBreachedShare(), breached, decided)
		}
	}
	// Resolution: one conversation closed 18 hours after it opened; the
	// spam closed at once is left out.
	if res := resp.GetResponse()[2].GetResolution(); res.GetClosed() != 1 || !near(res.GetMeanSeconds(), 18*3600) || !near(res.GetP90Seconds(), 18*3600) {
		t.Errorf("community resolution %v, want one closed after 18h", res)
	}
	group := func(gs []*triagev1.GroupResponseStats) string {
		out := ""
		for _, g := range gs {
			out += fmt.Sprintf("%s:%d/%d/%d/%d/%d/%d/%.0f/%d ", g.GetKey(), g.GetConversations(), g.GetResponded(),
				g.GetGreat(), g.GetOkay(), g.GetLate(), g.GetBreached(), g.GetMedianSeconds(), g.GetResolution().GetClosed())
		}
		return out
	}
	// Per person: the hero answered six first (median of 60, 300, 600,
	// 1200, 1800, 7200 s); the unanswered breached one and the spam have
	// nobody.
	if got, want := group(resp.GetByPerson()), ":2/0/0/0/0/1/0/0 U0HERO:6/6/3/2/1/0/900/1 "; got != want {
		t.Errorf("by person %q, want %q", got, want)
	}
	if got, want := group(resp.GetByCategoryResponse()), "api:2/1/1/0/0/1/60/0 billing:1/1/0/1/0/0/1800/0 performance:4/4/2/1/1/0/900/1 spam:1/0/0/0/0/0/0/0 "; got != want {
		t.Errorf("by category %q, want %q", got, want)
	}

	// Per day: in UTC every conversation opened on the first of the two
	// days; in Tokyo (UTC+9) the four opened from 15:00 UTC are on the
	// next day, and the range's last instant falls on a third.
	days := func(ds []*triagev1.DayCounts) string {
		out := ""
		for _, d := range ds {
			out += fmt.Sprintf("%s:%d[%s|%s|%s] ", d.GetDay(), d.GetConversations(), counts(d.GetByChannel()), counts(d.GetByCategory()), counts(d.GetByTier()))
		}
		return out
	}
	if got, want := days(resp.GetByDay()), "2026-03-02:8[slack=7 email=1 |performance=4 api=2 billing=1 spam=1 |priority=2 community=6 ] 2026-03-03:0[||] "; got != want {
		t.Errorf("by day in UTC\n got %q\nwant %q", got, want)
	}
	tokyo, err := reports.Summary(ctx, &triagev1.SummaryRequest{From: timestamppb.New(day), To: timestamppb.New(day.Add(48 * time.Hour)), TimeZone: "Asia/Tokyo"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := days(tokyo.GetByDay()), "2026-03-02:4[slack=4 |performance=3 billing=1 |community=4 ] "+
		"2026-03-03:4[slack=3 email=1 |api=2 performance=1 spam=1 |priority=2 community=2 ] 2026-03-04:0[||] "; got != want {
		t.Errorf("by day in Tokyo\n got %q\nwant %q", got, want)
	}
	if _, err := reports.Summary(ctx, &triagev1.SummaryRequest{TimeZone: "Mars/Olympus_Mons"}); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "time_zone") {
		t.Errorf("an unknown time zone: %v, want InvalidArgument naming time_zone", err)
	}

	if _, err := reports.Summary(ctx, &triagev1.SummaryRequest{From: timestamppb.New(day), To: timestamppb.New(day)}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("empty range: %v", err)
	}
	// The default range is the seven days before now.
	def, err := reports.Summary(ctx, &triagev1.SummaryRequest{})
	if err != nil || counts(def.GetByTier()) != "priority=2 community=7 " {
		t.Fatalf("default range: %v %v", def, err)
	}
}

// TestSummaryReadsTheRowsTheEngineKeeps: the report's first responder
// and last close come from the conversation's row (migration 00009),
// which the engine keeps through replies by others, a reassignment,
// closes and reopens; filling the columns from the audit trails (the
// migration's backfill) gives the same report.
func TestSummaryReadsTheRowsTheEngineKeeps(t *testing.T) {
	h := newHarness(t)
	h.deps.Coverage = coverage.Always{}
	s, _ := h.start(t, h.deps)
	cc := serveConn(t, s)
	convs, reports := triagev1.NewConversationServiceClient(cc), triagev1.NewReportServiceClient(cc)
	ctx := context.Background()
	day := utc("2026-03-02 00:00")
	clockAt := func(hm time.Duration) { triagetest.SetClock(h.clock, day.Add(hm)) }

	// Twice closed: first answered by U0HERO at 09:10, given to bob,
	// closed at 10:00, reopened by the customer at 11:00, answered by bob,
	// closed again at 14:00: five hours to resolve, U0HERO's first.
	twice := triagetest.Slack("twice")
	clockAt(9 * time.Hour)
	h.send(t, at(h.clock, twice.Customer("U0C1", "Our export is stuck")))
	id := byThread(t, convs, twice.ThreadKey).GetId()
	clockAt(9*time.Hour + 10*time.Minute)
	h.send(t, at(h.clock, twice.Staff("U0HERO", "Looking")))
	if _, err := convs.Assign(ctx, &triagev1.AssignRequest{Id: id, Assignee: "bob", Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	clockAt(10 * time.Hour)
	if _, err := convs.Close(ctx, &triagev1.CloseRequest{Id: id, Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	clockAt(11 * time.Hour)
	h.send(t, at(h.clock, twice.Customer("U0C1", "It is stuck again")))
	clockAt(11*time.Hour + 30*time.Minute)
	h.send(t, at(h.clock, twice.Staff("U0BOB", "Fixed for good")))
	clockAt(14 * time.Hour)
	if _, err := convs.Close(ctx, &triagev1.CloseRequest{Id: id, Actor: "bob"}); err != nil {
		t.Fatal(err)
	}
	// Closed, then reopened by a person: open, so not resolved.
	reopened := triagetest.Slack("reopened")
	clockAt(9*time.Hour + 30*time.Minute)
	h.send(t, at(h.clock, reopened.Customer("U0C2", "Is the API down?")))
	other := byThread(t, convs, reopened.ThreadKey).GetId()
	clockAt(15 * time.Hour)
	h.send(t, at(h.clock, reopened.Staff("U0BOB", "No, all fine")))
	clockAt(16 * time.Hour)
	if _, err := convs.Close(ctx, &triagev1.CloseRequest{Id: other, Actor: "bob"}); err != nil {
		t.Fatal(err)
	}
	clockAt(17 * time.Hour)
	if _, err := convs.Reopen(ctx, &triagev1.ReopenRequest{Id: other, Actor: "bob"}); err != nil {
		t.Fatal(err)
	}

	rows := triagetest.Count(t, h.pool, `SELECT count(*) FROM conversations WHERE
		(id = $1 AND first_responder = 'U0HERO' AND last_closed_at = $2) OR
		(id = $3 AND first_responder = 'bob' AND last_closed_at = $4)`, id, day.Add(14*time.Hour), other, day.Add(16*time.Hour))
	if rows != 2 {
		t.Errorf("%d of 2 conversation rows with their first responder and last close", rows)
	}
	report := func() *triagev1.SummaryResponse {
		t.Helper()
		resp, err := reports.Summary(ctx, &triagev1.SummaryRequest{From: timestamppb.New(day), To: timestamppb.New(day.Add(24 * time.Hour))})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	kept := report()
	res := kept.GetResponse()[2].GetResolution()
	if res.GetClosed() != 1 || res.GetMeanSeconds() != 5*3600 {
		t.Errorf("resolution %v, want one closed after 5h (the last close)", res)
	}
	var persons []string
	for _, g := range kept.GetByPerson() {
		persons = append(persons, fmt.Sprintf("%s:%d/%d", g.GetKey(), g.GetConversations(), g.GetResolution().GetClosed()))
	}
	if got, want := fmt.Sprint(persons), "[U0HERO:1/1 bob:1/0]"; got != want {
		t.Errorf("by person %s, want %s (the first responder, not the assignee)", got, want)
	}

	// The migration's backfill from the audit trails gives the same.
	mig, err := fs.ReadFile(Migrations(), "00009_report_columns.sql")
	if err != nil {
		t.Fatal(err)
	}
	backfill, _, _ := strings.Cut(string(mig[strings.Index(string(mig), "UPDATE conversations"):]), ";")
	if _, err := h.pool.Exec(ctx, `UPDATE conversations SET first_responder = NULL, last_closed_at = NULL`); err != nil {
		t.Fatal(err)
	}
	if _, err := h.pool.Exec(ctx, backfill); err != nil {
		t.Fatalf("backfill: %v", err)
	}
	if filled := report(); !proto.Equal(filled, kept) {
		t.Errorf("report after the backfill:\n%s\nkept by the engine:\n%s", protojson.Format(filled), protojson.Format(kept))
	}
}
