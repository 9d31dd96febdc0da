package classify

import (
	"testing"
)

// loadCorpus returns the training and held-out examples of the evaluation
// set.
func loadCorpus(t testing.TB) (train, test []Example) {
	t.Helper()
	all, err := EvaluationSet()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range all {
		if e.Split == "train" {
			train = append(train, e)
		} else {
			test = append(test, e)
		}
	}
	return train, test
}

// newDefault returns a classifier with the default rules and the given
// model.
func newDefault(t testing.TB, m *Model) *Classifier {
	t.Helper()
	rs, err := DefaultRules().Compile()
	if err != nil {
		t.Fatal(err)
	}
	return New(rs, m)
}

// trained returns a classifier with the default rules whose model learned
// the training split.
func trained(t testing.TB, train []Example) *Classifier {
	t.Helper()
	c := newDefault(t, nil)
	for _, e := range train {
		if err := c.Learn(e.Input(), e.Categories); err != nil {
			t.Fatalf("learn %s: %v", e.ID, err)
		}
	}
	return c
}
