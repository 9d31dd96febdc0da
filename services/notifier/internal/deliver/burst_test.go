package deliver_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	"github.com/sidekickhq/sidekick/services/notifier/internal/deliver"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notifiertest"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify/slack"
	"github.com/sidekickhq/sidekick/services/notifier/internal/store"
)

var burstConfig = deliver.Config{BurstWindow: time.Minute, BurstEvery: time.Second, Lease: 20 * time.Second, RateLimit: 3}

// burstRequest is conversation i's ping to the hero, which may join a
// burst.
func burstRequest(i int) deliver.Request {
	return deliver.Request{
		IdempotencyKey: fmt.Sprintf("opened-%d", i), Origin: "escalation", Targets: []deliver.Target{{Role: rotationv1.Role_ROLE_HERO}},
		Urgency: notify.Ping, Title: fmt.Sprintf("new conversation number %d", i), Text: fmt.Sprintf("text of %d", i),
		ConversationID: fmt.Sprintf("conv-%d", i), Coalesce: true,
		Links: []notify.Link{{Title: "Open in Slack", URL: fmt.Sprintf("https://acme.slack.com/archives/C1/p%d", i)}},
	}
}

// notifyAll notifies the hero about conversations 0 to n-1.
func notifyAll(t *testing.T, disp *deliver.Dispatcher, n int) []store.Notification {
	t.Helper()
	var ns []store.Notification
	for i := range n {
		nn, _, err := disp.Notify(context.Background(), burstRequest(i))
		if err != nil {
			t.Fatal(err)
		}
		ns = append(ns, nn)
	}
	return ns
}

// record records the notifications about conversations 0 to n-1 without
// sending anything.
func record(t *testing.T, disp *deliver.Dispatcher, st *store.Store, n int) []store.Notification {
	t.Helper()
	var ns []store.Notification
	for i := range n {
		nn, ds, err := disp.Prepare(context.Background(), burstRequest(i))
		if err != nil {
			t.Fatal(err)
		}
		created, _, err := st.CreateNotification(context.Background(), nn, ds)
		if err != nil {
			t.Fatal(err)
		}
		ns = append(ns, created)
	}
	return ns
}

// slackEnv is a dispatcher sending to Slack's Web API faked at the wire.
func (e *env) slack(t *testing.T, cfg deliver.Config) (*deliver.Dispatcher, *notifiertest.Slack, *slack.Channel) {
	t.Helper()
	fake := notifiertest.StartSlack(t)
	ch := slack.New(slack.Options{Token: "xoxb-test", APIURL: fake.URL()})
	return e.dispatcher(t, cfg, ch), fake, ch
}

// delivered returns the receipt of each delivered delivery of the
// notifications, failing the test for one not delivered.
func delivered(t *testing.T, st *store.Store, ns []store.Notification) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, n := range ns {
		ds, err := st.Deliveries(context.Background(), n.ID)
		if err != nil || len(ds) != 1 {
			t.Fatalf("deliveries of %s: %+v %v", n.IdempotencyKey, ds, err)
		}
		if ds[0].Status != store.StatusDelivered {
			t.Errorf("%s: %s (%s), want delivered", n.IdempotencyKey, ds[0].Status, ds[0].LastError)
		}
		out[n.IdempotencyKey] = ds[0].Receipt
	}
	return out
}

func receiptOf(c notifiertest.SlackCall) string { return c.Channel + "/" + c.TS }

// Pings about many conversations to one person within the burst window
// are one Slack message: the first is posted at once, as a message of its
// own with its buttons; the next ones are added to it by rewriting it
// (chat.update) at most once a second, each listed with its own
// Acknowledge button; every one is delivered with the message's receipt.
// After the window a ping opens a new message.
func TestBurstIsOneMessageThatGrows(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	disp, fake, _ := e.slack(t, burstConfig)
	ns := notifyAll(t, disp, 6)
	posts := fake.Calls("chat.postMessage")
	if len(posts) != 1 || len(fake.Calls("chat.update")) != 0 {
		t.Fatalf("%d posts and %d updates before the rewrite is due, want the first ping's post alone", len(posts), len(fake.Calls("chat.update")))
	}
	if blocks := posts[0].Form.Get("blocks"); !strings.Contains(blocks, "New conversation number 0") || !strings.Contains(blocks, slack.ActionEscalate) {
		t.Errorf("the first post is not the first ping's own message with its buttons: %s", blocks)
	}
	e.clock.Advance(time.Second)
	if _, err := disp.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	updates := fake.Calls("chat.update")
	if len(updates) != 1 || len(fake.Calls("chat.postMessage")) != 1 {
		t.Fatalf("%d updates and %d posts, want the one message rewritten once", len(updates), len(fake.Calls("chat.postMessage")))
	}
	blocks := updates[0].Form.Get("blocks")
	if !strings.Contains(blocks, "6 new conversations") || strings.Count(blocks, slack.ActionAck) != 6 {
		t.Errorf("the rewrite does not list six conversations each with its Acknowledge button: %s", blocks)
	}
	for i := range 6 {
		if !strings.Contains(blocks, fmt.Sprintf("New conversation number %d", i)) {
			t.Errorf("conversation %d is not in the rewritten message", i)
		}
	}
	if got := updates[0].Form.Get("ts"); got != posts[0].TS {
		t.Errorf("rewrote ts %s, want the post's %s", got, posts[0].TS)
	}
	for key, r := range delivered(t, e.store, ns) {
		if r != receiptOf(posts[0]) {
			t.Errorf("%s delivered with receipt %q, want the message's %q", key, r, receiptOf(posts[0]))
		}
	}
	if n, err := disp.Sweep(ctx); err != nil || len(fake.Calls("chat.update")) != 1 {
		t.Errorf("a sweep with nothing new rewrote the message again (%d, %v)", n, err)
	}

	e.clock.Advance(time.Minute)
	if _, _, err := disp.Notify(ctx, burstRequest(6)); err != nil {
		t.Fatal(err)
	}
	if posts := fake.Calls("chat.postMessage"); len(posts) != 2 || !strings.Contains(posts[1].Form.Get("blocks"), "New conversation number 6") {
		t.Errorf("after the window: %d posts, want a new message for the new ping", len(posts))
	}
}

