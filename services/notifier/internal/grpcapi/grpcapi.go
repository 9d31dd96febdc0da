// Package grpcapi serves sidekick.notify.v1.NotifierService over the
// dispatcher, and maps its errors to gRPC codes in one place.
package grpcapi

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	notifyv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/notify/v1"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/notifier/internal/deliver"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
	"github.com/sidekickhq/sidekick/services/notifier/internal/store"
)

// Dispatcher is what the API needs from deliver.Dispatcher.
type Dispatcher interface {
	Notify(ctx context.Context, req deliver.Request) (store.Notification, bool, error)
	Acknowledge(ctx context.Context, a deliver.Ack) ([]store.Notification, error)
	Get(ctx context.Context, id string) (store.Notification, []store.Delivery, error)
}

// Server implements notifyv1.NotifierServiceServer.
type Server struct {
	notifyv1.UnimplementedNotifierServiceServer
	dispatcher Dispatcher
}

var _ notifyv1.NotifierServiceServer = (*Server)(nil)

// New returns a Server over d.
func New(d Dispatcher) *Server { return &Server{dispatcher: d} }

// Notify records and sends a notification, once per idempotency key.
func (s *Server) Notify(ctx context.Context, req *notifyv1.NotifyRequest) (*notifyv1.NotifyResponse, error) {
	if req.GetIdempotencyKey() == "" {
		return nil, status.Error(codes.InvalidArgument, "idempotency_key is required")
	}
	if req.GetTitle() == "" && req.GetText() == "" {
		return nil, status.Error(codes.InvalidArgument, "title or text is required")
	}
	targets := make([]deliver.Target, 0, len(req.GetRecipients()))
	for i, r := range req.GetRecipients() {
		t, err := target(r)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "recipients[%d]: %v", i, err)
		}
		if req.GetTest() && t.PersonID == "" {
			return nil, status.Errorf(codes.InvalidArgument, "recipients[%d]: a test is for people: name a person, not a role or a channel", i)
		}
		targets = append(targets, t)
	}
	urgency := notify.Ping
	if req.GetUrgency() == notifyv1.Urgency_URGENCY_HIGH {
		urgency = notify.Page
	}
	links := make([]notify.Link, 0, len(req.GetLinks()))
	for _, l := range req.GetLinks() {
		links = append(links, notify.Link{Title: l.GetTitle(), URL: l.GetUrl()})
	}
	n, created, err := s.dispatcher.Notify(ctx, deliver.Request{
		IdempotencyKey: "grpc/" + req.GetIdempotencyKey(), Origin: "grpc", Targets: targets, Urgency: urgency,
		Title: req.GetTitle(), Text: req.GetText(), Links: links, ConversationID: req.GetConversationId(),
		Test: req.GetTest(),
	})
	if err != nil && n.ID == "" {
		return nil, toStatus(err)
	}
	// A send failure after recording is in the delivery log; the answer
	// shows it.
	n, ds, err := s.dispatcher.Get(ctx, n.ID)
	if err != nil {
		return nil, toStatus(err)
	}
	if req.GetTest() {
		// A test answers with what each channel said. A delivery the
		// sweeper claimed before this call's send did is still on its
		// way: wait for it (a send is bounded by its timeout).
		n, ds, err = s.whileSending(ctx, n, ds)
		if err != nil {
			return nil, toStatus(err)
		}
	}
	return &notifyv1.NotifyResponse{Notification: NotificationProto(n, ds), Created: created}, nil
}

// testWait bounds how long a test's answer waits for sends in flight.
const testWait = 15 * time.Second

// whileSending reads the notification again until none of its deliveries
// is being sent, or testWait has passed.
func (s *Server) whileSending(ctx context.Context, n store.Notification, ds []store.Delivery) (store.Notification, []store.Delivery, error) {
	// Wall-clock time: it waits for calls over the network.
	deadline := time.Now().Add(testWait)
	for slices.ContainsFunc(ds, func(d store.Delivery) bool { return d.Status == store.StatusSending }) && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return n, ds, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		var err error
		if n, ds, err = s.dispatcher.Get(ctx, n.ID); err != nil {
			return n, ds, err
		}
	}
	return n, ds, nil
}

