// Package batch consumes a JetStream durable pull consumer in ordered
// batches: it takes the messages already delivered (up to MaxBatch,
// waiting at most Linger for more once it has one) and hands them to one
// call, which applies them in delivery order in one transaction. When the
// batch call fails, each message of the batch is handled on its own with
// the bus consumer's rules: retried with backoff, dead-lettered with its
// place and reason when permanent or after MaxDeliver attempts.
//
// One Run handles one batch at a time, so messages are applied in the order
// they were delivered (per-thread order holds as with bus.Consumer at
// concurrency 1); batching only amortises the round trips and the commit.
package batch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sidekickhq/sidekick/platform/promreg"

	"github.com/sidekickhq/sidekick/platform/bus"
)

// Func applies a batch in order, all or nothing: nil acks every message,
// an error hands each to the single-message handler.
type Func func(ctx context.Context, msgs []jetstream.Msg) error

// Config describes the durable consumer and the batches.
type Config struct {
	// Service, Stream, Durable and FilterSubjects are as in
	// bus.ConsumerConfig.
	Service        string
	Stream         string
	Durable        string
	FilterSubjects []string
	// MaxDeliver, Backoff and AckWait are as in bus.ConsumerConfig.
	MaxDeliver int
	Backoff    []time.Duration
	AckWait    time.Duration
	// MaxBatch is the most messages applied at once; default 200.
	MaxBatch int
	// Linger is how long a batch waits for more messages once it has one;
	// default 1ms.
	Linger time.Duration
}

func (c Config) withDefaults() (Config, error) {
	switch {
	case c.Service == "" || c.Stream == "" || c.Durable == "":
		return c, errors.New("batch consumer: Service, Stream and Durable are required")
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = bus.DefaultMaxDeliver
	}
	if len(c.Backoff) == 0 {
		c.Backoff = bus.DefaultBackoff()
	}
	if c.AckWait <= 0 {
		c.AckWait = bus.DefaultAckWait
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 200
	}
	if c.Linger <= 0 {
		c.Linger = time.Millisecond
	}
	return c, nil
}

// Consumer runs batches over a durable pull consumer.
type Consumer struct {
	js     jetstream.JetStream
	cfg    Config
	logger *slog.Logger

	batches  prometheus.Histogram
	handled  *prometheus.CounterVec
	fallback prometheus.Counter
}

// New returns a consumer; its metrics register on reg.
func New(js jetstream.JetStream, cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Consumer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Consumer{js: js, cfg: cfg, logger: logger.With("stream", cfg.Stream, "consumer", cfg.Durable)}
	labels := prometheus.Labels{"consumer": cfg.Durable}
	if c.batches, err = promreg.Register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "sidekick_triage_inbound_batch_size", Help: "Messages applied per batch transaction.",
		Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500}, ConstLabels: labels,
	})); err != nil {
		return nil, err
	}
	if c.handled, err = promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sidekick_triage_inbound_messages_total", Help: "Messages by outcome (ack, retry, dead_letter).", ConstLabels: labels,
	}, []string{"result"})); err != nil {
		return nil, err
	}
	if c.fallback, err = promreg.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sidekick_triage_inbound_batch_fallbacks_total", Help: "Batches that failed and were handled message by message.", ConstLabels: labels,
	})); err != nil {
		return nil, err
	}
	return c, nil
}

// JetStreamConfig is the server-side consumer configuration Run creates or
// updates (the same as bus.Consumer's).
func (c *Consumer) JetStreamConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        c.cfg.Durable,
		Description:    "sidekick " + c.cfg.Service,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        c.cfg.AckWait,
		MaxDeliver:     -1,
		FilterSubjects: c.cfg.FilterSubjects,
		MaxAckPending:  max(bus.DefaultMaxAckPending, 4*c.cfg.MaxBatch),
	}
}

