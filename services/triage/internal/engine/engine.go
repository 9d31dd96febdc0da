// Package engine runs triage's changes in Postgres transactions: an inbound
// message or a person's command is applied with the conversation state
// machine (package conv), and the conversation, the message, the audit
// trail and the outbox events are written together, with the inbound
// message id claimed in the inbox in that same transaction.
package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sidekickhq/sidekick/platform/promreg"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/platform/outbox"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/classify"
	"github.com/sidekickhq/sidekick/services/triage/internal/conv"
	"github.com/sidekickhq/sidekick/services/triage/internal/coverage"
	"github.com/sidekickhq/sidekick/services/triage/internal/people"
	"github.com/sidekickhq/sidekick/services/triage/internal/store"
	"github.com/sidekickhq/sidekick/services/triage/internal/tier"
	"github.com/sidekickhq/sidekick/services/triage/internal/worktime"
)

// Errors the gRPC layer maps to status codes.
var (
	// ErrNotFound: no such conversation or customer.
	ErrNotFound = store.ErrNotFound
	// ErrInvalid: the request is malformed.
	ErrInvalid = errors.New("invalid request")
	// ErrConflict: the request contradicts the stored state.
	ErrConflict = errors.New("conflict")
)

// Config tunes the engine.
type Config struct {
	// ConsoleURL is the base of share links: ConsoleURL/conversations/<id>.
	ConsoleURL string
	// Rules decide customer tiers.
	Rules tier.Rules
	// Policy holds the first-response thresholds per tier; zero thresholds
	// take the handbook's.
	Policy worktime.Policy
	// Coverage answers when whoever is on duty as hero works: the clock of
	// a tier whose policy says coverage duty runs in it; default: always
	// (wall-clock deadlines).
	Coverage coverage.Source
	// Roster answers when anybody on the support roster works (coverage
	// roster); default: Coverage.
	Roster coverage.Source
	// Horizon is how far ahead working windows are fetched to place the
	// next deadline; default 14 days.
	Horizon time.Duration
	// RetryDelay is when a deadline that could not be computed (rotation
	// unavailable) is tried again; default 30s.
	RetryDelay time.Duration
	// Classify are the category rules; zero: classify.DefaultRules().
	Classify *classify.Rules
	// ModelRefresh is how often the stored model's version is checked;
	// default 10s.
	ModelRefresh time.Duration
	// BusinessTeam is the team marketing and partnership proposals are
	// given to; default "business".
	BusinessTeam string
	// HandoffMaxOpen caps the conversation snapshots in a handoff summary
	// (every id without a note is listed regardless); default 200.
	HandoffMaxOpen int
	// Logger logs what the engine recovers from.
	Logger *slog.Logger
	// People are the people of the organisation file staff are mapped to;
	// default: nobody.
	People people.Source
	// Mirror configures the support-channel mirror; empty: none.
	Mirror MirrorConfig
	// EmailFrom is the support address email replies come from: its
	// domain is the domain of the Message-IDs triage chooses for them,
	// and it is never copied on a reply.
	EmailFrom string
	// OnArmed, when set, is called after a transaction that armed deadline
	// timers (or made them due again) commits, with the earliest instant
	// one is due: the timer loop wakes when that is sooner than it planned
	// to look, which it must when the clock is a fake one standing still.
	OnArmed func(due time.Time)
}

// Engine applies inbound messages and commands.
type Engine struct {
	pool *pgxpool.Pool
	cfg  Config
	// org holds cfg's Policy and BusinessTeam until SetOrg swaps them.
	org    atomic.Pointer[orgSettings]
	clock  clock.Clock
	model  *modelCache
	parser *classify.Parser

	handled        *prometheus.CounterVec
	deadlines      *prometheus.CounterVec
	firstResponse  *prometheus.HistogramVec
	suggestions    *prometheus.CounterVec
	agreement      *prometheus.CounterVec
	windowFailures prometheus.Counter
	unknown        *people.Unknown
}

// New returns an engine reading the time from c (nil: the wall clock);
// its metrics register on reg.
func New(pool *pgxpool.Pool, cfg Config, c clock.Clock, reg prometheus.Registerer) (*Engine, error) {
	if pool == nil {
		return nil, errors.New("engine: pool is required")
	}
	e, err := newEngine(cfg, c, reg)
	if err != nil {
		return nil, err
	}
	e.pool = pool
	return e, nil
}

