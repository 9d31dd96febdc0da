package deliver

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/sidekickhq/sidekick/platform/outbox"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
	"github.com/sidekickhq/sidekick/services/notifier/internal/store"
)

// Send sends the due deliveries of one notification.
func (d *Dispatcher) Send(ctx context.Context, notificationID string) error {
	now := d.clock.Now()
	// The burst keys of its pending deliveries ("" for those sent on
	// their own) spare a claim when all of them are sent by bursts, as a
	// burst of pings is: one read on the path of every new conversation.
	keys, err := d.store.BurstKeys(ctx, notificationID, now, 0)
	if err != nil {
		return err
	}
	if slices.Contains(keys, "") {
		jobs, err := d.store.Claim(ctx, notificationID, now, now.Add(d.cfg.Lease), d.cfg.Batch)
		if err != nil {
			return err
		}
		d.attemptAll(ctx, jobs)
	}
	for _, k := range keys {
		if k != "" {
			d.runBurst(ctx, k)
		}
	}
	return nil
}

// attempt makes one attempt of a claimed delivery and records its outcome.
// Failures are recorded, not returned: the delivery log is the source of
// truth and the sweeper retries.
func (d *Dispatcher) attempt(ctx context.Context, j store.Job) {
	del, n := j.Delivery, j.Notification
	logger := d.logger.With("delivery", del.ID, "notification", n.ID, "channel", del.Channel,
		"recipient", del.Recipient.Display(), "attempt", del.Attempts)
	msg := message(n, del)
	ch, ok := d.byName[del.Channel]
	var receipt notify.Receipt
	found := false
	if ok && j.Resumed {
		receipt, found = d.find(ctx, ch, msg, logger)
	}
	if !found {
		if held, err := d.rateLimited(ctx, del, n); err != nil {
			logger.Warn("rate limit check failed; sending anyway", "error", err)
		} else if !held.IsZero() {
			if err := d.store.Defer(ctx, del.ID, del.Attempts, held, d.clock.Now()); err != nil {
				logger.Error("could not hold back a rate-limited delivery; the lease will expire and it is tried again", "error", err)
				return
			}
			d.metrics.rateLimited.WithLabelValues(del.Channel).Inc()
			logger.Info("recipient's rate limit reached; held back", "until", held)
			return
		}
	}
	var err error
	switch {
	case found:
		logger.Info("the cut-short attempt had reached the provider; recording it, not sending again", "receipt", receipt.Ref)
	case !ok:
		err = notify.Permanent(fmt.Errorf("channel %q is not configured in this process", del.Channel))
	default:
		// The timeout bounds a call over the network and the histogram
		// measures it: both are wall-clock time, not the service clock.
		sctx, cancel := context.WithTimeout(ctx, d.cfg.SendTimeout)
		start := time.Now()
		receipt, err = ch.Send(sctx, msg)
		cancel()
		d.metrics.sendSeconds.WithLabelValues(del.Channel).Observe(time.Since(start).Seconds())
	}
	if after, ok := notify.Later(err); ok {
		// The channel's pace has no room now: not an attempt, and no
		// worker waits for it.
		now := d.clock.Now()
		if err := d.store.Defer(ctx, del.ID, del.Attempts, now.Add(after), now); err != nil {
			logger.Error("could not reschedule a paced delivery; the lease will expire and it is tried again", "error", err)
			return
		}
		d.metrics.deliveries.WithLabelValues(del.Channel, "paced").Inc()
		logger.Debug("channel's pace has no room; rescheduled", "after", after)
		return
	}
	if ctx.Err() != nil && err != nil {
		// Shutting down mid-send: leave the claim; its lease expires and the
		// next sweep (here or in another replica) resumes it.
		logger.Info("send interrupted by shutdown; will resume", "error", err)
		return
	}
	// Record the outcome even if shutdown begins now: a send that happened
	// must not be forgotten and sent again.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	now := d.clock.Now()
	if err == nil {
		ev, evErr := deliveryEvent(del, n, supportv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED, "", now)
		since := ""
		if evErr == nil {
			since, evErr = d.store.MarkDelivered(ctx, del.ID, del.Attempts, receipt.Ref, now, ev)
		}
		if evErr != nil {
			logger.Error("sent but could not record it; the lease will expire and it may be sent again", "error", evErr)
			return
		}
		d.metrics.deliveries.WithLabelValues(del.Channel, "delivered").Inc()
		logger.Info("delivered")
		if since != "" {
			// Acknowledged or answered while this message was on its way.
			del.Receipt = receipt.Ref
			d.updateSent(ctx, store.Acknowledged{Notification: n, Sent: []store.Delivery{del}}, since)
		}
		return
	}
	var retryAt time.Time
	result := "failed"
	if !notify.IsPermanent(err) && del.Attempts < d.cfg.MaxAttempts {
		retryAt = now.Add(d.retryDelay(del.Attempts, err))
		result = "retry"
	}
	ev, evErr := deliveryEvent(del, n, supportv1.DeliveryStatus_DELIVERY_STATUS_FAILED, err.Error(), now)
	events := []outbox.Event{ev}
	if evErr == nil && result == "failed" {
		var dl outbox.Event
		dl, evErr = deadLetter(del, n, err, now)
		events = append(events, dl)
	}
	hurried := false
	if evErr == nil {
		hurried, evErr = d.store.MarkFailed(ctx, del.ID, del.Attempts, err.Error(), retryAt, now, events...)
	}
	if evErr != nil {
		logger.Error("send failed and could not record it", "error", err, "record_error", evErr)
		return
	}
	d.metrics.deliveries.WithLabelValues(del.Channel, result).Inc()
	if result == "retry" {
		logger.Warn("send failed; will retry", "error", err, "retry_at", retryAt)
	} else {
		logger.Error("send failed for good", "error", err, "next_step_now", hurried)
	}
	if hurried {
		d.hurried()
	}
}

