package natsauth_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"gopkg.in/yaml.v3"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/bus/bustest"
	"github.com/sidekickhq/sidekick/platform/content"
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
			nc, js := srv.ConnectAs(t, users, u.Name)
			for _, s := range u.Subscribe {
				sub, err := nc.SubscribeSync(s)
				if err != nil {
					t.Fatal(err)
				}
				if err := nc.Flush(); err != nil {
					t.Fatal(err)
				}
				if err := publish(admin, concrete(s))(ctx); err != nil {
					t.Fatal(err)
				}
				if m, err := sub.NextMsgWithContext(ctx); err != nil {
					t.Errorf("watch %s: %v", s, err)
				} else {
					t.Logf("%s watched %s", u.Name, m.Subject)
				}
			}
			if len(u.Subscribe) > 0 {
				// Watching is no licence to read another stream's messages.
				if _, err := nc.SubscribeSync("support.inbound.>"); err == nil {
					_ = nc.Flush()
					if err := nc.LastError(); !errors.Is(err, nats.ErrPermissionViolation) {
						t.Errorf("%s subscribed to support.inbound.>: %v", u.Name, err)
					}
				}
			}
			for _, st := range u.LastOf {
				subject := map[string]string{"SUPPORT_ROTATION": "support.rotation.config_applied"}[st]
				if err := publish(admin, subject)(ctx); err != nil {
					t.Fatal(err)
				}
				s, err := js.Stream(ctx, st)
				if err != nil {
					t.Fatalf("stream %s: %v", st, err)
				}
				if m, err := s.GetLastMsgForSubject(ctx, subject); err != nil {
					t.Errorf("last of %s: %v", subject, err)
				} else {
					t.Logf("%s read the last %s", u.Name, m.Subject)
				}
			}
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
				// The acknowledgement travels on the service's own
				// connection: a refused $JS.ACK never arrives.
				if err := ackArrives(ctx, admin, c.Stream, c.Durable); err != nil {
					t.Errorf("consumer %s: %v", c.Durable, err)
				}
				stop()
				if err := <-done; err != nil {
					t.Errorf("consumer %s: %v", c.Durable, err)
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

// ingest-email stores large content in SUPPORT_INBOUND_CONTENT as its
// own user; triage reads it back as its own; others may not write there.
func TestContentStoreWrittenByEmailReadByTriage(t *testing.T) {
	srv, users := bustest.StartWithUsers(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, admin := srv.ConnectAs(t, users, natsauth.Admin)
	if _, err := content.Ensure(ctx, admin, content.Config{}); err != nil {
		t.Fatal(err)
	}
	_, email := srv.ConnectAs(t, users, "ingest-email")
	store, err := content.Open(ctx, email, content.Config{})
	if err != nil {
		t.Fatalf("ingest-email opening the store: %v", err)
	}
	if _, err := store.PutBytes(ctx, "m1", []byte("a large body")); err != nil {
		t.Fatalf("ingest-email storing: %v", err)
	}
	_, triage := srv.ConnectAs(t, users, "triage")
	read, err := triage.ObjectStore(ctx, content.Bucket)
	if err != nil {
		t.Fatalf("triage opening the store: %v", err)
	}
	if b, err := read.GetBytes(ctx, "m1"); err != nil || string(b) != "a large body" {
		t.Errorf("triage reading m1: %q, %v", b, err)
	}
	nc, slack := srv.ConnectAs(t, users, "ingest-slack")
	refused(t, nc, "ingest-slack writing to the store", "OBJ_SUPPORT_INBOUND_CONTENT", func(ctx context.Context) error {
		s, err := slack.ObjectStore(ctx, content.Bucket)
		if err != nil {
			return err
		}
		_, err = s.PutBytes(ctx, "forged", []byte("x"))
		return err
	})
}

// ackArrives waits until the consumer's acknowledgement floor moves, or
// 10 s have passed.
func ackArrives(ctx context.Context, js jetstream.JetStream, stream, durable string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := js.Consumer(ctx, stream, durable)
	if err != nil {
		return err
	}
	for {
		info, err := c.Info(ctx)
		if err != nil {
			return fmt.Errorf("no acknowledgement arrived: %w", err)
		}
		if info.AckFloor.Consumer > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no acknowledgement arrived (delivered %d, ack floor 0): %w", info.Delivered.Consumer, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestHelmValuesCarryTheseUsers: the NATS Helm values
// (deploy/nats/values.yaml) carry ServerConfig as the ConfigMap the
// servers include, so production has the users these tests run with.
func TestHelmValuesCarryTheseUsers(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/nats/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		ExtraResources []struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
			Data map[string]string `yaml:"data"`
		} `yaml:"extraResources"`
	}
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	for _, r := range values.ExtraResources {
		if r.Kind == "ConfigMap" && r.Metadata.Name == "sidekick-nats-users" {
			if got, want := r.Data["users.conf"], natsauth.ServerConfig(); got != want {
				t.Errorf("deploy/nats/values.yaml: the ConfigMap sidekick-nats-users is not natsauth.ServerConfig(); paste this as its users.conf (and render the chart again):\n%s", want)
			}
			return
		}
	}
	t.Error("deploy/nats/values.yaml has no ConfigMap sidekick-nats-users in extraResources")
}

// Each ingest service answers the CLI's replays of its own dead letters
// (the admin asks; the service user subscribes and responds), and may not
// take another service's replays.
func TestIngestServesItsOwnReplays(t *testing.T) {
	srv, users := bustest.StartWithUsers(t, nil)
	admin, _ := srv.ConnectAs(t, users, natsauth.Admin)
	for _, name := range []string{"ingest-slack", "ingest-email", "ingest-github", "ingest-sentry"} {
		t.Run(name, func(t *testing.T) {
			nc, _ := srv.ConnectAs(t, users, name)
			got := make(chan string, 1)
			bustest.ServeReplay(t, nc, name, func(_ context.Context, data []byte, _ nats.Header) error {
				got <- string(data)
				return nil
			})
			done(t, "the CLI's replay through "+name, func(ctx context.Context) error {
				return bus.RequestReplay(ctx, admin, name, []byte("raw"), nats.Header{})
			})
			select {
			case d := <-got:
				if d != "raw" {
					t.Errorf("replayed %q, want raw", d)
				}
			default:
				t.Error("the replay was answered without running")
			}
			other := "ingest-slack"
			if name == other {
				other = "ingest-email"
			}
			refused(t, nc, name+" serving "+other+"'s replays", bus.ReplaySubject(other), func(context.Context) error {
				sub, err := nc.QueueSubscribe(bus.ReplaySubject(other), other, func(*nats.Msg) {})
				if err != nil {
					return err
				}
				defer sub.Unsubscribe()
				if err := nc.Flush(); err != nil {
					return err
				}
				return nc.LastError()
			})
		})
	}
}