// newEngine is New without the database: what the engine decides, which
// the unit tests exercise, needs none.
func newEngine(cfg Config, c clock.Clock, reg prometheus.Registerer) (*Engine, error) {
	cfg.ConsoleURL = strings.TrimRight(cfg.ConsoleURL, "/")
	cfg.Policy = cfg.Policy.WithDefaults()
	if err := cfg.Policy.Validate(); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	if cfg.Coverage == nil {
		cfg.Coverage = coverage.Always{}
	}
	if cfg.Roster == nil {
		cfg.Roster = cfg.Coverage
	}
	if cfg.Horizon <= 0 {
		cfg.Horizon = 14 * 24 * time.Hour
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = 30 * time.Second
	}
	if cfg.ModelRefresh <= 0 {
		cfg.ModelRefresh = 10 * time.Second
	}
	if cfg.BusinessTeam == "" {
		cfg.BusinessTeam = "business"
	}
	if cfg.HandoffMaxOpen <= 0 {
		cfg.HandoffMaxOpen = 200
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.People == nil {
		cfg.People = people.Static{D: people.New(nil)}
	}
	if cfg.EmailFrom != "" {
		if a, err := mail.ParseAddress(cfg.EmailFrom); err == nil {
			cfg.EmailFrom = strings.ToLower(a.Address)
		}
	}
	rules := classify.DefaultRules()
	if cfg.Classify != nil {
		rules = *cfg.Classify
	}
	ruleSet, err := rules.WithDefaults().Compile()
	if err != nil {
		return nil, fmt.Errorf("engine: category rules: %w", err)
	}
	e := &Engine{cfg: cfg, clock: clock.OrReal(c), parser: classify.NewParser(),
		model: &modelCache{rules: ruleSet, refresh: cfg.ModelRefresh}}
	e.org.Store(&orgSettings{policy: cfg.Policy, businessTeam: cfg.BusinessTeam})
	if e.handled, err = promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sidekick_triage_messages_handled_total",
		Help: "Inbound messages handled by triage, by message kind and result (applied, duplicate, recorded).",
	}, []string{"kind", "result"})); err != nil {
		return nil, err
	}
	if e.deadlines, err = promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sidekick_triage_deadlines_total",
		Help: "First-response thresholds passed (deadline events), by level (okay, late, breached).",
	}, []string{"level"})); err != nil {
		return nil, err
	}
	if e.firstResponse, err = promreg.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sidekick_triage_first_response_seconds",
		Help:    "Covered working time until the first staff reply, by tier.",
		Buckets: []float64{60, 300, 900, 1800, 3600, 7200, 14400, 28800, 57600},
	}, []string{"tier"})); err != nil {
		return nil, err
	}
	if e.suggestions, err = promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sidekick_triage_category_suggestions_total",
		Help: "Category suggestions, by route (support, spam, business) and source (rules, model, weak-rules, default, spam).",
	}, []string{"route", "source"})); err != nil {
		return nil, err
	}
	if e.agreement, err = promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sidekick_triage_category_confirmations_total",
		Help: "Categories people confirmed, by agreement with the suggestion: exact (same predominant category), overlap (another shared category), none.",
	}, []string{"match"})); err != nil {
		return nil, err
	}
	if e.windowFailures, err = promreg.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sidekick_triage_deadline_evaluation_failures_total",
		Help: "Deadlines that could not be evaluated because working windows were unavailable (retried).",
	})); err != nil {
		return nil, err
	}
	if e.unknown, err = people.NewUnknown(cfg.Logger, reg); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *Engine) now() time.Time { return e.clock.Now() }

// armed tells OnArmed about timers a committed transaction armed (p's, or
// due, whichever is sooner; zero: none).
func (e *Engine) armed(p *pipe, due time.Time) {
	if p != nil && !p.earliest.IsZero() && (due.IsZero() || p.earliest.Before(due)) {
		due = p.earliest
	}
	if !due.IsZero() && e.cfg.OnArmed != nil {
		e.cfg.OnArmed(due)
	}
}

// NewID returns a random UUID (version 4).
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], b[10:16])
	return string(s[:])
}

// ShareURL is the console link of a conversation.
func (e *Engine) ShareURL(id string) string {
	return e.cfg.ConsoleURL + "/conversations/" + id
}

// decorate fills the computed fields of a snapshot.
func (e *Engine) decorate(c *supportv1.Conversation) *supportv1.Conversation {
	if c != nil {
		c.ShareUrl = e.ShareURL(c.GetId())
	}
	return c
}

// EventName is the subject token of an event type, e.g. "opened".
func EventName(t supportv1.ConversationEventType) string {
	return strings.ToLower(strings.TrimPrefix(t.String(), "CONVERSATION_EVENT_TYPE_"))
}

// Result is what handling an inbound message did.
type Result string

// Results of HandleInbound, one per message.
const (
	// Applied: the message changed a conversation (or opened one).
	Applied Result = "applied"
	// Recorded: the message was stored and changed no conversation.
	Recorded Result = "recorded"
	// Duplicate: the message id was handled before; nothing changed.
	Duplicate Result = "duplicate"
)

