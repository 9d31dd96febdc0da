package deliver

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/services/notifier/internal/store"
)

// Publisher publishes events; *bus.Publisher satisfies it.
type Publisher interface {
	Publish(ctx context.Context, e bus.Event) (*jetstream.PubAck, error)
}

// Relay publishes the outbox's support.notify events and dead letters to
// JetStream.
type Relay struct {
	store   *store.Store
	pub     Publisher
	clock   clock.Clock
	logger  *slog.Logger
	metrics *metrics
	kick    chan struct{}
}

// NewRelay returns a relay of st's outbox; d's metrics count its work.
func NewRelay(st *store.Store, pub Publisher, c clock.Clock, logger *slog.Logger, d *Dispatcher) *Relay {
	return &Relay{store: st, pub: pub, clock: clock.OrReal(c), logger: logger, metrics: d.metrics, kick: make(chan struct{}, 1)}
}

// Kick wakes the relay to publish queued events now.
func (r *Relay) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run publishes queued support.notify events when kicked and every
// interval, until ctx is done. Events are published in order; a failure
// stops the round and the next one retries (JetStream drops duplicates by
// event id).
func (r *Relay) Run(ctx context.Context, interval time.Duration) error {
	for {
		if err := r.Relay(ctx); err != nil && ctx.Err() == nil {
			r.logger.Warn("relay events", "error", err)
		}
		if !clock.WaitOrWake(ctx, r.clock, interval, r.kick) {
			return nil
		}
	}
}

// Relay publishes every queued event once.
func (r *Relay) Relay(ctx context.Context) error {
	for {
		evs, err := r.store.Unpublished(ctx, 100)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if _, err := r.pub.Publish(ctx, busEvent(ev)); err != nil {
				r.metrics.relayErrors.Inc()
				return fmt.Errorf("publish %s: %w", ev.EventID, err)
			}
			if err := r.store.MarkPublished(ctx, ev.Seq, r.clock.Now()); err != nil {
				return err
			}
			r.metrics.relayed.Inc()
		}
		if len(evs) < 100 {
			return nil
		}
	}
}

func busEvent(ev store.OutboxEvent) bus.Event {
	e := bus.Event{
		Subject: ev.Subject, ID: ev.EventID, Type: ev.Type, Time: ev.OccurredAt, Data: ev.Payload,
	}
	if len(ev.Header) > 0 {
		e.Header = nats.Header{}
		for k, v := range ev.Header {
			e.Header.Set(k, v)
		}
	}
	return e
}
