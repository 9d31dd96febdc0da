package deliver_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/platform/pg/pgtest"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	"github.com/sidekickhq/sidekick/services/notifier"
	"github.com/sidekickhq/sidekick/services/notifier/internal/deliver"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notifiertest"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify/slack"
	"github.com/sidekickhq/sidekick/services/notifier/internal/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type env struct {
	store *store.Store
	clock *clock.Fake
	rot   *notifiertest.Rotation
	deps  deliver.Deps
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("needs Postgres")
	}
	e := &env{
		store: store.New(notifiertest.Database(t, notifier.Schema, notifier.Migrations())),
		clock: clock.NewFake(notifiertest.Start),
		rot:   notifiertest.NewRotation(),
	}
	e.deps = deliver.Deps{
		Store: e.store, Rotation: e.rot.Serve(t),
		Logger: notifiertest.Logger(t), Clock: e.clock, Rand: func() float64 { return 0 },
	}
	return e
}

func (e *env) dispatcher(t *testing.T, cfg deliver.Config, channels ...notify.Channel) *deliver.Dispatcher {
	t.Helper()
	d := e.deps
	d.Channels = channels
	disp, err := deliver.New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	return disp
}

func heroRequest(key string) deliver.Request {
	return deliver.Request{IdempotencyKey: key, Origin: "test", Targets: []deliver.Target{{Role: rotationv1.Role_ROLE_HERO}},
		Urgency: notify.Ping, Title: "t", ConversationID: "conv-" + key}
}

func statusOf(t *testing.T, st *store.Store, notificationID string) (store.Status, int) {
	t.Helper()
	ds, err := st.Deliveries(context.Background(), notificationID)
	if err != nil || len(ds) != 1 {
		t.Fatalf("deliveries = %v, %v", ds, err)
	}
	return ds[0].Status, ds[0].Attempts
}

// A process claimed a delivery and died before sending or recording the
// outcome: nobody else takes it while the lease holds; afterwards it is
// resumed and sent once.
func TestClaimedDeliveryIsResumedAfterTheLease(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	n, created, err := e.store.CreateNotification(ctx, store.NewNotification{
		IdempotencyKey: "k", Origin: "test", Urgency: notify.Ping, Title: "t", CreatedAt: e.clock.Now(),
	}, []store.NewDelivery{{DedupKey: "k|person:alice|0", Recipient: notify.Recipient{PersonID: "alice"}, Channel: "recorder"}})
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	now := e.clock.Now()
	if jobs, err := e.store.Claim(ctx, "", now, now.Add(2*time.Minute), 10); err != nil || len(jobs) != 1 {
		t.Fatalf("claim by the doomed process: %d, %v", len(jobs), err)
	}

	rec := &notifiertest.Recorder{}
	disp := e.dispatcher(t, deliver.Config{Lease: 2 * time.Minute}, rec)
	if n, err := disp.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("sweep during the lease attempted %d (%v), want 0", n, err)
	}
	e.clock.Advance(2*time.Minute + time.Second)
	if n, err := disp.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep after the lease attempted %d (%v), want 1", n, err)
	}
	if n, err := disp.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("a later sweep attempted %d (%v), want 0", n, err)
	}
	if sent := rec.Sent(); len(sent) != 1 || sent[0].Attempt != 2 {
		t.Fatalf("sent %+v, want one send on attempt 2", sent)
	}
	if st, attempts := statusOf(t, e.store, n.ID); st != store.StatusDelivered || attempts != 2 {
		t.Errorf("delivery %s after %d attempts", st, attempts)
	}
}

