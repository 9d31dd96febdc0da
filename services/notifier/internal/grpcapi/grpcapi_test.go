package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	notifyv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/notify/v1"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/notifier/internal/deliver"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
	"github.com/sidekickhq/sidekick/services/notifier/internal/store"
)

// fakeDispatcher is a hand-written fake with function fields.
type fakeDispatcher struct {
	notify      func(context.Context, deliver.Request) (store.Notification, bool, error)
	acknowledge func(context.Context, deliver.Ack) ([]store.Notification, error)
	get         func(context.Context, string) (store.Notification, []store.Delivery, error)
}

var _ Dispatcher = (*fakeDispatcher)(nil)

func (f *fakeDispatcher) Notify(ctx context.Context, r deliver.Request) (store.Notification, bool, error) {
	return f.notify(ctx, r)
}
func (f *fakeDispatcher) Acknowledge(ctx context.Context, a deliver.Ack) ([]store.Notification, error) {
	return f.acknowledge(ctx, a)
}
func (f *fakeDispatcher) Get(ctx context.Context, id string) (store.Notification, []store.Delivery, error) {
	return f.get(ctx, id)
}

func TestNotifyMapsTheRequest(t *testing.T) {
	var got deliver.Request
	s := New(&fakeDispatcher{
		notify: func(_ context.Context, r deliver.Request) (store.Notification, bool, error) {
			got = r
			return store.Notification{ID: "n-1", NewNotification: store.NewNotification{IdempotencyKey: r.IdempotencyKey, Urgency: r.Urgency}}, true, nil
		},
		get: func(_ context.Context, id string) (store.Notification, []store.Delivery, error) {
			return store.Notification{ID: id, NewNotification: store.NewNotification{IdempotencyKey: "grpc/k", Urgency: notify.Page}},
				[]store.Delivery{{ID: "d-1", Status: store.StatusCancelled, LastError: "acknowledged by bob", Recipient: notify.Recipient{PersonID: "bob"}}}, nil
		},
	})
	resp, err := s.Notify(context.Background(), &notifyv1.NotifyRequest{
		IdempotencyKey: "k", Urgency: notifyv1.Urgency_URGENCY_HIGH, Title: "t",
		Recipients: []*notifyv1.Recipient{
			{Target: &notifyv1.Recipient_Person{Person: "bob"}},
			{Target: &notifyv1.Recipient_Role{Role: &notifyv1.RoleTarget{Role: "secondary", Team: "platform"}}},
			{Target: &notifyv1.Recipient_SlackChannel{SlackChannel: "#support"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []deliver.Target{{PersonID: "bob"}, {Role: rotationv1.Role_ROLE_SECONDARY, Team: "platform"}, {SlackChannel: "support"}}
	if fmt.Sprint(got.Targets) != fmt.Sprint(want) || got.Urgency != notify.Page || got.IdempotencyKey != "grpc/k" || got.Test {
		t.Errorf("request = %+v", got)
	}
	n := resp.GetNotification()
	if !resp.GetCreated() || n.GetIdempotencyKey() != "k" || n.GetUrgency() != notifyv1.Urgency_URGENCY_HIGH {
		t.Errorf("response = %v", resp)
	}
	if d := n.GetDeliveries()[0]; d.GetError() != "cancelled: acknowledged by bob" {
		t.Errorf("cancelled delivery = %v", d)
	}
	if _, err := s.Notify(context.Background(), &notifyv1.NotifyRequest{IdempotencyKey: "t", Title: "t", Test: true,
		Recipients: []*notifyv1.Recipient{{Target: &notifyv1.Recipient_Person{Person: "bob"}}}}); err != nil || !got.Test {
		t.Errorf("a test: %v, request %+v", err, got)
	}
}

// A test's answer shows what each channel said: a delivery another
// worker was sending when the call's own send came is waited for.
func TestNotifyTestWaitsForASendInFlight(t *testing.T) {
	reads := 0
	s := New(&fakeDispatcher{
		notify: func(_ context.Context, r deliver.Request) (store.Notification, bool, error) {
			return store.Notification{ID: "n-1"}, true, nil
		},
		get: func(_ context.Context, id string) (store.Notification, []store.Delivery, error) {
			reads++
			slack := store.Delivery{ID: "d-1", Channel: "slack", Status: store.StatusSending, Recipient: notify.Recipient{PersonID: "bob"}}
			if reads > 2 {
				slack.Status = store.StatusDelivered
			}
			return store.Notification{ID: id}, []store.Delivery{slack}, nil
		},
	})
	resp, err := s.Notify(context.Background(), &notifyv1.NotifyRequest{IdempotencyKey: "t", Title: "t", Test: true,
		Recipients: []*notifyv1.Recipient{{Target: &notifyv1.Recipient_Person{Person: "bob"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if d := resp.GetNotification().GetDeliveries()[0]; d.GetStatus() != supportv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED || reads != 3 {
		t.Errorf("after %d reads: %v, want delivered", reads, d)
	}
}

func TestNotifyRejectsBadRequests(t *testing.T) {
	s := New(&fakeDispatcher{})
	for name, req := range map[string]*notifyv1.NotifyRequest{
		"no key":          {Title: "t"},
		"no text":         {IdempotencyKey: "k"},
		"empty recipient": {IdempotencyKey: "k", Title: "t", Recipients: []*notifyv1.Recipient{{}}},
		"unknown role":    {IdempotencyKey: "k", Title: "t", Recipients: []*notifyv1.Recipient{{Target: &notifyv1.Recipient_Role{Role: &notifyv1.RoleTarget{Role: "boss"}}}}},
		"secondary, no team": {IdempotencyKey: "k", Title: "t",
			Recipients: []*notifyv1.Recipient{{Target: &notifyv1.Recipient_Role{Role: &notifyv1.RoleTarget{Role: "secondary"}}}}},
		"a test of a role": {IdempotencyKey: "k", Title: "t", Test: true,
			Recipients: []*notifyv1.Recipient{{Target: &notifyv1.Recipient_Role{Role: &notifyv1.RoleTarget{Role: "hero"}}}}},
		"a test of a channel": {IdempotencyKey: "k", Title: "t", Test: true,
			Recipients: []*notifyv1.Recipient{{Target: &notifyv1.Recipient_SlackChannel{SlackChannel: "#support"}}}},
	} {
		if _, err := s.Notify(context.Background(), req); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: err = %v, want InvalidArgument", name, err)
		}
	}
}

func TestErrorsMapToCodes(t *testing.T) {
	for err, want := range map[error]codes.Code{
		fmt.Errorf("read: %w", store.ErrNotFound):                                 codes.NotFound,
		fmt.Errorf("resolve: %w", deliver.ErrUnknownPerson):                       codes.NotFound,
		deliver.ErrNoRecipients:                                                   codes.InvalidArgument,
		fmt.Errorf("who is on call: %w", status.Error(codes.Unavailable, "down")): codes.Unavailable,
		errors.New("boom"):                                                        codes.Internal,
	} {
		if got := status.Code(toStatus(err)); got != want {
			t.Errorf("%v: %v, want %v", err, got, want)
		}
	}
}
