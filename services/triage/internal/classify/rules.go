package classify

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Rules configure the classifier: keyword, pattern, channel, Sentry project
// and GitHub label rules per category, how their scores are read, when the
// learned model is trusted, and the spam rules. It is meant to be written in
// the organisation's YAML; [DefaultRules] follows the handbook. Zero numbers
// take the defaults (see [Rules.WithDefaults]); a Categories list replaces
// the default rules, so to extend them start from DefaultRules and append.
// For example:
//
//	strong_score: 3
//	model_threshold: 0.5
//	categories:
//	  - category: billing
//	    weight: 3
//	    channels: ["slack:C0BILLING", "email:billing@example.com"]
//	  - category: plugins
//	    weight: 3
//	    sentry_projects: [plugin-server]
//	  - category: performance
//	    keywords: [slow, timeout, "takes forever"]
//	    patterns: ['\b50[234]\b']
//	    labels: [performance]
//	spam:
//	  threshold: 0.8
//	  phrases: ["guest post", backlinks]
type Rules struct {
	// StrongScore is the rule score at which the rules decide on their own,
	// before the model is asked (default 3: three keywords, or one label).
	StrongScore float64 `yaml:"strong_score" json:"strong_score"`
	// MinScore is the least rule score that still names a category when the
	// model is not confident either (default 1: one keyword).
	MinScore float64 `yaml:"min_score" json:"min_score"`
	// MinConfidence is the confidence (see Result.Confidence) below which
	// nothing is suggested: a guess that weak is worse than no suggestion,
	// which leaves the conversation for people to categorise (default
	// 0.3; the evaluation in docs/triage.md shows what it costs and
	// saves).
	MinConfidence float64 `yaml:"min_confidence" json:"min_confidence"`
	// SecondaryRatio: after the predominant category, others whose score is
	// at least this fraction of the top score are suggested too (default
	// 0.5 for rules; for the model it applies to posteriors).
	SecondaryRatio float64 `yaml:"secondary_ratio" json:"secondary_ratio"`
	// MaxCategories caps the categories suggested (default 3).
	MaxCategories int `yaml:"max_categories" json:"max_categories"`
	// ModelThreshold is the posterior probability (after blending in the
	// rule evidence, see RuleBoost) from which the model's top category is
	// used when the rules are not strong (default 0.5: more likely than
	// all the others together).
	ModelThreshold float64 `yaml:"model_threshold" json:"model_threshold"`
	// RuleBoost is how much rule evidence weighs when the model decides:
	// each point of rule score multiplies a category's odds by
	// exp(RuleBoost) (default 2). Zero means the default; a negative value
	// turns the blending off.
	RuleBoost float64 `yaml:"rule_boost" json:"rule_boost"`
	// ModelMinDocs is the number of learned conversations before the model
	// is consulted at all (default 20).
	ModelMinDocs int `yaml:"model_min_docs" json:"model_min_docs"`
	// Categories are the scoring rules; several rules may name the same
	// category.
	Categories []Rule `yaml:"categories" json:"categories"`
	// Spam configures spam detection.
	Spam SpamRules `yaml:"spam" json:"spam"`
}

// Rule adds Weight to a category's score for each distinct keyword or
// pattern found in the subject and text, and once for each matching
// channel, Sentry project and GitHub label.
type Rule struct {
	// Category is a category id or display name (parsed with [Parse]).
	Category string `yaml:"category" json:"category"`
	// Weight is added per hit (default 1).
	Weight float64 `yaml:"weight,omitempty" json:"weight,omitempty"`
	// Keywords are words or phrases matched as whole words, ignoring case
	// and punctuation, with plurals folded: "feature flag" matches "Feature
	// Flags" but not "flagship".
	Keywords []string `yaml:"keywords,omitempty" json:"keywords,omitempty"`
	// Patterns are regular expressions (RE2 syntax, case-insensitive)
	// matched against the raw subject and text.
	Patterns []string `yaml:"patterns,omitempty" json:"patterns,omitempty"`
	// Channels match the channel the message came from ("slack", "email",
	// "github", "sentry") or a place in it written "channel:source", such as
	// "slack:C0123ABCD", "email:billing@example.com" or
	// "github:acme/helm-charts".
	Channels []string `yaml:"channels,omitempty" json:"channels,omitempty"`
	// SentryProjects match the Sentry project slug of a Sentry message.
	SentryProjects []string `yaml:"sentry_projects,omitempty" json:"sentry_projects,omitempty"`
	// Labels match GitHub labels, ignoring case and punctuation.
	Labels []string `yaml:"labels,omitempty" json:"labels,omitempty"`
}

