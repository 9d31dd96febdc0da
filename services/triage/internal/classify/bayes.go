package classify

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
)

// ModelVersion identifies the feature extraction a [Model] was learned
// with. A stored model of another version is rejected by
// [Model.UnmarshalJSON]; relearn it from the confirmed tags.
const ModelVersion = 1

// ErrNotLearned is returned (wrapped) by [Model.Unlearn] when the model does
// not hold the document being removed.
var ErrNotLearned = errors.New("document was not learned")

// Model is a multinomial naive Bayes classifier over conversation text that
// learns from the categories people confirm. Features are the words that are
// not stop words plus adjacent word pairs (see [Tokenizer.Features]),
// counted once per document ("binarized" multinomial naive Bayes, which
// suits short texts); probabilities use Laplace (add-alpha) smoothing and
// are computed in log space. A document with several categories counts for
// each of them.
//
// The model is plain data: it marshals to JSON so the service can store it,
// and unmarshals (validated) with [LoadModel] or json.Unmarshal. It is not
// safe for concurrent use; [Classifier] guards it.
type Model struct {
	tz *Tokenizer

	version int
	alpha   float64
	prior   float64
	docs    int
	classes map[Category]*classStats
	// vocab counts, per feature, its occurrences over all classes; its size
	// is the vocabulary size used in smoothing.
	vocab map[string]int
}

type classStats struct {
	Docs     int            `json:"docs"`
	Total    int            `json:"total"`
	Features map[string]int `json:"features"`
}

// DefaultAlpha is the smoothing of [NewModel]'s models.
const DefaultAlpha = 1.0

// DefaultPriorDocs is the number of pseudo documents every category of
// the taxonomy starts with, learned or not.
const DefaultPriorDocs = 1.0

// NewModel returns an empty model with add-alpha smoothing; alpha 0 means
// [DefaultAlpha] (Laplace's add-one). A smaller alpha (Lidstone smoothing)
// trusts the few documents a young model has seen more.
func NewModel(alpha float64) *Model {
	if alpha <= 0 || math.IsNaN(alpha) || math.IsInf(alpha, 0) {
		alpha = DefaultAlpha
	}
	return &Model{
		tz:      NewTokenizer(),
		version: ModelVersion,
		alpha:   alpha,
		prior:   DefaultPriorDocs,
		classes: map[Category]*classStats{},
		vocab:   map[string]int{},
	}
}

// Docs returns the number of documents learned.
func (m *Model) Docs() int { return m.docs }

// ClassDocs returns the number of learned documents per category.
func (m *Model) ClassDocs() map[Category]int {
	out := make(map[Category]int, len(m.classes))
	for c, s := range m.classes {
		out[c] = s.Docs
	}
	return out
}

// Alpha returns the model's smoothing.
func (m *Model) Alpha() float64 { return m.alpha }

// Vocabulary returns the number of distinct features learned.
func (m *Model) Vocabulary() int { return len(m.vocab) }

// Learn adds a document with its confirmed categories (duplicates ignored).
func (m *Model) Learn(text string, categories []Category) error {
	return m.learnFeatures(m.tz.Features(m.tz.Tokenize(text)), categories)
}

// Unlearn removes a document learned earlier with exactly these categories,
// as when people change the tags they had confirmed: Unlearn the old
// categories, then Learn the new ones. It changes nothing and returns
// ErrNotLearned when the model does not hold such a document.
func (m *Model) Unlearn(text string, categories []Category) error {
	return m.unlearnFeatures(m.tz.Features(m.tz.Tokenize(text)), categories)
}

