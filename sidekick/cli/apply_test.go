package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	"github.com/sidekickhq/sidekick/sidekick/devstack"
)

const applyOrg = `people:
  - {id: alice, timezone: UTC}
teams:
  - {id: platform, secondary: platform-secondary}
rotations:
  - {id: platform-secondary, type: weekly, start: "2026-01-05 09:00", timezone: UTC, participants: [alice]}
`

// The notifier's and triage's sections are checked before anything is
// sent: a typo or a person or team the file does not have is refused with
// its line, and rotation is never asked to apply the file.
func TestApplyChecksTheWholeFile(t *testing.T) {
	for name, tc := range map[string]struct{ extra, want string }{
		"misspelt target": {`escalation:
  policies:
    - id: p1
      match: {kind: new_conversation}
      steps:
        - {notify: "team_secondry", via: page}
`, `escalation: policy "p1" (line 9): step 1: notify: unknown target "team_secondry"`},
		"misspelt field": {`escalation:
  policies:
    - id: p2
      match: {kind: new_conversation}
      steps:
        - {notify: hero, via: ping, afer: 10m}
`, `unknown field "afer"`},
		"unknown person": {`escalation:
  policies:
    - id: p3
      match: {kind: explicit_escalation, team: platform}
      steps:
        - {notify: "person:zed", via: page}
`, `escalation: policy "p3" (line 9): step 1: notify: unknown person "zed"`},
		"unknown team": {`escalation:
  policies:
    - id: p4
      match: {kind: sentry_alert, team: platfrom}
      steps:
        - {notify: team_secondary, via: page}
`, `escalation: policy "p4" (line 9): match: unknown team "platfrom"`},
		"contact rules of an unknown person": {`escalation:
  contact_rules:
    alice: [{channel: slack}]
    zed: [{channel: email, after: 5m}]
`, `escalation: contact_rules: line 10: unknown person "zed"`},
		"a contact rule's unknown channel": {`escalation:
  contact_rules:
    alice: [{channel: sms}]
`, `escalation: contact_rules: alice (line 9): rule 1: line 9: unknown channel "sms"`},
		"triage's policies": {`policies:
  - {tier: gold, first_response: 5m}
`, `gold`},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			path := filepath.Join(t.TempDir(), "sidekick.yaml")
			if err := os.WriteFile(path, []byte(applyOrg+tc.extra), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := h.run(t, "apply", "-f", path)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "nothing applied") {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
			if h.total() != 0 {
				t.Fatal("a file with errors was sent to rotation")
			}
		})
	}
	h := newHarness(t)
	h.respond("ApplyConfig", &rotationv1.ApplyConfigResponse{})
	path := filepath.Join(t.TempDir(), "sidekick.yaml")
	good := applyOrg + `escalation:
  policies:
    - id: p5
      match: {kind: explicit_escalation, team: platform}
      steps:
        - {notify: "person:alice", via: page}
  contact_rules:
    alice:
      - {channel: slack}
      - {channel: pagerduty, after: 10m, urgency: page}
`
	if err := os.WriteFile(path, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := h.run(t, "apply", "-f", path)
	if err != nil || out != "no changes\n" {
		t.Fatalf("a good file: %q %v", out, err)
	}
	h.want(t, "ApplyConfig", &rotationv1.ApplyConfigRequest{Config: []byte(good)})
}

// The demo organisation, the one `sidekick dev` runs, passes the check.
func TestDemoOrgPassesTheCheck(t *testing.T) {
	if err := checkOrg(devstack.DemoOrg); err != nil {
		t.Fatal(err)
	}
}
