package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/classify"
	"github.com/sidekickhq/sidekick/services/triage/internal/conv"
	"github.com/sidekickhq/sidekick/services/triage/internal/store"
)

// Categories.
//
// When a customer opens a conversation the classifier (rules plus the
// learned model) suggests its categories; spam is closed at once with
// reason spam and business proposals go to the business team. Later
// customer messages refine the suggestion until a person sets or confirms
// the categories (Tag); from then on suggestions no longer replace them,
// and the model learns the confirmed categories from the conversation's
// text (a later correction unlearns the earlier lesson). The model is
// stored in Postgres; every replica reloads it when its version changes.

// maxClassifyText bounds the customer text kept for classification.
const maxClassifyText = 16 << 10

// modelCache holds the classifier built from the stored model.
type modelCache struct {
	rules   *classify.RuleSet
	refresh time.Duration

	mu      sync.Mutex
	current *classify.Classifier
	version int64
	checked time.Time
}

// classifier returns the classifier with the newest stored model; it
// checks the stored version (through q, the caller's transaction) at most
// every refresh.
func (e *Engine) classifier(ctx context.Context, q store.Querier) (*classify.Classifier, error) {
	m := e.model
	m.mu.Lock()
	defer m.mu.Unlock()
	now := e.now()
	if m.current != nil && now.Sub(m.checked) < m.refresh && !now.Before(m.checked) {
		return m.current, nil
	}
	v, err := store.ModelVersion(ctx, q)
	if err != nil {
		if m.current != nil {
			return m.current, nil // classify with the model we have
		}
		return nil, err
	}
	m.checked = now
	if m.current != nil && v == m.version {
		return m.current, nil
	}
	_, data, err := store.LoadModel(ctx, q, false)
	if err != nil {
		if m.current != nil {
			return m.current, nil
		}
		return nil, err
	}
	model, err := classify.LoadModel(data)
	if err != nil {
		return nil, fmt.Errorf("decode category model: %w", err)
	}
	m.current, m.version = classify.New(m.rules, model), v
	return m.current, nil
}

// install makes a classifier learned in a committed transaction current.
func (e *Engine) install(c *classify.Classifier, version int64) {
	m := e.model
	m.mu.Lock()
	defer m.mu.Unlock()
	if version >= m.version {
		m.current, m.version, m.checked = c, version, e.now()
	}
}

// ParseCategories turns what people type into category ids, the
// predominant first; unknown names are invalid.
func (e *Engine) ParseCategories(in []string) ([]string, error) {
	var items []string
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			items = append(items, s)
		}
	}
	cats, err := e.parser.ParseList(items)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, ErrInvalid)
	}
	return categoryStrings(cats), nil
}

// CategoryFilter normalizes a category typed in a list filter; a name the
// taxonomy does not know is used as given.
func (e *Engine) CategoryFilter(s string) string {
	if c, err := e.parser.Parse(s); err == nil {
		return string(c)
	}
	return strings.TrimSpace(s)
}

func categoryStrings(cs []classify.Category) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c)
	}
	return out
}

func toCategories(ss []string) []classify.Category {
	out := make([]classify.Category, len(ss))
	for i, s := range ss {
		out[i] = classify.Category(s)
	}
	return out
}

// appendText adds a customer message's text to what the classifier reads,
// within maxClassifyText.
func appendText(text, more string) string {
	more = strings.TrimSpace(more)
	if more == "" {
		return text
	}
	if text != "" {
		text += "\n"
	}
	text += more
	if len(text) > maxClassifyText {
		text = text[:maxClassifyText]
		for !utf8.ValidString(text) {
			text = text[:len(text)-1]
		}
	}
	return text
}

