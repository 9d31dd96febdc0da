package natsauth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/bus/bustest"
	"github.com/sidekickhq/sidekick/platform/natsauth"
)

// refused runs op, which must fail, and checks that the server refused it
// for want of permission on subject (a refused request otherwise looks
// like a timeout).
func refused(t *testing.T, nc *nats.Conn, what, subject string, op func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := op(ctx); err == nil {
		t.Errorf("%s: allowed, want refused", what)
		return
	}
	_ = nc.Flush()
	if err := nc.LastError(); !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), subject) {
		t.Errorf("%s: last error %v, want a permissions violation on %s", what, err, subject)
	}
}

// done runs op, which must succeed, with its own deadline.
func done(t *testing.T, what string, op func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := op(ctx); err != nil {
		t.Errorf("%s: %v", what, err)
	}
}

func publish(js jetstream.JetStream, subject string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		_, err := js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: []byte("x"), Header: nats.Header{"Nats-Msg-Id": {subject + time.Now().String()}}})
		return err
	}
}

// An ingest service may publish its own channel's inbound messages and no
// other channel's; an action only ingest-slack's buttons publish is
// refused from elsewhere; a dead letter only under the service's own name.
func TestIngestPublishesOnlyItsOwnSubjects(t *testing.T) {
	srv, users := bustest.StartWithUsers(t, nil)
	channels := map[string]string{"ingest-slack": "slack", "ingest-email": "email", "ingest-github": "github", "ingest-sentry": "sentry"}
	for name, own := range channels {
		nc, js := srv.ConnectAs(t, users, name)
		done(t, name+" publishing its own "+bus.InboundSubject(own), publish(js, bus.InboundSubject(own)))
		for other, ch := range channels {
			if other != name {
				refused(t, nc, name+" forging "+ch, bus.InboundSubject(ch), publish(js, bus.InboundSubject(ch)))
			}
		}
		if name != "ingest-slack" {
			refused(t, nc, name+" forging a close", bus.ActionSubject("close"), publish(js, bus.ActionSubject("close")))
		}
		refused(t, nc, name+" forging a conversation event", bus.ConversationSubject("opened"), publish(js, bus.ConversationSubject("opened")))
		refused(t, nc, name+" dead-lettering as triage", bus.DeadLetterSubject("triage"), publish(js, bus.DeadLetterSubject("triage")))
		done(t, name+" dead-lettering as itself", publish(js, bus.DeadLetterSubject(name)))
	}
	nc, js := srv.ConnectAs(t, users, "ingest-slack")
	done(t, "ingest-slack publishing a Close button's action", publish(js, bus.ActionSubject("close")))
	refused(t, nc, "ingest-slack forging an assign", bus.ActionSubject("assign"), publish(js, bus.ActionSubject("assign")))

	// What was refused never reached a stream.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, admin := srv.ConnectAs(t, users, natsauth.Admin)
	s, err := admin.Stream(ctx, bus.StreamInbound)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(len(channels)) {
		t.Errorf("SUPPORT_INBOUND holds %d messages, want the %d each ingest published on its own subject", info.State.Msgs, len(channels))
	}
}