// ValidInbound checks what every inbound message needs; its error wraps
// ErrInvalid.
func ValidInbound(m *supportv1.InboundMessage) error {
	switch {
	case m.GetId() == "":
		return fmt.Errorf("inbound message without an id: %w", ErrInvalid)
	case m.GetThreadKey() == "":
		return fmt.Errorf("inbound message %s without a thread key: %w", m.GetId(), ErrInvalid)
	case m.GetChannel() == supportv1.Channel_CHANNEL_UNSPECIFIED:
		return fmt.Errorf("inbound message %s without a channel: %w", m.GetId(), ErrInvalid)
	}
	return nil
}

func (e *Engine) count(m *supportv1.InboundMessage, res Result) {
	e.handled.WithLabelValues(strings.ToLower(strings.TrimPrefix(conv.Kind(m).String(), "MESSAGE_KIND_")), string(res)).Inc()
}

func threadOf(m *supportv1.InboundMessage) store.ThreadKey {
	return store.ThreadKey{Channel: m.GetChannel(), Key: m.GetThreadKey()}
}

// Inbound is one inbound message to apply.
type Inbound struct {
	Message *supportv1.InboundMessage
	Subject string
}

// HandleInbound applies inbound messages exactly once, in order, in one
// transaction, all or nothing: the inbox claims, the conversations, the
// messages and the outbox events commit together, with the outcome of the
// messages applied one after the other (a single message is a batch of
// one). Its reads are set-based (the inbox claims, the threads'
// conversations and the authors' customers, one round trip each) and so
// are its writes (see pipe: one statement per table for the whole batch,
// each conversation written once with its final state), so a batch costs
// a handful of round trips and one commit. A conversation another replica
// created meanwhile fails the transaction; it is tried once more, and then
// found. Any other failure fails the whole batch (an invalid message
// before anything is written).
func (e *Engine) HandleInbound(ctx context.Context, batch []Inbound) ([]Result, error) {
	for _, in := range batch {
		if err := ValidInbound(in.Message); err != nil {
			return nil, err
		}
	}
	// Staff are people: who wrote each message is settled before anything
	// is decided on it. Without the people (rotation never answered) the
	// batch waits, rather than take a person's reply for a customer's.
	d, err := e.directory(ctx)
	if err != nil {
		return nil, fmt.Errorf("handle inbound: %w", err)
	}
	for _, in := range batch {
		e.recognise(d, in.Message)
	}
	var results []Result
	for range 2 {
		if results, err = e.handleInbound(ctx, batch, d); !store.IsThreadConflict(err) {
			break
		}
	}
	if err != nil {
		if len(batch) == 1 {
			return nil, fmt.Errorf("handle inbound %s: %w", batch[0].Message.GetId(), err)
		}
		return nil, fmt.Errorf("handle %d inbound messages: %w", len(batch), err)
	}
	for i, in := range batch {
		e.count(in.Message, results[i])
	}
	return results, nil
}

func (e *Engine) handleInbound(ctx context.Context, batch []Inbound, d *people.Directory) ([]Result, error) {
	ids := make([]string, len(batch))
	subjects := make([]string, len(batch))
	for i, in := range batch {
		ids[i], subjects[i] = in.Message.GetId(), in.Subject
	}
	results := make([]Result, len(batch))
	var p *pipe
	err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		now := e.now()
		fresh, err := store.ClaimInboxBatch(ctx, tx, ids, subjects, now)
		if err != nil {
			return err
		}
		// Threads reached through an alias: an email answering our
		// reply's Message-ID joins the reply's conversation; a message in
		// a mirror thread is about the mirrored conversation.
		mirrored, err := e.followAliases(ctx, tx, batch, fresh)
		if err != nil {
			return err
		}
		var keys []store.ThreadKey
		seen := map[store.ThreadKey]bool{}
		for i, in := range batch {
			k := threadOf(in.Message)
			if t := mirrored[i]; t != nil {
				k = t.Thread
			}
			if fresh[in.Message.GetId()] && !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
		locked, err := store.LockThreads(ctx, tx, keys)
		if err != nil {
			return err
		}
		// After the conversations: their rows are locked before their
		// outbound rows everywhere.
		echoes, err := e.echoesOf(ctx, tx, batch, fresh)
		if err != nil {
			return err
		}
		// The authors of messages that may open a conversation.
		cands := make([][]tier.Identity, len(batch))
		for i, in := range batch {
			if m := in.Message; fresh[m.GetId()] && mirrored[i] == nil && echoes[i] == nil && locked[threadOf(m)] == nil && conv.Opens(m) {
				cands[i] = tier.Candidates(m.GetChannel(), m.GetAuthor())
			}
		}
		customers, err := store.MatchCustomers(ctx, tx, cands)
		if err != nil {
			return err
		}
		p = newPipe(tx)
		if e.cfg.Mirror.Channel != "" {
			convIDs := make([]string, 0, len(locked))
			for _, l := range locked {
				convIDs = append(convIDs, l.Conversation.GetId())
			}
			if err := e.preloadMirrors(ctx, p, convIDs); err != nil {
				return err
			}
		}
		for i, in := range batch {
			m := in.Message
			if !fresh[m.GetId()] {
				results[i] = Duplicate
				continue
			}
			delete(fresh, m.GetId()) // a second copy in the batch is a duplicate
			switch {
			case echoes[i] != nil:
				results[i], err = Recorded, e.echo(ctx, p, m, echoes[i], now)
			case mirrored[i] != nil:
				results[i], err = e.mirrorMessage(ctx, p, d, m, locked[mirrored[i].Thread], now)
			default:
				k := threadOf(m)
				results[i], locked[k], err = e.receive(ctx, p, m, locked[k], customers[i], now)
			}
			if err != nil {
				return fmt.Errorf("message %s: %w", m.GetId(), err)
			}
		}
		return p.flush(ctx)
	})
	if err == nil {
		e.armed(p, time.Time{})
	}
	return results, err
}

