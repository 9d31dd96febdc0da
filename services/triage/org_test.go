package triage

import (
	"strings"
	"testing"
	"time"

	"github.com/sidekickhq/sidekick/services/triage/internal/worktime"
)

const orgFile = `
people:
  - {id: alice, timezone: Europe/London, working_hours: "Mon-Fri 09:00-17:30"}
escalation:
  policies: []
policies:
  - {tier: priority, first_response: 10m, okay: 30m, notify: hero, coverage: always}
  - {name: something-else}
triage:
  response_policy:
    community: {too_late: 16h, coverage: rotation}
  business_team: partnerships
  category_rules:
    - {category: billing, weight: 3, channels: ["slack:C0BILLING"]}
  classifier:
    model_threshold: 0.6
`

func TestParseOrg(t *testing.T) {
	org, err := ParseOrg([]byte(orgFile))
	if err != nil {
		t.Fatal(err)
	}
	want := worktime.Policy{
		Priority:  worktime.Thresholds{Great: 10 * time.Minute, Okay: 30 * time.Minute, Coverage: worktime.CoverageAlways},
		Community: worktime.Thresholds{TooLate: 16 * time.Hour, Coverage: worktime.CoverageRoster},
	}
	if org.Policy != want {
		t.Fatalf("policy %+v, want %+v", org.Policy, want)
	}
	if org.BusinessTeam != "partnerships" || org.Rules == nil || org.Rules.ModelThreshold != 0.6 {
		t.Fatalf("org %+v", org)
	}
	last := org.Rules.Categories[len(org.Rules.Categories)-1]
	if last.Category != "billing" || len(org.Rules.Categories) < 10 {
		t.Fatalf("the extra rule is not appended to the built-in ones: %d rules, last %+v", len(org.Rules.Categories), last)
	}

	// The coverage left out is the environment's (duty by default).
	cfg := Config{ResponseGreat: 15 * time.Minute, ResponseOkay: time.Hour, ResponseTooLate: 8 * time.Hour, Coverage: "duty", Org: org}
	p, err := cfg.policy()
	if err != nil {
		t.Fatal(err)
	}
	if p.Priority != (worktime.Thresholds{Great: 10 * time.Minute, Okay: 30 * time.Minute, TooLate: 8 * time.Hour, Coverage: worktime.CoverageAlways}) ||
		p.Subscriber != (worktime.Thresholds{Great: 15 * time.Minute, Okay: time.Hour, TooLate: 8 * time.Hour, Coverage: worktime.CoverageDuty}) ||
		p.Community != (worktime.Thresholds{Great: 15 * time.Minute, Okay: time.Hour, TooLate: 16 * time.Hour, Coverage: worktime.CoverageRoster}) {
		t.Fatalf("policy %+v", p)
	}
}

func TestParseOrgErrors(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"typo in triage":    {"triage:\n  busines_team: x\n", "field busines_team not found"},
		"unknown tier":      {"policies:\n  - {tier: gold, great: 5m}\n", `unknown tier "gold"`},
		"bad rule":          {"triage:\n  category_rules:\n    - {category: astrology, keywords: [stars]}\n", "astrology"},
		"not a mapping":     {"- a\n- b\n", "not a mapping"},
		"bad duration":      {"triage:\n  response_policy:\n    priority: {great: soon}\n", "soon"},
		"great disagrees":   {"policies:\n  - {tier: all, first_response: 5m, great: 10m}\n", "disagree"},
		"policies not list": {"policies: {tier: priority}\n", "want a list"},
		"unknown coverage":  {"triage:\n  response_policy:\n    priority: {coverage: nights}\n", `coverage "nights"`},
		"coverage in list":  {"policies:\n  - {tier: all, coverage: sometimes}\n", `coverage "sometimes"`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseOrg([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	// Other services' sections and an empty file are fine.
	for _, ok := range []string{"", "rotations: []\nescalation: {}\n", "triage:\n"} {
		if _, err := ParseOrg([]byte(ok)); err != nil {
			t.Fatalf("%q: %v", ok, err)
		}
	}
	// Thresholds that do not increase are refused when the service starts.
	cfg := Config{ResponseGreat: time.Hour, ResponseOkay: 30 * time.Minute, ResponseTooLate: 8 * time.Hour}
	if _, err := cfg.policy(); err == nil || !strings.Contains(err.Error(), "SIDEKICK_TRIAGE_RESPONSE_GREAT") {
		t.Fatalf("decreasing thresholds: %v", err)
	}
	cfg = Config{ResponseGreat: time.Minute, ResponseOkay: time.Hour, ResponseTooLate: 8 * time.Hour, Coverage: "weekdays"}
	if _, err := cfg.policy(); err == nil || !strings.Contains(err.Error(), "SIDEKICK_TRIAGE_COVERAGE") {
		t.Fatalf("unknown coverage: %v", err)
	}
}
