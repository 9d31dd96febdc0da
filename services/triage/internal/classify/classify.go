// Package classify assigns support categories to conversations and decides
// the two routing classes, spam and business.
//
// Categories follow the handbook's taxonomy (see [Category] and [All]);
// [Parse] normalizes what people type ("Feature flags" -> "feature-flags").
// A [Classifier] combines two sources:
//
//   - configurable rules ([Rules], YAML-friendly, [DefaultRules] following
//     the handbook): keywords, regular expressions, channels, Sentry projects
//     and GitHub labels, each with a weight;
//   - a multinomial naive Bayes [Model] that learns from the categories people
//     confirm or change ([Classifier.Learn], [Classifier.Unlearn]) and is
//     stored as JSON.
//
// Rules decide when they fire strongly (Rules.StrongScore); otherwise the
// model decides when it is confident (its posterior, with the weak rule
// evidence blended in, reaches Rules.ModelThreshold); otherwise the weak
// rule evidence decides; otherwise nothing is suggested. A suggestion whose
// confidence is below Rules.MinConfidence is not made either: people
// categorise the conversation. When the rules
// only know that a message is about a self-hosted deployment, the model
// picks the subcategory if it is confident. Spam is scored separately from
// rule signals (failed email authentication, spam phrases, many links) and
// the model's spam class, and is closed automatically; a business proposal
// is routed to business contacts. [Agreement] measures how often
// suggestions match what people confirm.
//
// [Evaluate] measures the classifier on the labelled evaluation set
// ([EvaluationSet], evaluation.jsonl: 114 messages, 21 classes) by
// cross-validation; docs/triage.md gives the figures per category and the
// macro-F1 that TestEvaluation holds it to.
//
// The package is pure Go: no database, no bus. The service persists the
// model and feeds it the confirmed tags.
package classify

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

// Input is what the classifier knows about a conversation's message.
type Input struct {
	// Channel is "slack", "email", "github" or "sentry".
	Channel string
	// Source is the place within the channel: the Slack channel id, the
	// GitHub repository ("owner/name"), the email recipient.
	Source string
	// Subject is the email subject, issue title or Sentry issue title.
	Subject string
	// Text is the message body.
	Text string
	// Labels are the GitHub labels.
	Labels []string
	// SentryProject is the Sentry project slug.
	SentryProject string
	// AuthFailed reports an email that failed SPF, DKIM or DMARC.
	AuthFailed bool
	// KnownCustomer reports an author found in the customer directory; a
	// known customer's message is never classified as spam. The caller sets
	// it after looking the author up; [InputFromMessage] cannot know it.
	KnownCustomer bool
}

// Document returns the text the rules and the model read: the subject and
// the body.
func (in Input) Document() string {
	if in.Subject == "" {
		return in.Text
	}
	return in.Subject + "\n" + in.Text
}

// InputFromMessage builds an Input from an inbound message, reading the
// attributes the ingest services set: "labels" (comma-separated) and
// "label" for GitHub, "project" for Sentry, "auth_failed" and "recipients"
// for email. The Slack source is the channel id from the thread key
// ("slack:<team>/<channel>/<ts>" or "<team>/<channel>/<ts>"), the GitHub
// source the repository from "github:<owner>/<repo>#<n>".
func InputFromMessage(m *supportv1.InboundMessage) Input {
	attrs := m.GetAttributes()
	in := Input{
		Subject:       m.GetSubject(),
		Text:          m.GetText(),
		SentryProject: attrs["project"],
		AuthFailed:    attrs["auth_failed"] == "true",
	}
	for _, l := range strings.Split(attrs["labels"], ",") {
		if l = strings.TrimSpace(l); l != "" {
			in.Labels = append(in.Labels, l)
		}
	}
	if l := strings.TrimSpace(attrs["label"]); l != "" && !slices.Contains(in.Labels, l) {
		in.Labels = append(in.Labels, l)
	}
	key := m.GetThreadKey()
	switch m.GetChannel() {
	case supportv1.Channel_CHANNEL_SLACK:
		in.Channel = "slack"
		parts := strings.Split(strings.TrimPrefix(key, "slack:"), "/")
		if len(parts) >= 2 {
			in.Source = parts[1]
		}
	case supportv1.Channel_CHANNEL_EMAIL:
		in.Channel = "email"
		in.Source, _, _ = strings.Cut(attrs["recipients"], ",")
	case supportv1.Channel_CHANNEL_GITHUB:
		in.Channel = "github"
		repo, _, _ := strings.Cut(strings.TrimPrefix(key, "github:"), "#")
		in.Source = strings.TrimSuffix(repo, "/discussions")
	case supportv1.Channel_CHANNEL_SENTRY:
		in.Channel = "sentry"
		in.Source = attrs["project"]
	}
	return in
}