// The sender of a burst died during its call to Slack. Once the lease
// runs out the burst's message is looked for (its metadata names the
// burst) before anything is posted again: found, it is rewritten, not
// posted twice; not found, it is posted once.
func TestBurstCutShortIsLookedForBeforeItIsPostedAgain(t *testing.T) {
	for _, arrived := range []bool{true, false} {
		t.Run(fmt.Sprintf("arrived=%v", arrived), func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			disp, fake, ch := e.slack(t, burstConfig)
			ns := record(t, disp, e.store, 3)
			now := e.clock.Now()
			round, found, _, err := e.store.ClaimBurst(ctx, "slack|person:alice", now, now.Add(20*time.Second),
				store.BurstPace{Window: time.Minute, Every: time.Second, Limit: 100, Latest: 20})
			if err != nil || !found || len(round.Added) != 3 {
				t.Fatalf("claim by the doomed sender: %+v %v %v", round, found, err)
			}
			if arrived {
				// Slack took the post; the sender died before recording it.
				if _, err := ch.SendBurst(ctx, notify.Burst{ID: round.Burst.ID, Recipient: round.Added[0].Delivery.Recipient, Total: 3,
					Latest: []notify.BurstItem{{Message: notify.Message{Title: "t"}}}}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := disp.Sweep(ctx); err != nil || len(fake.Calls("chat.postMessage")) != btoi(arrived) {
				t.Fatalf("a sweep within the lease sent (%v): %d posts", err, len(fake.Calls("chat.postMessage")))
			}
			e.clock.Advance(21 * time.Second)
			if _, err := disp.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
			posts, updates := fake.Calls("chat.postMessage"), fake.Calls("chat.update")
			if len(posts) != 1 || len(updates) != btoi(arrived) {
				t.Fatalf("%d posts, %d updates; want one post in all (rewritten when it had arrived)", len(posts), len(updates))
			}
			final := posts[0].Form.Get("blocks")
			if arrived {
				final = updates[0].Form.Get("blocks")
			}
			if !strings.Contains(final, "3 new conversations") {
				t.Errorf("the message does not list the three: %s", final)
			}
			for key, r := range delivered(t, e.store, ns) {
				if r != receiptOf(posts[0]) {
					t.Errorf("%s delivered with %q, want %q", key, r, receiptOf(posts[0]))
				}
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Acknowledging a conversation of a burst rewrites the burst's message:
// that conversation is struck through with who acknowledged it and has no
// button; the others keep theirs.
func TestAcknowledgingAMemberRewritesTheBurst(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	disp, fake, _ := e.slack(t, burstConfig)
	ns := notifyAll(t, disp, 3)
	e.clock.Advance(time.Second)
	if _, err := disp.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)
	if _, err := disp.Acknowledge(ctx, deliver.Ack{NotificationID: ns[1].ID, Actor: "alice", Source: "slack"}); err != nil {
		t.Fatal(err)
	}
	updates := fake.Calls("chat.update")
	if len(updates) != 2 {
		t.Fatalf("%d updates, want the list and then the acknowledgement", len(updates))
	}
	blocks := updates[1].Form.Get("blocks")
	if !strings.Contains(blocks, "~New conversation number 1~") || !strings.Contains(blocks, "Acknowledged by alice") ||
		strings.Count(blocks, slack.ActionAck) != 2 || !strings.Contains(blocks, "1 of them acknowledged") {
		t.Errorf("the rewrite does not show conversation 1 acknowledged and the others open: %s", blocks)
	}
}

// Two replicas send one recipient's burst at once: one message, each
// conversation listed and delivered once, the last rewrite listing all.
func TestConcurrentBurstSendersWriteOneMessage(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	fake := notifiertest.StartSlack(t)
	cfg := burstConfig
	cfg.BurstLimit = 7 // a few conversations a rewrite: several rounds
	var dispatchers []*deliver.Dispatcher
	for range 2 {
		dispatchers = append(dispatchers, e.dispatcher(t, cfg, slack.New(slack.Options{Token: "xoxb-test", APIURL: fake.URL()})))
	}
	const count = 30
	ns := record(t, dispatchers[0], e.store, count)
	for range count/cfg.BurstLimit + 2 {
		var wg sync.WaitGroup
		for _, d := range dispatchers {
			wg.Go(func() {
				if _, err := d.Sweep(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		e.clock.Advance(time.Second)
	}
	posts := fake.Calls("chat.postMessage")
	if len(posts) != 1 {
		t.Fatalf("%d posts, want one message", len(posts))
	}
	last := posts[0].Form.Get("blocks")
	if u := fake.Calls("chat.update"); len(u) > 0 {
		last = u[len(u)-1].Form.Get("blocks")
	}
	if u := fake.Calls("chat.update"); len(u) < count/cfg.BurstLimit {
		t.Errorf("%d rewrites, want one per round of %d", len(u), cfg.BurstLimit)
	}
	if !strings.Contains(last, fmt.Sprintf("%d new conversations", count)) {
		t.Errorf("the last version of the message does not count %d: %s", count, last)
	}
	for key, r := range delivered(t, e.store, ns) {
		if r != receiptOf(posts[0]) {
			t.Errorf("%s delivered with %q, want %q", key, r, receiptOf(posts[0]))
		}
	}
}
