package deliver

import (
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/outbox"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
	"github.com/sidekickhq/sidekick/services/notifier/internal/store"
)

// DeadLetterService names the dead-letter subject of final failures.
const DeadLetterService = "notifier"

// deliveryEvent is the outbox event of a delivery's new status. Its id
// names the delivery, status and attempt, so it is unique and stable.
func deliveryEvent(del store.Delivery, n store.Notification, status supportv1.DeliveryStatus, cause string, at time.Time) (outbox.Event, error) {
	name := statusName(status)
	msg := &supportv1.DeliveryEvent{
		Id:             fmt.Sprintf("%s/%s/%d", del.ID, name, del.Attempts),
		NotificationId: n.ID, IdempotencyKey: n.IdempotencyKey, Recipient: recipientID(del.Recipient),
		Channel: del.Channel, Status: status, Attempt: int32(del.Attempts), Error: cause,
		OccurredAt: timestamppb.New(at), ConversationId: n.ConversationID,
	}
	return outboxEvent(msg, name, at)
}

// deadLetter is the support.deadletter.notifier copy of a delivery that
// failed for good, so operators see it beside every other service's.
func deadLetter(del store.Delivery, n store.Notification, cause error, at time.Time) (outbox.Event, error) {
	ev, err := deliveryEvent(del, n, supportv1.DeliveryStatus_DELIVERY_STATUS_FAILED, cause.Error(), at)
	if err != nil {
		return ev, err
	}
	ev.ID = del.ID + "/deadletter"
	ev.Subject = bus.DeadLetterSubject(DeadLetterService)
	ev.Header = map[string]string{
		bus.HeaderErrorLocation: DeadLetterService + "/deliver/" + del.Channel,
		bus.HeaderError:         headerValue(cause.Error()),
	}
	return ev, nil
}

// ackEvent is the support.notify.acked event of an acknowledged
// notification.
func ackEvent(n store.Notification, a Ack) (outbox.Event, error) {
	return outboxEvent(&supportv1.DeliveryEvent{
		Id: n.ID + "/acked", NotificationId: n.ID, IdempotencyKey: n.IdempotencyKey,
		Recipient: a.Actor, Channel: a.Source, Status: supportv1.DeliveryStatus_DELIVERY_STATUS_ACKED,
		OccurredAt: timestamppb.New(a.At), ConversationId: n.ConversationID,
	}, "acked", a.At)
}

// headerValue makes s one header line of at most 4 kB.
func headerValue(s string) string {
	s = strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
	if len(s) > 4096 {
		s = strings.ToValidUTF8(s[:4096], "")
	}
	return s
}

func recipientID(r notify.Recipient) string {
	if r.PersonID != "" {
		return r.PersonID
	}
	return "#" + r.SlackChannel
}

func statusName(s supportv1.DeliveryStatus) string {
	switch s {
	case supportv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED:
		return "delivered"
	case supportv1.DeliveryStatus_DELIVERY_STATUS_FAILED:
		return "failed"
	case supportv1.DeliveryStatus_DELIVERY_STATUS_ACKED:
		return "acked"
	}
	return "pending"
}

func outboxEvent(msg *supportv1.DeliveryEvent, status string, at time.Time) (outbox.Event, error) {
	return outbox.Message(bus.NotifySubject(status), msg.GetId(), at, msg)
}
