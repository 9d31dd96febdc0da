package classify

import (
	"testing"
)

// evaluate returns the agreement of a classification function on examples.
func evaluate(examples []example, classify func(example) []Category) Agreement {
	var a Agreement
	for _, e := range examples {
		a.Add(Pair{Suggested: classify(e), Confirmed: e.Categories})
	}
	return a
}

// The model learned from the training split improves on the rules alone on
// the held-out split. The held-out messages were written to read like real
// ones, often without the words the default rules look for, so the rules do
// worse there than on the training split (see TestCrossValidation for an
// evaluation over every message).
func TestHeldOutAccuracy(t *testing.T) {
	train, test := loadCorpus(t)
	if len(train) < 30 || len(test) < 20 {
		t.Fatalf("corpus too small: %d training, %d held-out examples", len(train), len(test))
	}
	rulesOnly := newDefault(t, nil)
	both := trained(t, train)

	rules := evaluate(test, func(e example) []Category { return rulesOnly.Classify(e.input()).Categories })
	combined := evaluate(test, func(e example) []Category { return both.Classify(e.input()).Categories })
	modelOnly := evaluate(test, func(e example) []Category {
		return []Category{both.Classify(e.input()).Model[0].Category}
	})
	t.Logf("held-out examples: %d (trained on %d)", len(test), len(train))
	t.Logf("rules only:    exact %.3f  overlap %.3f", rules.ExactRate(), rules.OverlapRate())
	t.Logf("model only:    exact %.3f  overlap %.3f", modelOnly.ExactRate(), modelOnly.OverlapRate())
	t.Logf("rules + model: exact %.3f  overlap %.3f", combined.ExactRate(), combined.OverlapRate())
	if testing.Verbose() {
		for _, e := range test {
			r := both.Classify(e.input())
			t.Logf("%-32s want %-30v got %-30v (%s %.2f)", e.ID, e.Categories, r.Categories, r.Source, r.Confidence)
		}
	}

	// Floors measured when the corpus was written: rules 15/36, rules +
	// model 17/36, model alone 9/36 (21 classes, about four examples each).
	if combined.Exact <= rules.Exact {
		t.Errorf("rules + model got %d of %d right, no better than rules alone (%d)", combined.Exact, combined.Pairs, rules.Exact)
	}
	if got := combined.ExactRate(); got < 0.47 {
		t.Errorf("rules + model exact agreement %.3f, below the measured 0.472", got)
	}
	if got := modelOnly.ExactRate(); got < 0.25 {
		t.Errorf("model alone exact agreement %.3f, below the measured 0.25", got)
	}
}

// Six-fold cross-validation over the whole corpus, stratified by category:
// the model never makes the classifier worse than its rules.
func TestCrossValidation(t *testing.T) {
	train, test := loadCorpus(t)
	all := append(append([]example(nil), train...), test...)
	const folds = 6
	fold := make([]int, len(all))
	seen := map[Category]int{}
	for i, e := range all {
		fold[i] = seen[e.Categories[0]] % folds
		seen[e.Categories[0]]++
	}
	rulesOnly := newDefault(t, nil)
	var rules, combined, modelOnly Agreement
	for f := range folds {
		c := newDefault(t, nil)
		for i, e := range all {
			if fold[i] != f {
				if err := c.Learn(e.input(), e.Categories); err != nil {
					t.Fatal(err)
				}
			}
		}
		for i, e := range all {
			if fold[i] != f {
				continue
			}
			r := c.Classify(e.input())
			combined.Add(Pair{Suggested: r.Categories, Confirmed: e.Categories})
			modelOnly.Add(Pair{Suggested: []Category{r.Model[0].Category}, Confirmed: e.Categories})
			rules.Add(Pair{Suggested: rulesOnly.Classify(e.input()).Categories, Confirmed: e.Categories})
		}
	}
	t.Logf("%d-fold cross-validation over %d examples", folds, len(all))
	t.Logf("rules only:    exact %.3f  overlap %.3f", rules.ExactRate(), rules.OverlapRate())
	t.Logf("model only:    exact %.3f  overlap %.3f", modelOnly.ExactRate(), modelOnly.OverlapRate())
	t.Logf("rules + model: exact %.3f  overlap %.3f", combined.ExactRate(), combined.OverlapRate())
	// Measured: rules 82/114, rules + model 84/114, model alone 37/114.
	if combined.Exact < rules.Exact {
		t.Errorf("rules + model got %d of %d right, fewer than rules alone (%d)", combined.Exact, combined.Pairs, rules.Exact)
	}
	if got := combined.ExactRate(); got < 0.73 {
		t.Errorf("rules + model exact agreement %.3f, below the measured 0.737", got)
	}
}
