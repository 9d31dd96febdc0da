package classify

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
)

// evaluationSet is the labelled evaluation set: realistic support messages
// written for this project, one JSON object a line, covering every
// category of the taxonomy (the bare "deployments" parent aside: people
// confirm a subcategory) and both routing classes.
//
//go:embed evaluation.jsonl
var evaluationSet []byte

// Example is one labelled message of the evaluation set.
type Example struct {
	ID         string     `json:"id"`
	Channel    string     `json:"channel"`
	Subject    string     `json:"subject"`
	Text       string     `json:"text"`
	Labels     []string   `json:"labels,omitempty"`
	AuthFailed bool       `json:"auth_failed,omitempty"`
	Categories []Category `json:"categories"`
	// Split is "train" or "test": the held-out split was written to read
	// like real messages, often without the words the default rules look
	// for.
	Split string `json:"split"`
}

// Input returns what the classifier reads of the example.
func (e Example) Input() Input {
	return Input{Channel: e.Channel, Subject: e.Subject, Text: e.Text, Labels: e.Labels, AuthFailed: e.AuthFailed}
}

// EvaluationSet returns the embedded labelled evaluation set, validated.
func EvaluationSet() ([]Example, error) {
	return ParseExamples(evaluationSet)
}

// ParseExamples reads labelled examples, one JSON object a line, checking
// that each has an id, known categories and a split.
func ParseExamples(data []byte) ([]Example, error) {
	var out []Example
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	ids := map[string]bool{}
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var e Example
		if err := json.Unmarshal(line, &e); err != nil {
			return nil, fmt.Errorf("evaluation set line %d: %w", n, err)
		}
		switch {
		case e.ID == "" || ids[e.ID]:
			return nil, fmt.Errorf("evaluation set line %d: missing or repeated id %q", n, e.ID)
		case len(e.Categories) == 0:
			return nil, fmt.Errorf("evaluation set %s: no categories", e.ID)
		case e.Split != "train" && e.Split != "test":
			return nil, fmt.Errorf("evaluation set %s: split %q, want train or test", e.ID, e.Split)
		}
		for _, c := range e.Categories {
			if !c.Valid() {
				return nil, fmt.Errorf("evaluation set %s: %w %q", e.ID, ErrUnknownCategory, c)
			}
		}
		ids[e.ID] = true
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("evaluation set: %w", err)
	}
	return out, nil
}

// EvaluationFolds is the number of folds [Evaluate] cross-validates with.
const EvaluationFolds = 6

// CategoryScore is the evaluation of one category: how many messages
// people labelled with it as the predominant category (Support), how many
// the classifier suggested it for first (Suggested), and how many of those
// were right (Correct).
type CategoryScore struct {
	Category  Category `json:"category"`
	Support   int      `json:"support"`
	Suggested int      `json:"suggested"`
	Correct   int      `json:"correct"`
}

// Precision is Correct/Suggested: how often a suggestion of the category
// is right (zero when it was never suggested).
func (s CategoryScore) Precision() float64 { return rate(s.Correct, s.Suggested) }

// Recall is Correct/Support: how many of the category's messages were
// suggested it (zero without messages).
func (s CategoryScore) Recall() float64 { return rate(s.Correct, s.Support) }

// F1 is the harmonic mean of precision and recall.
func (s CategoryScore) F1() float64 {
	p, r := s.Precision(), s.Recall()
	if p+r == 0 {
		return 0
	}
	return 2 * p * r / (p + r)
}

// Evaluation is the classifier's measured quality on labelled examples.
type Evaluation struct {
	// Examples is the number of messages evaluated; Folds the number of
	// cross-validation folds.
	Examples, Folds int
	// Categories are the per-category scores, in catalogue order, for
	// every category that was labelled or suggested.
	Categories []CategoryScore
	// Unsuggested counts messages for which nothing was suggested (nothing
	// applied, or the confidence was below Rules.MinConfidence); they count
	// as suggestions of "other", the taxonomy's "none of the above".
	Unsuggested int
	// Agreement compares every suggestion with the labels.
	Agreement Agreement
}

// MacroF1 is the mean of the F1 scores of the categories that have
// labelled messages: each category weighs the same, however rare.
func (ev Evaluation) MacroF1() float64 {
	var sum float64
	n := 0
	for _, s := range ev.Categories {
		if s.Support > 0 {
			sum += s.F1()
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// Evaluate measures a classifier with the given rules on examples by
// stratified k-fold cross-validation ([EvaluationFolds] folds): for each
// fold a new model learns the other folds' labels, as it would learn the
// categories people confirm, and the fold's messages are classified. The
// predominant suggested category is compared with the predominant label.
// The result depends only on the rules and the examples.
func Evaluate(rules *RuleSet, examples []Example) Evaluation {
	folds := EvaluationFolds
	ev := Evaluation{Examples: len(examples), Folds: folds}
	fold := make([]int, len(examples))
	seen := map[Category]int{}
	for i, e := range examples {
		fold[i] = seen[e.Categories[0]] % folds
		seen[e.Categories[0]]++
	}
	scores := map[Category]*CategoryScore{}
	score := func(c Category) *CategoryScore {
		if scores[c] == nil {
			scores[c] = &CategoryScore{Category: c}
		}
		return scores[c]
	}
	for f := range folds {
		c := New(rules, nil)
		for i, e := range examples {
			if fold[i] != f {
				// Examples were validated: Learn cannot fail.
				_ = c.Learn(e.Input(), e.Categories)
			}
		}
		for i, e := range examples {
			if fold[i] != f {
				continue
			}
			got := c.Classify(e.Input()).Categories
			if len(got) == 0 {
				// No suggestion says "none of the categories", which the
				// taxonomy calls other.
				ev.Unsuggested++
				got = []Category{Other}
			}
			want := e.Categories[0]
			ev.Agreement.Add(Pair{Suggested: got, Confirmed: e.Categories})
			score(want).Support++
			score(got[0]).Suggested++
			if got[0] == want {
				score(want).Correct++
			}
		}
	}
	for _, s := range scores {
		ev.Categories = append(ev.Categories, *s)
	}
	slices.SortFunc(ev.Categories, func(a, b CategoryScore) int { return order(a.Category) - order(b.Category) })
	return ev
}