// Route is where a classified conversation goes.
type Route int

const (
	// RouteSupport: a support conversation for the engineers on duty.
	RouteSupport Route = iota
	// RouteSpam: close automatically with reason spam.
	RouteSpam
	// RouteBusiness: forward to the configured business contacts.
	RouteBusiness
)

// String returns "support", "spam" or "business".
func (r Route) String() string {
	switch r {
	case RouteSpam:
		return "spam"
	case RouteBusiness:
		return "business"
	default:
		return "support"
	}
}

// Source says which part of the classifier decided.
type Source string

// Where a decision came from.
const (
	// SourceRules: the rules fired strongly.
	SourceRules Source = "rules"
	// SourceModel: the learned model was confident.
	SourceModel Source = "model"
	// SourceWeakRules: neither was decisive; the rules' best guess.
	SourceWeakRules Source = "weak-rules"
	// SourceDefault: nothing applied; nothing is suggested.
	SourceDefault Source = "default"
	// SourceUnsure: the best guess's confidence was below
	// Rules.MinConfidence; nothing is suggested (Result.Guess holds it).
	SourceUnsure Source = "unsure"
	// SourceSpam: the spam score reached its threshold.
	SourceSpam Source = "spam"
)

// SpamVerdict is the spam assessment of a message.
type SpamVerdict struct {
	// Spam reports that Score reached the threshold.
	Spam bool
	// Score is the combined evidence in [0, 1].
	Score float64
	// Reasons list the signals that fired, e.g. `phrase "guest post"`.
	Reasons []string
}

// Result is a classification.
type Result struct {
	// Route says where the conversation goes.
	Route Route
	// Categories are the suggested categories, the predominant first; a
	// single [Spam] or [Business] for those routes; none when nothing
	// applied or the classifier was unsure.
	Categories []Category
	// Guess is what would have been suggested when the confidence was
	// below Rules.MinConfidence (Source is SourceUnsure).
	Guess []Category
	// Confidence is the confidence in the predominant category, in [0, 1]:
	// the model's posterior (rule evidence blended in); for rules, the top
	// score's share of all rule evidence, scaled by how close it comes to
	// StrongScore; the spam score for spam; zero when nothing applied.
	Confidence float64
	// Source says what decided.
	Source Source
	// Spam is the spam assessment (also for messages that are not spam).
	Spam SpamVerdict
	// Rules are the rule scores, ranked.
	Rules []Scored
	// Model is the model's ranking, nil when the model was not consulted.
	Model []Scored
	// Hits explain the rule scores.
	Hits []Hit
}

// Classifier suggests categories from rules and a learned model. It is safe
// for concurrent use.
type Classifier struct {
	rules *RuleSet
	cfg   Rules

	mu    sync.RWMutex
	model *Model
}

// New returns a classifier with compiled rules and a model (nil for a new,
// empty one). The classifier owns the model from then on.
func New(rules *RuleSet, model *Model) *Classifier {
	if model == nil {
		model = NewModel(0)
	}
	return &Classifier{rules: rules, cfg: rules.Config(), model: model}
}

// Learn teaches the model the categories people confirmed for a
// conversation. Only confirmed categories should be learned, not the
// classifier's own suggestions.
func (c *Classifier) Learn(in Input, categories []Category) error {
	f := c.features(in)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.model.learnFeatures(f, categories)
}

