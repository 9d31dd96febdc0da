package ownership

import (
	"strings"
	"testing"
)

func TestRules(t *testing.T) {
	env, err := ParseEnv("frontend=core-experience, api=platform,api[component=billing;region=eu]=core-analytics,api[component=billing]=billing-team")
	if err != nil {
		t.Fatal(err)
	}
	file, err := ParseOrgFile([]byte(`
people: [{id: alice}]
sentry:
  ownership:
    - {project: worker, team: platform}
    - {project: "*", team: catch-all}
    - {project: "*", tags: {component: billing}, team: billing-anywhere}
`))
	if err != nil {
		t.Fatal(err)
	}
	rs := append(env, file...)
	for _, tc := range []struct {
		project string
		tags    map[string]string
		want    string
	}{
		{"frontend", nil, "core-experience"},
		{"FrontEnd", map[string]string{"component": "billing"}, "core-experience"},
		{"api", nil, "platform"},
		{"api", map[string]string{"component": "billing"}, "billing-team"},
		{"api", map[string]string{"component": "billing", "region": "eu"}, "core-analytics"},
		{"worker", nil, "platform"},
		{"mobile", nil, "catch-all"},
		{"mobile", map[string]string{"component": "billing"}, "billing-anywhere"},
	} {
		if got := rs.Team(tc.project, tc.tags); got != tc.want {
			t.Errorf("Team(%q, %v) = %q, want %q", tc.project, tc.tags, got, tc.want)
		}
	}
	if got := Rules(nil).Team("api", nil); got != "" {
		t.Fatalf("no rules: %q", got)
	}
}

func TestParseOrgFileForms(t *testing.T) {
	rs, err := ParseOrgFile([]byte("sentry:\n  ownership:\n    frontend: core-experience\n    api: platform\n"))
	if err != nil || rs.Team("api", nil) != "platform" || rs.Team("frontend", nil) != "core-experience" {
		t.Fatalf("mapping form: %v %v", rs, err)
	}
	if rs, err := ParseOrgFile([]byte("people: []\n")); err != nil || len(rs) != 0 {
		t.Fatalf("no section: %v %v", rs, err)
	}
	for _, bad := range []string{"sentry:\n  ownership: 3\n", "sentry:\n  ownership:\n    - {project: api}\n", "sentry: [\n"} {
		if _, err := ParseOrgFile([]byte(bad)); err == nil {
			t.Errorf("ParseOrgFile(%q): want an error", bad)
		}
	}
}

func TestParseEnvErrors(t *testing.T) {
	for _, bad := range []string{"frontend", "=team", "api=", "api[component=billing=team", "api[component]=team"} {
		if _, err := ParseEnv(bad); err == nil {
			t.Errorf("ParseEnv(%q): want an error", bad)
		}
	}
	if rs, err := ParseEnv(" , "); err != nil || len(rs) != 0 {
		t.Fatalf("empty: %v %v", rs, err)
	}
}

func FuzzParseEnv(f *testing.F) {
	f.Add("frontend=core-experience,api[component=billing;region=eu]=platform")
	f.Add("a[b=c]=d,[=]")
	f.Fuzz(func(t *testing.T, s string) {
		rs, err := ParseEnv(s)
		if err != nil {
			return
		}
		for _, r := range rs {
			if r.Project == "" || r.Team == "" || strings.Contains(r.Team, ",") {
				t.Fatalf("accepted a bad rule %+v from %q", r, s)
			}
		}
	})
}