// followAliases resolves the thread aliases the batch's new messages may
// name: an email whose thread key, In-Reply-To or References is the
// Message-ID of a reply we sent is moved to the reply's conversation (its
// thread key rewritten; the original kept in the attribute
// "thread_key_alias"); a Slack message in a mirror thread is returned, at
// its index, with the conversation the thread mirrors.
func (e *Engine) followAliases(ctx context.Context, q store.Querier, batch []Inbound, fresh map[string]bool) ([]*store.AliasTarget, error) {
	cands := make([][]string, len(batch))
	var all []string
	for i, in := range batch {
		m := in.Message
		if !fresh[m.GetId()] {
			continue
		}
		switch m.GetChannel() {
		case supportv1.Channel_CHANNEL_EMAIL:
			if r := m.GetAttributes()["in_reply_to"]; r != "" {
				cands[i] = append(cands[i], "email:"+trimAngles(r))
			}
			cands[i] = append(cands[i], m.GetThreadKey())
			for _, r := range slices.Backward(m.GetReferences()) {
				cands[i] = append(cands[i], "email:"+trimAngles(r))
			}
		case supportv1.Channel_CHANNEL_SLACK:
			a := m.GetAttributes()
			if e.cfg.Mirror.Channel != "" && a["channel_id"] == e.cfg.Mirror.Channel && a["thread_ts"] != "" && a["thread_ts"] != a["ts"] {
				cands[i] = append(cands[i], MirrorAlias(a["channel_id"], a["thread_ts"]))
			}
		}
		all = append(all, cands[i]...)
	}
	out := make([]*store.AliasTarget, len(batch))
	if len(all) == 0 {
		return out, nil
	}
	targets, err := store.ResolveAliases(ctx, q, all)
	if err != nil {
		return nil, err
	}
	for i, in := range batch {
		for _, a := range cands[i] {
			t, ok := targets[a]
			if !ok {
				continue
			}
			m := in.Message
			if strings.HasPrefix(a, "mirror:") {
				out[i] = &t
			} else if t.Thread.Channel == m.GetChannel() && t.Thread.Key != m.GetThreadKey() {
				if m.Attributes == nil {
					m.Attributes = map[string]string{}
				}
				m.Attributes["thread_key_alias"] = m.GetThreadKey()
				m.ThreadKey = t.Thread.Key
			}
			break
		}
	}
	return out, nil
}

// echoesOf returns, at their index, the outbound rows of the batch's new
// messages that are the provider's copies of a reply triage sent. A
// message naming an outbound id triage never issued, or that cannot be
// our copy (an email under another Message-ID, a customer's GitHub
// comment quoting our marker), is an ordinary message: the markers can be
// forged or copied.
func (e *Engine) echoesOf(ctx context.Context, q store.Querier, batch []Inbound, fresh map[string]bool) ([]*store.Outbound, error) {
	var ids []string
	for _, in := range batch {
		if id := in.Message.GetAttributes()["outbound_id"]; id != "" && fresh[in.Message.GetId()] {
			ids = append(ids, id)
		}
	}
	out := make([]*store.Outbound, len(batch))
	if len(ids) == 0 {
		return out, nil
	}
	found, err := store.OutboundByIDs(ctx, q, ids)
	if err != nil {
		return nil, err
	}
	for i, in := range batch {
		m := in.Message
		o := found[m.GetAttributes()["outbound_id"]]
		if o == nil || !fresh[m.GetId()] {
			if id := m.GetAttributes()["outbound_id"]; id != "" && fresh[m.GetId()] {
				e.cfg.Logger.Info("a message names an outbound id triage did not issue; taken as an ordinary message", "message_id", m.GetId(), "outbound_id", id)
			}
			continue
		}
		ours := o.Request.GetChannel() == m.GetChannel()
		if t := o.Request.GetEmail(); t != nil {
			ours = ours && strings.EqualFold(trimAngles(t.GetMessageId()), trimAngles(m.GetSourceId()))
		} else {
			ours = ours && conv.Role(m) != supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER
		}
		if !ours {
			e.cfg.Logger.Info("a message names one of our outbound ids but is not our copy; taken as an ordinary message",
				"message_id", m.GetId(), "outbound_id", o.Request.GetId())
			continue
		}
		out[i] = o
	}
	return out, nil
}

