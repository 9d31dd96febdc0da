// Package outbound sends customer replies effectively once. Each channel's
// own service (ingest-slack, ingest-email, ingest-github: the one holding
// the channel's credentials) runs a Runner over support.outbound.<channel>
// with a Channel that speaks to its provider; the Runner publishes an
// OutboundReceipt on support.outbound.<channel>.receipt for every
// OutboundMessage.
//
// # Effectively once
//
// JetStream delivers a message at least once: after a crash, a lost ack or
// a stuck handler it comes again. A reply must still reach the customer
// once. Three things make that so.
//
// An idempotency key per reply. The OutboundMessage id names the reply
// wherever it goes: the key of its record in a JetStream key-value bucket
// (the "ledger", one per sending service; the services themselves stay
// stateless), Slack message metadata, a hidden marker in a GitHub comment,
// the email Message-ID.
//
// A record of the point of no return. A Channel calls reached() right
// before the first step after which the provider may have the message (the
// HTTP request that posts it; the end of an SMTP DATA), and reached writes
// "reached" to the ledger first, with compare-and-set on the record's
// revision, so two deliveries of one message racing each other cannot both
// go on. After the provider answers, the ledger records "sent" (with the
// provider's id) or "failed", then the receipt is published, then the
// message acked. A crash anywhere leaves one of these states, and the next
// delivery reads it:
//
//   - no record: nothing can have reached the provider; send.
//   - "sent" or "failed" of this retry: publish the receipt again (its
//     CloudEvents id is fixed, so a copy is dropped or recognised), ack.
//   - "reached": the earlier attempt may or may not have arrived. Ask the
//     provider (Channel.Find: Slack's conversations.replies with message
//     metadata, GitHub's comments for the marker) and record what it has,
//     or send if it has nothing. Find runs no sooner than Settle after the
//     earlier attempt reached the provider, so a request still being
//     processed there is seen rather than raced.
//
// A check with the provider. Where none can be asked (SMTP, whose relay
// keeps no index a client can query), Find returns ErrCannotCheck and the
// message is sent again with the same Message-ID; the receipt counts these
// unverified resends. The window in which that can make a copy is from the
// end of the DATA to the ledger's record of the relay's 250: a relay that
// accepted the message just before the crash gets it twice, with one
// Message-ID, which most mail stores show once.
//
// # Failures
//
// A Channel's error says what the provider answered: Permanent (refused,
// and sending it again unchanged cannot work), RateLimited (wait and try
// again: the Runner waits up to MaxRateWait inside the delivery, since the
// provider did not take the message), or anything else (retried with the
// consumer's backoff). A permanent failure, or a retryable one on the last
// delivery, is recorded and reported as FAILED with the provider's reason;
// a person can retry it (a new OutboundMessage with the same id and the
// next retry number), and the first thing that retry does, if the failed
// attempt had reached the provider, is look for it there.
package outbound

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/platform/promreg"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

// Sent is where the provider keeps a sent message.
type Sent struct {
	// ProviderID is the provider's id: Slack ts, email Message-ID, GitHub
	// comment id.
	ProviderID string
	Permalink  string
}

// Channel is one provider's side of sending.
type Channel interface {
	// Send delivers m. It must call reached right before the first step
	// after which the provider may have the message, and stop with its
	// error if it fails. It may call it again before a later attempt within
	// the same Send.
	Send(ctx context.Context, m *supportv1.OutboundMessage, reached func(context.Context) error) (Sent, error)
	// Find looks at the provider for m as sent by an earlier attempt that
	// reached it at since or later: ok is false when it is not there.
	// ErrCannotCheck says the provider cannot be asked.
	Find(ctx context.Context, m *supportv1.OutboundMessage, since time.Time) (s Sent, ok bool, err error)
}

// ErrCannotCheck is Find's answer for a provider that cannot be asked
// whether it has a message (SMTP).
var ErrCannotCheck = errors.New("the provider cannot be asked whether it has the message")

// Unverifiable is implemented by a Channel whose Find always answers
// ErrCannotCheck, so that the Runner does not wait Settle for nothing.
type Unverifiable interface {
	CannotCheck()
}