// find looks at the provider for the message of a delivery whose previous
// attempt was cut short, through channels that can tell (notify.Finder).
// Not found, or not known (the channel cannot look, or the look failed),
// the delivery is sent again.
func (d *Dispatcher) find(ctx context.Context, ch notify.Channel, m notify.Message, logger *slog.Logger) (notify.Receipt, bool) {
	f, ok := ch.(notify.Finder)
	if !ok {
		return notify.Receipt{}, false
	}
	fctx, cancel := context.WithTimeout(ctx, d.cfg.SendTimeout)
	defer cancel()
	r, found, err := f.Find(fctx, m)
	if err != nil {
		logger.Warn("could not look for the message of a cut-short attempt; sending it again", "error", err)
		return notify.Receipt{}, false
	}
	return r, found
}

// retryDelay is the wait after a failed attempt: exponential backoff with
// jitter, and no less than the Retry-After the channel was told.
func (d *Dispatcher) retryDelay(attempt int, err error) time.Duration {
	delay := d.cfg.Backoff(attempt)
	delay -= time.Duration(float64(delay) * d.cfg.Jitter * d.rand())
	if after, ok := notify.RetryAfter(err); ok && after > delay {
		delay = after
	}
	return delay
}

// rateLimited returns when a ping may go out if the recipient already got
// (or is being sent) RateLimit messages through the channel within
// RateWindow; zero when it may go now, its place in the window taken.
// Pages are never held back, but take their place; the pager and mirror
// channels are not limited.
func (d *Dispatcher) rateLimited(ctx context.Context, del store.Delivery, n store.Notification) (time.Time, error) {
	if d.cfg.RateLimit < 0 || d.extra[del.Channel] {
		return time.Time{}, nil
	}
	limit := d.cfg.RateLimit
	if n.Urgency == notify.Page {
		limit = 0
	}
	return d.store.TakeRateSlot(ctx, del.ID, del.Channel, del.Recipient, d.clock.Now(), d.cfg.RateWindow, limit)
}

func message(n store.Notification, del store.Delivery) notify.Message {
	return notify.Message{
		NotificationID: n.ID, DeliveryID: del.ID, Recipient: del.Recipient, Urgency: n.Urgency,
		Title: n.Title, Text: n.Body, Links: n.Links, ConversationID: n.ConversationID,
		DedupKey: del.DedupKey, Attempt: del.Attempts,
	}
}

// Refresh rewrites the sent messages with text appended to their body,
// through the channels that can (best effort: failures are logged). It
// returns how many messages were rewritten.
func (d *Dispatcher) Refresh(ctx context.Context, sent []store.Job, text string) int {
	done := 0
	for _, j := range sent {
		r, ok := d.byName[j.Delivery.Channel].(notify.Refresher)
		if !ok || j.Delivery.BurstID != "" {
			// A burst's message lists its members by their titles.
			continue
		}
		m := message(j.Notification, j.Delivery)
		if text != "" {
			m.Text = strings.TrimSpace(m.Text + "\n\n" + text)
		}
		rctx, cancel := context.WithTimeout(ctx, d.cfg.SendTimeout)
		err := r.Refresh(rctx, notify.Receipt{Ref: j.Delivery.Receipt}, m)
		cancel()
		if err != nil {
			d.logger.Warn("could not refresh sent message", "delivery", j.Delivery.ID, "channel", j.Delivery.Channel, "error", err)
			continue
		}
		done++
	}
	d.metrics.refreshes.Add(float64(done))
	return done
}
