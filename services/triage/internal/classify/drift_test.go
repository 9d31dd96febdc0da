package classify

import (
	"fmt"
	"slices"
	"testing"
)

// nonsense returns n short texts of made-up words, as people confirmed in
// the incident that filed issue 17: each unlike real support text and
// unlike each other.
func nonsense(n int) []string {
	syll := []string{"zor", "quib", "flan", "dree", "mox", "tirv", "yal", "plon", "gesh", "vunt", "krel", "sapo"}
	out := make([]string, n)
	for i := range n {
		w := func(k int) string { return syll[(i*5+k)%len(syll)] + syll[(i*7+3*k+1)%len(syll)] }
		out[i] = fmt.Sprintf("%s %s %s %s", w(0), w(1), w(2), w(3))
	}
	return out
}

// The drift of issue 17: after 22 confirmations of nonsense words as
// plugins, unrelated messages must not be suggested plugins, neither by a
// model that learned nothing else nor by one that learned the evaluation
// set's training split first.
func TestConfirmedNonsenseDoesNotTakeOverUnrelatedText(t *testing.T) {
	train, _ := loadCorpus(t)
	unrelated := []Input{
		{Channel: "slack", Text: "Cohort export stuck"},
		{Channel: "email", Subject: "Question", Text: "Hi, can someone call me back about our account?"},
		{Channel: "slack", Text: "The retention graph looks odd this week"},
	}
	for _, tc := range []struct {
		name  string
		first []Example
	}{{"empty model", nil}, {"trained model", train}} {
		t.Run(tc.name, func(t *testing.T) {
			c := trained(t, tc.first)
			before := make([]Result, len(unrelated))
			for i, in := range unrelated {
				before[i] = c.Classify(in)
			}
			for _, s := range nonsense(22) {
				if err := c.Learn(Input{Channel: "slack", Text: s}, []Category{Plugins}); err != nil {
					t.Fatal(err)
				}
			}
			for i, in := range unrelated {
				r := c.Classify(in)
				if slices.Contains(r.Categories, Plugins) {
					t.Errorf("%q suggested %v (%s, confidence %.2f) after nonsense was confirmed as plugins; before: %v",
						in.Text, r.Categories, r.Source, r.Confidence, before[i].Categories)
				}
				for _, m := range r.Model {
					if m.Category == Plugins && m.Score >= 0.5 {
						t.Errorf("%q: the model gives plugins %.2f", in.Text, m.Score)
					}
				}
			}
			// The nonsense itself is still learned: the same words come back
			// as plugins.
			if r := c.Classify(Input{Channel: "slack", Text: nonsense(22)[3]}); len(r.Categories) == 0 || r.Categories[0] != Plugins {
				t.Errorf("a confirmed text is not suggested its category: %v (%s %.2f)", r.Categories, r.Source, r.Confidence)
			}
		})
	}
}
