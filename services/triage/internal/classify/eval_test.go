package classify

import (
	"os"
	"regexp"
	"strconv"
	"testing"
)

// documented reads the figure docs/triage.md gives for the classifier's
// macro-F1 on the evaluation set: the floor this test holds the classifier
// to, so the documentation and the code cannot part.
func documented(t *testing.T) float64 {
	t.Helper()
	doc, err := os.ReadFile("../../../../docs/triage.md")
	if err != nil {
		t.Fatalf("read the documented figures: %v", err)
	}
	m := regexp.MustCompile(`macro-F1 \*\*(0\.\d+)\*\*`).FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/triage.md gives no macro-F1 **0.xxx**")
	}
	f, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func logEvaluation(t *testing.T, name string, ev Evaluation) {
	t.Helper()
	t.Logf("%s: %d examples, %d-fold cross-validation", name, ev.Examples, ev.Folds)
	for _, s := range ev.Categories {
		t.Logf("  %-30s support %2d suggested %2d correct %2d  precision %.2f recall %.2f F1 %.2f",
			s.Category, s.Support, s.Suggested, s.Correct, s.Precision(), s.Recall(), s.F1())
	}
	t.Logf("  macro-F1 %.4f, exact %.3f, overlapping %.3f, none %.3f, nothing suggested %d",
		ev.MacroF1(), ev.Agreement.ExactRate(), ev.Agreement.OverlapRate(), ev.Agreement.NoneRate(), ev.Unsuggested)
}

// The classifier's quality on the labelled evaluation set: macro-F1 of
// the predominant category over six-fold cross-validation may not drop
// below the figure docs/triage.md gives, and the learned model may not
// make the classifier worse than its rules alone.
func TestEvaluation(t *testing.T) {
	all, err := EvaluationSet()
	if err != nil {
		t.Fatal(err)
	}
	covered := map[Category]bool{}
	for _, e := range all {
		covered[e.Categories[0]] = true
	}
	for _, in := range All() {
		if !covered[in.ID] && in.ID != Deployments {
			t.Errorf("the evaluation set has no message whose predominant category is %s", in.ID)
		}
	}

	both := Evaluate(rulesFor(t, DefaultRules()), all)
	rulesOnlyCfg := DefaultRules()
	rulesOnlyCfg.ModelMinDocs = len(all) + 1 // never consulted
	rulesOnly := Evaluate(rulesFor(t, rulesOnlyCfg), all)
	logEvaluation(t, "rules and model", both)
	logEvaluation(t, "rules alone", rulesOnly)

	floor := documented(t)
	if got := both.MacroF1(); got < floor {
		t.Errorf("macro-F1 %.3f, below the documented %.3f", got, floor)
	}
	if both.MacroF1() < rulesOnly.MacroF1() {
		t.Errorf("the model makes it worse: macro-F1 %.3f with, %.3f without", both.MacroF1(), rulesOnly.MacroF1())
	}
	if a := both.Agreement; a.Exact+a.Overlap+a.None != a.Pairs || a.Pairs != len(all) {
		t.Errorf("agreement %+v does not count each of %d examples once", a, len(all))
	}
}

// The model learned from the training split improves on the rules alone on
// the held-out split. The held-out messages were written to read like real
// ones, often without the words the default rules look for.
func TestHeldOutAccuracy(t *testing.T) {
	train, test := loadCorpus(t)
	if len(train) < 30 || len(test) < 20 {
		t.Fatalf("corpus too small: %d training, %d held-out examples", len(train), len(test))
	}
	rulesOnly := newDefault(t, nil)
	both := trained(t, train)
	predominant := func(r Result) []Category {
		if len(r.Categories) == 0 {
			return []Category{Other}
		}
		return r.Categories
	}
	var rules, combined Agreement
	for _, e := range test {
		rules.Add(Pair{Suggested: predominant(rulesOnly.Classify(e.Input())), Confirmed: e.Categories})
		r := both.Classify(e.Input())
		combined.Add(Pair{Suggested: predominant(r), Confirmed: e.Categories})
		if testing.Verbose() {
			t.Logf("%-32s want %-30v got %-30v (%s %.2f)", e.ID, e.Categories, r.Categories, r.Source, r.Confidence)
		}
	}
	t.Logf("held-out examples: %d (trained on %d)", len(test), len(train))
	t.Logf("rules only:    exact %.3f", rules.ExactRate())
	t.Logf("rules + model: exact %.3f", combined.ExactRate())
	if combined.Exact <= rules.Exact {
		t.Errorf("rules + model got %d of %d right, no better than rules alone (%d)", combined.Exact, combined.Pairs, rules.Exact)
	}
}
