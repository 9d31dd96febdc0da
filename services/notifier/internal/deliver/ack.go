package deliver

import (
	"context"
	"errors"
	"time"

	"github.com/sidekickhq/sidekick/platform/outbox"
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
	// At defaults to the dispatcher's clock.
	At time.Time
}

// Acknowledge records who acknowledged and when, stops unsent deliveries,
// and publishes support.notify.acked per notification. Notifications
// acknowledged before are left as they were; the result counts only the
// new acknowledgements. An unknown notification id is store.ErrNotFound.
func (d *Dispatcher) Acknowledge(ctx context.Context, a Ack) ([]store.Notification, error) {
	if a.NotificationID == "" && a.ConversationID == "" {
		return nil, errors.New("acknowledge: a notification id or a conversation id is required")
	}
	if a.At.IsZero() {
		a.At = d.clock.Now()
	}
	acked, err := d.store.Acknowledge(ctx, store.Ack{
		NotificationID: a.NotificationID, ConversationID: a.ConversationID, Actor: a.Actor, At: a.At,
	}, func(n store.Notification) (outbox.Event, error) { return ackEvent(n, a) })
	if err != nil {
		return nil, err
	}
	out := make([]store.Notification, 0, len(acked))
	for _, x := range acked {
		out = append(out, x.Notification)
		d.updateSent(ctx, x, "acknowledged by "+a.Actor)
	}
	return out, nil
}

// StopConversation stops notifying about a conversation that was answered
// or closed: unsent deliveries are cancelled and sent messages updated.
func (d *Dispatcher) StopConversation(ctx context.Context, conversationID, reason string, at time.Time) error {
	stopped, err := d.store.StopConversation(ctx, conversationID, reason, at)
	if err != nil {
		return err
	}
	for _, x := range stopped {
		if x.Notification.AcknowledgedAt.IsZero() {
			d.updateSent(ctx, x, reason)
		}
	}
	return nil
}

// ConversationStopped reports whether the conversation was answered or
// closed at or after at.
func (d *Dispatcher) ConversationStopped(ctx context.Context, conversationID string, at time.Time) (bool, error) {
	return d.store.ConversationStopped(ctx, conversationID, at)
}

// ResumeConversation forgets a stop older than at (the conversation was
// reopened).
func (d *Dispatcher) ResumeConversation(ctx context.Context, conversationID string, at time.Time) error {
	return d.store.ResumeConversation(ctx, conversationID, at)
}

// updateSent tells channels that can edit sent messages about a status
// change. Best effort: a failed update is logged, the state is recorded.
func (d *Dispatcher) updateSent(ctx context.Context, x store.Acknowledged, status string) {
	for _, del := range x.Sent {
		if del.BurstID != "" {
			// The burst's message is rewritten with every member's state.
			if err := d.store.MarkBurstDirty(ctx, del.BurstID); err != nil {
				d.logger.Warn("could not have a burst message rewritten", "delivery", del.ID, "burst", del.BurstID, "error", err)
				continue
			}
			d.runBurst(ctx, del.BurstKey)
			continue
		}
		u, ok := d.byName[del.Channel].(notify.Updater)
		if !ok {
			continue
		}
		m := message(x.Notification, del)
		m.Attempt = 0 // an update is no attempt of the delivery
		uctx, cancel := context.WithTimeout(ctx, d.cfg.SendTimeout)
		err := u.Update(uctx, notify.Receipt{Ref: del.Receipt}, m, status)
		cancel()
		if err != nil {
			d.logger.Warn("could not update sent message", "delivery", del.ID, "channel", del.Channel, "error", err)
		}
	}
}

// Notification returns the notification with id.
func (d *Dispatcher) Notification(ctx context.Context, id string) (store.Notification, error) {
	return d.store.Notification(ctx, id)
}

// Get returns a notification with its delivery log.
func (d *Dispatcher) Get(ctx context.Context, id string) (store.Notification, []store.Delivery, error) {
	n, err := d.store.Notification(ctx, id)
	if err != nil {
		return n, nil, err
	}
	ds, err := d.store.Deliveries(ctx, id)
	if err != nil {
		return n, nil, err
	}
	return n, ds, nil
}