// SpamRules configure spam detection. Signals are combined as independent
// evidence: score = 1 - Π(1 - s) over the signals that fired, so it stays
// within [0, 1]; a message whose score reaches Threshold is spam.
type SpamRules struct {
	// Threshold is the score at which a message is spam (default 0.8).
	Threshold float64 `yaml:"threshold" json:"threshold"`
	// Phrases are spam phrases, matched like keywords.
	Phrases []string `yaml:"phrases" json:"phrases"`
	// PhraseScore is the evidence of each distinct phrase (default 0.6).
	PhraseScore float64 `yaml:"phrase_score" json:"phrase_score"`
	// AuthFailedScore is the evidence of an email that failed SPF, DKIM or
	// DMARC (default 0.5; forwarding breaks authentication for real
	// customers too, so it is not enough on its own).
	AuthFailedScore float64 `yaml:"auth_failed_score" json:"auth_failed_score"`
	// MaxLinks is the number of links a normal message stays within
	// (default 4).
	MaxLinks int `yaml:"max_links" json:"max_links"`
	// LinksScore is the evidence of more than MaxLinks links (default 0.5).
	LinksScore float64 `yaml:"links_score" json:"links_score"`
	// ModelWeight scales the model's spam posterior into evidence (default
	// 0.9, so the model alone needs a posterior of about 0.89).
	ModelWeight float64 `yaml:"model_weight" json:"model_weight"`
	// Channels lists the channels checked for spam (default email, slack
	// and github; Sentry errors are never spam). An empty, non-nil list
	// (`channels: []`) turns spam detection off.
	Channels []string `yaml:"channels" json:"channels"`
}

// WithDefaults returns r with zero settings replaced by the defaults. Rule
// lists are kept as they are: an empty list means no rules.
func (r Rules) WithDefaults() Rules {
	setF := func(p *float64, d float64) {
		if *p == 0 {
			*p = d
		}
	}
	setI := func(p *int, d int) {
		if *p == 0 {
			*p = d
		}
	}
	setF(&r.StrongScore, 3)
	setF(&r.MinScore, 1)
	setF(&r.MinConfidence, 0.3)
	setF(&r.SecondaryRatio, 0.5)
	setI(&r.MaxCategories, 3)
	setF(&r.ModelThreshold, 0.5)
	setF(&r.RuleBoost, 2)
	setI(&r.ModelMinDocs, 20)
	setF(&r.Spam.Threshold, 0.8)
	setF(&r.Spam.PhraseScore, 0.6)
	setF(&r.Spam.AuthFailedScore, 0.5)
	setI(&r.Spam.MaxLinks, 4)
	setF(&r.Spam.LinksScore, 0.5)
	setF(&r.Spam.ModelWeight, 0.9)
	if r.Spam.Channels == nil {
		r.Spam.Channels = []string{"email", "slack", "github"}
	}
	return r
}

// Scored is a category with a score: a rule score, a posterior
// probability or a confidence, depending on where it comes from.
type Scored struct {
	Category Category `json:"category"`
	Score    float64  `json:"score"`
}

// Hit is one rule that fired, for explaining a suggestion.
type Hit struct {
	Category Category
	// Reason says what matched, e.g. `keyword "slow"` or `label "billing"`.
	Reason string
	Weight float64
}

// RuleSet is a compiled [Rules]. It is immutable and safe for concurrent
// use.
type RuleSet struct {
	cfg      Rules
	tz       *Tokenizer
	rules    []compiledRule
	spam     []phrase
	spamChan map[string]bool
	// keywords are every rule's keywords in rule order (rule i's start at
	// rules[i].first); byFirst lists them by their first word, so a text
	// is matched by looking up its words rather than every keyword.
	keywords []phrase
	byFirst  map[string][]int
}