// receive applies m to its thread's conversation, l (nil: none yet),
// through p, opening one when m opens a thread (with customer, the
// author's directory entry, nil when unknown), and returns the result
// and the thread's conversation afterwards.
func (e *Engine) receive(ctx context.Context, p *pipe, m *supportv1.InboundMessage, l *store.Locked, customer *triagev1.Customer, now time.Time) (Result, *store.Locked, error) {
	opened := false
	if l == nil && conv.Opens(m) {
		c := conv.Open(NewID(), m, now)
		if conv.IsAlertConversation(c) {
			// An alert is nobody's customer conversation: no tier.
			c.TierReason = "alert"
		} else {
			c.Tier, c.TierReason, c.Customer = e.tierOf(customer)
		}
		l, opened = &store.Locked{Conversation: c, State: &store.State{}}, true
		p.create(l.Conversation, l.State)
	}
	var c *supportv1.Conversation
	var st *store.State
	if l != nil {
		c, st = l.Conversation, l.State
	}
	res, err := e.apply(ctx, p, m, c, st, opened, now)
	return res, l, err
}

// apply applies m to its thread's conversation c (nil: none; opened: m
// just opened it) with c's state, writing through p.
func (e *Engine) apply(ctx context.Context, p *pipe, m *supportv1.InboundMessage, c *supportv1.Conversation, st *store.State, opened bool, now time.Time) (Result, error) {
	out := conv.Apply(c, m, opened, now)
	switch out.Store {
	case conv.StoreInsert:
		p.insertMessage(m, c.GetId(), now)
	case conv.StoreEdit:
		if _, err := store.EditMessage(ctx, p, m, now); err != nil {
			return "", err
		}
	case conv.StoreDelete:
		if _, err := store.DeleteMessage(ctx, p, m, now); err != nil {
			return "", err
		}
	}
	if c != nil && out.Store == conv.StoreInsert {
		// A Sentry issue link in a message links the conversation to that
		// alert.
		if err := e.reference(ctx, p, c, m.GetText(), now); err != nil {
			return "", err
		}
	}
	if c == nil || (!out.Changed && len(out.Events) == 0) {
		return Recorded, nil
	}
	if opened {
		p.attachThread(c)
	}
	if err := e.afterInbound(ctx, p, c, st, m, opened, now, &out); err != nil {
		return "", err
	}
	if err := e.save(ctx, p, c, st, out, now); err != nil {
		return "", err
	}
	return Applied, nil
}

// afterInbound classifies a customer's message, moves the response clock
// and re-evaluates the deadline when the clock changed.
func (e *Engine) afterInbound(ctx context.Context, p *pipe, c *supportv1.Conversation, st *store.State, m *supportv1.InboundMessage, opened bool, now time.Time, out *conv.Outcome) error {
	if conv.Kind(m) == supportv1.MessageKind_MESSAGE_KIND_POSTED && conv.Role(m) == supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER {
		if err := e.suggest(ctx, p, c, st, m, opened, now, out); err != nil {
			return err
		}
	}
	moved := e.track(c, st, m, now)
	pending := st.FirstResponseWork == nil && c.GetFirstResponseAt() != nil && !st.Clock.Running()
	if moved || opened || pending {
		e.schedule(ctx, p, c, st, now, out)
	}
	return nil
}

func (e *Engine) tierOf(cust *triagev1.Customer) (supportv1.Tier, string, *supportv1.CustomerRef) {
	if cust == nil {
		t, reason := e.cfg.Rules.Of(nil)
		return t, reason, nil
	}
	t, reason := e.cfg.Rules.Of(&tier.Customer{Plan: cust.GetPlan(), MonthlyRevenueCents: cust.GetMonthlyRevenueCents(), InSalesProcess: cust.GetInSalesProcess()})
	return t, reason, &supportv1.CustomerRef{Id: cust.GetId(), Name: cust.GetName(), Organisation: cust.GetOrganisation()}
}

// save writes the conversation (with its state when st is not nil), its
// audit lines and its events through p, and what they mean for its thread
// in the support channel.
func (e *Engine) save(ctx context.Context, p *pipe, c *supportv1.Conversation, st *store.State, out conv.Outcome, now time.Time) error {
	if st != nil || out.Changed {
		p.save(c, st)
	}
	for _, a := range out.Audit {
		p.auditLine(c.GetId(), a.Actor, a.Action, a.Detail, now)
	}
	if err := e.mirror(ctx, p, c, out, now); err != nil {
		return err
	}
	if len(out.Events) == 0 {
		return nil
	}
	// The events carry c as it is now: they are encoded at once.
	snapshot := e.decorate(c)
	for _, ev := range out.Events {
		if _, err := e.queue(p, snapshot, ev, now); err != nil {
			return err
		}
	}
	return nil
}