// suggest classifies a customer message of c (the opening one when
// opened) unless people confirmed the categories, and records the
// suggestion. At the opening it also routes: spam closes with reason spam,
// a business proposal goes to the business team.
func (e *Engine) suggest(ctx context.Context, q store.Querier, c *supportv1.Conversation, st *store.State, m *supportv1.InboundMessage, opened bool, now time.Time, out *conv.Outcome) error {
	if opened {
		st.Input = classify.InputFromMessage(m)
		st.Input.Text = appendText("", st.Input.Text)
	} else {
		st.Input.Text = appendText(st.Input.Text, m.GetText())
	}
	st.Input.KnownCustomer = c.GetCustomer().GetId() != ""
	if st.Confirmed {
		return nil
	}
	cls, err := e.classifier(ctx, q)
	if err != nil {
		return err
	}
	res := cls.Classify(st.Input)
	if (!opened || conv.IsAlertConversation(c)) && res.Route != classify.RouteSupport {
		// Routing is decided at the opening: a customer's follow-up does
		// not turn a conversation into spam. An alert is neither spam nor
		// a business proposal, whatever its error text says.
		return nil
	}
	e.suggestions.WithLabelValues(res.Route.String(), string(res.Source)).Inc()
	cats := categoryStrings(res.Categories)
	st.Suggested, st.Confidence, st.Source = cats, res.Confidence, string(res.Source)
	// At the opening the triaged event is written even when nothing is
	// suggested: subscribers learn that the classifier read it and why it
	// stayed silent.
	if !slices.Equal(cats, c.GetCategories()) || (opened && len(cats) == 0) {
		c.Categories = cats
		out.Changed = true
		detail := fmt.Sprintf("suggested %s (%s, confidence %.2f)", strings.Join(cats, ", "), res.Source, res.Confidence)
		switch {
		case res.Source == classify.SourceUnsure:
			detail = fmt.Sprintf("no suggestion (unsure: %s at confidence %.2f)", strings.Join(categoryStrings(res.Guess), ", "), res.Confidence)
		case len(cats) == 0:
			detail = fmt.Sprintf("no suggestion (%s)", res.Source)
		}
		out.Event(conv.Event{Type: supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_TRIAGED, Actor: conv.System, Reason: detail})
		out.AuditLine(conv.System, "categorised", detail)
	}
	if !opened {
		return nil
	}
	switch res.Route {
	case classify.RouteSpam:
		out.AuditLine(conv.System, "spam", fmt.Sprintf("score %.2f: %s", res.Spam.Score, strings.Join(res.Spam.Reasons, "; ")))
		out.Merge(conv.Close(c, supportv1.CloseReason_CLOSE_REASON_SPAM, conv.System, now))
	case classify.RouteBusiness:
		if team := e.businessTeam(); team != "" && c.GetTeam() != team {
			c.Team = team
			out.Changed = true
			out.AuditLine(conv.System, "routed", "business proposal: to team "+team)
		}
	}
	return nil
}

// learn teaches the model the categories people confirmed for c,
// unlearning what it learned from c before. It returns the classifier to
// install once the transaction commits.
func (e *Engine) learn(ctx context.Context, q store.Querier, c *supportv1.Conversation, st *store.State, confirmed []string, now time.Time) (*classify.Classifier, int64, error) {
	version, data, err := store.LoadModel(ctx, q, true)
	if err != nil {
		return nil, 0, err
	}
	model, err := classify.LoadModel(data)
	if err != nil {
		return nil, 0, fmt.Errorf("decode category model: %w", err)
	}
	cls := classify.New(e.model.ruleSet(), model)
	if len(st.Learned) > 0 && st.LearnedInput != nil {
		if slices.Equal(st.Learned, confirmed) && st.LearnedInput.Document() == st.Input.Document() {
			return nil, 0, nil // already learned exactly this
		}
		if err := cls.Unlearn(*st.LearnedInput, toCategories(st.Learned)); err != nil && !errors.Is(err, classify.ErrNotLearned) {
			return nil, 0, fmt.Errorf("unlearn %s: %w", c.GetId(), err)
		}
	}
	if st.Input.Document() == "" {
		return nil, 0, nil // nothing to learn from
	}
	if err := cls.Learn(st.Input, toCategories(confirmed)); err != nil {
		return nil, 0, fmt.Errorf("learn %s: %w", c.GetId(), err)
	}
	js, err := cls.MarshalModel()
	if err != nil {
		return nil, 0, fmt.Errorf("encode category model: %w", err)
	}
	if err := store.SaveModel(ctx, q, version+1, cls.ModelDocs(), js, now); err != nil {
		return nil, 0, err
	}
	in := st.Input
	st.LearnedInput, st.Learned = &in, slices.Clone(confirmed)
	return cls, version + 1, nil
}

// confirm records that people set or confirmed c's categories: it counts
// the agreement with the suggestion and teaches the model.
func (e *Engine) confirm(ctx context.Context, q store.Querier, c *supportv1.Conversation, st *store.State, confirmed []string, now time.Time) (*classify.Classifier, int64, error) {
	first := !st.Confirmed
	st.Confirmed = true
	// A conversation the classifier read but suggested nothing for counts
	// as none, as it does in the report's agreement.
	if first && (len(st.Suggested) > 0 || st.Source != "") {
		a := classify.Agree([]classify.Pair{{Suggested: toCategories(st.Suggested), Confirmed: toCategories(confirmed)}})
		switch {
		case a.Exact == 1:
			e.agreement.WithLabelValues("exact").Inc()
		case a.Overlap == 1:
			e.agreement.WithLabelValues("overlap").Inc()
		default:
			e.agreement.WithLabelValues("none").Inc()
		}
	}
	return e.learn(ctx, q, c, st, confirmed, now)
}

// Agreement is how often suggestions matched the categories people
// confirmed, over conversations opened in [from, to).
func (e *Engine) Agreement(ctx context.Context, from, to time.Time) (classify.Agreement, error) {
	pairs, err := store.AgreementPairs(ctx, e.pool, from, to)
	if err != nil {
		return classify.Agreement{}, err
	}
	var a classify.Agreement
	for _, p := range pairs {
		a.Add(classify.Pair{Suggested: toCategories(p.Suggested), Confirmed: toCategories(p.Confirmed)})
	}
	return a, nil
}