// Unlearn removes what an earlier Learn of the same input and categories
// taught, for when people change confirmed tags: Unlearn the old, Learn the
// new.
func (c *Classifier) Unlearn(in Input, categories []Category) error {
	f := c.features(in)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.model.unlearnFeatures(f, categories)
}

// Relabel replaces the categories learned for an input: it unlearns old
// (when not empty) and learns updated, atomically.
func (c *Classifier) Relabel(in Input, old, updated []Category) error {
	f := c.features(in)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(old) > 0 {
		if err := c.model.unlearnFeatures(f, old); err != nil {
			return err
		}
	}
	if err := c.model.learnFeatures(f, updated); err != nil {
		if len(old) > 0 {
			_ = c.model.learnFeatures(f, old) // restore; cannot fail, old was valid
		}
		return err
	}
	return nil
}

// MarshalModel returns the model's JSON, for storing.
func (c *Classifier) MarshalModel() ([]byte, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.model.MarshalJSON()
}

// ModelDocs returns the number of documents the model has learned.
func (c *Classifier) ModelDocs() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.model.Docs()
}

func (c *Classifier) features(in Input) []string {
	tz := c.rules.Tokenizer()
	return tz.Features(tz.Tokenize(in.Document()))
}

// Classify suggests a route and categories for a message.
func (c *Classifier) Classify(in Input) Result {
	doc := in.Document()
	tz := c.rules.Tokenizer()
	text := tz.Tokenize(doc)
	wi := newWordIndex(text.Words)
	var res Result
	res.Rules, res.Hits = c.rules.score(in, doc, wi)

	c.mu.RLock()
	if c.model.Docs() >= c.cfg.ModelMinDocs {
		res.Model = c.model.predictFeatures(tz.Features(text))
	}
	c.mu.RUnlock()

	res.Spam = c.spam(in, text, wi, res.Model)
	if res.Spam.Spam {
		res.Route, res.Categories, res.Confidence, res.Source = RouteSpam, []Category{Spam}, res.Spam.Score, SourceSpam
		return res
	}

	rules := without(res.Rules, Spam)
	model := blend(without(res.Model, Spam), rules, max(c.cfg.RuleBoost, 0))
	switch {
	case len(rules) > 0 && rules[0].Score >= c.cfg.StrongScore:
		res.Source = SourceRules
		res.Categories = c.pick(rules)
		res.Confidence = c.ruleConfidence(rules)
	case len(model) > 0 && model[0].Score >= c.cfg.ModelThreshold:
		res.Source = SourceModel
		res.Categories = c.pick(model)
		res.Confidence = model[0].Score
	case len(rules) > 0 && rules[0].Score >= c.cfg.MinScore:
		res.Source = SourceWeakRules
		res.Categories = c.pick(rules)
		res.Confidence = c.ruleConfidence(rules)
	default:
		res.Source = SourceDefault
		return res
	}
	if res.Confidence < c.cfg.MinConfidence {
		res.Source, res.Guess, res.Categories = SourceUnsure, res.Categories, nil
		return res
	}
	if res.Categories[0] == Deployments {
		if sub, ok := c.subcategory(model, Deployments); ok {
			res.Categories = append([]Category{sub}, slices.DeleteFunc(res.Categories[1:], func(x Category) bool { return x == sub })...)
		}
	}
	if res.Categories[0] == Business {
		res.Route, res.Categories = RouteBusiness, []Category{Business}
	}
	return res
}

// subcategory returns the child of parent the model prefers, when its
// posterior among the children the model knows reaches ModelThreshold: the
// rules often know that a message is about a self-hosted deployment without
// telling setup from scaling, which the model learns from confirmed tags.
func (c *Classifier) subcategory(model []Scored, parent Category) (Category, bool) {
	var best Scored
	var sum float64
	for _, s := range model {
		if s.Category.Parent() != parent {
			continue
		}
		sum += s.Score
		if s.Score > best.Score {
			best = s
		}
	}
	if sum == 0 || best.Score/sum < c.cfg.ModelThreshold {
		return "", false
	}
	return best.Category, true
}