// queue writes one conversation event to the outbox through p and returns
// its id.
func (e *Engine) queue(p *pipe, snapshot *supportv1.Conversation, ev conv.Event, now time.Time) (string, error) {
	id := NewID()
	msg := &supportv1.ConversationEvent{
		Id:            id,
		Type:          ev.Type,
		OccurredAt:    timestamppb.New(now),
		Conversation:  snapshot,
		Message:       ev.Message,
		Actor:         ev.Actor,
		Reason:        ev.Reason,
		DeadlineLevel: ev.Level,
		Handoff:       ev.Handoff,
		ActionId:      ev.ActionID,
		PreviousTier:  ev.PreviousTier,
	}
	row, err := outbox.Message(bus.ConversationSubject(EventName(ev.Type)), id, now, msg)
	if err != nil {
		return "", err
	}
	p.queueEvent(row)
	return id, nil
}

// change applies f to a locked conversation with its state and saves what
// it did.
func (e *Engine) change(ctx context.Context, id string, f func(p *pipe, c *supportv1.Conversation, st *store.State, now time.Time) (conv.Outcome, error)) (*supportv1.Conversation, error) {
	if strings.TrimSpace(id) == "" {
		return nil, fmt.Errorf("conversation id is required: %w", ErrInvalid)
	}
	var (
		c *supportv1.Conversation
		p *pipe
	)
	err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		var err error
		if c, err = store.ConversationByID(ctx, tx, id, true); errors.Is(err, ErrNotFound) {
			return fmt.Errorf("conversation %s: %w", id, err)
		} else if err != nil {
			return err
		}
		st, err := store.LoadState(ctx, tx, id)
		if err != nil {
			return err
		}
		now := e.now()
		p = newPipe(tx)
		out, err := f(p, c, st, now)
		if err != nil {
			return err
		}
		if err := e.save(ctx, p, c, st, out, now); err != nil {
			return err
		}
		return p.flush(ctx)
	})
	if err != nil {
		return nil, err
	}
	e.armed(p, time.Time{})
	return e.decorate(c), nil
}

// actor defaults an empty actor to conv.System.
func actor(a string) string {
	if a = strings.TrimSpace(a); a != "" {
		return a
	}
	return conv.System
}

// Assign gives a conversation to assignee (empty unassigns), a person of
// the organisation file named by their id or any of their identities;
// anyone else is refused with ErrInvalid.
func (e *Engine) Assign(ctx context.Context, id, assignee, who string) (*supportv1.Conversation, error) {
	person, err := e.assignee(ctx, assignee)
	if err != nil {
		return nil, err
	}
	who = e.who(ctx, who)
	return e.change(ctx, id, func(_ *pipe, c *supportv1.Conversation, _ *store.State, now time.Time) (conv.Outcome, error) {
		out := conv.Assign(c, person, actor(who), now)
		acknowledge(c, who, now, &out)
		return out, nil
	})
}

// acknowledge records a person's first action on an alert as its
// acknowledgement, from which the report measures time to acknowledge.
func acknowledge(c *supportv1.Conversation, who string, now time.Time, out *conv.Outcome) {
	if conv.Acknowledge(c, actor(who), now) {
		out.Changed = true
		out.AuditLine(actor(who), "acknowledged", "alert")
	}
}

// Acknowledge records that who acknowledged an alert at at (zero: now),
// by the Acknowledge button on its page, the CLI or the console: the
// first acknowledgement counts, later ones (a replay of the same one
// included) and those of customer conversations change nothing.
func (e *Engine) Acknowledge(ctx context.Context, id, who string, at time.Time) (*supportv1.Conversation, error) {
	who = e.who(ctx, who)
	return e.change(ctx, id, func(_ *pipe, c *supportv1.Conversation, _ *store.State, now time.Time) (conv.Outcome, error) {
		if at.IsZero() {
			at = now
		}
		var out conv.Outcome
		acknowledge(c, who, at, &out)
		return out, nil
	})
}

