package orgfile_test

import (
	"slices"
	"testing"

	"github.com/sidekickhq/sidekick/platform/orgfile"
)

func TestDiffSectionsNamesWhatChanged(t *testing.T) {
	before := mustParse(t, `
escalation:
  policies:
    - id: priority
      match: {tier: priority}
      steps: [{notify: hero}, {notify: team_secondary, after: 10m}]
    - id: old
      steps: [{notify: hero}]
business_contacts:
  - {name: Dana, email: dana@example.com}
triage:
  response_policy:
    community: {too_late: 16h}
`)
	after := mustParse(t, `
# comments and layout are no change
escalation:
  policies:
    - id: priority
      steps: [{notify: hero}, {after: 5m, notify: team_secondary}]
      match: {tier: priority}
    - {id: vip, steps: [{notify: "person:alice"}]}
business_contacts:
  - {name: Dana, email: dana@example.org}
triage:
  response_policy:
    community: {too_late: 12h}
  business_team: partners
`)
	got := orgfile.DiffSections(before, after, "escalation", "business_contacts", "triage", "policies")
	want := []string{
		"~ escalation.policies[priority].steps[2].after: 10m → 5m",
		"- escalation.policies[old]",
		"+ escalation.policies[vip]",
		"~ business_contacts[Dana].email: dana@example.com → dana@example.org",
		"+ triage.business_team: partners",
		"~ triage.response_policy.community.too_late: 16h → 12h",
	}
	if !slices.Equal(got, want) {
		t.Errorf("diff:\n%q\nwant\n%q", got, want)
	}
	if d := orgfile.DiffSections(before, before, "escalation", "triage"); len(d) != 0 {
		t.Errorf("the same file differs: %q", d)
	}
	if d := orgfile.DiffSections(nil, after, "triage"); !slices.Equal(d, []string{"+ triage"}) {
		t.Errorf("from nothing: %q, want + triage", d)
	}
}

func mustParse(t *testing.T, s string) *orgfile.File {
	t.Helper()
	f, err := orgfile.Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return f
}
