package policy_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
	"github.com/sidekickhq/sidekick/services/notifier/internal/policy"
)

// briefExample is the organisation file fragment from the design brief,
// with other services' sections around it.
const briefExample = `
people:
  - {id: alice, name: Alice, team: core}
escalation:
  policies:
    - id: priority-new
      match: {kind: new_conversation, tier: priority}
      steps:
        - {notify: hero, via: ping, after: 0s}
        - {notify: hero, via: page, after: okay_deadline}   # or a duration
        - {notify: team_secondary, via: page, after: 30m}
      repeat: 1
    - id: community
      match: {kind: new_conversation, tier: community}
      digest: {every: 4h, to: hero}
business_contacts: [ {name: Dana, email: dana@example.com, slack: U0DANA} ]
rotations: []
`

var t0 = time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC) // a Tuesday, 10:00

func TestParseBriefExample(t *testing.T) {
	cfg, err := policy.Parse([]byte(briefExample))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.BusinessContacts; len(got) != 1 || got[0] != (policy.Contact{Name: "Dana", Email: "dana@example.com", Slack: "U0DANA"}) {
		t.Errorf("business contacts = %+v", got)
	}
	var ids []string
	for _, p := range cfg.Policies {
		ids = append(ids, p.ID)
	}
	// Ours first, in order; then the defaults whose ids we did not reuse.
	if ids[0] != "priority-new" || ids[1] != "community" {
		t.Fatalf("policy order = %v", ids)
	}
	if n := strings.Count(strings.Join(ids, " "), "priority-new"); n != 1 {
		t.Errorf("priority-new appears %d times in %v", n, ids)
	}
	for _, want := range []string{"sentry-alert", "deadline-breached", "community-new", "handoff"} {
		if !slices.Contains(ids, want) {
			t.Errorf("default %s missing from %v", want, ids)
		}
	}

	p := cfg.Match(policy.Event{Kind: policy.NewConversation, Tier: policy.Priority, Team: "core"})
	if p == nil || p.ID != "priority-new" {
		t.Fatalf("priority conversation matched %v", p)
	}
	want := []policy.Rule{
		{Notify: policy.Target{Kind: policy.Hero}, Via: notify.Ping},
		{Notify: policy.Target{Kind: policy.Hero}, Via: notify.Page, After: policy.After{Deadline: policy.OkayDeadline}},
		{Notify: policy.Target{Kind: policy.TeamSecondary}, Via: notify.Page, After: policy.After{Offset: 30 * time.Minute}},
	}
	if !slices.Equal(p.Steps, want) || p.Repeat != 1 || p.RepeatAfter != policy.DefaultRepeatAfter {
		t.Errorf("priority-new = %+v", *p)
	}

	c := cfg.Match(policy.Event{Kind: policy.NewConversation, Tier: policy.Community})
	if c == nil || c.ID != "community" || c.Digest == nil || *c.Digest != (policy.Digest{Every: 4 * time.Hour, To: policy.Target{Kind: policy.Hero}}) {
		t.Fatalf("community conversation matched %+v", c)
	}
	if steps := c.Plan(t0, nil); steps != nil {
		t.Errorf("a digest policy planned %v", steps)
	}
}

func TestParseWithoutEscalationSectionGivesDefaults(t *testing.T) {
	for _, doc := range []string{"", "people: []\n", "escalation:\n"} {
		cfg, err := policy.Parse([]byte(doc))
		if err != nil {
			t.Fatalf("%q: %v", doc, err)
		}
		if len(cfg.Policies) != len(policy.Default().Policies) {
			t.Errorf("%q: %d policies, want the %d defaults", doc, len(cfg.Policies), len(policy.Default().Policies))
		}
	}
}