// Tag adds and removes tags and optionally replaces the categories. Given
// categories (names from the handbook's taxonomy, the predominant first)
// are confirmed even when unchanged: suggestions stop replacing them and
// the model learns them.
func (e *Engine) Tag(ctx context.Context, id string, add, remove, categories []string, who string) (*supportv1.Conversation, error) {
	cats, err := e.ParseCategories(categories)
	if err != nil {
		return nil, err
	}
	who = e.who(ctx, who)
	var (
		learned *classify.Classifier
		version int64
	)
	c, err := e.change(ctx, id, func(p *pipe, c *supportv1.Conversation, st *store.State, now time.Time) (conv.Outcome, error) {
		out := conv.Tag(c, add, remove, cats, actor(who), now)
		acknowledge(c, who, now, &out)
		if len(cats) == 0 {
			return out, nil
		}
		if len(out.Events) == 0 {
			out.AuditLine(actor(who), "confirmed", "categories: "+strings.Join(cats, ", "))
		}
		var err error
		if learned, version, err = e.confirm(ctx, p, c, st, cats, now); err != nil {
			return out, err
		}
		if e.noClock(c) && stopClock(st, now) {
			e.schedule(ctx, p, c, st, now, &out)
		}
		return out, nil
	})
	if err == nil && learned != nil {
		e.install(learned, version)
	}
	return c, err
}

// Close closes a conversation for reason (resolved when unspecified) and
// stops its response clock. A person closing a conversation as spam
// teaches the model that it is spam.
func (e *Engine) Close(ctx context.Context, id string, reason supportv1.CloseReason, who string) (*supportv1.Conversation, error) {
	if _, ok := supportv1.CloseReason_name[int32(reason)]; !ok {
		return nil, fmt.Errorf("unknown close reason %d: %w", reason, ErrInvalid)
	}
	who = e.who(ctx, who)
	var (
		learned *classify.Classifier
		version int64
	)
	c, err := e.change(ctx, id, func(p *pipe, c *supportv1.Conversation, st *store.State, now time.Time) (conv.Outcome, error) {
		out := conv.Close(c, reason, actor(who), now)
		acknowledge(c, who, now, &out)
		if reason == supportv1.CloseReason_CLOSE_REASON_SPAM && actor(who) != conv.System {
			spam := []string{string(classify.Spam)}
			if !slices.Equal(c.GetCategories(), spam) {
				c.Categories = spam
				out.Changed = true
			}
			var err error
			if learned, version, err = e.confirm(ctx, p, c, st, spam, now); err != nil {
				return out, err
			}
		}
		if stopClock(st, now) || c.GetNextDeadlineAt() != nil {
			e.schedule(ctx, p, c, st, now, &out)
			out.Changed = true
		}
		return out, nil
	})
	if err == nil && learned != nil {
		e.install(learned, version)
	}
	return c, err
}

// Reopen opens a closed or awaiting conversation again. When the customer's
// last message was never answered (the conversation was closed on them),
// they are waiting again: the response clock restarts at the reopening and
// the deadline is re-armed. Otherwise the clock starts when the customer
// writes.
func (e *Engine) Reopen(ctx context.Context, id, who string) (*supportv1.Conversation, error) {
	who = e.who(ctx, who)
	return e.change(ctx, id, func(p *pipe, c *supportv1.Conversation, st *store.State, now time.Time) (conv.Outcome, error) {
		out := conv.Reopen(c, actor(who), now)
		if !out.Changed || e.noClock(c) {
			return out, nil
		}
		waiting, err := store.CustomerWaiting(ctx, p, c.GetId())
		if err != nil {
			return out, err
		}
		if waiting && st.Clock.CustomerWrote(now) {
			e.schedule(ctx, p, c, st, now, &out)
		}
		return out, nil
	})
}

// Escalate publishes an escalation of the conversation, to team if given.
func (e *Engine) Escalate(ctx context.Context, id, reason, team, who string) (*supportv1.Conversation, error) {
	who = e.who(ctx, who)
	return e.change(ctx, id, func(_ *pipe, c *supportv1.Conversation, _ *store.State, now time.Time) (conv.Outcome, error) {
		out, err := escalate(c, reason, team, who, now)
		if err == nil {
			acknowledge(c, who, now, &out)
		}
		return out, err
	})
}

// escalate escalates an open conversation; a closed one is ErrConflict.
func escalate(c *supportv1.Conversation, reason, team, who string, now time.Time) (conv.Outcome, error) {
	if c.GetStatus() == supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED {
		return conv.Outcome{}, fmt.Errorf("conversation %s is closed: reopen it before escalating: %w", c.GetId(), ErrConflict)
	}
	return conv.Escalate(c, reason, team, actor(who), now), nil
}

