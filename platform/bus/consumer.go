package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Handler processes one message; returning nil acks it. Return an error
// wrapped with Permanent for input that can never be processed, and use
// AtLocation to say where in the handler it failed.
type Handler func(ctx context.Context, msg jetstream.Msg) error

// BatchHandler processes messages in delivery order in one call (one
// transaction for all of them, say) and reports each one's outcome:
// errs[i] is msgs[i]'s, with Handler's meaning. A nil errs acks every
// message.
type BatchHandler func(ctx context.Context, msgs []jetstream.Msg) (errs []error)

// Consumer defaults.
const (
	DefaultMaxDeliver = 5
	// DefaultAckWait is how long a delivery lost in flight (a leader
	// change) waits to be resent; handlers that run longer signal progress
	// every AckWait/2, so it does not bound handler time.
	DefaultAckWait       = 10 * time.Second
	DefaultMaxAckPending = 1000
)

// DefaultBackoff is the redelivery delay after each failed attempt.
func DefaultBackoff() []time.Duration {
	return []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute}
}

// ConsumerConfig describes one durable pull consumer and how its messages
// are handled.
type ConsumerConfig struct {
	// Service owns the consumer, e.g. "triage"; dead letters go to
	// support.deadletter.<Service>. Required.
	Service string
	// Stream to consume, e.g. StreamInbound. Required.
	Stream string
	// Durable is the consumer's name on the stream. Required.
	Durable string
	// FilterSubjects limits the consumer to these subjects; none means all.
	FilterSubjects []string
	// MaxDeliver is the number of failed deliveries after which a message
	// is dead-lettered; default DefaultMaxDeliver.
	MaxDeliver int
	// Backoff is the redelivery delay after the n-th failure (the last
	// entry repeats); default DefaultBackoff.
	Backoff []time.Duration
	// AckWait is how long the server waits for an outcome before
	// redelivering; default DefaultAckWait. Long handlers are kept alive
	// with progress signals every AckWait/2.
	AckWait time.Duration
	// MaxAckPending caps messages in flight on the server; default
	// DefaultMaxAckPending, or twice Prefetch when that is more.
	MaxAckPending int
	// Concurrency is the number of handlers running at once; default 1.
	// Above 1, messages are not handled in delivery order.
	Concurrency int
	// Batch is the most messages one handler call takes (RunBatch; Run
	// calls its Handler on each in turn); default 1. A batch is what was
	// delivered by the time the handler is free, up to Batch, waiting at
	// most Linger for more once it has one.
	Batch int
	// Linger is how long a batch waits for more messages once it has one;
	// default 1ms.
	Linger time.Duration
	// DeliverPolicy applies when the consumer is first created; default
	// DeliverAll.
	DeliverPolicy jetstream.DeliverPolicy
	// Prefetch is the number of messages pulled ahead of the handlers;
	// default 2×Concurrency×Batch. Prefetched messages count against
	// AckWait.
	Prefetch int
	// DrainTimeout is how long in-flight handlers may keep running after
	// Run's context is done before their own context is cancelled;
	// default AckWait.
	DrainTimeout time.Duration
}

// withDefaults fills in zero values and checks the required fields.
func (c ConsumerConfig) withDefaults() (ConsumerConfig, error) {
	switch {
	case c.Service == "":
		return c, errors.New("consumer config: Service is required")
	case c.Stream == "":
		return c, errors.New("consumer config: Stream is required")
	case c.Durable == "":
		return c, errors.New("consumer config: Durable is required")
	case strings.ContainsAny(c.Durable, ".*> \t\r\n/\\"):
		return c, fmt.Errorf("consumer config: Durable %q may not contain '.', '*', '>', '/', '\\' or whitespace", c.Durable)
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = DefaultMaxDeliver
	}
	if len(c.Backoff) == 0 {
		c.Backoff = DefaultBackoff()
	}
	for i, d := range c.Backoff {
		if d < 0 {
			return c, fmt.Errorf("consumer config: Backoff[%d] is negative", i)
		}
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 1
	}
	if c.Batch <= 0 {
		c.Batch = 1
	}
	if c.Linger <= 0 {
		c.Linger = time.Millisecond
	}
	if c.Prefetch <= 0 {
		c.Prefetch = 2 * c.Concurrency * c.Batch
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = max(DefaultMaxAckPending, 2*c.Prefetch)
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = c.AckWait
	}
	return c, nil
}

