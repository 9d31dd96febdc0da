package triage

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/orgfile"
	"github.com/sidekickhq/sidekick/platform/orgfile/orgwatch"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/triagetest"
)

const slowCommunity = `
policies:
  - {tier: community, first_response: 30m, okay: 2h, too_late: 8h, coverage: always}
`

// A response policy applied through rotation is used by the running
// triage for the next deadline it sets, without a restart; a version that
// does not read changes nothing.
func TestAppliedResponsePolicyIsUsedWithoutARestart(t *testing.T) {
	h := newHarness(t)
	f, err := orgfile.Parse([]byte(slowCommunity))
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	if cfg.Org, err = OrgFrom(f); err != nil {
		t.Fatal(err)
	}
	deps := h.deps
	deps.Org = f
	s, _ := h.startConfig(t, cfg, deps)
	convs, _ := serve(t, s)
	// firstResponse is how long after a conversation opened its great
	// deadline is (coverage always: wall time).
	firstResponse := func(customer string) time.Duration {
		t.Helper()
		h.settled(t)
		list, err := convs.ListConversations(context.Background(), &triagev1.ListConversationsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range list.GetConversations() {
			if strings.Contains(c.GetSubject(), customer) {
				return c.GetNextDeadlineAt().AsTime().Sub(c.GetOpenedAt().AsTime())
			}
		}
		t.Fatalf("no conversation of %s", customer)
		return 0
	}
	triagetest.PublishInbound(t, h.js, triagetest.Slack("1700000000.000100").Customer("U0CUSTOMER1", "first: the dashboards stopped loading"), "")
	if got := firstResponse("first"); got != 30*time.Minute {
		t.Fatalf("first deadline %v after opening, want 30m", got)
	}

	applied := strings.Replace(slowCommunity, "first_response: 30m", "first_response: 10m", 1)
	publishApplied(t, h, "config_applied:2", applied)
	triagetest.Eventually(t, "the applied version in force", func() bool { return s.OrgVersion() == orgfile.Digest([]byte(applied)) })
	triagetest.PublishInbound(t, h.js, triagetest.Slack("1700000000.000200").Customer("U0CUSTOMER2", "second: the export is empty"), "")
	if got := firstResponse("second"); got != 10*time.Minute {
		t.Fatalf("second deadline %v after opening, want the applied policy's 10m", got)
	}

	bad := strings.Replace(applied, "coverage: always", "coverage: sometimes", 1)
	publishApplied(t, h, "config_applied:3", bad)
	publishApplied(t, h, "config_applied:4", applied+"triage: {business_teem: x}\n")
	reg := h.deps.Registry.(prometheus.Gatherer)
	// One loaded, two refused.
	triagetest.Eventually(t, "both bad versions refused", func() bool { return metricSum(t, reg, "sidekick_org_config_loads_total") == 3 })
	if s.OrgVersion() != orgfile.Digest([]byte(applied)) || metricSum(t, reg, "sidekick_org_config_stale") != 1 {
		t.Fatalf("after refused versions: in force %s, stale %v", s.OrgVersion(), metricSum(t, reg, "sidekick_org_config_stale"))
	}
	triagetest.PublishInbound(t, h.js, triagetest.Slack("1700000000.000300").Customer("U0CUSTOMER3", "third: the chart is blank"), "")
	if got := firstResponse("third"); got != 10*time.Minute {
		t.Fatalf("third deadline %v after opening, want the last good policy's 10m", got)
	}
}

// publishApplied publishes rotation's announcement of an applied file.
func publishApplied(t *testing.T, h *harness, id, yaml string) {
	t.Helper()
	ev := &supportv1.RotationEvent{
		Id: id, Type: supportv1.RotationEventType_ROTATION_EVENT_TYPE_CONFIG_APPLIED, OccurredAt: timestamppb.New(h.clock.Now()),
		ConfigVersion: orgfile.Digest([]byte(yaml)), Config: []byte(yaml),
	}
	if _, err := bus.NewPublisher(h.js, "test").Publish(context.Background(), bus.Event{Subject: orgwatch.Subject, ID: id, Message: ev}); err != nil {
		t.Fatal(err)
	}
}
