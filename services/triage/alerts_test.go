package triage

import (
	"context"
	"math"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/coverage"
	"github.com/sidekickhq/sidekick/services/triage/internal/triagetest"
)

// TestAlertsAreMeasuredApart: a Sentry issue is an alert without a tier
// or a deadline; its occurrences add up; the first person to act on it
// acknowledges it (Assign 10 minutes in, not the later Close); the report
// measures it by time to acknowledge and to resolve and leaves it out of
// every customer figure.
func TestAlertsAreMeasuredApart(t *testing.T) {
	h := newHarness(t)
	h.deps.Coverage = coverage.Always{}
	s, _ := h.start(t, h.deps)
	cc := serveConn(t, s)
	convs, reports := triagev1.NewConversationServiceClient(cc), triagev1.NewReportServiceClient(cc)
	ctx := context.Background()

	start := utc("2026-03-02 09:00")
	triagetest.SetClock(h.clock, start)
	issue := &triagetest.Message{Channel: supportv1.Channel_CHANNEL_SENTRY, ThreadKey: "sentry:4242"}
	first := at(h.clock, issue.Customer("sentry:api", "TypeError in checkout"))
	first.Attributes = map[string]string{"occurrences": "1", "project": "api", "level": "error"}
	update := at(h.clock, issue.Customer("sentry:api", "TypeError in checkout"))
	update.Kind = supportv1.MessageKind_MESSAGE_KIND_UPDATED
	update.Attributes = map[string]string{"occurrences": "41"}
	h.send(t, first, update)

	a := byThread(t, convs, issue.ThreadKey)
	if a.GetKind() != supportv1.ConversationKind_CONVERSATION_KIND_ALERT || a.GetTier() != supportv1.Tier_TIER_UNSPECIFIED ||
		a.GetNextDeadlineAt() != nil || a.GetAlert().GetOccurrences() != 42 || a.GetAlert().GetProject() != "api" {
		t.Fatalf("alert %v", a)
	}
	triagetest.SetClock(h.clock, start.Add(10*time.Minute))
	if _, err := convs.Assign(ctx, &triagev1.AssignRequest{Id: a.GetId(), Assignee: "alice", Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	triagetest.SetClock(h.clock, start.Add(70*time.Minute))
	if _, err := convs.Close(ctx, &triagev1.CloseRequest{Id: a.GetId(), Actor: "bob"}); err != nil {
		t.Fatal(err)
	}
	got, err := convs.GetConversation(ctx, &triagev1.GetConversationRequest{Id: a.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if al := got.GetConversation().GetAlert(); al.GetAcknowledgedBy() != "alice" || !al.GetAcknowledgedAt().AsTime().Equal(start.Add(10*time.Minute)) {
		t.Fatalf("acknowledged %s by %q, want alice at +10m", al.GetAcknowledgedAt().AsTime(), al.GetAcknowledgedBy())
	}

	sum, err := reports.Summary(ctx, &triagev1.SummaryRequest{From: timestamppb.New(start.Add(-time.Hour)), To: timestamppb.New(start.Add(2 * time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	al := sum.GetAlerts()
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-6 }
	if al.GetOpened() != 1 || al.GetOccurrences() != 42 || al.GetAcknowledged() != 1 || !near(al.GetAcknowledgeMeanSeconds(), 600) ||
		al.GetResolution().GetClosed() != 1 || !near(al.GetResolution().GetMeanSeconds(), 4200) {
		t.Fatalf("alert figures %v", al)
	}
	for _, tr := range sum.GetResponse() {
		if tr.GetConversations() != 0 || tr.GetResolution().GetClosed() != 0 {
			t.Errorf("customer figures count the alert: %v", tr)
		}
	}
	if len(sum.GetByChannel()) != 0 || len(sum.GetByTier()) != 0 {
		t.Errorf("customer counts include the alert: %v %v", sum.GetByChannel(), sum.GetByTier())
	}
}