// Consumer runs a Handler (one message per call) or a BatchHandler (up to
// Batch messages per call, in delivery order) over a durable pull consumer
// with explicit acks; both go through the same runner, and every message
// of a batch gets the outcome its handler reported.
//
// A handler error is retried with NakWithDelay(Backoff[attempt-1]) until
// the MaxDeliver-th delivery; then, or at once for a Permanent error, the
// message is published to the dead-letter stream with error_location
// ("<service>/<durable>" plus any AtLocation) and error, and acked. A panic
// in the handler is an error like any other.
//
// The server-side consumer has no delivery limit: the runner decides when
// to give up, so a dead letter that fails to publish is retried rather than
// lost. A message delivered more than MaxDeliver times without an outcome
// (the process died while handling it) is dead-lettered without calling
// the handler again.
type Consumer struct {
	js      jetstream.JetStream
	cfg     ConsumerConfig
	logger  *slog.Logger
	metrics *consumerMetrics
}

// NewConsumer checks cfg, fills in defaults and registers the metrics on
// reg (several consumers may share a registry; reg may be nil).
func NewConsumer(js jetstream.JetStream, cfg ConsumerConfig, logger *slog.Logger, reg prometheus.Registerer) (*Consumer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := newConsumerMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Consumer{
		js:      js,
		cfg:     cfg,
		logger:  logger.With("stream", cfg.Stream, "consumer", cfg.Durable),
		metrics: m,
	}, nil
}

// Config returns the configuration with defaults filled in.
func (c *Consumer) Config() ConsumerConfig { return c.cfg }

// JetStreamConfig is the server-side consumer configuration Run creates
// or updates.
//
// One filter subject goes in FilterSubject, which nats.go then names in
// the create request's subject ($JS.API.CONSUMER.CREATE.<stream>.<durable>.<filter>):
// the server checks the two agree, so a NATS user's permissions can pin
// the filter as well as the durable (platform/natsauth).
func (c *Consumer) JetStreamConfig() jetstream.ConsumerConfig {
	cfg := jetstream.ConsumerConfig{
		Durable:        c.cfg.Durable,
		Description:    "sidekick " + c.cfg.Service,
		DeliverPolicy:  c.cfg.DeliverPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        c.cfg.AckWait,
		MaxDeliver:     -1,
		FilterSubjects: c.cfg.FilterSubjects,
		MaxAckPending:  c.cfg.MaxAckPending,
	}
	if len(cfg.FilterSubjects) == 1 {
		cfg.FilterSubject, cfg.FilterSubjects = cfg.FilterSubjects[0], nil
	}
	return cfg
}

// Run creates or updates the durable pull consumer and handles messages
// until ctx is done; then it stops pulling, hands back prefetched messages
// for immediate redelivery, waits for in-flight handlers (cancelling their
// context after DrainTimeout) and returns nil. It returns an error if the
// consumer cannot be created at first, or if the connection is closed
// under it. Later failures (a deleted consumer, a lost leader) are logged
// and recovered from.
func (c *Consumer) Run(ctx context.Context, h Handler) error {
	return c.run(ctx, func(ctx context.Context, msgs []jetstream.Msg) []error {
		errs := make([]error, len(msgs))
		for i, msg := range msgs {
			mctx, span := startProcess(ctx, c.cfg.Durable, msgs[i:i+1])
			errs[i] = c.safe(msg.Subject(), func() error { return h(mctx, msg) })
			endSpan(span, errs[i])
		}
		return errs
	})
}

// RunBatch is Run with a handler that takes up to Batch messages at once.
// The handler's context carries the trace of the batch's first message
// (bus.MessageContext gives any message's).
func (c *Consumer) RunBatch(ctx context.Context, h BatchHandler) error {
	return c.run(ctx, func(ctx context.Context, msgs []jetstream.Msg) []error {
		bctx, span := startProcess(ctx, c.cfg.Durable, msgs)
		var errs []error
		defer func() { endSpan(span, errors.Join(errs...)) }()
		errs = h(bctx, msgs)
		return errs
	})
}