// pick returns the predominant category and the secondary ones whose score
// reaches SecondaryRatio of it, up to MaxCategories. Routing classes and
// "other" are not secondary categories.
func (c *Classifier) pick(ranked []Scored) []Category {
	out := []Category{ranked[0].Category}
	for _, s := range ranked[1:] {
		if len(out) >= c.cfg.MaxCategories || s.Score < c.cfg.SecondaryRatio*ranked[0].Score {
			break
		}
		if s.Category.Routing() || s.Category == Other {
			continue
		}
		out = append(out, s.Category)
	}
	return out
}

// blend combines the model's posteriors with the rule scores as a product
// of experts: each class's odds are multiplied by exp(boost × its rule
// score), where a subcategory also counts its parent's score, and the
// result is renormalized. Categories the model never learned are left out:
// the model cannot weigh them.
func blend(model, rules []Scored, boost float64) []Scored {
	if len(model) == 0 {
		return nil
	}
	rule := make(map[Category]float64, len(rules))
	for _, r := range rules {
		rule[r.Category] = r.Score
	}
	logits := make([]float64, len(model))
	top := math.Inf(-1)
	for i, m := range model {
		l := math.Log(m.Score) + boost*(rule[m.Category]+rule[m.Category.Parent()])
		logits[i] = l
		top = max(top, l)
	}
	scores := make(map[Category]float64, len(model))
	var sum float64
	for i, m := range model {
		e := math.Exp(logits[i] - top)
		scores[m.Category] = e
		sum += e
	}
	for k := range scores {
		scores[k] /= sum
	}
	return rank(scores)
}

// ruleConfidence is the top rule score's share of all rule evidence,
// scaled down when the top score is below StrongScore.
func (c *Classifier) ruleConfidence(ranked []Scored) float64 {
	var sum float64
	for _, s := range ranked {
		sum += s.Score
	}
	return ranked[0].Score / sum * min(1, ranked[0].Score/c.cfg.StrongScore)
}

func without(ranked []Scored, c Category) []Scored {
	return slices.DeleteFunc(slices.Clone(ranked), func(s Scored) bool { return s.Category == c })
}

// Spam assesses a message for spam on its own.
func (c *Classifier) Spam(in Input) SpamVerdict {
	tz := c.rules.Tokenizer()
	text := tz.Tokenize(in.Document())
	var model []Scored
	c.mu.RLock()
	if c.model.Docs() >= c.cfg.ModelMinDocs {
		model = c.model.predictFeatures(tz.Features(text))
	}
	c.mu.RUnlock()
	return c.spam(in, text, newWordIndex(text.Words), model)
}

func (c *Classifier) spam(in Input, text Text, wi wordIndex, model []Scored) SpamVerdict {
	cfg := c.cfg.Spam
	if !c.rules.spamChan[strings.ToLower(in.Channel)] {
		return SpamVerdict{}
	}
	var v SpamVerdict
	notSpam := 1.0
	add := func(score float64, reason string) {
		notSpam *= 1 - min(max(score, 0), 1)
		v.Reasons = append(v.Reasons, reason)
	}
	if in.AuthFailed {
		add(cfg.AuthFailedScore, "email authentication failed")
	}
	for _, p := range c.rules.spam {
		if wi.has(p) {
			add(cfg.PhraseScore, fmt.Sprintf("phrase %q", p.text))
		}
	}
	if text.Links > cfg.MaxLinks {
		add(cfg.LinksScore, fmt.Sprintf("%d links", text.Links))
	}
	for _, s := range model {
		if s.Category == Spam && s.Score >= 0.5 {
			add(cfg.ModelWeight*s.Score, fmt.Sprintf("model spam probability %.2f", s.Score))
		}
	}
	v.Score = 1 - notSpam
	// Rounding: products of (1 - s) may land a hair below an exact threshold.
	v.Score = math.Round(v.Score*1e9) / 1e9
	switch {
	case in.KnownCustomer:
		if v.Score > 0 {
			v.Reasons = append(v.Reasons, "known customer: never spam")
		}
	case v.Score >= cfg.Threshold:
		v.Spam = true
	}
	return v
}