// Failure is a Channel error that says what the provider answered.
type Failure struct {
	// Reason is the provider's own words: Slack's error code, the SMTP
	// reply, GitHub's message.
	Reason string
	// Permanent is true when sending the message again unchanged cannot
	// work.
	Permanent bool
	// RetryAfter, when set, is how long the provider asked us to wait; the
	// message was not taken.
	RetryAfter time.Duration
	Err        error
}

func (f *Failure) Error() string {
	if f.Err != nil {
		return f.Reason + ": " + f.Err.Error()
	}
	return f.Reason
}

func (f *Failure) Unwrap() error { return f.Err }

// Permanent is a refusal that sending again unchanged cannot fix.
func Permanent(reason string, err error) error {
	return &Failure{Reason: reason, Permanent: true, Err: err}
}

// Retryable is a failure that may pass on a later attempt.
func Retryable(reason string, err error) error { return &Failure{Reason: reason, Err: err} }

// RateLimited is a refusal to be retried after d; the provider did not
// take the message.
func RateLimited(reason string, d time.Duration) error {
	return &Failure{Reason: reason, RetryAfter: max(d, time.Second)}
}

// failureOf returns err as a Failure; an error of another kind is
// retryable, with its text as the reason.
func failureOf(err error) *Failure {
	var f *Failure
	if errors.As(err, &f) {
		return f
	}
	return &Failure{Reason: err.Error(), Err: err}
}

// validID is the form of an outbound id: a ledger key, a Message-ID local
// part and a marker all take it as is.
var validID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// DefaultLedgerMaxBytes bounds a ledger bucket unless Config.MaxBytes
// says otherwise: a record is a few hundred bytes, so 64 MiB holds some
// 200,000 replies within the ledger's age, far more than a support team
// sends on one channel in a month, and three channels fit the NATS
// storage budget (deploy/policy TestProductionStreamLimits).
const DefaultLedgerMaxBytes = 64 << 20

// Channels are the channels replies go out on, each with its ledger.
var Channels = []string{"slack", "email", "github"}

// ledgerBucket is a channel's default ledger bucket.
func ledgerBucket(channel string) string { return "OUTBOUND_" + strings.ToUpper(channel) }

// LedgerStream is the name of the stream behind a channel's default
// ledger bucket, as the NATS exporter reports it.
func LedgerStream(channel string) string { return "KV_" + ledgerBucket(channel) }

// RegisterLedgerLimits publishes the byte limit of every channel's ledger
// (maxBytes, or the default) as sidekick_bus_stream_max_bytes, beside the
// streams' (bus.RegisterStreamLimits), so SidekickStreamFilling warns
// before a ledger is full. The limit is one setting every service shares,
// so the host publishes it once per process.
func RegisterLedgerLimits(reg prometheus.Registerer, maxBytes int64) error {
	if maxBytes <= 0 {
		maxBytes = DefaultLedgerMaxBytes
	}
	for _, ch := range Channels {
		if err := bus.RegisterStreamLimit(reg, LedgerStream(ch), maxBytes); err != nil {
			return err
		}
	}
	return nil
}

// Config configures a Runner.
type Config struct {
	// Channel is "slack", "email" or "github": the Runner consumes
	// support.outbound.<Channel>.
	Channel string
	// Service owns the consumer and its dead letters, e.g. "ingest-slack".
	Service string
	// Source is the ce-source of the receipts.
	Source string
	// Bucket is the ledger's key-value bucket; default "OUTBOUND_" + the
	// channel in capitals.
	Bucket string
	// Replicas of the ledger bucket; default 1.
	Replicas int
	// MaxBytes bounds the ledger bucket; default DefaultLedgerMaxBytes. A
	// full ledger refuses new records, and a reply whose attempt cannot be
	// recorded first is not sent: it is delivered again later (and
	// reported failed, with a retry, after MaxDeliver), never sent without
	// the record that keeps a redelivery from sending it twice.
	MaxBytes int64
	// LedgerTTL is how long a reply's record is kept: a retry a person asks
	// for later than this is sent without looking for earlier attempts.
	// Default 30 days, the stream's own age limit.
	LedgerTTL time.Duration
	// Concurrency is how many replies are sent at once; default 4.
	Concurrency int
	// MaxDeliver is how many deliveries a reply gets before it is reported
	// failed; default 8.
	MaxDeliver int
	// Backoff between deliveries; default bus.DefaultBackoff.
	Backoff []time.Duration
	// AckWait is how long a delivery whose process died waits before it is
	// sent again; default bus.DefaultAckWait.
	AckWait time.Duration
	// Settle is how long after an attempt reached the provider the Runner
	// waits before asking the provider about it; default 5s.
	Settle time.Duration
	// MaxRateWait bounds one wait for a provider's rate limit inside a
	// delivery; a longer one hands the message back. Default 30s.
	MaxRateWait time.Duration
}