func (c *Consumer) run(ctx context.Context, h BatchHandler) error {
	cons, err := c.js.CreateOrUpdateConsumer(ctx, c.cfg.Stream, c.JetStreamConfig())
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it started: a shutdown, not a failure
		}
		return fmt.Errorf("create consumer %s on %s: %w", c.cfg.Durable, c.cfg.Stream, err)
	}

	// Handlers outlive ctx by at most DrainTimeout.
	hctx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()
	stopDrainTimer := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(c.cfg.DrainTimeout, cancelHandlers)
		context.AfterFunc(hctx, func() { t.Stop() })
	})
	defer stopDrainTimer()

	var wg sync.WaitGroup
	slots := make(chan struct{}, c.cfg.Concurrency)
	defer func() {
		wg.Wait()
		// Send the last acks before the caller closes the connection.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = c.js.Conn().FlushWithContext(fctx)
	}()

	wait := 250 * time.Millisecond
	for {
		err := c.consume(ctx, hctx, cons, h, &wg, slots)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, jetstream.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionClosed) {
			return fmt.Errorf("consume %s on %s: %w", c.cfg.Durable, c.cfg.Stream, err)
		}
		c.logger.Warn("consumer interrupted, recreating", "error", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		wait = min(2*wait, 10*time.Second)
		if cons, err = c.js.CreateOrUpdateConsumer(ctx, c.cfg.Stream, c.JetStreamConfig()); err != nil {
			c.logger.Warn("recreate consumer failed", "error", err)
			continue
		}
		wait = 250 * time.Millisecond
	}
}

// consume pulls messages and dispatches them to handlers until ctx is done
// (nil) or the iterator fails (its error).
func (c *Consumer) consume(ctx, hctx context.Context, cons jetstream.Consumer, h BatchHandler, wg *sync.WaitGroup, slots chan struct{}) error {
	it, err := cons.Messages(
		jetstream.PullMaxMessages(c.cfg.Prefetch),
		// A pull request lost with a consumer leader is noticed after two
		// missed heartbeats: keep that short (the default is 15s each).
		jetstream.PullHeartbeat(2*time.Second),
		jetstream.WithMessagesErrOnMissingHeartbeat(false),
	)
	if err != nil {
		return fmt.Errorf("pull messages: %w", err)
	}
	defer it.Stop()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				c.handBack(it)
				return nil
			}
			return err
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			c.nak(msg, 0)
			c.handBack(it)
			return nil
		}
		// The handler is free: the batch takes what was delivered since.
		msgs := []jetstream.Msg{msg}
		for len(msgs) < c.cfg.Batch {
			more, err := it.Next(jetstream.NextMaxWait(c.cfg.Linger))
			if err != nil {
				break // none within Linger; a broken iterator says so on the next Next
			}
			msgs = append(msgs, more)
		}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			c.handle(hctx, msgs, h)
		}()
	}
}

// handBack stops pulling and naks what was already prefetched, so that
// another instance gets it at once instead of after AckWait.
func (c *Consumer) handBack(it jetstream.MessagesContext) {
	it.Drain()
	for {
		msg, err := it.Next(jetstream.NextMaxWait(time.Second))
		if err != nil {
			return
		}
		c.nak(msg, 0)
	}
}

// delivery is a message with where it stands.
type delivery struct {
	msg          jetstream.Msg
	stream       string
	seq, attempt uint64
	logger       *slog.Logger
}

func (c *Consumer) delivery(msg jetstream.Msg) delivery {
	d := delivery{msg: msg, stream: c.cfg.Stream, attempt: 1}
	if md, err := msg.Metadata(); err == nil {
		d.attempt, d.stream, d.seq = md.NumDelivered, md.Stream, md.Sequence.Stream
	}
	d.logger = c.logger.With("subject", msg.Subject(), "seq", d.seq, "attempt", d.attempt, "id", msg.Headers().Get(HeaderID))
	return d
}

// handle runs h on msgs (those not yet past MaxDeliver) and settles each
// with its outcome.
func (c *Consumer) handle(ctx context.Context, msgs []jetstream.Msg, h BatchHandler) {
	ready := make([]delivery, 0, len(msgs))
	for _, msg := range msgs {
		d := c.delivery(msg)
		if d.attempt > uint64(c.cfg.MaxDeliver) {
			// An earlier delivery ended without an outcome.
			err := fmt.Errorf("delivered %d times, more than MaxDeliver %d, without an outcome: the handler crashed, hung past AckWait, or the dead letter failed", d.attempt, c.cfg.MaxDeliver)
			c.deadLetter(ctx, d, err)
			continue
		}
		ready = append(ready, d)
	}
	if len(ready) == 0 {
		return
	}
	batch := make([]jetstream.Msg, len(ready))
	for i, d := range ready {
		batch[i] = d.msg
	}
	start := time.Now()
	errs := c.call(ctx, batch, h)
	c.metrics.duration.WithLabelValues(c.cfg.Stream, c.cfg.Durable).Observe(time.Since(start).Seconds())
	if c.cfg.Batch > 1 {
		c.metrics.batch.WithLabelValues(c.cfg.Stream, c.cfg.Durable).Observe(float64(len(batch)))
	}
	for i, d := range ready {
		c.settle(ctx, d, errs[i])
	}
}

