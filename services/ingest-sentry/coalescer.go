package ingestsentry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/sidekickhq/sidekick/platform/bus"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/ingest-sentry/internal/coalesce"
)

// CoalescerDurable is the durable consumer of SENTRY_OCCURRENCES.
const CoalescerDurable = "ingest-sentry-coalescer"

// retryDelay is the wait before a failed downstream publish is retried.
const retryDelay = time.Second

// Run consumes SENTRY_OCCURRENCES and publishes coalesced messages to
// support.inbound.sentry, and serves replays of its webhook dead letters
// (see replay), until ctx is done; then it publishes what is
// pending and returns. It returns an error if the consumer cannot be
// created or the connection is closed under it.
func (s *Service) Run(ctx context.Context) error {
	cons, err := s.deps.JS.CreateOrUpdateConsumer(ctx, OccurrenceStream, jetstream.ConsumerConfig{
		Durable:       CoalescerDurable,
		Description:   "sidekick ingest-sentry: coalesces occurrences per issue",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.cfg.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: s.cfg.MaxPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("create consumer %s on %s: %w", CoalescerDurable, OccurrenceStream, err)
	}
	sub, err := bus.ServeReplay(ctx, s.deps.JS.Conn(), Name, s.cfg.PublishTimeout, s.replay)
	if err != nil {
		return err
	}
	defer func() { _ = sub.Drain() }()
	l := &loop{s: s, co: s.coalescerFor(), held: map[uint64]string{}}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return l.run(gctx, cons) })
	// The ownership rules of organisation file versions applied through
	// rotation.
	g.Go(func() error { return s.org.Run(gctx) })
	return g.Wait()
}

// loop is the coalescer's single goroutine state.
type loop struct {
	s  *Service
	co *coalesce.Coalescer
	// held is the ack subject (the delivery's reply subject) of each
	// pending occurrence by stream sequence, to ack once the message that
	// counts it is published. The subject is all an ack needs; holding
	// the whole delivery (payload and headers, 2–4 kB) for up to
	// MaxPending occurrences grew the service from 21 MB to 241 MB in a
	// storm of 50,000.
	held map[uint64]string
	// heldPeak is the most held since held was last emptied: Go maps do
	// not shrink, so a map that grew in a storm is replaced once empty.
	heldPeak int
	// sinceReturn counts occurrences since memory was last given back,
	// lastReceived is when the latest came (see stormQuiet).
	sinceReturn  int
	lastReceived time.Time
}

// A storm is over, and the memory it took is given back, once stormQuiet
// passes without an occurrence after at least stormOccurrences, and again
// once the occurrences it left pending are sent (held is replaced then).
// Go's runtime would keep the memory for minutes otherwise: without new
// allocations no collection runs (one is forced every two minutes) and
// the heap's goal stays where the storm put it, so freed pages are not
// returned.
const (
	stormOccurrences = 10000
	stormQuiet       = 10 * time.Second
)

// ackBody is what acknowledges a JetStream delivery on its reply subject
// (what jetstream.Msg.Ack sends).
const ackBody = "+ACK"

// shrinkHeldAbove is the size of held worth replacing once empty.
const shrinkHeldAbove = 4096

func (l *loop) run(ctx context.Context, cons jetstream.Consumer) error {
	it, err := cons.Messages(jetstream.PullMaxMessages(1000), jetstream.WithMessagesErrOnMissingHeartbeat(false))
	if err != nil {
		return fmt.Errorf("pull %s: %w", OccurrenceStream, err)
	}
	msgs := make(chan jetstream.Msg, 1024)
	pullErr := make(chan error, 1)
	go func() {
		defer close(msgs)
		for {
			m, err := it.Next()
			if err != nil {
				if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					return
				}
				if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, jetstream.ErrConnectionClosed) {
					pullErr <- err
					return
				}
				l.s.deps.Logger.Warn("pull sentry occurrences", "error", err)
				continue
			}
			msgs <- m
		}
	}()
	tick := time.NewTicker(min(max(l.s.cfg.CoalesceInterval/10, 10*time.Millisecond), time.Second))
	defer tick.Stop()
	lastEvict := l.s.deps.Clock.Now()
	for {
		select {
		case <-ctx.Done():
			it.Stop()
			l.shutdown(ctx, msgs)
			return nil
		case err := <-pullErr:
			return fmt.Errorf("consume %s: %w", OccurrenceStream, err)
		case m, ok := <-msgs:
			if !ok {
				continue
			}
			l.handle(ctx, m)
		case <-tick.C:
			now := l.s.deps.Clock.Now()
			for _, b := range l.co.Due(now) {
				l.send(ctx, b)
			}
			if now.Sub(lastEvict) >= l.s.cfg.CoalesceInterval {
				l.co.Evict(now)
				lastEvict = now
			}
			if l.sinceReturn >= stormOccurrences && now.Sub(l.lastReceived) >= stormQuiet {
				l.giveBackMemory()
			}
		}
		l.s.metrics.pending.Set(float64(l.co.Pending()))
	}
}