func (c Config) withDefaults() (Config, error) {
	if !slices.Contains(Channels, c.Channel) {
		return c, fmt.Errorf("outbound: channel %q, want slack, email or github", c.Channel)
	}
	if c.Service == "" || c.Source == "" {
		return c, errors.New("outbound: Service and Source are required")
	}
	if c.Bucket == "" {
		c.Bucket = ledgerBucket(c.Channel)
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.LedgerTTL <= 0 {
		c.LedgerTTL = bus.DefaultEventMaxAge
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultLedgerMaxBytes
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 8
	}
	if c.AckWait <= 0 {
		c.AckWait = bus.DefaultAckWait
	}
	if c.Settle <= 0 {
		c.Settle = 5 * time.Second
	}
	if c.MaxRateWait <= 0 {
		c.MaxRateWait = 30 * time.Second
	}
	return c, nil
}

// Publisher publishes one event and returns after the PubAck.
type Publisher interface {
	Publish(ctx context.Context, e bus.Event) (*jetstream.PubAck, error)
}

// Deps are a Runner's collaborators.
type Deps struct {
	JS        jetstream.JetStream
	Publisher Publisher
	Logger    *slog.Logger
	Registry  prometheus.Registerer
	Clock     clock.Clock
}

// Runner consumes one channel's replies and sends them through a Channel.
type Runner struct {
	cfg     Config
	ch      Channel
	deps    Deps
	sends   *prometheus.CounterVec
	kv      jetstream.KeyValue
	durable string
	// threads sends one conversation's replies one at a time within
	// the process.
	threads keyedMutex
}

// keyedMutex is a mutex per key, forgotten when nobody holds or waits.
type keyedMutex struct {
	mu   sync.Mutex
	keys map[string]*keyed
}

type keyed struct {
	mu    sync.Mutex
	users int
}

// lock locks key and returns its unlock.
func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.keys == nil {
		k.keys = map[string]*keyed{}
	}
	e := k.keys[key]
	if e == nil {
		e = &keyed{}
		k.keys[key] = e
	}
	e.users++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		if e.users--; e.users == 0 {
			delete(k.keys, key)
		}
		k.mu.Unlock()
	}
}

// New checks cfg and builds a Runner.
func New(cfg Config, ch Channel, deps Deps) (*Runner, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if ch == nil || deps.JS == nil || deps.Publisher == nil {
		return nil, errors.New("outbound: a channel, JetStream and a publisher are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	deps.Clock = clock.OrReal(deps.Clock)
	deps.Logger = deps.Logger.With("component", "outbound", "channel", cfg.Channel)
	sends, err := promreg.Register(deps.Registry, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sidekick_outbound_replies_total",
		Help: "Replies handled by channel and result (sent, recovered, failed, failed_permanent, retry, repeated_receipt, stale).",
	}, []string{"channel", "result"}))
	if err != nil {
		return nil, fmt.Errorf("outbound: metrics: %w", err)
	}
	return &Runner{cfg: cfg, ch: ch, deps: deps, sends: sends, durable: cfg.Service + "-outbound-" + cfg.Channel}, nil
}