func TestParseDefaultsFalse(t *testing.T) {
	cfg, err := policy.Parse([]byte(`
escalation:
  defaults: false
  policies:
    - id: everything-pages
      match: {kind: sentry_alert}
      steps: [{notify: "person:ops", via: page}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Policies) != 1 {
		t.Fatalf("policies = %+v", cfg.Policies)
	}
	if p := cfg.Match(policy.Event{Kind: policy.NewConversation, Tier: policy.Priority}); p != nil {
		t.Errorf("without defaults a new conversation matched %s", p.ID)
	}
	p := cfg.Match(policy.Event{Kind: policy.SentryAlert, Team: "core"})
	if p == nil || p.Steps[0].Notify != (policy.Target{Kind: policy.Person, Name: "ops"}) || p.Steps[0].After != (policy.After{}) {
		t.Errorf("sentry alert matched %+v", p)
	}
}

func TestParseErrors(t *testing.T) {
	policyWith := func(body string) string {
		return "escalation:\n  policies:\n    - id: p1\n" + body
	}
	rules := func(body string) string { return "escalation:\n  contact_rules:\n" + body }
	tests := []struct {
		name string
		yaml string
		want []string // substrings of the error
	}{
		{"not yaml", "escalation: [", []string{"parse YAML"}},
		{"unknown escalation field", "escalation:\n  policy: []\n", []string{`unknown field "policy"`, "line 2"}},
		{"missing id", "escalation:\n  policies:\n    - match: {kind: handoff}\n      steps: [{notify: hero, via: ping}]\n", []string{"policy #1", "missing id"}},
		{"bad id", "escalation:\n  policies:\n    - id: Priority New\n      match: {kind: handoff}\n      steps: [{notify: hero, via: ping}]\n", []string{`policy "Priority New"`, "lower-case"}},
		{"duplicate id", policyWith("      match: {kind: handoff}\n      steps: [{notify: hero, via: ping}]\n    - id: p1\n      match: {kind: handoff}\n      steps: [{notify: hero, via: ping}]\n"), []string{`policy "p1" (line 6)`, "already used on line 3"}},
		{"unknown policy field", policyWith("      match: {kind: handoff}\n      step: []\n"), []string{`policy "p1"`, `unknown field "step"`, "line 5"}},
		{"missing kind", policyWith("      match: {tier: priority}\n      steps: [{notify: hero, via: ping}]\n"), []string{`policy "p1"`, "match: missing kind"}},
		{"unknown kind", policyWith("      match: {kind: new_convo}\n      steps: [{notify: hero, via: ping}]\n"), []string{`unknown kind "new_convo"`}},
		{"unknown tier", policyWith("      match: {kind: new_conversation, tier: gold}\n      steps: [{notify: hero, via: ping}]\n"), []string{`unknown tier "gold"`}},
		{"level without deadline", policyWith("      match: {kind: new_conversation, level: late}\n      steps: [{notify: hero, via: ping}]\n"), []string{"level is for kind deadline only"}},
		{"unknown level", policyWith("      match: {kind: deadline, level: critical}\n      steps: [{notify: hero, via: ping}]\n"), []string{`unknown level "critical"`}},
		{"unknown match field", policyWith("      match: {kind: deadline, levle: late}\n      steps: [{notify: hero, via: ping}]\n"), []string{"match:", `unknown field "levle"`}},
		{"no steps", policyWith("      match: {kind: handoff}\n"), []string{"needs steps or a digest"}},
		{"steps and digest", policyWith("      match: {kind: handoff}\n      steps: [{notify: hero, via: ping}]\n      digest: {every: 1h, to: hero}\n"), []string{"both steps and a digest"}},
		{"unknown target", policyWith("      match: {kind: handoff}\n      steps:\n        - {notify: hero, via: ping}\n        - {notify: team_secondry, via: page, after: 5m}\n"), []string{`policy "p1"`, "step 2", `unknown target "team_secondry"`}},
		{"person without id", policyWith("      match: {kind: handoff}\n      steps: [{notify: 'person:', via: ping}]\n"), []string{"step 1", "needs a name"}},
		{"hero with name", policyWith("      match: {kind: handoff}\n      steps: [{notify: 'hero:bob', via: ping}]\n"), []string{"step 1", "takes no name"}},
		{"unknown via", policyWith("      match: {kind: handoff}\n      steps: [{notify: hero, via: pager}]\n"), []string{"step 1", `unknown via "pager"`}},
		{"missing via", policyWith("      match: {kind: handoff}\n      steps: [{notify: hero}]\n"), []string{"step 1", "missing via"}},
		{"typo in step field", policyWith("      match: {kind: handoff}\n      steps: [{notify: hero, via: ping, afer: 5m}]\n"), []string{"step 1", `unknown field "afer"`}},
		{"bad duration", policyWith("      match: {kind: handoff}\n      steps: [{notify: hero, via: ping, after: soon}]\n"), []string{"step 1", `"soon" is neither a duration nor a deadline name`}},
		{"negative duration", policyWith("      match: {kind: handoff}\n      steps: [{notify: hero, via: ping, after: -5m}]\n"), []string{"step 1", "negative"}},
		{"unknown deadline", policyWith("      match: {kind: new_conversation}\n      steps: [{notify: hero, via: ping, after: late_deadline}]\n"), []string{"step 1", `unknown deadline "late_deadline"`}},
		{"bad deadline offset", policyWith("      match: {kind: new_conversation}\n      steps: [{notify: hero, via: ping, after: okay_deadline+soon}]\n"), []string{"step 1", "bad offset"}},
		{"deadline on a sentry alert", policyWith("      match: {kind: sentry_alert}\n      steps: [{notify: team_secondary, via: page, after: okay_deadline}]\n"), []string{"step 1", "sentry_alert events have no response deadlines"}},
		{"team secondary of a handoff", policyWith("      match: {kind: handoff}\n      steps: [{notify: team_secondary, via: ping}]\n"), []string{"step 1", "belong to no team"}},
		{"business contacts missing", policyWith("      match: {kind: new_conversation}\n      steps: [{notify: business_contacts, via: ping}]\n"), []string{"step 1", "business_contacts is empty"}},
		{"repeat too large", policyWith("      match: {kind: handoff}\n      steps: [{notify: hero, via: ping}]\n      repeat: 99\n"), []string{`policy "p1"`, "repeat 99"}},
		{"ack_timeout not a duration", policyWith("      match: {kind: new_conversation}\n      steps: [{notify: hero, via: ping}]\n      ack_timeout: soon\n"), []string{`policy "p1"`, `ack_timeout "soon" is not a positive duration`}},
		{"ack_timeout of a handoff", policyWith("      match: {kind: handoff}\n      steps: [{notify: hero, via: ping}]\n      ack_timeout: 30m\n"), []string{"ack_timeout: handoff events have no conversation"}},
		{"ack_timeout of a digest", policyWith("      match: {kind: new_conversation}\n      digest: {every: 4h, to: hero}\n      ack_timeout: 30m\n"), []string{"ack_timeout applies to steps"}},
		{"repeat_after without repeat", policyWith("      match: {kind: handoff}\n      steps: [{notify: hero, via: ping}]\n      repeat_after: 10m\n"), []string{"repeat_after without repeat"}},
		{"repeat not a number", policyWith("      match: {kind: handoff}\n      steps: [{notify: hero, via: ping}]\n      repeat: twice\n"), []string{`policy "p1"`, "twice"}},
		{"digest every", policyWith("      match: {kind: new_conversation}\n      digest: {every: 0s, to: hero}\n"), []string{"digest: every"}},
		{"digest target", policyWith("      match: {kind: new_conversation}\n      digest: {every: 4h, to: nobody}\n"), []string{"digest:", `unknown target "nobody"`}},
		{"digest with repeat", policyWith("      match: {kind: new_conversation}\n      digest: {every: 4h, to: hero}\n      repeat: 1\n"), []string{"repeat applies to steps"}},
		{"contact without name", "business_contacts: [{email: x@example.com}]\n", []string{"business_contacts[0]", "missing name"}},
		{"contact unreachable", "business_contacts: [{name: Dana}]\n", []string{"Dana needs an email or a slack id"}},
		{"contact field", "business_contacts: [{name: Dana, phone: '1'}]\n", []string{`unknown field "phone"`}},
		{"not a mapping", rules("    - alice\n"), []string{"contact_rules (line 3)", "want a mapping of person id"}},
		{"empty list", rules("    alice: []\n"), []string{"alice (line 3)", "want a list of rules"}},
		{"unknown channel", rules("    alice:\n      - {channel: sms}\n"), []string{"alice (line 3)", "rule 1", `unknown channel "sms"`, "slack, email, pagerduty"}},
		{"webhook is nobody's", rules("    alice:\n      - {channel: webhook}\n"), []string{`unknown channel "webhook"`}},
		{"missing channel", rules("    alice:\n      - {after: 5m}\n"), []string{"rule 1", "missing channel"}},
		{"typo in a field", rules("    alice:\n      - {channel: slack}\n      - {channel: email, afer: 5m}\n"), []string{"rule 2", `line 5: unknown field "afer"`}},
		{"bad after", rules("    alice:\n      - {channel: email, after: soon}\n"), []string{"rule 1", `after "soon" is not a duration`}},
		{"negative after", rules("    alice:\n      - {channel: email, after: -5m}\n"), []string{"rule 1", "is not a duration"}},
		{"bad urgency", rules("    alice:\n      - {channel: email, urgency: high}\n"), []string{"rule 1", `unknown urgency "high"`}},
		{"the same rule twice", rules("    alice:\n      - {channel: email, after: 5m}\n      - {channel: email, after: 300s}\n"), []string{"rule 2", "the same as rule 1"}},
		{"person twice", rules("    alice:\n      - {channel: email}\n    alice:\n      - {channel: slack}\n"), []string{"alice (line 5)", "already given on line 3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policy.Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("no error for\n%s", tt.yaml)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseReportsEveryBadPolicy(t *testing.T) {
	_, err := policy.Parse([]byte(`
escalation:
  policies:
    - id: a
      match: {kind: nope}
      steps: [{notify: hero, via: ping}]
    - id: b
      match: {kind: handoff}
      steps: [{notify: hero, via: shout}]
`))
	if err == nil || !strings.Contains(err.Error(), `policy "a"`) || !strings.Contains(err.Error(), `policy "b"`) {
		t.Fatalf("error = %v, want both policies named", err)
	}
}

func TestDefaultMatch(t *testing.T) {
	cfg := policy.Default()
	tests := []struct {
		event policy.Event
		want  string // policy id, "" for none
	}{
		{policy.Event{Kind: policy.NewConversation, Tier: policy.Priority, Category: "Deployments"}, "priority-new"},
		{policy.Event{Kind: policy.NewConversation, Tier: policy.Subscriber}, "subscriber-new"},
		{policy.Event{Kind: policy.NewConversation, Tier: policy.Community}, "community-new"},
		{policy.Event{Kind: policy.NewConversation}, "new-conversation"},
		{policy.Event{Kind: policy.NewConversation, Tier: policy.Priority, Category: "partnership"}, "business-proposals"},
		{policy.Event{Kind: policy.NewConversation, Tier: policy.Community, Category: "Marketing"}, "business-proposals"},
		{policy.Event{Kind: policy.NewConversation, Tier: policy.Priority, Category: "business"}, "business-proposals"}, // what triage sets
		{policy.Event{Kind: policy.Deadline, Tier: policy.Priority, Level: policy.Breached, Team: "core"}, "deadline-breached"},
		{policy.Event{Kind: policy.Deadline, Tier: policy.Subscriber, Level: policy.Breached}, "deadline-breached"},
		{policy.Event{Kind: policy.Deadline, Tier: policy.Community, Level: policy.Breached}, "community-breached"},
		{policy.Event{Kind: policy.Deadline, Tier: policy.Priority, Level: policy.Okay}, ""},
		{policy.Event{Kind: policy.Deadline, Tier: policy.Priority, Level: policy.Late}, ""},
		{policy.Event{Kind: policy.SentryAlert, Team: "platform"}, "sentry-alert"},
		{policy.Event{Kind: policy.ExplicitEscalation, Tier: policy.Priority}, "explicit-escalation"},
		{policy.Event{Kind: policy.Handoff}, "handoff"},
		{policy.Event{Kind: policy.CoverageGap}, "coverage-gap"},
		{policy.Event{Kind: "something_else"}, ""},
	}
	for _, tt := range tests {
		p := cfg.Match(tt.event)
		got := ""
		if p != nil {
			got = p.ID
		}
		if got != tt.want {
			t.Errorf("Match(%+v) = %q, want %q", tt.event, got, tt.want)
		}
	}
}

func TestDefaultsAreWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range policy.Default().Policies {
		if seen[p.ID] {
			t.Errorf("duplicate default id %s", p.ID)
		}
		seen[p.ID] = true
		if (p.Digest == nil) == (len(p.Steps) == 0) {
			t.Errorf("%s: want steps or a digest", p.ID)
		}
	}
}

// step is a compact expectation: minutes after t0, target, urgency.
type step struct {
	min     int
	target  string
	urgency notify.Urgency
}

func TestPlan(t *testing.T) {
	mins := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	deadlines := map[string]time.Time{
		policy.GreatDeadline:   mins(15),
		policy.OkayDeadline:    mins(60),
		policy.TooLateDeadline: mins(24 * 60),
	}
	brief, err := policy.Parse([]byte(briefExample))
	if err != nil {
		t.Fatal(err)
	}
	custom := func(doc string) *policy.Policy {
		t.Helper()
		cfg, err := policy.Parse([]byte("escalation:\n  defaults: false\n  policies:\n" + doc))
		if err != nil {
			t.Fatal(err)
		}
		return &cfg.Policies[0]
	}
	defaults := policy.Default()
	tests := []struct {
		name      string
		policy    *policy.Policy
		deadlines map[string]time.Time
		want      []step
	}{
		{
			name:      "default priority: ping at once, page at the okay deadline",
			policy:    defaults.Policy("priority-new"),
			deadlines: deadlines,
			want:      []step{{0, "hero", notify.Ping}, {60, "hero", notify.Page}},
		},
		{
			name:   "default priority answered before any deadline was set: only the ping",
			policy: defaults.Policy("priority-new"),
			want:   []step{{0, "hero", notify.Ping}},
		},
		{
			name:      "default subscriber",
			policy:    defaults.Policy("subscriber-new"),
			deadlines: deadlines,
			want:      []step{{0, "hero", notify.Ping}},
		},
		{
			name:   "default breach pages the team secondary and pings the hero",
			policy: defaults.Policy("deadline-breached"),
			want:   []step{{0, "team_secondary", notify.Page}, {0, "hero", notify.Ping}},
		},
		{
			name:   "default sentry alert",
			policy: defaults.Policy("sentry-alert"),
			want:   []step{{0, "team_secondary", notify.Page}},
		},
		{
			name:   "default explicit escalation",
			policy: defaults.Policy("explicit-escalation"),
			want:   []step{{0, "team_secondary", notify.Ping}, {15, "team_secondary", notify.Page}},
		},
		{
			name:   "default community is a digest",
			policy: defaults.Policy("community-new"),
		},
		{
			name:      "brief example: durations follow the step before, one repeat 30m after the last step",
			policy:    brief.Policy("priority-new"),
			deadlines: deadlines,
			want: []step{
				{0, "hero", notify.Ping}, {60, "hero", notify.Page}, {90, "team_secondary", notify.Page},
				{120, "hero", notify.Ping}, {180, "hero", notify.Page}, {210, "team_secondary", notify.Page},
			},
		},
		{
			name:   "brief example without deadlines skips the anchored step",
			policy: brief.Policy("priority-new"),
			want: []step{
				{0, "hero", notify.Ping}, {30, "team_secondary", notify.Page},
				{60, "hero", notify.Ping}, {90, "team_secondary", notify.Page},
			},
		},
		{
			name: "a deadline already past is due with the step before",
			policy: custom(`    - id: late
      match: {kind: new_conversation}
      steps:
        - {notify: hero, via: ping, after: 20m}
        - {notify: hero, via: page, after: great_deadline}
        - {notify: "person:lead", via: page, after: okay_deadline+15m}
`),
			deadlines: deadlines,
			want:      []step{{20, "hero", notify.Ping}, {20, "hero", notify.Page}, {75, "person:lead", notify.Page}},
		},
		{
			name: "repeats with repeat_after, steps all at once",
			policy: custom(`    - id: nag
      match: {kind: coverage_gap}
      steps:
        - {notify: hero, via: ping}
        - {notify: "slack_channel:#support", via: ping}
      repeat: 2
      repeat_after: 2h
`),
			want: []step{
				{0, "hero", notify.Ping}, {0, "slack_channel:support", notify.Ping},
				{120, "hero", notify.Ping}, {120, "slack_channel:support", notify.Ping},
				{240, "hero", notify.Ping}, {240, "slack_channel:support", notify.Ping},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.policy == nil {
				t.Fatal("no such policy")
			}
			got := tt.policy.Plan(t0, tt.deadlines)
			if len(got) != len(tt.want) {
				t.Fatalf("planned %d steps, want %d: %+v", len(got), len(tt.want), got)
			}
			for i, s := range got {
				w := tt.want[i]
				if s.Index != i || !s.Due.Equal(mins(w.min)) || s.Target.String() != w.target || s.Urgency != w.urgency {
					t.Errorf("step %d = {Index %d, due +%s, %s, %s}, want {Index %d, due +%dm, %s, %s}",
						i, s.Index, s.Due.Sub(t0), s.Target, s.Urgency, i, w.min, w.target, w.urgency)
				}
			}
		})
	}
}

func TestPlanRoundsAndRules(t *testing.T) {
	cfg, err := policy.Parse([]byte(briefExample))
	if err != nil {
		t.Fatal(err)
	}
	steps := cfg.Policy("priority-new").Plan(t0, map[string]time.Time{policy.OkayDeadline: t0.Add(time.Hour)})
	var got [][2]int
	for _, s := range steps {
		got = append(got, [2]int{s.Round, s.Rule})
	}
	want := [][2]int{{0, 0}, {0, 1}, {0, 2}, {1, 0}, {1, 1}, {1, 2}}
	if !slices.Equal(got, want) {
		t.Errorf("(round, rule) = %v, want %v", got, want)
	}
}

func TestParseAfter(t *testing.T) {
	tests := []struct {
		in   string
		want policy.After
	}{
		{"", policy.After{}},
		{"0s", policy.After{}},
		{"1h30m", policy.After{Offset: 90 * time.Minute}},
		{"okay_deadline", policy.After{Deadline: policy.OkayDeadline}},
		{"too_late_deadline + 1h", policy.After{Deadline: policy.TooLateDeadline, Offset: time.Hour}},
		{"great_deadline+5m", policy.After{Deadline: policy.GreatDeadline, Offset: 5 * time.Minute}},
	}
	for _, tt := range tests {
		got, err := policy.ParseAfter(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseAfter(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
		if err == nil && tt.in != "" {
			back, err := policy.ParseAfter(got.String())
			if err != nil || back != got {
				t.Errorf("ParseAfter(%q.String() = %q) = %+v, %v", tt.in, got.String(), back, err)
			}
		}
	}
}

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in   string
		want policy.Target
	}{
		{"hero", policy.Target{Kind: policy.Hero}},
		{"team_secondary", policy.Target{Kind: policy.TeamSecondary}},
		{"business_contacts", policy.Target{Kind: policy.BusinessContacts}},
		{"person:alice", policy.Target{Kind: policy.Person, Name: "alice"}},
		{"slack_channel:#support-escalations", policy.Target{Kind: policy.SlackChannel, Name: "support-escalations"}},
	}
	for _, tt := range tests {
		got, err := policy.ParseTarget(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseTarget(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestDigestNext(t *testing.T) {
	d := policy.Digest{Every: 4 * time.Hour, To: policy.Target{Kind: policy.Hero}}
	tests := []struct{ at, want time.Time }{
		{time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC), time.Date(2026, 3, 3, 12, 0, 0, 0, time.UTC)},
		{time.Date(2026, 3, 3, 12, 0, 0, 0, time.UTC), time.Date(2026, 3, 3, 16, 0, 0, 0, time.UTC)},
		{time.Date(2026, 3, 3, 23, 59, 0, 0, time.UTC), time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		if got := d.Next(tt.at); !got.Equal(tt.want) {
			t.Errorf("Next(%s) = %s, want %s", tt.at, got, tt.want)
		}
	}
}