// shutdown hands back prefetched messages and publishes what is pending,
// so a rolling restart neither delays nor recounts anything.
func (l *loop) shutdown(ctx context.Context, msgs <-chan jetstream.Msg) {
	for m := range msgs {
		_ = m.Nak()
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	for _, b := range l.co.FlushAll() {
		l.send(fctx, b)
	}
	_ = l.s.deps.JS.Conn().FlushWithContext(fctx)
	l.s.metrics.pending.Set(float64(l.co.Pending()))
}

// handle takes one message off SENTRY_OCCURRENCES.
func (l *loop) handle(ctx context.Context, m jetstream.Msg) {
	md, err := m.Metadata()
	if err != nil {
		l.deadLetter(ctx, m, fmt.Errorf("no metadata: %w", err))
		return
	}
	seq := md.Sequence.Stream
	if _, ok := l.held[seq]; ok {
		// Redelivered while still pending here (a long retry): keep the
		// newest delivery to ack, count it once.
		l.held[seq] = strings.Clone(m.Reply())
		return
	}
	var in supportv1.InboundMessage
	if err := bus.Decode(m, &in); err != nil {
		l.deadLetter(ctx, m, err)
		return
	}
	key := m.Subject()[len(occurrencePrefix):]
	now := l.s.deps.Clock.Now()
	if m.Headers().Get(headerRole) == roleOccurrence {
		l.s.metrics.received.Inc()
		l.sinceReturn++
		l.lastReceived = now
		// A copy, so that nothing of the delivery stays reachable.
		l.held[seq] = strings.Clone(m.Reply())
		l.heldPeak = max(l.heldPeak, len(l.held))
		o := coalesce.Occurrence{
			Message: &in, Seq: seq, EventID: in.GetAttributes()["event_id"],
			IssueCreated: in.GetAttributes()["sentry_resource"] == "issue",
		}
		if b := l.co.Add(key, o, now); b != nil {
			l.send(ctx, b)
		}
		return
	}
	// A state change, comment or metric alert: send what is pending for
	// the issue first, so the order downstream is the order received.
	if b := l.co.Flush(key); b != nil && !l.send(ctx, b) {
		_ = m.NakWithDelay(retryDelay)
		return
	}
	if err := l.publish(ctx, &in); err != nil {
		l.s.deps.Logger.Warn("publish sentry message; will retry", "id", in.GetId(), "error", err)
		_ = m.NakWithDelay(retryDelay)
		return
	}
	l.s.metrics.downstream.WithLabelValues("passthrough").Inc()
	_ = m.Ack()
	if in.GetKind() == supportv1.MessageKind_MESSAGE_KIND_THREAD_CLOSED || in.GetAttributes()["muted"] == "true" {
		// A new occurrence after a resolve or mute is news: send it at once.
		l.co.Forget(key)
	}
}

// send publishes a batch and acks its occurrences, or puts it back. A
// batch of duplicates only is acknowledged without a message.
func (l *loop) send(ctx context.Context, b *coalesce.Batch) bool {
	if b.Count > 0 {
		if err := l.publish(ctx, b.Message()); err != nil {
			l.s.metrics.errors.Inc()
			l.s.deps.Logger.Warn("publish coalesced sentry message; will retry", "issue", b.Key, "occurrences", b.Count, "error", err)
			l.co.Failed(b, l.s.deps.Clock.Now().Add(retryDelay))
			return false
		}
		kind := "update"
		if b.First {
			kind = "first"
		}
		l.co.Sent(b.Key, l.s.deps.Clock.Now())
		l.s.metrics.downstream.WithLabelValues(kind).Inc()
		l.s.metrics.coalesced.Add(float64(b.Count))
	}
	l.ack(b)
	l.s.metrics.duplicates.Add(float64(b.Duplicates))
	return true
}

func (l *loop) ack(b *coalesce.Batch) {
	nc := l.s.deps.JS.Conn()
	for _, seq := range b.Seqs {
		if reply, ok := l.held[seq]; ok {
			_ = nc.Publish(reply, []byte(ackBody))
			delete(l.held, seq)
		}
	}
	if len(l.held) == 0 && l.heldPeak > shrinkHeldAbove {
		l.held, l.heldPeak = map[uint64]string{}, 0
		l.giveBackMemory()
	}
}

// giveBackMemory returns what a storm left to the system (see stormQuiet).
func (l *loop) giveBackMemory() {
	l.s.deps.ReturnMemory()
	l.sinceReturn = 0
}

func (l *loop) publish(ctx context.Context, m *supportv1.InboundMessage) error {
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := l.s.deps.Publisher.Publish(pctx, bus.Event{Subject: bus.InboundSubject("sentry"), ID: m.GetId(), Message: m})
	return err
}

func (l *loop) deadLetter(ctx context.Context, m jetstream.Msg, cause error) {
	if err := l.s.deps.DeadLetter(ctx, Name+"/coalescer", m.Data(), m.Headers(), cause); err != nil {
		l.s.deps.Logger.Error("dead-letter sentry occurrence; will retry", "error", err)
		_ = m.NakWithDelay(retryDelay)
		return
	}
	_ = m.Ack()
}