// ProvisionLedger creates or updates the ledger bucket of cfg's channel:
// the provisioning step of the service that sends its replies, run as a
// NATS user allowed to make buckets.
func ProvisionLedger(ctx context.Context, js jetstream.JetStream, cfg Config) error {
	if cfg.Source == "" {
		// The bucket does not depend on the events' source.
		cfg.Source = cfg.Service
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	if _, err := js.CreateOrUpdateKeyValue(ctx, ledgerConfig(cfg)); err != nil {
		return fmt.Errorf("outbound: ledger bucket %s: %w", cfg.Bucket, err)
	}
	return nil
}

func ledgerConfig(cfg Config) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "sidekick " + cfg.Service + ": where each " + cfg.Channel + " reply stands (outbound ledger)",
		History:     1,
		TTL:         cfg.LedgerTTL,
		MaxBytes:    cfg.MaxBytes,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	}
}

// Run opens the ledger bucket, creating it when it is missing (where the
// NATS user may: a service user may not, and its provisioning step made
// it), and sends replies until ctx is done.
func (r *Runner) Run(ctx context.Context) error {
	kv, err := r.deps.JS.KeyValue(ctx, r.cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = r.deps.JS.CreateOrUpdateKeyValue(ctx, ledgerConfig(r.cfg))
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("outbound: ledger bucket %s: %w", r.cfg.Bucket, err)
	}
	r.kv = kv
	cons, err := bus.NewConsumer(r.deps.JS, bus.ConsumerConfig{
		Service:        r.cfg.Service,
		Stream:         bus.StreamOutbound,
		Durable:        r.durable,
		FilterSubjects: []string{bus.OutboundSubject(r.cfg.Channel)},
		MaxDeliver:     r.cfg.MaxDeliver,
		Backoff:        r.cfg.Backoff,
		AckWait:        r.cfg.AckWait,
		Concurrency:    r.cfg.Concurrency,
	}, r.deps.Logger, r.deps.Registry)
	if err != nil {
		return fmt.Errorf("outbound: consumer: %w", err)
	}
	return cons.Run(ctx, r.handle)
}

