package triage

import (
	"fmt"

	"github.com/sidekickhq/sidekick/services/triage/internal/classify"
)

// ClassifierReport is the category classifier's measured quality on the
// labelled evaluation set built into triage (see docs/triage.md): the
// predominant suggested category against the predominant label, by
// stratified cross-validation in which the model learns the other folds'
// labels as it learns confirmed categories.
type ClassifierReport struct {
	// Examples is the number of labelled messages; Folds the number of
	// cross-validation folds.
	Examples int `json:"examples"`
	Folds    int `json:"folds"`
	// MacroF1 is the mean F1 over the categories with labelled messages.
	MacroF1 float64 `json:"macro_f1"`
	// Exact, Overlapping and None count the messages whose suggestion had
	// the labelled predominant category first, shared another category,
	// or shared none; they add up to Examples.
	Exact       int `json:"exact"`
	Overlapping int `json:"overlapping"`
	None        int `json:"none"`
	// Unsuggested counts the messages for which nothing was suggested
	// (scored as "other", the taxonomy's none of the above).
	Unsuggested int `json:"unsuggested"`
	// Categories are the per-category figures in the taxonomy's order.
	Categories []CategoryQuality `json:"categories"`
}

// CategoryQuality is one category's row of a [ClassifierReport].
type CategoryQuality struct {
	// Category is the id, Name its display name.
	Category string `json:"category"`
	Name     string `json:"name"`
	// Support is the number of messages labelled with it first, Suggested
	// the number suggested it first, Correct those both.
	Support   int `json:"support"`
	Suggested int `json:"suggested"`
	Correct   int `json:"correct"`
	// Precision is Correct/Suggested, Recall Correct/Support, F1 their
	// harmonic mean; zero when undefined.
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
}

// EvaluateClassifier measures the classifier with the organisation's
// category rules (the built-in ones when org has none) on the evaluation
// set built into triage.
func EvaluateClassifier(org Org) (*ClassifierReport, error) {
	rules := classify.DefaultRules()
	if org.Rules != nil {
		rules = *org.Rules
	}
	rs, err := rules.Compile()
	if err != nil {
		return nil, fmt.Errorf("evaluate the classifier: %w", err)
	}
	set, err := classify.EvaluationSet()
	if err != nil {
		return nil, fmt.Errorf("evaluate the classifier: %w", err)
	}
	ev := classify.Evaluate(rs, set)
	out := &ClassifierReport{
		Examples: ev.Examples, Folds: ev.Folds, MacroF1: ev.MacroF1(),
		Exact: ev.Agreement.Exact, Overlapping: ev.Agreement.Overlap, None: ev.Agreement.None,
		Unsuggested: ev.Unsuggested,
	}
	for _, s := range ev.Categories {
		out.Categories = append(out.Categories, CategoryQuality{
			Category: string(s.Category), Name: s.Category.Name(),
			Support: s.Support, Suggested: s.Suggested, Correct: s.Correct,
			Precision: s.Precision(), Recall: s.Recall(), F1: s.F1(),
		})
	}
	return out, nil
}