// Acknowledge records an acknowledgement of a notification or of every
// notification of a conversation.
func (s *Server) Acknowledge(ctx context.Context, req *notifyv1.AcknowledgeRequest) (*notifyv1.AcknowledgeResponse, error) {
	if req.GetId() == "" && req.GetConversationId() == "" {
		return nil, status.Error(codes.InvalidArgument, "id or conversation_id is required")
	}
	acked, err := s.dispatcher.Acknowledge(ctx, deliver.Ack{
		NotificationID: req.GetId(), ConversationID: req.GetConversationId(), Actor: req.GetActor(), Source: "grpc",
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &notifyv1.AcknowledgeResponse{Acknowledged: int32(len(acked))}, nil
}

// GetNotification returns a notification with its delivery log.
func (s *Server) GetNotification(ctx context.Context, req *notifyv1.GetNotificationRequest) (*notifyv1.GetNotificationResponse, error) {
	if req.GetId() == "" {
		return nil, status.Error(codes.InvalidArgument, "id is required")
	}
	n, ds, err := s.dispatcher.Get(ctx, req.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &notifyv1.GetNotificationResponse{Notification: NotificationProto(n, ds)}, nil
}

func target(r *notifyv1.Recipient) (deliver.Target, error) {
	switch t := r.GetTarget().(type) {
	case *notifyv1.Recipient_Person:
		if t.Person == "" {
			return deliver.Target{}, errors.New("empty person")
		}
		return deliver.Target{PersonID: t.Person}, nil
	case *notifyv1.Recipient_SlackChannel:
		if t.SlackChannel == "" {
			return deliver.Target{}, errors.New("empty slack_channel")
		}
		return deliver.Target{SlackChannel: strings.TrimPrefix(t.SlackChannel, "#")}, nil
	case *notifyv1.Recipient_Role:
		switch strings.ToLower(strings.TrimPrefix(strings.ToUpper(t.Role.GetRole()), "ROLE_")) {
		case "hero":
			return deliver.Target{Role: rotationv1.Role_ROLE_HERO, Team: t.Role.GetTeam()}, nil
		case "secondary":
			if t.Role.GetTeam() == "" {
				return deliver.Target{}, errors.New("role secondary needs a team")
			}
			return deliver.Target{Role: rotationv1.Role_ROLE_SECONDARY, Team: t.Role.GetTeam()}, nil
		}
		return deliver.Target{}, errors.New(`role must be "hero" or "secondary"`)
	}
	return deliver.Target{}, errors.New("no target")
}

// NotificationProto renders a notification and its deliveries.
func NotificationProto(n store.Notification, ds []store.Delivery) *notifyv1.Notification {
	p := &notifyv1.Notification{
		Id: n.ID, IdempotencyKey: strings.TrimPrefix(n.IdempotencyKey, "grpc/"), Urgency: notifyv1.Urgency_URGENCY_LOW,
		Title: n.Title, Text: n.Body, ConversationId: n.ConversationID, CreatedAt: timestamppb.New(n.CreatedAt),
		AcknowledgedBy: n.AcknowledgedBy,
	}
	if n.Urgency == notify.Page {
		p.Urgency = notifyv1.Urgency_URGENCY_HIGH
	}
	if !n.AcknowledgedAt.IsZero() {
		p.AcknowledgedAt = timestamppb.New(n.AcknowledgedAt)
	}
	for _, d := range ds {
		p.Deliveries = append(p.Deliveries, DeliveryProto(n, d))
	}
	return p
}

// DeliveryProto renders the current state of one delivery. A cancelled
// delivery (acknowledged or answered before it was sent) shows as FAILED
// with error "cancelled: <reason>", as the proto has no CANCELLED status.
func DeliveryProto(n store.Notification, d store.Delivery) *supportv1.DeliveryEvent {
	e := &supportv1.DeliveryEvent{
		Id: d.ID, NotificationId: n.ID, IdempotencyKey: n.IdempotencyKey, Channel: d.Channel,
		Attempt: int32(d.Attempts), Error: d.LastError, OccurredAt: timestamppb.New(d.UpdatedAt),
		ConversationId: n.ConversationID, Recipient: d.Recipient.PersonID,
	}
	if e.Recipient == "" && d.Recipient.SlackChannel != "" {
		e.Recipient = "#" + d.Recipient.SlackChannel
	}
	switch d.Status {
	case store.StatusDelivered:
		e.Status = supportv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED
	case store.StatusFailed:
		e.Status = supportv1.DeliveryStatus_DELIVERY_STATUS_FAILED
	case store.StatusCancelled:
		e.Status = supportv1.DeliveryStatus_DELIVERY_STATUS_FAILED
		e.Error = "cancelled: " + d.LastError
	default:
		e.Status = supportv1.DeliveryStatus_DELIVERY_STATUS_PENDING
	}
	return e
}

// toStatus maps the dispatcher's errors to gRPC codes.
func toStatus(err error) error {
	if _, ok := status.FromError(err); ok && !isWrapped(err) {
		return err
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, deliver.ErrUnknownPerson):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, deliver.ErrNoRecipients):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		// rotation answered with an error: we cannot resolve recipients now.
		return status.Error(codes.Unavailable, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

func isWrapped(err error) bool { return errors.Unwrap(err) != nil }