type phrase struct {
	text  string
	words []string
}

type compiledRule struct {
	cat      Category
	weight   float64
	keywords []phrase
	first    int // the index of keywords[0] in RuleSet.keywords
	patterns []*regexp.Regexp
	channels map[string]bool
	projects map[string]bool
	labels   map[string]bool
}

// Compile validates the rules (after [Rules.WithDefaults]) and prepares them
// for matching. Every invalid category, keyword or pattern is reported.
func (r Rules) Compile() (*RuleSet, error) {
	r = r.WithDefaults()
	tz := NewTokenizer()
	parser := NewParser()
	rs := &RuleSet{cfg: r, tz: tz, spamChan: lowerSet(r.Spam.Channels, strings.ToLower)}
	var errs []error
	if r.StrongScore < r.MinScore {
		errs = append(errs, fmt.Errorf("strong_score %v below min_score %v", r.StrongScore, r.MinScore))
	}
	if r.MinConfidence < 0 || r.MinConfidence > 1 {
		errs = append(errs, fmt.Errorf("min_confidence %v outside [0, 1]", r.MinConfidence))
	}
	if r.ModelThreshold <= 0 || r.ModelThreshold > 1 {
		errs = append(errs, fmt.Errorf("model_threshold %v outside (0, 1]", r.ModelThreshold))
	}
	for i, rule := range r.Categories {
		cat, err := parser.Parse(rule.Category)
		if err != nil {
			errs = append(errs, fmt.Errorf("rule %d: %w", i, err))
			continue
		}
		cr := compiledRule{
			cat:      cat,
			weight:   cmp.Or(rule.Weight, 1),
			channels: lowerSet(rule.Channels, strings.ToLower),
			projects: lowerSet(rule.SentryProjects, strings.ToLower),
			labels:   lowerSet(rule.Labels, squash),
		}
		cr.keywords, err = rs.phrases(rule.Keywords)
		if err != nil {
			errs = append(errs, fmt.Errorf("rule %d (%s): %w", i, cat, err))
		}
		for _, pat := range rule.Patterns {
			re, err := regexp.Compile("(?i)" + pat)
			if err != nil {
				errs = append(errs, fmt.Errorf("rule %d (%s): pattern: %w", i, cat, err))
				continue
			}
			cr.patterns = append(cr.patterns, re)
		}
		rs.rules = append(rs.rules, cr)
	}
	rs.byFirst = map[string][]int{}
	for i := range rs.rules {
		rs.rules[i].first = len(rs.keywords)
		for _, k := range rs.rules[i].keywords {
			rs.byFirst[k.words[0]] = append(rs.byFirst[k.words[0]], len(rs.keywords))
			rs.keywords = append(rs.keywords, k)
		}
	}
	var err error
	if rs.spam, err = rs.phrases(r.Spam.Phrases); err != nil {
		errs = append(errs, fmt.Errorf("spam: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("compile classification rules: %w", err)
	}
	return rs, nil
}

// phrases tokenizes keywords; those that normalize to the same words
// ("flag" and "flags") are kept once, so they count once.
func (rs *RuleSet) phrases(keywords []string) ([]phrase, error) {
	var out []phrase
	var errs []error
	seen := map[string]bool{}
	for _, k := range keywords {
		words := rs.tz.Tokenize(k).Words
		if len(words) == 0 {
			errs = append(errs, fmt.Errorf("keyword %q has no words", k))
			continue
		}
		key := strings.Join(words, " ")
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, phrase{text: k, words: words})
	}
	return out, errors.Join(errs...)
}

func lowerSet(items []string, norm func(string) string) map[string]bool {
	if len(items) == 0 {
		return nil
	}
	m := make(map[string]bool, len(items))
	for _, s := range items {
		m[norm(strings.TrimSpace(s))] = true
	}
	return m
}

// Config returns the rules the set was compiled from, defaults applied.
func (rs *RuleSet) Config() Rules { return rs.cfg }

// Tokenizer returns the tokenizer the rules match with.
func (rs *RuleSet) Tokenizer() *Tokenizer { return rs.tz }

// wordIndex maps each word to its positions, for phrase matching.
type wordIndex struct {
	words []string
	at    map[string][]int
}

func newWordIndex(words []string) wordIndex {
	at := make(map[string][]int, len(words))
	for i, w := range words {
		at[w] = append(at[w], i)
	}
	return wordIndex{words: words, at: at}
}

// has reports whether the phrase occurs as consecutive words.
func (wi wordIndex) has(p phrase) bool {
	for _, i := range wi.at[p.words[0]] {
		if i+len(p.words) <= len(wi.words) && slices.Equal(wi.words[i:i+len(p.words)], p.words) {
			return true
		}
	}
	return false
}

// matchKeywords reports, for each of rs.keywords, whether it occurs in
// the indexed text.
func (rs *RuleSet) matchKeywords(wi wordIndex) []bool {
	matched := make([]bool, len(rs.keywords))
	for w := range wi.at {
		for _, i := range rs.byFirst[w] {
			if !matched[i] && wi.has(rs.keywords[i]) {
				matched[i] = true
			}
		}
	}
	return matched
}

// Score returns the rule scores of in, ranked, with the hits that produced
// them. Evidence for "deployments" supports every deployments subcategory:
// when a subcategory fired, the parent's score is added to it and the
// parent itself is not ranked.
func (rs *RuleSet) Score(in Input) ([]Scored, []Hit) {
	doc := in.Document()
	return rs.score(in, doc, newWordIndex(rs.tz.Tokenize(doc).Words))
}

func (rs *RuleSet) score(in Input, doc string, wi wordIndex) ([]Scored, []Hit) {
	var hits []Hit
	channel := strings.ToLower(in.Channel)
	place := channel + ":" + strings.ToLower(in.Source)
	labels := make([]string, 0, len(in.Labels))
	for _, l := range in.Labels {
		labels = append(labels, squash(l))
	}
	project := strings.ToLower(in.SentryProject)
	matched := rs.matchKeywords(wi)
	for _, r := range rs.rules {
		hit := func(reason string) {
			hits = append(hits, Hit{Category: r.cat, Reason: reason, Weight: r.weight})
		}
		for i, k := range r.keywords {
			if matched[r.first+i] {
				hit(fmt.Sprintf("keyword %q", k.text))
			}
		}
		for _, re := range r.patterns {
			if re.MatchString(doc) {
				hit(fmt.Sprintf("pattern %q", re.String()[4:]))
			}
		}
		if r.channels[channel] {
			hit(fmt.Sprintf("channel %q", channel))
		}
		if in.Source != "" && r.channels[place] {
			hit(fmt.Sprintf("channel %q", place))
		}
		if project != "" && r.projects[project] {
			hit(fmt.Sprintf("sentry project %q", in.SentryProject))
		}
		for i, l := range labels {
			if r.labels[l] {
				hit(fmt.Sprintf("label %q", in.Labels[i]))
			}
		}
	}
	scores := map[Category]float64{}
	for _, h := range hits {
		scores[h.Category] += h.Weight
	}
	if parent, ok := scores[Deployments]; ok {
		sub := false
		for c := range scores {
			if c.Parent() == Deployments {
				scores[c] += parent
				sub = true
			}
		}
		if sub {
			delete(scores, Deployments)
		}
	}
	return rank(scores), hits
}

// rank sorts scores descending; ties go to the category listed first in
// the catalogue, unknown ones last by id.
func rank(scores map[Category]float64) []Scored {
	out := make([]Scored, 0, len(scores))
	for c, s := range scores {
		if s > 0 {
			out = append(out, Scored{Category: c, Score: s})
		}
	}
	slices.SortFunc(out, func(a, b Scored) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		if c := cmp.Compare(order(a.Category), order(b.Category)); c != 0 {
			return c
		}
		return cmp.Compare(a.Category, b.Category)
	})
	return out
}

func order(c Category) int {
	for i, in := range catalogue {
		if in.ID == c {
			return i
		}
	}
	return len(catalogue)
}
