package policy_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sidekickhq/sidekick/platform/orgfile"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
	"github.com/sidekickhq/sidekick/services/notifier/internal/policy"
)

func TestParseContactRules(t *testing.T) {
	cfg, err := policy.Parse([]byte(`
escalation:
  contact_rules:
    alice:
      - {channel: slack}
      - {channel: email, after: 5m}
      - {channel: pagerduty, after: 10m, urgency: page}
    bob:
      - {channel: email, urgency: ping}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []notify.ContactRule{
		{Channel: "slack"},
		{Channel: "email", After: 5 * time.Minute},
		{Channel: "pagerduty", After: 10 * time.Minute, Urgency: notify.Page},
	}
	if got := cfg.ContactRules["alice"]; !slices.Equal(got, want) {
		t.Errorf("alice's rules = %+v, want %+v", got, want)
	}
	if got := cfg.ContactRules["bob"]; !slices.Equal(got, []notify.ContactRule{{Channel: "email", Urgency: notify.Ping}}) {
		t.Errorf("bob's rules = %+v", got)
	}
	if cfg.ContactRuleLines["alice"] != 4 || cfg.ContactRuleLines["bob"] != 8 {
		t.Errorf("lines = %v, want alice 4, bob 8", cfg.ContactRuleLines)
	}
	// The policies are still there: contact rules do not replace them.
	if cfg.Policy("priority-new") == nil {
		t.Error("defaults lost")
	}
	r := cfg.ContactRules["alice"][2]
	if r.Applies(notify.Ping) || !r.Applies(notify.Page) || !cfg.ContactRules["alice"][0].Applies(notify.Ping) {
		t.Error("Applies does not follow the urgency")
	}
	if s := r.String(); s != "pagerduty after 10m0s (pages)" {
		t.Errorf("String() = %q", s)
	}
}

func TestParseReportsEveryBadContactRule(t *testing.T) {
	rules := func(body string) string { return "escalation:\n  contact_rules:\n" + body }
	// Every bad person is reported at once.
	_, err := policy.Parse([]byte(rules("    alice:\n      - {channel: sms}\n    bob:\n      - {channel: email, urgency: loud}\n")))
	if err == nil || !strings.Contains(err.Error(), "alice") || !strings.Contains(err.Error(), "bob") {
		t.Errorf("error = %v, want both people named", err)
	}
}

func TestContactRulesOfUnknownPeopleAreRefused(t *testing.T) {
	f, err := orgfile.Parse([]byte(`
people: [{id: alice}]
escalation:
  contact_rules:
    alice: [{channel: slack}]
    bbo: [{channel: email}]
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := policy.FromFile(f)
	if err != nil {
		t.Fatal(err)
	}
	err = policy.CheckReferences(cfg, f, map[string]bool{"alice": true}, nil)
	if err == nil || !strings.Contains(err.Error(), `contact_rules: line 6: unknown person "bbo"`) || strings.Contains(err.Error(), "alice") {
		t.Fatalf("error = %v, want bbo on line 6 refused and alice not", err)
	}
}
