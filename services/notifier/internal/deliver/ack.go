package deliver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
	"github.com/sidekickhq/sidekick/services/notifier/internal/store"
)

// Ack asks to acknowledge a notification, or every notification of a
// conversation.
type Ack struct {
	NotificationID string
	ConversationID string
	// Actor is the person id (or Slack user id) who acknowledged.
	Actor string
	// Source is where the acknowledgement came from: "slack", "cli", "grpc".
	Source string
	// At defaults to the engine's clock.
	At time.Time
}

// Acknowledge records who acknowledged and when, stops unsent deliveries,
// and publishes support.notify.acked per notification. Notifications
// acknowledged before are left as they were; the result counts only the
// new acknowledgements. An unknown notification id is store.ErrNotFound.
func (e *Engine) Acknowledge(ctx context.Context, a Ack) ([]store.Notification, error) {
	if a.NotificationID == "" && a.ConversationID == "" {
		return nil, errors.New("acknowledge: a notification id or a conversation id is required")
	}
	if a.At.IsZero() {
		a.At = e.now()
	}
	acked, err := e.store.Acknowledge(ctx, store.Ack{
		NotificationID: a.NotificationID, ConversationID: a.ConversationID, Actor: a.Actor, At: a.At,
	}, func(n store.Notification) (store.OutboxEvent, error) {
		return outboxEvent(&supportv1.DeliveryEvent{
			Id: n.ID + "/acked", NotificationId: n.ID, IdempotencyKey: n.IdempotencyKey,
			Recipient: a.Actor, Channel: a.Source, Status: supportv1.DeliveryStatus_DELIVERY_STATUS_ACKED,
			OccurredAt: timestamppb.New(a.At), ConversationId: n.ConversationID,
		}, "acked", a.At)
	})
	if err != nil {
		return nil, err
	}
	e.Kick()
	out := make([]store.Notification, 0, len(acked))
	for _, x := range acked {
		out = append(out, x.Notification)
		e.updateSent(ctx, x, "acknowledged by "+a.Actor)
	}
	return out, nil
}

// StopConversation stops notifying about a conversation that was answered
// or closed: unsent deliveries are cancelled and sent messages updated.
func (e *Engine) StopConversation(ctx context.Context, conversationID, reason string, at time.Time) error {
	stopped, err := e.store.StopConversation(ctx, conversationID, reason, at)
	if err != nil {
		return err
	}
	for _, x := range stopped {
		if x.Notification.AcknowledgedAt.IsZero() {
			e.updateSent(ctx, x, reason)
		}
	}
	return nil
}

// updateSent tells channels that can edit sent messages about a status
// change. Best effort: a failed update is logged, the state is recorded.
func (e *Engine) updateSent(ctx context.Context, x store.Acknowledged, status string) {
	for _, d := range x.Sent {
		u, ok := e.byName[d.Channel].(notify.Updater)
		if !ok {
			continue
		}
		n := x.Notification
		m := notify.Message{
			NotificationID: n.ID, DeliveryID: d.ID, Recipient: d.Recipient, Urgency: n.Urgency,
			Title: n.Title, Text: n.Body, Links: n.Links, ConversationID: n.ConversationID, DedupKey: d.DedupKey,
		}
		uctx, cancel := context.WithTimeout(ctx, e.cfg.SendTimeout)
		err := u.Update(uctx, notify.Receipt{Ref: d.Receipt}, m, status)
		cancel()
		if err != nil {
			e.logger.Warn("could not update sent message", "delivery", d.ID, "channel", d.Channel, "error", err)
		}
	}
}

// Get returns a notification with its delivery log.
func (e *Engine) Get(ctx context.Context, id string) (store.Notification, []store.Delivery, error) {
	n, err := e.store.Notification(ctx, id)
	if err != nil {
		return n, nil, err
	}
	ds, err := e.store.Deliveries(ctx, id)
	if err != nil {
		return n, nil, err
	}
	return n, ds, nil
}

// RunSweeper resumes what a previous process left (at once) and then sends
// due deliveries every interval until ctx is done.
func (e *Engine) RunSweeper(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := e.Sweep(ctx); err != nil && ctx.Err() == nil {
			e.logger.Error("sweep deliveries", "error", err)
		} else if n > 0 {
			e.logger.Debug("swept deliveries", "attempted", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// RunRelay publishes queued support.notify events when kicked and every
// interval, until ctx is done. Events are published in order; a failure
// stops the round and the next one retries (JetStream drops duplicates by
// event id).
func (e *Engine) RunRelay(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := e.Relay(ctx); err != nil && ctx.Err() == nil {
			e.logger.Warn("relay events", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-e.kick:
		case <-t.C:
		}
	}
}

// Relay publishes every queued event once.
func (e *Engine) Relay(ctx context.Context) error {
	for {
		evs, err := e.store.Unpublished(ctx, 100)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if _, err := e.pub.Publish(ctx, busEvent(ev)); err != nil {
				e.metrics.relayErrors.Inc()
				return fmt.Errorf("publish %s: %w", ev.EventID, err)
			}
			if err := e.store.MarkPublished(ctx, ev.Seq, e.now()); err != nil {
				return err
			}
			e.metrics.relayed.Inc()
		}
		if len(evs) < 100 {
			return nil
		}
	}
}

// ConversationStopped reports whether the conversation was answered or
// closed at or after at.
func (e *Engine) ConversationStopped(ctx context.Context, conversationID string, at time.Time) (bool, error) {
	return e.store.ConversationStopped(ctx, conversationID, at)
}

// ResumeConversation forgets a stop older than at (the conversation was
// reopened).
func (e *Engine) ResumeConversation(ctx context.Context, conversationID string, at time.Time) error {
	return e.store.ResumeConversation(ctx, conversationID, at)
}