// Two replicas sweeping the same due deliveries send each exactly once.
func TestConcurrentSweepsSendEachDeliveryOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const count = 40
	for i := range count {
		_, _, err := e.store.CreateNotification(ctx, store.NewNotification{
			IdempotencyKey: fmt.Sprintf("k%d", i), Origin: "test", Urgency: notify.Ping, Title: "t", CreatedAt: e.clock.Now(),
		}, []store.NewDelivery{{DedupKey: fmt.Sprintf("k%d|alice|0", i), Recipient: notify.Recipient{PersonID: "alice"}, Channel: "recorder"}})
		if err != nil {
			t.Fatal(err)
		}
	}
	rec := &notifiertest.Recorder{}
	cfg := deliver.Config{Batch: 3, RateLimit: -1}
	dispatchers := []*deliver.Dispatcher{e.dispatcher(t, cfg, rec), e.dispatcher(t, cfg, rec)}
	var wg sync.WaitGroup
	for _, disp := range dispatchers {
		wg.Go(func() {
			if _, err := disp.Sweep(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	seen := map[string]int{}
	for _, m := range rec.Sent() {
		seen[m.DeliveryID]++
	}
	if len(seen) != count {
		t.Errorf("%d distinct deliveries sent, want %d", len(seen), count)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("delivery %s sent %d times", id, n)
		}
	}
}

func TestRetriesThenFailsForGood(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	rec := &notifiertest.Recorder{Fail: func(int, notify.Message) error { return errors.New("down") }}
	cfg := deliver.Config{MaxAttempts: 3, RetryBase: time.Minute}
	disp := e.dispatcher(t, cfg, rec)

	n, _, err := disp.Notify(ctx, heroRequest("a"))
	if err != nil {
		t.Fatal(err)
	}
	// Exponential: 1m after the first failure, 2m after the second.
	for attempt := 2; attempt <= 3; attempt++ {
		wait := cfg.Backoff(attempt - 1)
		if want := time.Duration(1<<(attempt-2)) * time.Minute; wait != want {
			t.Fatalf("backoff after attempt %d = %s, want %s", attempt-1, wait, want)
		}
		e.clock.Advance(wait - time.Second)
		if got, _ := disp.Sweep(ctx); got != 0 {
			t.Fatalf("attempt %d ran before its backoff", attempt)
		}
		e.clock.Advance(time.Second)
		if got, _ := disp.Sweep(ctx); got != 1 {
			t.Fatalf("attempt %d did not run after its backoff", attempt)
		}
	}
	if st, attempts := statusOf(t, e.store, n.ID); st != store.StatusFailed || attempts != 3 {
		t.Errorf("delivery %s after %d attempts, want failed after 3", st, attempts)
	}
	e.clock.Advance(time.Hour)
	if got, _ := disp.Sweep(ctx); got != 0 {
		t.Errorf("a failed delivery was tried again")
	}
}

func TestPermanentErrorFailsAtOnceAndRetryAfterIsHonoured(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	perm := &notifiertest.Recorder{Fail: func(int, notify.Message) error { return notify.Permanent(errors.New("user_not_found")) }}
	n, _, err := e.dispatcher(t, deliver.Config{}, perm).Notify(ctx, heroRequest("p"))
	if err != nil {
		t.Fatal(err)
	}
	if st, attempts := statusOf(t, e.store, n.ID); st != store.StatusFailed || attempts != 1 {
		t.Errorf("permanent error: delivery %s after %d attempts", st, attempts)
	}

	limited := &notifiertest.Recorder{Fail: func(attempt int, _ notify.Message) error {
		if attempt == 1 {
			return &notify.RetryAfterError{After: 45 * time.Second, Err: errors.New("ratelimited")}
		}
		return nil
	}}
	disp := e.dispatcher(t, deliver.Config{RetryBase: time.Second}, limited)
	n, _, err = disp.Notify(ctx, heroRequest("r"))
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(44 * time.Second)
	if got, _ := disp.Sweep(ctx); got != 0 {
		t.Errorf("retried before Retry-After")
	}
	e.clock.Advance(time.Second)
	if got, _ := disp.Sweep(ctx); got != 1 {
		t.Errorf("not retried after Retry-After")
	}
	if st, _ := statusOf(t, e.store, n.ID); st != store.StatusDelivered {
		t.Errorf("delivery %s, want delivered", st)
	}
}

// When nobody is on call the notification is recorded without deliveries,
// and a later hero does not get a stale notification by replaying the key.
func TestGapRecordsNotificationWithoutDeliveries(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.rot.SetHero(nil)
	rec := &notifiertest.Recorder{}
	disp := e.dispatcher(t, deliver.Config{}, rec)
	n, created, err := disp.Notify(ctx, heroRequest("gap"))
	if err != nil || !created {
		t.Fatalf("notify: %v %v", created, err)
	}
	ds, err := e.store.Deliveries(ctx, n.ID)
	if err != nil || len(ds) != 0 {
		t.Fatalf("deliveries = %v, %v; want none", ds, err)
	}
	if len(rec.Sent()) != 0 {
		t.Errorf("sent %v", rec.Sent())
	}
}

// A recipient no channel can reach is recorded as failed, not dropped.
func TestUnreachableRecipientIsRecordedAsFailed(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	disp := e.dispatcher(t, deliver.Config{}, onlySlackIDs{})
	e.rot.SetHero(&rotationv1.Person{Id: "carol", Name: "Carol"})
	n, _, err := disp.Notify(ctx, heroRequest("u"))
	if err != nil {
		t.Fatal(err)
	}
	ds, err := e.store.Deliveries(ctx, n.ID)
	if err != nil || len(ds) != 1 || ds[0].Status != store.StatusFailed || ds[0].Channel != "none" {
		t.Fatalf("deliveries = %+v, %v", ds, err)
	}
}

type onlySlackIDs struct{}

func (onlySlackIDs) Name() string { return "picky" }
func (onlySlackIDs) Send(context.Context, notify.Message) (notify.Receipt, error) {
	return notify.Receipt{}, errors.New("must not be called")
}
func (onlySlackIDs) CanReach(r notify.Recipient) bool { return r.SlackID != "" }

func TestBackoffIsExponentialAndCapped(t *testing.T) {
	cfg := deliver.Config{RetryBase: 10 * time.Second, RetryMax: time.Minute}
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, time.Minute, time.Minute}
	for i, w := range want {
		if got := cfg.Backoff(i + 1); got != w {
			t.Errorf("Backoff(%d) = %s, want %s", i+1, got, w)
		}
	}
}

// With jitter, a retry comes between half the backoff and the backoff.
func TestRetryJitter(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.deps.Rand = func() float64 { return 0.999 }
	rec := &notifiertest.Recorder{Fail: notifiertest.FailFirst(1)}
	disp := e.dispatcher(t, deliver.Config{RetryBase: time.Minute, Jitter: 0.5}, rec)
	n, _, err := disp.Notify(ctx, heroRequest("j"))
	if err != nil {
		t.Fatal(err)
	}
	ds, err := e.store.Deliveries(ctx, n.ID)
	if err != nil || len(ds) != 1 {
		t.Fatal(ds, err)
	}
	if wait := ds[0].NextAttemptAt.Sub(e.clock.Now()); wait < 30*time.Second || wait > 31*time.Second {
		t.Errorf("retry in %s, want just over 30s (1m less 0.5 × 0.999 of it)", wait)
	}
}

// Pings beyond a recipient's rate limit wait until the window lets them
// through; pages do not wait.
func TestRateLimitHoldsBackPings(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	rec := &notifiertest.Recorder{}
	disp := e.dispatcher(t, deliver.Config{RateLimit: 2, RateWindow: 10 * time.Minute}, rec)
	t0 := e.clock.Now()
	for i := range 3 {
		if _, _, err := disp.Notify(ctx, heroRequest(fmt.Sprintf("rl%d", i))); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Minute)
	}
	if n := len(rec.Sent()); n != 2 {
		t.Fatalf("%d pings sent, want 2 (the limit)", n)
	}
	page := heroRequest("rl-page")
	page.Urgency = notify.Page
	if _, _, err := disp.Notify(ctx, page); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.Sent()); n != 3 {
		t.Fatalf("the page was held back: %d sent", n)
	}
	// Pings at 10:00 and 10:01, the page at 10:03 (pages count, but are
	// never held): the third ping waits for 10:10, when the 10:00 ping
	// leaves the window, and then for 10:11, as the page is in it.
	for _, step := range []struct {
		to   time.Duration
		sent int
	}{{10*time.Minute - time.Second, 3}, {10 * time.Minute, 3}, {11*time.Minute - time.Second, 3}, {11 * time.Minute, 4}} {
		e.clock.Advance(t0.Add(step.to).Sub(e.clock.Now()))
		if _, err := disp.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if n := len(rec.Sent()); n != step.sent {
			t.Fatalf("at +%s: %d sent, want %d", step.to, n, step.sent)
		}
	}
	sent := rec.Sent()
	if len(sent) != 4 || sent[3].Attempt != 1 {
		t.Errorf("sent %d, last on attempt %d; a held-back ping does not count as an attempt", len(sent), sent[len(sent)-1].Attempt)
	}
}

