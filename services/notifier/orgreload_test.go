package notifier

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/orgfile"
	"github.com/sidekickhq/sidekick/platform/orgfile/orgwatch"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notifiertest"
)

const heroFirst = `
escalation:
  defaults: false
  policies:
    - id: new
      match: {kind: new_conversation}
      steps:
        - {notify: hero, via: ping}
`

// configApplied is rotation's announcement of an applied file.
func configApplied(n int, yaml string, at time.Time) (string, *supportv1.RotationEvent) {
	id := "config_applied:" + string(rune('0'+n))
	return id, &supportv1.RotationEvent{
		Id: id, Type: supportv1.RotationEventType_ROTATION_EVENT_TYPE_CONFIG_APPLIED, OccurredAt: timestamppb.New(at),
		Detail: "test", ConfigVersion: orgfile.Digest([]byte(yaml)), Config: []byte(yaml),
	}
}

// An escalation policy applied through rotation is followed by the
// running notifier without a restart, by a notifier started later with the
// older file on disk too; a version that does not read is refused and the
// last good one stays, said in the log and the metrics.
func TestAppliedPoliciesAreFollowedWithoutARestart(t *testing.T) {
	st := newStack(t, heroFirst)
	s, stop := st.run(t)
	t0 := st.clock.Now()
	st.publish(t, bus.ConversationSubject("opened"), "ev-1", openedFor("ev-1", "conv-1", "platform", t0))
	notifiertest.Eventually(t, "the hero's ping", func() bool { return len(st.posts("U0ALICE")) == 1 })

	secondaryFirst := strings.Replace(heroFirst, "notify: hero", "notify: team_secondary", 1)
	id, ev := configApplied(2, secondaryFirst, t0)
	st.publish(t, orgwatch.Subject, id, ev)
	notifiertest.Eventually(t, "the applied version in force", func() bool { return s.OrgVersion() == ev.GetConfigVersion() })
	st.publish(t, bus.ConversationSubject("opened"), "ev-2", openedFor("ev-2", "conv-2", "platform", t0))
	notifiertest.Eventually(t, "the secondary's ping", func() bool { return len(st.posts("U0BOB")) == 1 })
	if n := len(st.posts("U0ALICE")); n != 1 {
		t.Fatalf("the hero got %d pings, want only the first conversation's", n)
	}

	// A notifier starting with the older file on disk loads the applied
	// version rotation announced while it was down.
	stop()
	s, stop = st.run(t)
	notifiertest.Eventually(t, "the applied version after a restart", func() bool { return s.OrgVersion() == ev.GetConfigVersion() })

	// A version the notifier cannot read changes nothing.
	bad := strings.Replace(secondaryFirst, "via: ping", "via: ping, afer: 5m", 1)
	id, badEv := configApplied(3, bad, t0)
	st.publish(t, orgwatch.Subject, id, badEv)
	notifiertest.Eventually(t, "the bad version refused", func() bool {
		return gathered(t, st.reg, "sidekick_org_config_loads_total", "refused") == 1
	})
	if s.OrgVersion() != ev.GetConfigVersion() || gathered(t, st.reg, "sidekick_org_config_stale", "") != 1 {
		t.Fatalf("after a refused version: in force %s (want %s), stale %v", s.OrgVersion(), ev.GetConfigVersion(), gathered(t, st.reg, "sidekick_org_config_stale", ""))
	}
	st.publish(t, bus.ConversationSubject("opened"), "ev-3", openedFor("ev-3", "conv-3", "platform", t0))
	notifiertest.Eventually(t, "the secondary's second ping", func() bool { return len(st.posts("U0BOB")) == 2 })
	stop()
}

// gathered reads a counter or gauge from g, of the series whose result
// label is result (any series when empty).
func gathered(t *testing.T, g prometheus.Gatherer, name, result string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && result != "" && l.GetValue() != result {
					continue series
				}
			}
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return 0
}