// No service user can delete, purge or change a stream, even one it
// publishes to, nor read another service's consumer or replies.
func TestServiceUsersCannotDestroyOrSnoop(t *testing.T) {
	srv, users := bustest.StartWithUsers(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, admin := srv.ConnectAs(t, users, natsauth.Admin)
	if err := publish(admin, bus.InboundSubject("slack"))(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	for _, u := range natsauth.Users() {
		nc, js := srv.ConnectAs(t, users, u.Name)
		refused(t, nc, u.Name+" deleting SUPPORT_INBOUND", "$JS.API.STREAM.DELETE.SUPPORT_INBOUND", func(ctx context.Context) error {
			return js.DeleteStream(ctx, bus.StreamInbound)
		})
		refused(t, nc, u.Name+" purging SUPPORT_INBOUND", "$JS.API.STREAM.PURGE.SUPPORT_INBOUND", func(ctx context.Context) error {
			s, err := js.Stream(ctx, bus.StreamInbound)
			if err != nil {
				return err
			}
			return s.Purge(ctx)
		})
		refused(t, nc, u.Name+" shrinking SUPPORT_INBOUND", "$JS.API.STREAM.UPDATE.SUPPORT_INBOUND", func(ctx context.Context) error {
			cfg := bus.StreamConfigs(bus.StreamsConfig{})[0]
			cfg.MaxMsgs = 1
			_, err := js.UpdateStream(ctx, cfg)
			return err
		})
		refused(t, nc, u.Name+" creating a stream", "$JS.API.STREAM.CREATE.MINE", func(ctx context.Context) error {
			_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "MINE", Subjects: []string{"mine.>"}})
			return err
		})
		if u.Name != "triage" {
			refused(t, nc, u.Name+" taking over triage's consumer", "$JS.API.CONSUMER.CREATE.SUPPORT_INBOUND.triage-inbound", func(ctx context.Context) error {
				_, err := js.CreateOrUpdateConsumer(ctx, bus.StreamInbound, jetstream.ConsumerConfig{Durable: "triage-inbound", AckPolicy: jetstream.AckExplicitPolicy})
				return err
			})
		}
		if _, err := nc.SubscribeSync("_INBOX.>"); err == nil {
			_ = nc.Flush()
			if err := nc.LastError(); !errors.Is(err, nats.ErrPermissionViolation) {
				t.Errorf("%s subscribed to everybody's replies (_INBOX.>): %v", u.Name, err)
			}
		}
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := admin.Stream(ctx, bus.StreamInbound)
	if err != nil {
		t.Fatalf("SUPPORT_INBOUND after the attempts: %v", err)
	}
	if info, err := s.Info(ctx); err != nil || info.State.Msgs != 1 || info.Config.MaxMsgs == 1 {
		t.Errorf("SUPPORT_INBOUND after the attempts: %+v, %v; want its one message and its limits", info, err)
	}
}

// Each user can do everything natsauth says it does: publish on each of
// its subjects, create and read its consumers and acknowledge their
// messages, use its key-value buckets.
func TestEachUserCanDoItsWork(t *testing.T) {
	srv, users := bustest.StartWithUsers(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, admin := srv.ConnectAs(t, users, natsauth.Admin)
	if _, err := admin.CreateStream(ctx, jetstream.StreamConfig{Name: "SENTRY_OCCURRENCES", Subjects: []string{"sentry.occurrences.>"}, Retention: jetstream.WorkQueuePolicy}); err != nil {
		t.Fatal(err)
	}
	for _, u := range natsauth.Users() {
		for _, b := range u.KV {
			if _, err := admin.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: b}); err != nil {
				t.Fatal(err)
			}
		}
	}
	concrete := func(subject string) string {
		return strings.NewReplacer(".>", ".x", ".*.", ".x.").Replace(subject)
	}
	for _, u := range natsauth.Users() {
		t.Run(u.Name, func(t *testing.T) {
			_, js := srv.ConnectAs(t, users, u.Name)
			for _, s := range u.Publish {
				if err := publish(js, concrete(s))(ctx); err != nil {
					t.Errorf("publish %s: %v", concrete(s), err)
				}
			}
			for _, c := range u.Consumers {
				cfg := bus.ConsumerConfig{Service: u.Name, Stream: c.Stream, Durable: c.Durable}
				if c.Filter != "" {
					cfg.FilterSubjects = []string{c.Filter}
				}
				cons, err := bus.NewConsumer(js, cfg, nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				subject := concrete(c.Filter)
				if c.Filter == "" {
					subject = map[string]string{"SUPPORT_ROTATION": "support.rotation.x", "SUPPORT_ACTIONS": "support.action.x", "SENTRY_OCCURRENCES": "sentry.occurrences.x"}[c.Stream]
				}
				if err := publish(admin, subject)(ctx); err != nil {
					t.Fatal(err)
				}
				got := make(chan string, 1)
				cctx, stop := context.WithCancel(ctx)
				done := make(chan error, 1)
				go func() {
					done <- cons.Run(cctx, func(_ context.Context, m jetstream.Msg) error {
						select {
						case got <- m.Subject():
						default:
						}
						return nil
					})
				}()
				select {
				case s := <-got:
					t.Logf("%s/%s consumed %s", c.Stream, c.Durable, s)
				case err := <-done:
					t.Fatalf("consumer %s: %v", c.Durable, err)
				case <-ctx.Done():
					t.Fatalf("consumer %s received nothing", c.Durable)
				}
				stop()
				if err := <-done; err != nil {
					t.Errorf("consumer %s: %v", c.Durable, err)
				}
				ci, err := admin.Consumer(ctx, c.Stream, c.Durable)
				if err != nil {
					t.Fatal(err)
				}
				if info, err := ci.Info(ctx); err != nil || info.AckFloor.Consumer == 0 {
					t.Errorf("consumer %s: its acknowledgement did not arrive: %+v %v", c.Durable, info, err)
				}
			}
			for _, b := range u.KV {
				kv, err := js.KeyValue(ctx, b)
				if err != nil {
					t.Fatalf("bucket %s: %v", b, err)
				}
				if _, err := kv.Create(ctx, "k", []byte("v")); err != nil {
					t.Errorf("bucket %s: create: %v", b, err)
				}
				if e, err := kv.Get(ctx, "k"); err != nil || string(e.Value()) != "v" {
					t.Errorf("bucket %s: get: %v", b, err)
				}
			}
		})
	}
}