// Many pings for one person at once: exactly the limit goes out, however
// many workers check the window together (23 went through a limit of 20
// when the check counted only what was already delivered).
func TestRateLimitIsExactUnderConcurrency(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	rec := &notifiertest.Recorder{}
	disp := e.dispatcher(t, deliver.Config{RateLimit: 20, RateWindow: 10 * time.Minute}, rec)
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			if _, _, err := disp.Notify(ctx, heroRequest(fmt.Sprintf("burst%d", i))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := len(rec.Sent()); n != 20 {
		t.Errorf("%d pings sent at once, want the limit, 20", n)
	}
}

// A live sender keeps its claimed deliveries past the lease, however long
// its batch takes: it renews their leases while it works, so another
// replica's sweep resumes nothing and nothing is sent twice. (A dead
// sender's leases lapse after one short lease: the test above.)
func TestLiveSenderRenewsItsLeases(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for i := range 2 {
		if _, _, err := e.store.CreateNotification(ctx, store.NewNotification{
			IdempotencyKey: fmt.Sprintf("slow%d", i), Origin: "test", Urgency: notify.Ping, Title: "t", CreatedAt: e.clock.Now(),
		}, []store.NewDelivery{{DedupKey: fmt.Sprintf("slow%d|alice|0", i), Recipient: notify.Recipient{PersonID: "alice"}, Channel: "recorder"}}); err != nil {
			t.Fatal(err)
		}
	}
	release := make(chan struct{})
	slow := &notifiertest.Recorder{Fail: func(n int, _ notify.Message) error {
		if n == 1 {
			<-release
		}
		return nil
	}}
	cfg := deliver.Config{Lease: 20 * time.Second, RateLimit: -1}
	done := make(chan error, 1)
	go func() {
		_, err := e.dispatcher(t, cfg, slow).Sweep(ctx)
		done <- err
	}()
	// The sender is stuck in its first send for a minute of the clock
	// (three leases); its renewals keep both deliveries.
	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for range 12 {
		if err := e.clock.BlockUntilContext(wait, 1); err != nil {
			t.Fatalf("no lease renewal waiting on the clock: %v", err)
		}
		e.clock.Advance(5 * time.Second)
	}
	if err := e.clock.BlockUntilContext(wait, 1); err != nil {
		t.Fatalf("no lease renewal waiting on the clock: %v", err)
	}
	other := &notifiertest.Recorder{}
	if n, err := e.dispatcher(t, cfg, other).Sweep(ctx); err != nil || n != 0 {
		t.Errorf("another replica's sweep took %d deliveries of a live sender (%v)", n, err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(slow.Sent()) != 2 || len(other.Sent()) != 0 {
		t.Errorf("sent %d by the live sender and %d by the other, want 2 and 0", len(slow.Sent()), len(other.Sent()))
	}
}

// A delivery the channel hands back for its pace (notify.LaterError) is
// rescheduled without counting an attempt and without holding the
// sender, and goes out when its time comes.
func TestPacedDeliveryIsRescheduledNotAnAttempt(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	rec := &notifiertest.Recorder{Fail: func(n int, _ notify.Message) error {
		if n == 1 {
			return &notify.LaterError{After: 3 * time.Second, Err: errors.New("pace")}
		}
		return nil
	}}
	disp := e.dispatcher(t, deliver.Config{MaxAttempts: 1}, rec)
	n, _, err := disp.Notify(ctx, heroRequest("paced"))
	if err != nil {
		t.Fatal(err)
	}
	if st, attempts := statusOf(t, e.store, n.ID); st != store.StatusPending || attempts != 0 {
		t.Fatalf("after the pace: %s after %d attempts, want pending after 0", st, attempts)
	}
	if got, _ := disp.Sweep(ctx); got != 0 {
		t.Fatalf("swept %d before its turn", got)
	}
	e.clock.Advance(3 * time.Second)
	if got, _ := disp.Sweep(ctx); got != 1 {
		t.Fatalf("swept %d at its turn, want 1", got)
	}
	if st, attempts := statusOf(t, e.store, n.ID); st != store.StatusDelivered || attempts != 1 {
		t.Errorf("%s after %d attempts, want delivered on the first (of at most 1)", st, attempts)
	}
}

// A sender died during its call to Slack: the post may have arrived.
// Once its lease runs out the delivery is looked for at Slack (the post's
// metadata names the delivery) before it is sent again: one that arrived
// is recorded delivered, not posted twice; one that did not is posted.
func TestResumedDeliveryIsLookedForBeforeItIsSentAgain(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	fake := notifiertest.StartSlack(t)
	ch := slack.New(slack.Options{Token: "xoxb-test", APIURL: fake.URL()})
	arrived := map[string]bool{"alice": true, "bob": false}
	for _, who := range []string{"alice", "bob"} {
		key := "cut-" + who
		if _, _, err := e.store.CreateNotification(ctx, store.NewNotification{
			IdempotencyKey: key, Origin: "test", Urgency: notify.Ping, Title: "t", CreatedAt: e.clock.Now(),
		}, []store.NewDelivery{{DedupKey: key + "|0", Recipient: notify.Recipient{PersonID: who, SlackID: "U0" + strings.ToUpper(who)}, Channel: slack.Name}}); err != nil {
			t.Fatal(err)
		}
	}
	now := e.clock.Now()
	jobs, err := e.store.Claim(ctx, "", now, now.Add(20*time.Second), 10)
	if err != nil || len(jobs) != 2 {
		t.Fatalf("claim by the doomed sender: %d, %v", len(jobs), err)
	}
	for _, j := range jobs {
		if arrived[j.Delivery.Recipient.PersonID] {
			// Slack took the post; the sender died before recording it.
			if _, err := ch.Send(ctx, notify.Message{NotificationID: j.Notification.ID, DeliveryID: j.Delivery.ID,
				Recipient: j.Delivery.Recipient, Urgency: notify.Ping, Title: "t"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.clock.Advance(21 * time.Second)
	if n, err := e.dispatcher(t, deliver.Config{Lease: 20 * time.Second}, ch).Sweep(ctx); err != nil || n != 2 {
		t.Fatalf("sweep after the lease attempted %d (%v), want 2", n, err)
	}
	posts := map[string]int{}
	for _, c := range fake.Calls("chat.postMessage") {
		posts[c.Form.Get("channel")]++
	}
	if posts["U0ALICE"] != 1 || posts["U0BOB"] != 1 {
		t.Errorf("posts per person %v, want one each: alice's arrived before the crash, bob's did not", posts)
	}
	for _, j := range jobs {
		ds, err := e.store.Deliveries(ctx, j.Notification.ID)
		if err != nil || len(ds) != 1 || ds[0].Status != store.StatusDelivered || !strings.HasPrefix(ds[0].Receipt, "D0") {
			t.Errorf("%s's delivery: %+v %v; want delivered with the post's receipt", j.Delivery.Recipient.PersonID, ds, err)
		}
	}
}
