package classify

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

func TestParse(t *testing.T) {
	p := NewParser()
	for _, tt := range []struct {
		in   string
		want Category
	}{
		{"feature-flags", FeatureFlags},
		{"Feature flags", FeatureFlags},
		{"Feature-flags", FeatureFlags},
		{"FEATURE_FLAG", FeatureFlags},
		{"  feature flag ", FeatureFlags},
		{"User Experience Confusion", UXConfusion},
		{"UX", UXConfusion},
		{"ux-confusion", UXConfusion},
		{"Data Integrity", DataIntegrity},
		{"deployments/scaling", DeploymentsScaling},
		{"Deployments: Scaling", DeploymentsScaling},
		{"deployments - setup", DeploymentsSetup},
		{"Supporting Managed Instances", DeploymentsManagedInstances},
		{"hobby", DeploymentsHobbyist},
		{"Self-hosted", Deployments},
		{"Not-a-bug", NotABug},
		{"not a bug", NotABug},
		{"Feature request", FeatureRequest},
		{"Feature requests", FeatureRequest},
		{"API", API},
		{"Plugin", Plugins},
		{"Session replay", Recordings},
		{"Recording", Recordings},
		{"Toolbar", Toolbar},
		{"Billing", Billing},
		{"Other", Other},
		{"Performance", Performance},
		{"perf", Performance},
		{"Instrumentation", Instrumentation},
		{"spam", Spam},
		{"Partnership", Business},
	} {
		got, err := p.Parse(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "   ", "bugs", "deployments/unknown", "s"} {
		if got, err := p.Parse(bad); !errors.Is(err, ErrUnknownCategory) {
			t.Errorf("Parse(%q) = %q, %v; want ErrUnknownCategory", bad, got, err)
		}
	}
	got, err := p.ParseList([]string{"Feature flags", "feature-flags", "API", "nonsense", "UX", "junk food"})
	if want := []Category{FeatureFlags, API, UXConfusion}; !slices.Equal(got, want) {
		t.Errorf("ParseList = %v, want %v", got, want)
	}
	if err == nil || !strings.Contains(err.Error(), "nonsense") || !strings.Contains(err.Error(), "junk food") {
		t.Errorf("ParseList error = %v, want both unknown items", err)
	}
	if c, err := Parse("Feature flags"); err != nil || c != FeatureFlags {
		t.Errorf("Parse = %q, %v", c, err)
	}
}

func TestCatalogue(t *testing.T) {
	p := NewParser()
	ids := map[Category]bool{}
	for _, in := range All() {
		if ids[in.ID] {
			t.Errorf("duplicate id %q", in.ID)
		}
		ids[in.ID] = true
		for _, s := range []string{string(in.ID), in.Name} {
			if got, err := p.Parse(s); err != nil || got != in.ID {
				t.Errorf("Parse(%q) = %q, %v; want %q", s, got, err, in.ID)
			}
		}
		if in.ID.Parent() != in.Parent {
			t.Errorf("%q: Parent() = %q, catalogue says %q", in.ID, in.ID.Parent(), in.Parent)
		}
		if in.ID.Routing() != in.Routing || in.ID.Name() != in.Name || !in.ID.Valid() {
			t.Errorf("%q: inconsistent info %+v", in.ID, in)
		}
	}
	if len(ids) != 22 {
		t.Errorf("%d categories, want 14 + 6 deployment subcategories + 2 routing classes", len(ids))
	}
	if Category("made-up").Valid() || Category("made-up").Name() != "made-up" {
		t.Error("unknown category reported valid")
	}
}

func TestTokenize(t *testing.T) {
	tz := NewTokenizer()
	for _, tt := range []struct {
		in    string
		words []string
		links int
	}{
		{"Our Feature-Flags don't work!", []string{"our", "feature", "flag", "dont", "work"}, 0},
		{"Session recordings: see https://example.com/a?b=c and www.example.org.", []string{"session", "recording", "see", "and"}, 2},
		{"Müller’s café – 502 errors", []string{"müller", "café", "502", "error"}, 0},
		{"access status analysis bus", []string{"access", "status", "analysis", "bus"}, 0},
		{"queries replies", []string{"query", "reply"}, 0},
		{"", nil, 0},
	} {
		got := tz.Tokenize(tt.in)
		if !slices.Equal(got.Words, tt.words) || got.Links != tt.links {
			t.Errorf("Tokenize(%q) = %q, %d links; want %q, %d", tt.in, got.Words, got.Links, tt.words, tt.links)
		}
	}
	// Stop words break pairs; duplicates and long numbers are dropped.
	f := tz.Features(tz.Tokenize("The flag is not working, the flag is off. 1234567 http://a.example http://b.example"))
	if want := []string{"flag", "not", "working", "not_working", "off", "_link_", "_link_+"}; !slices.Equal(f, want) {
		t.Errorf("Features = %q, want %q", f, want)
	}
}

// rulesFor compiles rules or fails.
func rulesFor(t *testing.T, r Rules) *RuleSet {
	t.Helper()
	rs, err := r.Compile()
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestDefaultRules(t *testing.T) {
	rs := rulesFor(t, DefaultRules())
	c := New(rs, nil)
	for _, tt := range []struct {
		name   string
		in     Input
		want   []Category
		source Source
		hit    string
	}{
		{"label decides", Input{Channel: "github", Subject: "Dashboards", Text: "They are bad.", Labels: []string{"performance"}},
			[]Category{Performance}, SourceRules, `label "performance"`},
		{"labels ignore case and punctuation", Input{Channel: "github", Text: "Please consider this.", Labels: []string{"Feature_Request"}},
			[]Category{FeatureRequest}, SourceRules, `label "Feature_Request"`},
		{"plural keywords fold", Input{Channel: "slack", Text: "Our Feature Flags return false for everybody"},
			[]Category{FeatureFlags}, SourceWeakRules, `keyword "feature flag"`},
		{"whole words only", Input{Channel: "slack", Text: "Our flagship dashboard is empty"},
			nil, SourceDefault, ""},
		{"pattern", Input{Channel: "email", Subject: "Funnels", Text: "The funnel query took 45 seconds today"},
			[]Category{Performance}, SourceWeakRules, "pattern"},
		{"gateway errors", Input{Channel: "slack", Text: "We get a 504 when opening insights"},
			[]Category{Performance}, SourceWeakRules, "pattern"},
		{"strong keywords with a secondary category", Input{Channel: "email", Subject: "Invoice", Text: "We were charged twice, the invoice shows two payments. Also, the feature flag page is confusing."},
			[]Category{Billing, FeatureFlags}, SourceRules, `keyword "invoice"`},
		{"subcategory absorbs its parent", Input{Channel: "slack", Text: "Our self-hosted instance on Kubernetes broke after helm upgrade to the new version"},
			[]Category{DeploymentsMaintenance}, SourceRules, `keyword "helm upgrade"`},
		{"parent alone stays", Input{Channel: "slack", Text: "Questions about our self-hosted kubernetes deployment"},
			[]Category{Deployments}, SourceWeakRules, `keyword "kubernetes"`},
		{"business proposal", Input{Channel: "email", Subject: "Partnership", Text: "We'd like to discuss a partnership and a joint webinar."},
			[]Category{Business}, SourceWeakRules, `keyword "partnership"`},
		{"nothing fires", Input{Channel: "slack", Text: "Hello there"},
			nil, SourceDefault, ""},
		{"a guess below the minimum confidence", Input{Channel: "slack", Text: "The invoice page is slow"},
			nil, SourceUnsure, `keyword "invoice"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := c.Classify(tt.in)
			if !slices.Equal(r.Categories, tt.want) || r.Source != tt.source {
				t.Errorf("Classify = %v from %s; want %v from %s (rules %v)", r.Categories, r.Source, tt.want, tt.source, r.Rules)
			}
			if tt.hit != "" && !slices.ContainsFunc(r.Hits, func(h Hit) bool { return strings.Contains(h.Reason, tt.hit) }) {
				t.Errorf("hits %v lack %s", r.Hits, tt.hit)
			}
			if r.Model != nil {
				t.Errorf("an empty model was consulted: %v", r.Model)
			}
		})
	}
	if r := c.Classify(Input{Channel: "email", Text: "Partnership proposal: co-marketing and a joint webinar"}); r.Route != RouteBusiness || r.Route.String() != "business" {
		t.Errorf("business proposal routed to %s", r.Route)
	}
}

func TestConfiguredRules(t *testing.T) {
	rs := rulesFor(t, Rules{Categories: []Rule{
		{Category: "Billing", Weight: 3, Channels: []string{"slack:C0BILLING", "email:billing@example.com"}},
		{Category: "Plugins", Weight: 4, SentryProjects: []string{"plugin-server"}},
		{Category: "feature flags", Channels: []string{"github"}},
		{Category: "api", Weight: 0.5, Keywords: []string{"endpoint"}, Patterns: []string{`/api/v\d+/`}},
	}})
	for _, tt := range []struct {
		in   Input
		want []Scored
	}{
		{Input{Channel: "slack", Source: "C0BILLING", Text: "hi"}, []Scored{{Billing, 3}}},
		{Input{Channel: "Slack", Source: "c0billing", Text: "hi"}, []Scored{{Billing, 3}}},
		{Input{Channel: "slack", Source: "C0GENERAL", Text: "hi"}, nil},
		{Input{Channel: "email", Source: "billing@example.com", Text: "hi"}, []Scored{{Billing, 3}}},
		{Input{Channel: "sentry", SentryProject: "plugin-server", Text: "TypeError"}, []Scored{{Plugins, 4}}},
		{Input{Channel: "sentry", SentryProject: "web", Text: "TypeError"}, nil},
		{Input{Channel: "github", Text: "x"}, []Scored{{FeatureFlags, 1}}},
		{Input{Channel: "email", Text: "The endpoint /api/v2/events fails"}, []Scored{{API, 1}}},
	} {
		got, _ := rs.Score(tt.in)
		if !reflect.DeepEqual(got, tt.want) && (len(got) != 0 || len(tt.want) != 0) {
			t.Errorf("Score(%+v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	_, err := Rules{
		ModelThreshold: 2,
		Categories: []Rule{
			{Category: "nonsense"},
			{Category: "api", Keywords: []string{"--"}, Patterns: []string{"(unclosed"}},
		},
		Spam: SpamRules{Phrases: []string{"!!!"}},
	}.Compile()
	if err == nil {
		t.Fatal("invalid rules compiled")
	}
	for _, want := range []string{"model_threshold", `"nonsense"`, `keyword "--"`, "pattern", `spam: keyword "!!!"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if _, err := (Rules{StrongScore: 1, MinScore: 2}).Compile(); err == nil {
		t.Error("strong score below min score compiled")
	}
	// Every field of the configuration carries a yaml tag.
	for _, typ := range []reflect.Type{reflect.TypeFor[Rules](), reflect.TypeFor[Rule](), reflect.TypeFor[SpamRules]()} {
		for f := range typ.Fields() {
			if f.Tag.Get("yaml") == "" {
				t.Errorf("%s.%s has no yaml tag", typ.Name(), f.Name)
			}
		}
	}
}

func TestSpam(t *testing.T) {
	c := New(rulesFor(t, DefaultRules()), nil)
	links := " https://a.example https://b.example https://c.example https://d.example https://e.example"
	for _, tt := range []struct {
		name    string
		in      Input
		spam    bool
		score   float64
		reasons []string
	}{
		{"ordinary message", Input{Channel: "email", Text: "Our dashboard is empty since yesterday"}, false, 0, nil},
		{"failed authentication alone", Input{Channel: "email", Text: "Our dashboard is empty", AuthFailed: true}, false, 0.5,
			[]string{"email authentication failed"}},
		{"failed authentication and a phrase", Input{Channel: "email", Subject: "Guest post", Text: "Would you accept a guest post?", AuthFailed: true}, true, 0.8,
			[]string{"email authentication failed", `phrase "guest post"`}},
		{"two phrases", Input{Channel: "email", Text: "We offer SEO services and quality backlinks."}, true, 0.84,
			[]string{`phrase "backlink"`, `phrase "seo services"`}},
		{"many links alone", Input{Channel: "slack", Text: "Our docs:" + links}, false, 0.5, []string{"5 links"}},
		{"many links and a phrase", Input{Channel: "github", Text: "Click here" + links}, true, 0.8,
			[]string{`phrase "click here"`, "5 links"}},
		{"known customer", Input{Channel: "email", Text: "Click here for backlinks", KnownCustomer: true, AuthFailed: true}, false, 0.92,
			[]string{"email authentication failed", `phrase "backlink"`, `phrase "click here"`, "known customer: never spam"}},
		{"sentry is never spam", Input{Channel: "sentry", Text: "click here for backlinks casino"}, false, 0, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := c.Spam(tt.in)
			slices.Sort(v.Reasons)
			slices.Sort(tt.reasons)
			if v.Spam != tt.spam || math.Abs(v.Score-tt.score) > 1e-9 || !slices.Equal(v.Reasons, tt.reasons) {
				t.Errorf("Spam = %+v; want spam %v score %v reasons %q", v, tt.spam, tt.score, tt.reasons)
			}
			r := c.Classify(tt.in)
			if (r.Route == RouteSpam) != tt.spam {
				t.Errorf("Classify routed to %s", r.Route)
			}
			if tt.spam && (!slices.Equal(r.Categories, []Category{Spam}) || r.Source != SourceSpam || r.Confidence != v.Score) {
				t.Errorf("spam result = %+v", r)
			}
		})
	}
}

func TestSpamFromModel(t *testing.T) {
	train, _ := loadCorpus(t)
	c := trained(t, train)
	// No spam phrase, no failed authentication: only the learned spam class.
	in := Input{Channel: "email", Subject: "Mailbox suspended", Text: "Your mailbox account will be closed today, confirm your login now to keep receiving email."}
	v := c.Spam(in)
	if !slices.ContainsFunc(v.Reasons, func(r string) bool { return strings.HasPrefix(r, "model spam probability") }) {
		t.Fatalf("model did not contribute: %+v", v)
	}
	t.Logf("model-only spam verdict: %+v", v)
	if !v.Spam {
		t.Errorf("learned phishing not recognised: %+v", v)
	}
}

func TestModelLearnsAndUnlearns(t *testing.T) {
	m := NewModel(0)
	if m.Predict("anything") != nil {
		t.Error("empty model predicted")
	}
	docs := []struct {
		text string
		cats []Category
	}{
		{"The session recording is blank", []Category{Recordings}},
		{"Replay of the session shows a white screen", []Category{Recordings}},
		{"We were charged twice on the invoice", []Category{Billing}},
		{"Refund the duplicate charge on our card", []Category{Billing}},
		{"Recording playback froze and we were charged for it", []Category{Recordings, Billing}},
	}
	for _, d := range docs {
		if err := m.Learn(d.text, d.cats); err != nil {
			t.Fatal(err)
		}
	}
	if m.Docs() != 5 || m.ClassDocs()[Recordings] != 3 || m.ClassDocs()[Billing] != 3 {
		t.Fatalf("counts: %d docs, %v", m.Docs(), m.ClassDocs())
	}
	// Every category of the taxonomy takes part with its prior: five
	// documents rank recordings first but are not yet a confident model.
	p := m.Predict("the recording is blank again")
	if len(p) != len(All()) || p[0].Category != Recordings || p[0].Score < 3*p[2].Score {
		t.Errorf("Predict = %v", p)
	}
	var sum float64
	for _, s := range p {
		sum += s.Score
	}
	if math.Abs(sum-1) > 1e-9 {
		t.Errorf("posteriors sum to %v", sum)
	}

	before, _ := json.Marshal(m)
	extra := "Invoice for the recording add-on"
	if err := m.Learn(extra, []Category{Billing, Recordings, Billing}); err != nil {
		t.Fatal(err)
	}
	if err := m.Unlearn(extra, []Category{Billing, Recordings}); err != nil {
		t.Fatal(err)
	}
	after, _ := json.Marshal(m)
	if string(before) != string(after) {
		t.Errorf("learn + unlearn changed the model:\n%s\n%s", before, after)
	}
	for _, bad := range []struct {
		text string
		cats []Category
	}{
		{"never seen words entirely", []Category{Billing}},
		{"The session recording is blank", []Category{Toolbar}},
	} {
		if err := m.Unlearn(bad.text, bad.cats); !errors.Is(err, ErrNotLearned) {
			t.Errorf("Unlearn(%q, %v) = %v, want ErrNotLearned", bad.text, bad.cats, err)
		}
	}
	unchanged, _ := json.Marshal(m)
	if string(unchanged) != string(before) {
		t.Error("failed unlearn changed the model")
	}
	if err := m.Learn("text", nil); err == nil {
		t.Error("learned without categories")
	}
	if err := m.Learn("text", []Category{""}); err == nil {
		t.Error("learned an empty category")
	}
	if err := NewModel(0).Unlearn("text", []Category{Billing}); !errors.Is(err, ErrNotLearned) {
		t.Errorf("unlearn from an empty model: %v", err)
	}
}

func TestModelJSONRoundTrip(t *testing.T) {
	train, test := loadCorpus(t)
	m := NewModel(0.5)
	for _, e := range train {
		if err := m.Learn(e.Input().Document(), e.Categories); err != nil {
			t.Fatal(err)
		}
	}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	back, err := LoadModel(data)
	if err != nil {
		t.Fatal(err)
	}
	if back.Docs() != m.Docs() || back.Vocabulary() != m.Vocabulary() || back.Alpha() != 0.5 || !reflect.DeepEqual(back.ClassDocs(), m.ClassDocs()) {
		t.Fatalf("decoded model differs: %d/%d docs, %d/%d features", back.Docs(), m.Docs(), back.Vocabulary(), m.Vocabulary())
	}
	for _, e := range test {
		a, b := m.Predict(e.Input().Document()), back.Predict(e.Input().Document())
		if len(a) != len(b) {
			t.Fatalf("%s: %d vs %d classes", e.ID, len(a), len(b))
		}
		for i := range a {
			if a[i].Category != b[i].Category || math.Abs(a[i].Score-b[i].Score) > 1e-12 {
				t.Fatalf("%s: prediction %d differs: %v vs %v", e.ID, i, a[i], b[i])
			}
		}
	}
	again, _ := json.Marshal(back)
	if string(again) != string(data) {
		t.Error("re-encoding a decoded model changed it")
	}
	t.Logf("model of %d documents, %d features: %d bytes of JSON", m.Docs(), m.Vocabulary(), len(data))

	if m, err := LoadModel(nil); err != nil || m.Docs() != 0 {
		t.Errorf("LoadModel(nil) = %v, %v", m, err)
	}
	for name, bad := range map[string]string{
		"not json":         `{`,
		"other version":    `{"version":2,"alpha":1,"docs":0,"classes":{}}`,
		"no smoothing":     `{"version":1,"alpha":0,"docs":0,"classes":{}}`,
		"negative count":   `{"version":1,"alpha":1,"docs":1,"classes":{"api":{"docs":1,"total":-1,"features":{"x":-1}}}}`,
		"wrong total":      `{"version":1,"alpha":1,"docs":1,"classes":{"api":{"docs":1,"total":3,"features":{"x":1}}}}`,
		"count above docs": `{"version":1,"alpha":1,"docs":1,"classes":{"api":{"docs":1,"total":2,"features":{"x":2}}}}`,
		"docs mismatch":    `{"version":1,"alpha":1,"docs":3,"classes":{}}`,
		"class above docs": `{"version":1,"alpha":1,"docs":1,"classes":{"api":{"docs":2,"total":0,"features":{}}}}`,
	} {
		if _, err := LoadModel([]byte(bad)); err == nil {
			t.Errorf("%s: decoded %s", name, bad)
		}
	}
}

// A correction people make is learned, and changes the suggestion for the
// same conversation and for similar ones.
func TestLearningACorrectionChangesThePrediction(t *testing.T) {
	train, _ := loadCorpus(t)
	c := trained(t, train)
	in := Input{Channel: "slack", Text: "Clicking launch from the actions page opens our app but the little hedgehog overlay never shows up. Tried incognito too."}
	similar := Input{Channel: "email", Subject: "Hedgehog overlay missing", Text: "The hedgehog overlay does not show up on our site after clicking launch."}
	before := c.Classify(in)
	if slices.Contains(before.Categories, Toolbar) {
		t.Fatalf("already suggests toolbar: %+v", before)
	}
	simBefore := c.Classify(similar)

	if err := c.Learn(in, []Category{Toolbar}); err != nil {
		t.Fatal(err)
	}
	after := c.Classify(in)
	if after.Categories[0] != Toolbar || after.Source != SourceModel {
		t.Errorf("after learning the correction: %v from %s (was %v)", after.Categories, after.Source, before.Categories)
	}
	simAfter := c.Classify(similar)
	if simAfter.Categories[0] != Toolbar {
		t.Errorf("similar message after the correction: %v (was %v)", simAfter.Categories, simBefore.Categories)
	}

	// People change their mind: it was about recordings after all.
	if err := c.Relabel(in, []Category{Toolbar}, []Category{Recordings}); err != nil {
		t.Fatal(err)
	}
	if got := c.Classify(in).Categories[0]; got != Recordings {
		t.Errorf("after relabelling: %v", got)
	}
	if err := c.Unlearn(in, []Category{Recordings}); err != nil {
		t.Fatal(err)
	}
	if got := c.Classify(in); !slices.Equal(got.Categories, before.Categories) {
		t.Errorf("after unlearning: %v, want the original %v", got.Categories, before.Categories)
	}
	if err := c.Relabel(in, []Category{Toolbar}, []Category{Recordings}); !errors.Is(err, ErrNotLearned) {
		t.Errorf("relabel of something never learned: %v", err)
	}
	if err := c.Relabel(in, nil, nil); err == nil {
		t.Error("relabel to no categories succeeded")
	}
	if c.ModelDocs() != len(train) {
		t.Errorf("model holds %d documents, want %d", c.ModelDocs(), len(train))
	}
}

// When the rules only know that a message is about a self-hosted
// deployment, the model picks the subcategory.
func TestModelPicksDeploymentSubcategory(t *testing.T) {
	cfg := DefaultRules()
	cfg.ModelMinDocs = 1
	c := New(rulesFor(t, cfg), nil)
	for _, s := range []string{
		"Our kafka and clickhouse nodes cannot keep up with peak traffic, what node sizes do you recommend?",
		"Peak traffic is overwhelming our clickhouse nodes, do we need bigger node sizes?",
		"What node sizes for kafka when traffic doubles at peak?",
		"Clickhouse struggles with our peak traffic, should we add nodes or bigger node sizes?",
		"Kafka consumers fall behind at peak traffic; more nodes?",
		"Which clickhouse node sizes handle twice the traffic?",
	} {
		if err := c.Learn(Input{Text: s}, []Category{DeploymentsScaling}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Learn(Input{Text: "We cannot reach the site after the first helm install"}, []Category{DeploymentsSetup}); err != nil {
		t.Fatal(err)
	}
	in := Input{Channel: "slack", Text: "Our self-hosted kubernetes clickhouse and kafka struggle at peak traffic, which node sizes?"}
	r := c.Classify(in)
	if r.Rules[0].Category != Deployments || r.Source != SourceRules {
		t.Fatalf("rules: %v from %s", r.Rules, r.Source)
	}
	if r.Categories[0] != DeploymentsScaling {
		t.Errorf("Classify = %v, want the subcategory the model learned", r.Categories)
	}
}

func TestClassifierConcurrency(t *testing.T) {
	train, test := loadCorpus(t)
	c := newDefault(t, nil)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j, e := range train {
				if j%4 == i {
					if err := c.Learn(e.Input(), e.Categories); err != nil {
						t.Error(err)
					}
				}
			}
		})
		wg.Go(func() {
			for _, e := range test {
				c.Classify(e.Input())
			}
			if _, err := c.MarshalModel(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if c.ModelDocs() != len(train) {
		t.Errorf("learned %d of %d", c.ModelDocs(), len(train))
	}
}

func TestAgreement(t *testing.T) {
	a := Agree([]Pair{
		{Suggested: []Category{Performance}, Confirmed: []Category{Performance}},
		{Suggested: []Category{Performance, API}, Confirmed: []Category{API, Performance}},
		{Suggested: []Category{Billing}, Confirmed: []Category{Toolbar}},
		{Suggested: nil, Confirmed: []Category{Toolbar}},
		{Suggested: []Category{Other}, Confirmed: nil}, // never tagged: skipped
		{Suggested: []Category{Recordings, Toolbar}, Confirmed: []Category{Toolbar}},
	})
	// Each pair is one of exact, overlapping, none: an exact pair is not
	// counted as overlapping too (issue 17: one exact and one none read
	// "50% matched, 50% shared").
	if a.Pairs != 5 || a.Exact != 1 || a.Overlap != 2 || a.None != 2 {
		t.Fatalf("Agree = %+v", a)
	}
	if a.ExactRate() != 0.2 || a.OverlapRate() != 0.4 || a.NoneRate() != 0.4 {
		t.Errorf("rates %v %v %v", a.ExactRate(), a.OverlapRate(), a.NoneRate())
	}
	two := Agree([]Pair{
		{Suggested: []Category{Plugins}, Confirmed: []Category{Plugins}},
		{Suggested: []Category{Plugins}, Confirmed: []Category{Billing}},
	})
	if two.Exact != 1 || two.Overlap != 0 || two.None != 1 {
		t.Errorf("one exact, one none: %+v", two)
	}
	if got := a.ByCategory[Toolbar]; got.Pairs != 3 || got.Exact != 0 || got.Rate() != 0 {
		t.Errorf("toolbar: %+v", got)
	}
	if got := a.ByCategory[Performance]; got.Pairs != 1 || got.Rate() != 1 {
		t.Errorf("performance: %+v", got)
	}
	var empty Agreement
	if empty.ExactRate() != 0 || empty.OverlapRate() != 0 || empty.NoneRate() != 0 {
		t.Error("empty agreement has a rate")
	}
}

func TestInputFromMessage(t *testing.T) {
	for _, tt := range []struct {
		msg  *supportv1.InboundMessage
		want Input
	}{
		{&supportv1.InboundMessage{Channel: supportv1.Channel_CHANNEL_GITHUB, ThreadKey: "github:acme/charts#12", Subject: "Helm", Text: "fails",
			Attributes: map[string]string{"labels": "bug,performance", "label": "performance"}},
			Input{Channel: "github", Source: "acme/charts", Subject: "Helm", Text: "fails", Labels: []string{"bug", "performance"}}},
		{&supportv1.InboundMessage{Channel: supportv1.Channel_CHANNEL_GITHUB, ThreadKey: "github:acme/app/discussions#3", Text: "q",
			Attributes: map[string]string{"label": "question"}},
			Input{Channel: "github", Source: "acme/app", Text: "q", Labels: []string{"question"}}},
		{&supportv1.InboundMessage{Channel: supportv1.Channel_CHANNEL_EMAIL, ThreadKey: "email:<a@b>", Text: "hi",
			Attributes: map[string]string{"auth_failed": "true", "recipients": "support@acme.example,bob@acme.example"}},
			Input{Channel: "email", Source: "support@acme.example", Text: "hi", AuthFailed: true}},
		{&supportv1.InboundMessage{Channel: supportv1.Channel_CHANNEL_SENTRY, ThreadKey: "sentry:42", Subject: "TypeError",
			Attributes: map[string]string{"project": "web"}},
			Input{Channel: "sentry", Source: "web", Subject: "TypeError", SentryProject: "web"}},
		{&supportv1.InboundMessage{Channel: supportv1.Channel_CHANNEL_SLACK, ThreadKey: "slack:T01/C0BILLING/1700000000.000100", Text: "invoice?"},
			Input{Channel: "slack", Source: "C0BILLING", Text: "invoice?"}},
	} {
		if got := InputFromMessage(tt.msg); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("InputFromMessage(%v) = %+v, want %+v", tt.msg, got, tt.want)
		}
	}
}

func BenchmarkPredict(b *testing.B) {
	train, test := loadCorpus(b)
	m := NewModel(0)
	for _, e := range train {
		if err := m.Learn(e.Input().Document(), e.Categories); err != nil {
			b.Fatal(err)
		}
	}
	i := 0
	for b.Loop() {
		m.Predict(test[i%len(test)].Input().Document())
		i++
	}
	b.ReportMetric(float64(m.Vocabulary()), "features")
}

func BenchmarkClassify(b *testing.B) {
	train, test := loadCorpus(b)
	c := trained(b, train)
	i := 0
	for b.Loop() {
		c.Classify(test[i%len(test)].Input())
		i++
	}
}