// settle acks, retries or dead-letters a handled message.
func (c *Consumer) settle(ctx context.Context, d delivery, err error) {
	switch {
	case err != nil && ctx.Err() != nil && !IsPermanent(err):
		// Cut short by shutdown: not the message's fault.
		d.logger.Info("handler stopped by shutdown, handing the message back", "error", err)
		c.nak(d.msg, 0)
		c.metrics.handled.WithLabelValues(c.cfg.Stream, c.cfg.Durable, resultRetry).Inc()
	case err == nil:
		if aerr := d.msg.Ack(); aerr != nil {
			d.logger.Warn("ack failed; the message will be redelivered", "error", aerr)
		}
		c.metrics.handled.WithLabelValues(c.cfg.Stream, c.cfg.Durable, resultAck).Inc()
	case IsPermanent(err) || d.attempt >= uint64(c.cfg.MaxDeliver):
		c.deadLetter(ctx, d, err)
	default:
		delay := c.cfg.Backoff[min(int(d.attempt)-1, len(c.cfg.Backoff)-1)]
		d.logger.Warn("handler failed, will retry", "error", err, "retry_in", delay)
		c.nak(d.msg, delay)
		c.metrics.handled.WithLabelValues(c.cfg.Stream, c.cfg.Durable, resultRetry).Inc()
	}
}

// call runs h, signalling progress on every message while it runs so the
// server does not redeliver a slow but live handler. It returns one
// outcome per message: a panic, or outcomes that do not match the
// messages, fail every one.
func (c *Consumer) call(ctx context.Context, msgs []jetstream.Msg, h BatchHandler) []error {
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(c.cfg.AckWait / 2)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, msg := range msgs {
					_ = msg.InProgress()
				}
			}
		}
	}()
	var errs []error
	err := c.safe(msgs[0].Subject(), func() error {
		errs = h(ctx, msgs)
		return nil
	})
	switch {
	case err != nil:
	case errs == nil:
		return make([]error, len(msgs))
	case len(errs) != len(msgs):
		err = fmt.Errorf("batch handler reported %d outcomes for %d messages", len(errs), len(msgs))
	default:
		return errs
	}
	errs = make([]error, len(msgs))
	for i := range errs {
		errs[i] = err
	}
	return errs
}

// safe runs f, turning a panic into an error.
func (c *Consumer) safe(subject string, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			c.logger.Error("handler panicked", "subject", subject, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panic: %v", r)
		}
	}()
	return f()
}

// deadLetter publishes msg to the dead-letter stream and acks it; if the
// publish fails, the message is retried later instead.
func (c *Consumer) deadLetter(ctx context.Context, d delivery, cause error) {
	location, err := DeadLetterDelivery(ctx, c.js, c.cfg.Service, c.cfg.Durable, d.msg, d.stream, d.seq, d.attempt, cause)
	if err != nil {
		delay := c.cfg.Backoff[len(c.cfg.Backoff)-1]
		d.logger.Error("dead letter failed, will retry", "error", err, "cause", cause, "retry_in", delay)
		c.nak(d.msg, delay)
		c.metrics.handled.WithLabelValues(c.cfg.Stream, c.cfg.Durable, resultRetry).Inc()
		return
	}
	d.logger.Error("message dead-lettered", "error_location", location, "error", cause)
	if err := d.msg.Ack(); err != nil {
		d.logger.Warn("ack after dead letter failed; it will be redelivered and dead-lettered again as a duplicate", "error", err)
	}
	c.metrics.handled.WithLabelValues(c.cfg.Stream, c.cfg.Durable, resultDeadLetter).Inc()
}

func (c *Consumer) nak(msg jetstream.Msg, delay time.Duration) {
	if err := Nak(msg, delay); err != nil {
		c.logger.Warn("nak failed; the message will be redelivered after AckWait", "subject", msg.Subject(), "error", err)
	}
}