// record is a reply's entry in the ledger.
type record struct {
	// State is "reached", "sent" or "failed".
	State string `json:"state"`
	Retry int32  `json:"retry"`
	// Reached is when the last attempt reached the point of no return;
	// zero when none did.
	Reached    time.Time `json:"reached,omitzero"`
	ProviderID string    `json:"provider_id,omitempty"`
	Permalink  string    `json:"permalink,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	Permanent  bool      `json:"permanent,omitempty"`
	Recovered  bool      `json:"recovered,omitempty"`
	Unverified int32     `json:"unverified,omitempty"`
}

// clockSkew is how far a provider's clock may be behind ours when Find
// looks for messages since an attempt.
const clockSkew = time.Minute

const (
	stateReached = "reached"
	stateSent    = "sent"
	stateFailed  = "failed"
)

// ledgerEntry is a reply's record and its revision (0: none yet).
type ledgerEntry struct {
	rec *record
	rev uint64
}

func (r *Runner) load(ctx context.Context, id string) (ledgerEntry, error) {
	e, err := r.kv.Get(ctx, id)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return ledgerEntry{}, nil
	case err != nil:
		return ledgerEntry{}, fmt.Errorf("read ledger %s: %w", id, err)
	}
	rec := new(record)
	if err := json.Unmarshal(e.Value(), rec); err != nil {
		return ledgerEntry{}, fmt.Errorf("decode ledger %s: %w", id, err)
	}
	return ledgerEntry{rec: rec, rev: e.Revision()}, nil
}

// store writes rec over the revision in le (creating it when there is
// none), so a concurrent writer makes it fail; it returns the new entry.
func (r *Runner) store(ctx context.Context, id string, le ledgerEntry, rec *record) (ledgerEntry, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return le, fmt.Errorf("encode ledger %s: %w", id, err)
	}
	var rev uint64
	if le.rev == 0 {
		rev, err = r.kv.Create(ctx, id, b)
	} else {
		rev, err = r.kv.Update(ctx, id, b, le.rev)
	}
	if err != nil {
		return le, fmt.Errorf("write ledger %s (%s): %w", id, rec.State, err)
	}
	return ledgerEntry{rec: rec, rev: rev}, nil
}

// storeFinal writes an outcome, trying a few times: the provider has
// already answered, and losing the record costs a check (or, for email, a
// copy) on redelivery.
func (r *Runner) storeFinal(ctx context.Context, id string, le ledgerEntry, rec *record) error {
	var err error
	for i := range 3 {
		if _, err = r.store(ctx, id, le, rec); err == nil {
			return nil
		}
		if !clock.Wait(ctx, r.deps.Clock, time.Duration(i+1)*100*time.Millisecond) {
			break
		}
	}
	return err
}

// handle is the bus handler for one OutboundMessage.
func (r *Runner) handle(ctx context.Context, msg jetstream.Msg) error {
	m := new(supportv1.OutboundMessage)
	if err := bus.Decode(msg, m); err != nil {
		return err
	}
	if !validID.MatchString(m.GetId()) {
		return bus.Permanent(fmt.Errorf("outbound message id %q: want 1 to 128 letters, digits, '-' or '_'", m.GetId()))
	}
	if c := m.GetConversationId(); c != "" {
		// One conversation's replies are sent one at a time in this
		// process. That keeps them in the stream's order, except for
		// two whose handlers the consumer starts at the same instant
		// and a reply retried after a failure.
		defer r.threads.lock(c)()
	}
	delivery := uint64(1)
	if md, err := msg.Metadata(); err == nil {
		delivery = md.NumDelivered
	}
	last := delivery >= uint64(r.cfg.MaxDeliver)
	logger := r.deps.Logger.With("outbound_id", m.GetId(), "retry", m.GetRetry(), "delivery", delivery)

	if err := checkTarget(m, r.cfg.Channel); err != nil {
		// Refused before it reached anything: nothing to record.
		return r.receipt(ctx, logger, m, &record{State: stateFailed, Retry: m.GetRetry(), Reason: err.Error(), Permanent: true}, "failed_permanent")
	}

	le, err := r.load(ctx, m.GetId())
	if err != nil {
		return err
	}
	rec := le.rec
	switch {
	case rec == nil:
	case rec.Retry > m.GetRetry():
		logger.Info("an older retry of a reply came after a newer one; ignoring it", "ledger_retry", rec.Retry)
		r.sends.WithLabelValues(r.cfg.Channel, "stale").Inc()
		return nil
	case rec.State == stateSent:
		out := *rec
		out.Retry = m.GetRetry()
		return r.receipt(ctx, logger, m, &out, "repeated_receipt")
	case rec.State == stateFailed && rec.Retry == m.GetRetry():
		return r.receipt(ctx, logger, m, rec, "repeated_receipt")
	}

	unverified := int32(0)
	if rec != nil {
		unverified = rec.Unverified
	}
	if rec != nil && !rec.Reached.IsZero() {
		// An earlier attempt may have reached the provider: ask it first.
		_, unverifiable := r.ch.(Unverifiable)
		if wait := rec.Reached.Add(r.cfg.Settle).Sub(r.deps.Clock.Now()); wait > 0 && !unverifiable {
			if !clock.Wait(ctx, r.deps.Clock, min(wait, r.cfg.Settle)) {
				return ctx.Err()
			}
		}
		// Providers stamp messages with their own clock: look from a
		// minute before the attempt.
		s, ok, err := r.ch.Find(ctx, m, rec.Reached.Add(-clockSkew))
		switch {
		case errors.Is(err, ErrCannotCheck):
			unverified++
			logger.Warn("an earlier attempt may have reached the provider, which cannot be asked: sending again with the same id")
		case err != nil:
			return r.failed(ctx, logger, m, le, rec.Reached, unverified, fmt.Errorf("look for an earlier attempt: %w", err), last)
		case ok:
			out := &record{State: stateSent, Retry: m.GetRetry(), Reached: rec.Reached, ProviderID: s.ProviderID, Permalink: s.Permalink, Recovered: true, Unverified: unverified}
			if err := r.storeFinal(ctx, m.GetId(), le, out); err != nil {
				return err
			}
			logger.Info("an earlier attempt had reached the provider; not sending again", "provider_id", s.ProviderID)
			return r.receipt(ctx, logger, m, out, "recovered")
		}
	}
	return r.send(ctx, logger, m, le, unverified, last)
}

// send runs the Channel's Send, waiting out rate limits, and records the
// outcome.
func (r *Runner) send(ctx context.Context, logger *slog.Logger, m *supportv1.OutboundMessage, le ledgerEntry, unverified int32, last bool) error {
	var reachedAt time.Time
	if le.rec != nil {
		reachedAt = le.rec.Reached
	}
	reached := func(ctx context.Context) error {
		now := r.deps.Clock.Now()
		next, err := r.store(ctx, m.GetId(), le, &record{State: stateReached, Retry: m.GetRetry(), Reached: now, Unverified: unverified})
		if err != nil {
			return err
		}
		le, reachedAt = next, now
		return nil
	}
	for {
		s, err := r.ch.Send(ctx, m, reached)
		if err == nil {
			out := &record{State: stateSent, Retry: m.GetRetry(), Reached: reachedAt, ProviderID: s.ProviderID, Permalink: s.Permalink, Unverified: unverified}
			if err := r.storeFinal(ctx, m.GetId(), le, out); err != nil {
				// The receipt goes out anyway; the redelivery that the
				// error causes finds the message at the provider.
				logger.Error("sent, but the ledger could not record it", "error", err)
				_ = r.receipt(ctx, logger, m, out, "sent")
				return err
			}
			return r.receipt(ctx, logger, m, out, "sent")
		}
		f := failureOf(err)
		if f.RetryAfter > 0 && f.RetryAfter <= r.cfg.MaxRateWait {
			logger.Info("rate limited by the provider; waiting", "reason", f.Reason, "retry_after", f.RetryAfter)
			if !clock.Wait(ctx, r.deps.Clock, f.RetryAfter) {
				return ctx.Err()
			}
			continue
		}
		if f.Permanent {
			out := &record{State: stateFailed, Retry: m.GetRetry(), Reached: reachedAt, Reason: f.Reason, Permanent: true, Unverified: unverified}
			if err := r.storeFinal(ctx, m.GetId(), le, out); err != nil {
				return err
			}
			return r.receipt(ctx, logger, m, out, "failed_permanent")
		}
		return r.failed(ctx, logger, m, le, reachedAt, unverified, err, last)
	}
}

// failed handles a retryable failure: the consumer tries again later, or,
// on the last delivery, the reply is recorded and reported failed.
func (r *Runner) failed(ctx context.Context, logger *slog.Logger, m *supportv1.OutboundMessage, le ledgerEntry, reachedAt time.Time, unverified int32, err error, last bool) error {
	if !last || ctx.Err() != nil {
		r.sends.WithLabelValues(r.cfg.Channel, "retry").Inc()
		return err
	}
	out := &record{State: stateFailed, Retry: m.GetRetry(), Reached: reachedAt, Reason: failureOf(err).Reason, Unverified: unverified}
	if serr := r.storeFinal(ctx, m.GetId(), le, out); serr != nil {
		// No delivery follows this one: report the failure anyway (a full
		// ledger, say), so the reply shows failed with a retry rather than
		// sending for ever. A retry finds no record and sends.
		logger.Error("failed, and the ledger could not record it", "error", serr)
		_ = r.receipt(ctx, logger, m, out, "failed")
		return errors.Join(err, serr)
	}
	return r.receipt(ctx, logger, m, out, "failed")
}

// ReceiptID is the CloudEvents id of the receipt of a reply's retry.
func ReceiptID(outboundID string, retry int32) string {
	return outboundID + "/receipt-" + strconv.Itoa(int(retry))
}

// RequestID is the CloudEvents id of an OutboundMessage: its id for the
// first request, id + "/retry-" + n for the n-th retry.
func RequestID(m *supportv1.OutboundMessage) string {
	if m.GetRetry() == 0 {
		return m.GetId()
	}
	return m.GetId() + "/retry-" + strconv.Itoa(int(m.GetRetry()))
}

// receipt publishes the OutboundReceipt of rec; an error leaves the
// message to be delivered again, which publishes it again.
func (r *Runner) receipt(ctx context.Context, logger *slog.Logger, m *supportv1.OutboundMessage, rec *record, result string) error {
	rc := &supportv1.OutboundReceipt{
		OutboundId:        m.GetId(),
		ConversationId:    m.GetConversationId(),
		Channel:           m.GetChannel(),
		Status:            supportv1.OutboundStatus_OUTBOUND_STATUS_SENT,
		ProviderId:        rec.ProviderID,
		Permalink:         rec.Permalink,
		Retry:             m.GetRetry(),
		OccurredAt:        timestamppb.New(r.deps.Clock.Now()),
		Recovered:         rec.Recovered,
		UnverifiedResends: rec.Unverified,
	}
	if rec.State != stateSent {
		rc.Status = supportv1.OutboundStatus_OUTBOUND_STATUS_FAILED
		rc.Reason, rc.Permanent = rec.Reason, rec.Permanent
	}
	if _, err := r.deps.Publisher.Publish(ctx, bus.Event{
		Subject: bus.OutboundReceiptSubject(r.cfg.Channel),
		ID:      ReceiptID(m.GetId(), m.GetRetry()),
		Message: rc,
	}); err != nil {
		return fmt.Errorf("publish receipt: %w", err)
	}
	r.sends.WithLabelValues(r.cfg.Channel, result).Inc()
	switch rc.Status {
	case supportv1.OutboundStatus_OUTBOUND_STATUS_SENT:
		logger.Info("reply sent", "provider_id", rc.ProviderId, "recovered", rc.Recovered, "result", result)
	default:
		logger.Warn("reply failed", "reason", rc.Reason, "permanent", rc.Permanent, "result", result)
	}
	return nil
}

// checkTarget refuses a message that cannot be sent on channel whatever
// the provider says.
func checkTarget(m *supportv1.OutboundMessage, channel string) error {
	if strings.TrimSpace(m.GetText()) == "" {
		return errors.New("invalid outbound message: empty text")
	}
	mirror := false
	switch m.GetKind() {
	case supportv1.OutboundKind_OUTBOUND_KIND_UNSPECIFIED, supportv1.OutboundKind_OUTBOUND_KIND_REPLY:
	case supportv1.OutboundKind_OUTBOUND_KIND_MIRROR_HEADER, supportv1.OutboundKind_OUTBOUND_KIND_MIRROR_COPY,
		supportv1.OutboundKind_OUTBOUND_KIND_MIRROR_UPDATE:
		mirror = true
	default:
		return fmt.Errorf("invalid outbound message: unknown kind %s", m.GetKind())
	}
	if mirror && channel != "slack" {
		return errors.New("invalid outbound message: the support-channel mirror is on Slack only")
	}
	switch channel {
	case "slack":
		t := m.GetSlack()
		switch m.GetKind() {
		case supportv1.OutboundKind_OUTBOUND_KIND_MIRROR_HEADER:
			if t.GetChannel() == "" || m.GetConversation().GetId() == "" {
				return errors.New("invalid outbound message: a mirror header needs slack.channel and the conversation")
			}
		case supportv1.OutboundKind_OUTBOUND_KIND_MIRROR_UPDATE:
			if t.GetChannel() == "" || t.GetTs() == "" || m.GetConversation().GetId() == "" {
				return errors.New("invalid outbound message: a mirror update needs slack.channel, slack.ts and the conversation")
			}
		default:
			if t.GetChannel() == "" || t.GetThreadTs() == "" {
				return errors.New("invalid outbound message: a Slack reply needs slack.channel and slack.thread_ts")
			}
		}
	case "email":
		t := m.GetEmail()
		if len(t.GetTo()) == 0 {
			return errors.New("invalid outbound message: an email reply needs email.to")
		}
	case "github":
		t := m.GetGithub()
		owner, repo, ok := strings.Cut(t.GetRepository(), "/")
		if !ok || owner == "" || repo == "" || strings.Contains(repo, "/") || t.GetNumber() <= 0 ||
			(t.GetKind() != supportv1.GitHubTarget_KIND_ISSUE && t.GetKind() != supportv1.GitHubTarget_KIND_DISCUSSION) {
			return errors.New("invalid outbound message: a GitHub reply needs github.repository (owner/name), kind and number")
		}
	}
	return nil
}