func cleanCategories(categories []Category) ([]Category, error) {
	var out []Category
	for _, c := range categories {
		if c == "" {
			return nil, errors.New("empty category")
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no categories")
	}
	return out, nil
}

func (m *Model) learnFeatures(features []string, categories []Category) error {
	cats, err := cleanCategories(categories)
	if err != nil {
		return fmt.Errorf("learn: %w", err)
	}
	for _, c := range cats {
		s := m.classes[c]
		if s == nil {
			s = &classStats{Features: map[string]int{}}
			m.classes[c] = s
		}
		s.Docs++
		for _, f := range features {
			s.Features[f]++
			m.vocab[f]++
		}
		s.Total += len(features)
	}
	m.docs++
	return nil
}

func (m *Model) unlearnFeatures(features []string, categories []Category) error {
	cats, err := cleanCategories(categories)
	if err != nil {
		return fmt.Errorf("unlearn: %w", err)
	}
	if m.docs == 0 {
		return fmt.Errorf("unlearn: %w", ErrNotLearned)
	}
	for _, c := range cats {
		s := m.classes[c]
		if s == nil || s.Docs == 0 {
			return fmt.Errorf("unlearn %s: %w", c, ErrNotLearned)
		}
		for _, f := range features {
			if s.Features[f] == 0 {
				return fmt.Errorf("unlearn %s: %w", c, ErrNotLearned)
			}
		}
	}
	for _, c := range cats {
		s := m.classes[c]
		s.Docs--
		s.Total -= len(features)
		for _, f := range features {
			if s.Features[f]--; s.Features[f] == 0 {
				delete(s.Features, f)
			}
			if m.vocab[f]--; m.vocab[f] == 0 {
				delete(m.vocab, f)
			}
		}
		if s.Docs == 0 {
			delete(m.classes, c)
		}
	}
	m.docs--
	return nil
}

// Predict returns the categories the model has learned, ranked by
// posterior probability given the text (scores sum to 1). It returns nil
// for a model that learned nothing. Features never seen in learning are
// ignored. Naive Bayes posteriors are overconfident on long texts; treat
// them as a ranking with a confidence, not a calibrated probability.
func (m *Model) Predict(text string) []Scored {
	return m.predictFeatures(m.tz.Features(m.tz.Tokenize(text)))
}

func (m *Model) predictFeatures(features []string) []Scored {
	if len(m.classes) == 0 {
		return nil
	}
	// The vocabulary counts the document's unseen features too, and every
	// feature is evidence: a class that learned many other features
	// explains a word it never saw worse than a class that learned little,
	// so a pile of confirmations of one kind of text cannot claim text of
	// another kind (issue 17: nonsense confirmed as plugins made every
	// message "plugins" when unseen words were ignored).
	v := len(m.vocab)
	for _, f := range features {
		if m.vocab[f] == 0 {
			v++
		}
	}
	// Every category of the taxonomy takes part, with PriorDocs pseudo
	// documents each (a Dirichlet prior over classes): a category nobody
	// confirmed yet keeps a share of belief instead of none.
	type class struct {
		docs, total int
		features    map[string]int
	}
	classes := make(map[Category]class, len(catalogue)+len(m.classes))
	for _, in := range catalogue {
		classes[in.ID] = class{}
	}
	for c, s := range m.classes {
		classes[c] = class{docs: s.Docs, total: s.Total, features: s.Features}
	}
	out := make([]Scored, 0, len(classes))
	for c, s := range classes {
		lp := math.Log(float64(s.docs) + m.prior)
		denom := math.Log(float64(s.total) + m.alpha*float64(v))
		for _, f := range features {
			lp += math.Log(float64(s.features[f])+m.alpha) - denom
		}
		out = append(out, Scored{Category: c, Score: lp})
	}
	// Softmax in log space.
	top := math.Inf(-1)
	for _, o := range out {
		top = max(top, o.Score)
	}
	var sum float64
	for i := range out {
		out[i].Score = math.Exp(out[i].Score - top)
		sum += out[i].Score
	}
	scores := make(map[Category]float64, len(out))
	for _, o := range out {
		scores[o.Category] = o.Score / sum
	}
	return rank(scores)
}

// modelJSON is the serialised form of a Model.
type modelJSON struct {
	Version int                      `json:"version"`
	Alpha   float64                  `json:"alpha"`
	Docs    int                      `json:"docs"`
	Classes map[Category]*classStats `json:"classes"`
}

// MarshalJSON encodes the model's counts. The vocabulary is derived from
// them on decoding.
func (m *Model) MarshalJSON() ([]byte, error) {
	return json.Marshal(modelJSON{Version: m.version, Alpha: m.alpha, Docs: m.docs, Classes: m.classes})
}

// UnmarshalJSON decodes and validates a model written by MarshalJSON.
func (m *Model) UnmarshalJSON(data []byte) error {
	var j modelJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return fmt.Errorf("decode model: %w", err)
	}
	if j.Version != ModelVersion {
		return fmt.Errorf("decode model: version %d, want %d (relearn from confirmed tags)", j.Version, ModelVersion)
	}
	if j.Alpha <= 0 || math.IsInf(j.Alpha, 0) || math.IsNaN(j.Alpha) {
		return fmt.Errorf("decode model: smoothing alpha %v must be positive", j.Alpha)
	}
	if j.Classes == nil {
		j.Classes = map[Category]*classStats{}
	}
	vocab := map[string]int{}
	for c, s := range j.Classes {
		if s == nil || s.Docs <= 0 || s.Docs > j.Docs {
			return fmt.Errorf("decode model: class %q has an invalid document count", c)
		}
		if s.Features == nil {
			s.Features = map[string]int{}
		}
		total := 0
		for f, n := range s.Features {
			if n <= 0 || n > s.Docs {
				return fmt.Errorf("decode model: class %q feature %q has count %d", c, f, n)
			}
			total += n
			vocab[f] += n
		}
		if total != s.Total {
			return fmt.Errorf("decode model: class %q total %d, features sum to %d", c, s.Total, total)
		}
	}
	if j.Docs < 0 || (j.Docs > 0) != (len(j.Classes) > 0) {
		return fmt.Errorf("decode model: %d documents in %d classes", j.Docs, len(j.Classes))
	}
	*m = Model{tz: NewTokenizer(), version: j.Version, alpha: j.Alpha, prior: DefaultPriorDocs, docs: j.Docs, classes: j.Classes, vocab: vocab}
	return nil
}

// LoadModel decodes a model stored with json.Marshal; empty data gives an
// empty model.
func LoadModel(data []byte) (*Model, error) {
	if len(data) == 0 {
		return NewModel(0), nil
	}
	m := &Model{}
	if err := json.Unmarshal(data, m); err != nil {
		return nil, err
	}
	return m, nil
}