// EscalateAction is Escalate carrying out an escalate action (Slack's
// Escalate button), once: the action id is claimed in the inbox in the
// same transaction, so a redelivered action changes nothing (duplicate),
// and the ESCALATED event names the action.
func (e *Engine) EscalateAction(ctx context.Context, a *supportv1.Action, subject, who string) (c *supportv1.Conversation, duplicate bool, err error) {
	if strings.TrimSpace(a.GetId()) == "" {
		return nil, false, fmt.Errorf("escalate action without an id: %w", ErrInvalid)
	}
	who = e.who(ctx, who)
	c, err = e.change(ctx, a.GetConversationId(), func(p *pipe, c *supportv1.Conversation, _ *store.State, now time.Time) (conv.Outcome, error) {
		// Through the transaction, not the pipe: the claim's row count
		// matters, and nothing is queued yet.
		fresh, err := store.ClaimInbox(ctx, p.tx, a.GetId(), subject, now)
		if err != nil {
			return conv.Outcome{}, err
		}
		if !fresh {
			duplicate = true
			return conv.Outcome{}, nil
		}
		// An Action names no team: the escalation goes to the
		// conversation's own.
		out, err := escalate(c, a.GetReason(), "", who, now)
		for i := range out.Events {
			out.Events[i].ActionID = a.GetId()
		}
		if err == nil {
			acknowledge(c, who, now, &out)
		}
		return out, err
	})
	return c, duplicate, err
}

// maxNote bounds the size of a note.
const maxNote = 64 << 10

// AddNote stores a private note (audited; notes are not published). A
// handoff note clears the conversation's needs-handoff flag.
func (e *Engine) AddNote(ctx context.Context, id, text string, handoff bool, who string) (*triagev1.Note, error) {
	text = strings.TrimSpace(text)
	switch {
	case text == "":
		return nil, fmt.Errorf("note text is required: %w", ErrInvalid)
	case len(text) > maxNote:
		return nil, fmt.Errorf("note is longer than %d bytes: %w", maxNote, ErrInvalid)
	}
	who = e.who(ctx, who)
	var note *triagev1.Note
	_, err := e.change(ctx, id, func(p *pipe, c *supportv1.Conversation, _ *store.State, now time.Time) (conv.Outcome, error) {
		note = &triagev1.Note{Id: NewID(), Author: actor(who), Text: text, Handoff: handoff, CreatedAt: timestamppb.New(now)}
		if err := store.InsertNote(ctx, p, c.GetId(), note); err != nil {
			return conv.Outcome{}, err
		}
		action := "noted"
		if handoff {
			action = "handoff note"
		}
		out := conv.Outcome{Audit: []conv.Audit{{Actor: note.GetAuthor(), Action: action}}}
		if i := slices.Index(c.GetTags(), NeedsHandoffTag); handoff && i >= 0 {
			c.Tags = slices.Delete(slices.Clone(c.GetTags()), i, i+1)
			c.UpdatedAt = timestamppb.New(now)
			out.Changed = true
		}
		acknowledge(c, who, now, &out)
		// A Sentry issue link in a note links the conversation to that alert.
		if err := e.reference(ctx, p, c, text, now); err != nil {
			return out, err
		}
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	return note, nil
}

// Get returns a conversation with its messages, notes and audit trail.
func (e *Engine) Get(ctx context.Context, id string) (*triagev1.GetConversationResponse, error) {
	if strings.TrimSpace(id) == "" {
		return nil, fmt.Errorf("conversation id is required: %w", ErrInvalid)
	}
	var resp triagev1.GetConversationResponse
	err := pgx.BeginTxFunc(ctx, e.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		c, err := store.ConversationByID(ctx, tx, id, false)
		if err != nil {
			return err
		}
		resp.Conversation = e.decorate(c)
		if c.LinkedConversationIds, err = store.LinkedConversations(ctx, tx, c); err != nil {
			return err
		}
		if resp.Messages, err = store.Messages(ctx, tx, id); err != nil {
			return err
		}
		if resp.Notes, err = store.Notes(ctx, tx, id); err != nil {
			return err
		}
		if resp.Deliveries, err = store.Deliveries(ctx, tx, id); err != nil {
			return err
		}
		resp.Audit, err = store.Audit(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &resp, nil
}

// List returns conversations matching f in queue order.
func (e *Engine) List(ctx context.Context, f store.Filter) ([]*supportv1.Conversation, error) {
	cs, err := store.ListConversations(ctx, e.pool, f)
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		e.decorate(c)
	}
	return cs, nil
}

// Search finds conversations by the words of their messages, notes,
// subject, author and customer; see store.Search.
func (e *Engine) Search(ctx context.Context, query string, f store.Filter) ([]store.Hit, error) {
	hits, err := store.Search(ctx, e.pool, query, f)
	if errors.Is(err, store.ErrEmptyQuery) {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err != nil {
		return nil, err
	}
	for _, h := range hits {
		e.decorate(h.Conversation)
	}
	return hits, nil
}

// FillSearchText indexes, for search, the messages stored before search
// existed, batch at a time, until none is left or ctx is done.
func (e *Engine) FillSearchText(ctx context.Context, batch int) (int, error) {
	total := 0
	for {
		var n int
		// One transaction a batch, so that replicas starting together
		// skip each other's rows.
		err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
			var err error
			n, err = store.FillSearchText(ctx, tx, batch)
			return err
		})
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}