// Run consumes until ctx is done, then hands prefetched messages back and
// returns nil. batch applies batches; one handles a message on its own.
func (c *Consumer) Run(ctx context.Context, batch Func, one bus.Handler) error {
	cons, err := c.js.CreateOrUpdateConsumer(ctx, c.cfg.Stream, c.JetStreamConfig())
	if err != nil {
		return fmt.Errorf("create consumer %s on %s: %w", c.cfg.Durable, c.cfg.Stream, err)
	}
	// A batch in progress finishes even when ctx ends.
	hctx := context.WithoutCancel(ctx)
	wait := 250 * time.Millisecond
	for {
		err := c.consume(ctx, hctx, cons, batch, one)
		if ctx.Err() != nil {
			fctx, cancel := context.WithTimeout(hctx, 5*time.Second)
			_ = c.js.Conn().FlushWithContext(fctx)
			cancel()
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

func (c *Consumer) consume(ctx, hctx context.Context, cons jetstream.Consumer, batch Func, one bus.Handler) error {
	it, err := cons.Messages(jetstream.PullMaxMessages(2*c.cfg.MaxBatch), jetstream.WithMessagesErrOnMissingHeartbeat(false))
	if err != nil {
		return fmt.Errorf("pull messages: %w", err)
	}
	defer it.Stop()
	msgs := make([]jetstream.Msg, 0, c.cfg.MaxBatch)
	for {
		first, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				c.handBack(it)
				return nil
			}
			return err
		}
		msgs = append(msgs[:0], first)
		for len(msgs) < c.cfg.MaxBatch {
			msg, err := it.Next(jetstream.NextMaxWait(c.cfg.Linger))
			if err != nil {
				break
			}
			msgs = append(msgs, msg)
		}
		c.process(hctx, msgs, batch, one)
		if ctx.Err() != nil {
			c.handBack(it)
			return nil
		}
	}
}

// handBack stops pulling and naks what was prefetched, so another
// instance gets it at once.
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

type meta struct {
	attempt, seq uint64
	stream       string
}

func (c *Consumer) metaOf(msg jetstream.Msg) meta {
	m := meta{attempt: 1, stream: c.cfg.Stream}
	if md, err := msg.Metadata(); err == nil {
		m.attempt, m.stream, m.seq = md.NumDelivered, md.Stream, md.Sequence.Stream
	}
	return m
}

// process applies msgs as a batch, or one by one when that fails.
func (c *Consumer) process(ctx context.Context, msgs []jetstream.Msg, batch Func, one bus.Handler) {
	var ready []jetstream.Msg
	for _, msg := range msgs {
		if m := c.metaOf(msg); m.attempt > uint64(c.cfg.MaxDeliver) {
			c.deadLetter(ctx, msg, m, fmt.Errorf("delivered %d times, more than MaxDeliver %d, without an outcome", m.attempt, c.cfg.MaxDeliver))
			continue
		}
		ready = append(ready, msg)
	}
	if len(ready) == 0 {
		return
	}
	err := safe(func() error { return batch(ctx, ready) })
	if err == nil {
		c.batches.Observe(float64(len(ready)))
		for _, msg := range ready {
			c.ack(msg)
		}
		return
	}
	if len(ready) > 1 {
		c.fallback.Inc()
		c.logger.Info("batch failed; handling its messages one by one", "messages", len(ready), "error", err)
	}
	for _, msg := range ready {
		c.handleOne(ctx, msg, one)
	}
}

func (c *Consumer) handleOne(ctx context.Context, msg jetstream.Msg, one bus.Handler) {
	m := c.metaOf(msg)
	err := safe(func() error { return one(ctx, msg) })
	switch {
	case err == nil:
		c.batches.Observe(1)
		c.ack(msg)
	case bus.IsPermanent(err) || m.attempt >= uint64(c.cfg.MaxDeliver):
		c.deadLetter(ctx, msg, m, err)
	default:
		delay := c.cfg.Backoff[min(int(m.attempt)-1, len(c.cfg.Backoff)-1)]
		c.logger.Warn("handler failed, will retry", "subject", msg.Subject(), "seq", m.seq, "attempt", m.attempt, "error", err, "retry_in", delay)
		c.nak(msg, delay)
		c.handled.WithLabelValues("retry").Inc()
	}
}

// safe runs f, turning a panic into an error.
func safe(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panic: %v\n%s", r, debug.Stack())
		}
	}()
	return f()
}

func (c *Consumer) ack(msg jetstream.Msg) {
	if err := msg.Ack(); err != nil {
		c.logger.Warn("ack failed; the message will be redelivered", "subject", msg.Subject(), "error", err)
	}
	c.handled.WithLabelValues("ack").Inc()
}

func (c *Consumer) nak(msg jetstream.Msg, delay time.Duration) {
	if err := bus.Nak(msg, delay); err != nil {
		c.logger.Warn("nak failed; the message will be redelivered after AckWait", "subject", msg.Subject(), "error", err)
	}
}

// deadLetter publishes msg to the dead-letter stream with its place and
// reason and acks it; when that fails the message is retried later.
func (c *Consumer) deadLetter(ctx context.Context, msg jetstream.Msg, m meta, cause error) {
	location, err := bus.DeadLetterDelivery(ctx, c.js, c.cfg.Service, c.cfg.Durable, msg, m.stream, m.seq, m.attempt, cause)
	if err != nil {
		delay := c.cfg.Backoff[len(c.cfg.Backoff)-1]
		c.logger.Error("dead letter failed, will retry", "error", err, "cause", cause, "retry_in", delay)
		c.nak(msg, delay)
		c.handled.WithLabelValues("retry").Inc()
		return
	}
	c.logger.Error("message dead-lettered", "subject", msg.Subject(), "error_location", location, "error", cause)
	if err := msg.Ack(); err != nil {
		c.logger.Warn("ack after dead letter failed", "error", err)
	}
	c.handled.WithLabelValues("dead_letter").Inc()
}
