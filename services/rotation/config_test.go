package rotation

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/platform/orgfile"
	"github.com/sidekickhq/sidekick/platform/pg/pgtest"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

const policyOrg = org + `escalation:
  policies:
    - id: platform-page
      match: {kind: explicit_escalation, team: platform}
      steps:
        - {notify: "person:alice", via: page}
        - {notify: team_secondary, via: page, after: 10m}
  contact_rules:
    alice:
      - {channel: slack}
policies:
  - {tier: community, too_late: 16h}
`

// ApplyConfig refuses what the notifier or triage would refuse in their
// sections, with the line, whoever the client is, and stores nothing: the
// version in force stays the one before.
func TestApplyRefusesOtherServicesSectionsWithTheLine(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Postgres")
	}
	ctx := context.Background()
	s := newService(t, pgtest.NewDatabase(t), clock.NewFake(time.Date(2026, 2, 4, 12, 0, 0, 0, time.UTC)))
	c := serve(t, s)
	if _, err := c.ApplyConfig(ctx, &rotationv1.ApplyConfigRequest{Config: []byte(policyOrg)}); err != nil {
		t.Fatal(err)
	}
	before, _, err := s.store.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// org ends on line 15; what is added starts on line 16.
	for name, tc := range map[string]struct{ extra, want string }{
		"misspelt target": {`escalation:
  policies:
    - id: p1
      match: {kind: new_conversation}
      steps:
        - {notify: "team_secondry", via: page}
`, `escalation: policy "p1" (line 18): step 1: notify: unknown target "team_secondry"`},
		"misspelt field": {`escalation:
  policies:
    - id: p2
      match: {kind: new_conversation}
      steps:
        - {notify: hero, via: ping, afer: 10m}
`, `line 21: unknown field "afer"`},
		"unknown person": {`escalation:
  policies:
    - id: p3
      match: {kind: explicit_escalation, team: platform}
      steps:
        - {notify: "person:zed", via: page}
`, `escalation: policy "p3" (line 18): step 1: notify: unknown person "zed"`},
		"unknown team": {`escalation:
  policies:
    - id: p4
      match: {kind: sentry_alert, team: platfrom}
      steps:
        - {notify: team_secondary, via: page}
`, `escalation: policy "p4" (line 18): match: unknown team "platfrom"`},
		"contact rules of an unknown person": {`escalation:
  contact_rules:
    alice: [{channel: slack}]
    zed: [{channel: email, after: 5m}]
`, `escalation: contact_rules: line 19: unknown person "zed"`},
		"a business contact's unknown field": {`business_contacts:
  - {name: Dana, emial: dana@example.com}
`, `emial`},
		"a response policy's unknown tier": {`policies:
  - {tier: gold, first_response: 5m}
`, `policies: line 17: unknown tier "gold"`},
		"triage's unknown field": {`triage:
  business_team: platform
  response_polcy: {community: {too_late: 8h}}
`, `line 18: field response_polcy not found`},
		"triage's unknown business team": {`triage:
  business_team: partnerships
`, `triage: line 17: business_team: unknown team "partnerships"`},
	} {
		t.Run(name, func(t *testing.T) {
			for _, dry := range []bool{true, false} {
				_, err := c.ApplyConfig(ctx, &rotationv1.ApplyConfigRequest{Config: []byte(org + tc.extra), DryRun: dry})
				if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("dry run %v: error %v, want InvalidArgument containing %q", dry, err, tc.want)
				}
			}
			after, _, err := s.store.Current(ctx)
			if err != nil || after != before {
				t.Fatalf("version %d after a refused file (%v), want %d", after, err, before)
			}
		})
	}
}

// A change to the notifier's or triage's sections alone is a change: shown
// by a dry run (which stores nothing), stored as a new version when
// applied, and announced with the file on support.rotation.config_applied
// for the notifier and triage to load.
func TestApplyVersionsAndAnnouncesEverySection(t *testing.T) {
	url, js := eventStack(t)
	ctx := context.Background()
	s := eventReplica(t, url, js, clock.NewFake(time.Date(2026, 2, 4, 12, 0, 0, 0, time.UTC)), time.Hour)
	c := serve(t, s)
	apply := func(yaml string, dry bool) *rotationv1.ApplyConfigResponse {
		t.Helper()
		resp, err := c.ApplyConfig(ctx, &rotationv1.ApplyConfigRequest{Config: []byte(yaml), DryRun: dry})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.relay.Drain(ctx); err != nil {
			t.Fatal(err)
		}
		return resp
	}
	configEvents := func() []*supportv1.RotationEvent {
		t.Helper()
		var out []*supportv1.RotationEvent
		for _, ev := range allRotationEvents(t, js) {
			if ev.GetType() == supportv1.RotationEventType_ROTATION_EVENT_TYPE_CONFIG_APPLIED {
				out = append(out, ev)
			}
		}
		return out
	}
	first := apply(policyOrg, false)
	if !first.GetApplied() || first.GetVersion() != orgfile.Digest([]byte(policyOrg)) {
		t.Fatalf("first apply: %v", first)
	}
	changed := strings.NewReplacer("after: 10m", "after: 5m", "too_late: 16h", "too_late: 12h").Replace(policyOrg) +
		"business_contacts:\n  - {name: Dana, email: dana@example.com}\n"
	want := []string{
		"~ policies[community].too_late: 16h → 12h",
		"~ escalation.policies[platform-page].steps[2].after: 10m → 5m",
		"+ business_contacts",
	}
	dry := apply(changed, true)
	if !slices.Equal(dry.GetChanges(), want) || dry.GetApplied() {
		t.Fatalf("dry run: %q (applied %v), want %q", dry.GetChanges(), dry.GetApplied(), want)
	}
	if evs := configEvents(); len(evs) != 1 || string(evs[0].GetConfig()) != policyOrg || evs[0].GetConfigVersion() != first.GetVersion() {
		t.Fatalf("after the first apply and a dry run: %d config events, want the first file's", len(evs))
	}
	resp := apply(changed, false)
	if !slices.Equal(resp.GetChanges(), want) || !resp.GetApplied() {
		t.Fatalf("apply: %q (applied %v), want %q", resp.GetChanges(), resp.GetApplied(), want)
	}
	_, stored, err := s.store.Current(ctx)
	if err != nil || string(stored) != changed {
		t.Fatalf("stored %q (%v), want the changed file", stored, err)
	}
	evs := configEvents()
	if len(evs) != 2 || string(evs[1].GetConfig()) != changed || evs[1].GetConfigVersion() != orgfile.Digest([]byte(changed)) ||
		evs[1].GetConfigVersion() != resp.GetVersion() || evs[0].GetId() == evs[1].GetId() {
		t.Fatalf("config events %v, want a second one carrying the changed file", evs)
	}
	// The same file again changes nothing and announces nothing.
	if again := apply(changed, false); len(again.GetChanges()) != 0 || again.GetApplied() {
		t.Fatalf("the same file again: %v", again)
	}
	if n := len(configEvents()); n != 2 {
		t.Fatalf("%d config events after applying the same file again, want 2", n)
	}
}
