package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sidekickhq/sidekick/platform/outbox"
	"github.com/sidekickhq/sidekick/platform/pg/pgtest"
	"github.com/sidekickhq/sidekick/services/notifier"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notifiertest"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
	"github.com/sidekickhq/sidekick/services/notifier/internal/policy"
	"github.com/sidekickhq/sidekick/services/notifier/internal/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var (
	t0    = notifiertest.Start
	alice = notify.Recipient{PersonID: "alice", Name: "Alice", SlackID: "U0ALICE"}
	bob   = notify.Recipient{PersonID: "bob", Name: "Bob", SlackID: "U0BOB"}
)

// open returns a store on a fresh, migrated database, and its pool for
// looking at rows the store has no reader for.
func open(t *testing.T) (*store.Store, *pgxpool.Pool) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs Postgres")
	}
	pool := notifiertest.Database(t, notifier.Schema, notifier.Migrations())
	return store.New(pool), pool
}

func ping(key, conversation string) store.NewNotification {
	return store.NewNotification{IdempotencyKey: key, Origin: "test", Urgency: notify.Ping, Title: "t", ConversationID: conversation, CreatedAt: t0}
}

func delivery(key string, r notify.Recipient, channel string) store.NewDelivery {
	return store.NewDelivery{DedupKey: key + "|" + r.PersonID + "|" + channel, Recipient: r, Channel: channel}
}

func create(t *testing.T, s *store.Store, n store.NewNotification, ds ...store.NewDelivery) store.Notification {
	t.Helper()
	got, created, err := s.CreateNotification(context.Background(), n, ds)
	if err != nil || !created {
		t.Fatalf("create %s: created=%v %v", n.IdempotencyKey, created, err)
	}
	return got
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func claimOne(t *testing.T, s *store.Store, notificationID string, now time.Time) store.Job {
	t.Helper()
	jobs, err := s.Claim(context.Background(), notificationID, now, now.Add(2*time.Minute), 10)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("claim: %d jobs, %v; want 1", len(jobs), err)
	}
	return jobs[0]
}

func event(id string) outbox.Event {
	return outbox.Event{ID: id, Subject: "support.notify.delivered", Type: "t", Payload: []byte{}, CreatedAt: t0}
}

// A second notification with the same key records nothing; a delivery
// recorded as failed at once is not claimed.
func TestCreateNotificationOncePerKey(t *testing.T) {
	s, pool := open(t)
	ctx := context.Background()
	unreachable := delivery("k", bob, "none")
	unreachable.Failed = "no channel reaches Bob"
	first := create(t, s, ping("k", "conv-1"), delivery("k", alice, "slack"), unreachable)
	again, created, err := s.CreateNotification(ctx, ping("k", "conv-2"), []store.NewDelivery{delivery("k", bob, "email")})
	if err != nil || created || again.ID != first.ID || again.ConversationID != "conv-1" {
		t.Fatalf("again: %+v created=%v %v; want the first, not created", again, created, err)
	}
	ds, err := s.Deliveries(ctx, first.ID)
	if err != nil || len(ds) != 2 {
		t.Fatalf("deliveries %+v, %v", ds, err)
	}
	byChannel := map[string]store.Delivery{}
	for _, d := range ds {
		byChannel[d.Channel] = d
	}
	if byChannel["slack"].Status != store.StatusPending || byChannel["none"].Status != store.StatusFailed ||
		byChannel["none"].LastError != "no channel reaches Bob" || byChannel["slack"].Recipient != alice {
		t.Errorf("deliveries %+v", ds)
	}
	if j := claimOne(t, s, "", t0); j.Delivery.Channel != "slack" || j.Notification.ID != first.ID {
		t.Errorf("claimed %+v", j)
	}
	if n, err := s.NotificationByKey(ctx, "k"); err != nil || n.ID != first.ID {
		t.Errorf("by key: %v %v", n.ID, err)
	}
	if _, err := s.Notification(ctx, "00000000-0000-0000-0000-000000000000"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown id: %v, want ErrNotFound", err)
	}
	if n := count(t, pool, `SELECT count(*) FROM deliveries`); n != 2 {
		t.Errorf("%d deliveries recorded, want 2", n)
	}
}

// A claimed delivery is nobody else's until its lease ends; then it is
// claimed again as another attempt, and the first attempt's outcome no
// longer counts.
func TestClaimLeaseAndAStaleAttempt(t *testing.T) {
	s, pool := open(t)
	ctx := context.Background()
	n := create(t, s, ping("k", "c"), delivery("k", alice, "slack"))
	create(t, s, ping("other", "c2"), delivery("other", bob, "slack"))
	first := claimOne(t, s, n.ID, t0)
	if first.Delivery.Attempts != 1 || first.Delivery.Status != store.StatusSending {
		t.Fatalf("first claim %+v", first.Delivery)
	}
	if jobs, err := s.Claim(ctx, n.ID, t0.Add(2*time.Minute-time.Second), t0.Add(4*time.Minute), 10); err != nil || len(jobs) != 0 {
		t.Fatalf("claimed %d during the lease (%v)", len(jobs), err)
	}
	second := claimOne(t, s, n.ID, t0.Add(2*time.Minute))
	if second.Delivery.Attempts != 2 {
		t.Fatalf("second claim: attempt %d", second.Delivery.Attempts)
	}
	if since, err := s.MarkDelivered(ctx, first.Delivery.ID, 1, "ref-1", t0, event("ev-1")); err != nil || since != "" {
		t.Fatalf("stale mark: %q %v", since, err)
	}
	if got := count(t, pool, `SELECT count(*) FROM outbox`); got != 0 {
		t.Errorf("a stale attempt queued %d events", got)
	}
	if _, err := s.MarkDelivered(ctx, second.Delivery.ID, 2, "ref-2", t0.Add(2*time.Minute), event("ev-2")); err != nil {
		t.Fatal(err)
	}
	ds, _ := s.Deliveries(ctx, n.ID)
	if ds[0].Status != store.StatusDelivered || ds[0].Receipt != "ref-2" || !ds[0].DeliveredAt.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("delivery %+v", ds[0])
	}
	if got := count(t, pool, `SELECT count(*) FROM outbox`); got != 1 {
		t.Errorf("%d events queued, want 1", got)
	}
}

// An acknowledgement committing while a message is being recorded as
// sent: MarkDelivered waits for it and says so, so the message just sent
// is updated. (Before it locked the notification, each missed the other.)
func TestMarkDeliveredSeesAnAcknowledgementCommittingMeanwhile(t *testing.T) {
	s, pool := open(t)
	ctx := context.Background()
	n := create(t, s, ping("k", "c"), delivery("k", alice, "slack"))
	j := claimOne(t, s, n.ID, t0)
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `UPDATE notifications SET acknowledged_at = $2, acknowledged_by = 'bob' WHERE id = $1`, n.ID, t0); err != nil {
		t.Fatal(err)
	}
	type result struct {
		since string
		err   error
	}
	done := make(chan result, 1)
	go func() {
		since, err := s.MarkDelivered(ctx, j.Delivery.ID, 1, "ref", t0, event("ev"))
		done <- result{since, err}
	}()
	// MarkDelivered is waiting for the lock; the acknowledgement commits.
	notifiertest.Eventually(t, "MarkDelivered waiting for the notification's lock", func() bool {
		return count(t, pool, `SELECT count(*) FROM pg_locks WHERE NOT granted`) > 0
	})
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.err != nil || r.since != "acknowledged by bob" {
		t.Fatalf("MarkDelivered = %q, %v; want acknowledged by bob", r.since, r.err)
	}
}

// A final failure of the last delivery that could reach anyone makes the
// escalation's next step due now; a webhook copy does not count as
// reaching anyone, another pending delivery does.
func TestMarkFailedHurriesTheNextStep(t *testing.T) {
	for _, tc := range []struct {
		name  string
		other string // the channel of a second delivery of the step, and its state
		state string
		want  bool
	}{
		{"alone", "", "", true},
		{"beside a webhook copy", "webhook", "delivered", true},
		{"beside a pending ping", "email", "pending", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, pool := open(t)
			ctx := context.Background()
			esc := startEscalation(t, s, "esc", "", 0)
			ids := firedNotifications(t, pool, esc.ID)
			if tc.other != "" {
				if _, err := pool.Exec(ctx, `INSERT INTO deliveries (notification_id, dedup_key, channel, status, next_attempt_at, created_at, updated_at)
					VALUES ($1, 'other', $2, $3, $4, $4, $4)`, ids[0], tc.other, tc.state, t0.Add(time.Hour)); err != nil {
					t.Fatal(err)
				}
			}
			j := claimOne(t, s, ids[0], t0)
			now := t0.Add(time.Minute)
			hurried, err := s.MarkFailed(ctx, j.Delivery.ID, 1, "user_not_found", time.Time{}, now, event("failed"), event("dead"))
			if err != nil || hurried != tc.want {
				t.Fatalf("hurried = %v, %v; want %v", hurried, err, tc.want)
			}
			got, err := s.Escalation(ctx, esc.ID)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want && (!got.Hurried || !got.DueAt.Equal(now)) || !tc.want && got.Hurried {
				t.Errorf("escalation hurried=%v due %v", got.Hurried, got.DueAt)
			}
			if n := count(t, pool, `SELECT count(*) FROM outbox`); n != 2 {
				t.Errorf("%d events queued, want the failure and its dead letter", n)
			}
		})
	}
}

// A retry is pending again at its time; a deferred delivery (rate limit)
// is too, without counting the attempt.
func TestRetryAndDefer(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	n := create(t, s, ping("k", "c"), delivery("k", alice, "slack"))
	j := claimOne(t, s, n.ID, t0)
	if _, err := s.MarkFailed(ctx, j.Delivery.ID, 1, "timeout", t0.Add(time.Minute), t0); err != nil {
		t.Fatal(err)
	}
	if jobs, _ := s.Claim(ctx, "", t0.Add(time.Minute-time.Second), t0.Add(time.Hour), 10); len(jobs) != 0 {
		t.Fatal("a retry was claimed before its time")
	}
	j = claimOne(t, s, "", t0.Add(time.Minute))
	if err := s.Defer(ctx, j.Delivery.ID, 2, t0.Add(10*time.Minute), t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if jobs, _ := s.Claim(ctx, "", t0.Add(10*time.Minute-time.Second), t0.Add(time.Hour), 10); len(jobs) != 0 {
		t.Fatal("a deferred delivery was claimed before its time")
	}
	if j = claimOne(t, s, "", t0.Add(10*time.Minute)); j.Delivery.Attempts != 2 || j.Delivery.LastError != "timeout" {
		t.Errorf("after the deferral: attempt %d, last error %q; want attempt 2", j.Delivery.Attempts, j.Delivery.LastError)
	}
}

// TakeRateSlot gives places in one recipient's window up to the limit,
// per channel; a delivery keeps its place across attempts, a failed send
// gives it back, and a full window says when its oldest place frees up.
func TestTakeRateSlot(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	ids := map[string]string{}
	for _, key := range []string{"a", "b", "c"} {
		n := create(t, s, ping(key, "c"), delivery(key, alice, "slack"))
		ids[key] = claimOne(t, s, n.ID, t0).Delivery.ID
	}
	take := func(key string, at time.Time) time.Time {
		t.Helper()
		held, err := s.TakeRateSlot(ctx, ids[key], "slack", alice, at, 10*time.Minute, 2)
		if err != nil {
			t.Fatal(err)
		}
		return held
	}
	if held := take("a", t0); !held.IsZero() {
		t.Fatalf("first place held until %v", held)
	}
	if held := take("a", t0.Add(time.Second)); !held.IsZero() {
		t.Fatal("a delivery's retry lost its own place")
	}
	if held := take("b", t0.Add(time.Minute)); !held.IsZero() {
		t.Fatal("second place held")
	}
	if held := take("c", t0.Add(2*time.Minute)); !held.Equal(t0.Add(10*time.Minute + time.Second)) {
		t.Errorf("third place held until %v, want when the oldest (+1s) leaves the window", held)
	}
	if _, err := s.MarkFailed(ctx, ids["b"], 1, "timeout", t0.Add(time.Hour), t0.Add(2*time.Minute), event("b")); err != nil {
		t.Fatal(err)
	}
	if held := take("c", t0.Add(3*time.Minute)); !held.IsZero() {
		t.Errorf("the place of a failed send was not given back: held until %v", held)
	}
	if held, err := s.TakeRateSlot(ctx, ids["c"], "email", alice, t0.Add(3*time.Minute), 10*time.Minute, 1); err != nil || !held.IsZero() {
		t.Errorf("another channel's window: held until %v, %v", held, err)
	}
}

// startEscalation starts an escalation whose fire records one step (step
// 0, one Slack ping to alice) and leaves step 1 due at t0+10m.
func startEscalation(t *testing.T, s *store.Store, key, group string, pos int) store.Escalation {
	t.Helper()
	esc, created, ids, err := s.StartEscalation(context.Background(), newEscalation(key, group, "conv-"+key), t0, fireOne(pos))
	if err != nil || !created || len(ids) != 1 {
		t.Fatalf("start %s: created=%v ids=%v %v", key, created, ids, err)
	}
	return esc
}

func newEscalation(key, group, conversation string) store.NewEscalation {
	p, _ := json.Marshal(policy.Policy{ID: "p"})
	return store.NewEscalation{Key: key, GroupKey: group, Kind: "new_conversation", PolicyID: "p", Policy: p,
		ConversationID: conversation, Title: "t", StartedAt: t0, CreatedAt: t0}
}

// fireOne fires step pos (a ping to alice) and makes the next due 10
// minutes after t0.
func fireOne(pos int) store.FireFunc {
	return func(_ context.Context, esc store.Escalation) (store.Fired, error) {
		key := esc.Key + "#" + string(rune('0'+pos))
		return store.Fired{
			Steps:    []store.FiredStep{{Position: pos, Notification: ping(key, esc.ConversationID), Deliveries: []store.NewDelivery{delivery(key, alice, "slack")}}},
			NextStep: pos + 1, DueAt: t0.Add(10 * time.Minute), Status: store.EscalationActive,
		}, nil
	}
}

func firedNotifications(t *testing.T, pool *pgxpool.Pool, escalationID string) []string {
	t.Helper()
	rows, _ := pool.Query(context.Background(), `SELECT id FROM notifications WHERE escalation_id = $1 ORDER BY step`, escalationID)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// One escalation per key, and one open escalation per group: a second
// start gets the first; once the first is closed the group starts anew.
func TestStartEscalationOncePerKeyAndGroup(t *testing.T) {
	s, pool := open(t)
	ctx := context.Background()
	first := startEscalation(t, s, "k1", "sentry/c", 0)
	if first.NextStep != 1 || !first.DueAt.Equal(t0.Add(10*time.Minute)) || first.Status != store.EscalationActive {
		t.Fatalf("started %+v", first)
	}
	never := func(context.Context, store.Escalation) (store.Fired, error) {
		t.Error("fired an escalation that was not started")
		return store.Fired{}, nil
	}
	for _, key := range []string{"k1", "k2"} {
		got, created, ids, err := s.StartEscalation(ctx, newEscalation(key, "sentry/c", "conv-k1"), t0, never)
		if err != nil || created || len(ids) != 0 || got.ID != first.ID {
			t.Errorf("start %s again: %s created=%v %v", key, got.ID, created, err)
		}
	}
	if _, err := s.Acknowledge(ctx, store.Ack{NotificationID: firedNotifications(t, pool, first.ID)[0], Actor: "alice", At: t0},
		func(store.Notification) (outbox.Event, error) { return event("acked"), nil }); err != nil {
		t.Fatal(err)
	}
	if _, created, _, err := s.StartEscalation(ctx, newEscalation("k3", "sentry/c", "conv-k1"), t0, fireOne(0)); err != nil || !created {
		t.Errorf("a new escalation in the group after the first was acknowledged: created=%v %v", created, err)
	}
}

// Acknowledging one step's notification acknowledges the escalation's
// other steps, cancels their unsent deliveries and reports the sent ones;
// a second acknowledgement changes nothing.
func TestAcknowledgeAStepAcknowledgesTheEscalation(t *testing.T) {
	s, pool := open(t)
	ctx := context.Background()
	esc := startEscalation(t, s, "k", "", 0)
	j := claimOne(t, s, "", t0)
	if _, err := s.MarkDelivered(ctx, j.Delivery.ID, 1, "D0ALICE/1", t0, event("d")); err != nil {
		t.Fatal(err)
	}
	// Step 1 fires at its time; its delivery is not sent yet.
	if _, found, ids, err := s.FireDue(ctx, t0.Add(10*time.Minute), fireOne(1)); err != nil || !found || len(ids) != 1 {
		t.Fatalf("fire step 1: found=%v %v %v", found, ids, err)
	}
	steps := firedNotifications(t, pool, esc.ID)
	acked, err := s.Acknowledge(ctx, store.Ack{NotificationID: steps[0], Actor: "alice", At: t0.Add(11 * time.Minute)},
		func(n store.Notification) (outbox.Event, error) { return event(n.ID + "/acked"), nil })
	if err != nil || len(acked) != 2 {
		t.Fatalf("acknowledged %d, %v; want both steps", len(acked), err)
	}
	sent := 0
	for _, a := range acked {
		sent += len(a.Sent)
		if a.Notification.AcknowledgedBy != "alice" {
			t.Errorf("acknowledged by %q", a.Notification.AcknowledgedBy)
		}
	}
	if sent != 1 {
		t.Errorf("%d sent messages reported, want step 0's", sent)
	}
	if n := count(t, pool, `SELECT count(*) FROM deliveries WHERE status = 'cancelled' AND last_error = 'acknowledged by alice'`); n != 1 {
		t.Errorf("%d deliveries cancelled, want step 1's", n)
	}
	if got, _ := s.Escalation(ctx, esc.ID); got.Status != store.EscalationAcked || got.StopReason != "acknowledged by alice" || !got.DueAt.IsZero() {
		t.Errorf("escalation %s (%s) due %v", got.Status, got.StopReason, got.DueAt)
	}
	if again, err := s.Acknowledge(ctx, store.Ack{ConversationID: "conv-k", Actor: "bob", At: t0.Add(time.Hour)},
		func(n store.Notification) (outbox.Event, error) { return event(n.ID + "/again"), nil }); err != nil || len(again) != 0 {
		t.Errorf("second acknowledgement: %d, %v", len(again), err)
	}
	if _, err := s.Acknowledge(ctx, store.Ack{NotificationID: "00000000-0000-0000-0000-000000000000", At: t0},
		func(store.Notification) (outbox.Event, error) { return event("x"), nil }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown notification: %v, want ErrNotFound", err)
	}
}

// An answered conversation stops its notifications and escalations; an
// escalation due afterwards stops instead of firing; a reopening forgets
// the stop.
func TestStopConversation(t *testing.T) {
	s, pool := open(t)
	ctx := context.Background()
	esc := startEscalation(t, s, "k", "", 0)
	stopAt := t0.Add(5 * time.Minute)
	stopped, err := s.StopConversation(ctx, "conv-k", "answered by bob", stopAt)
	if err != nil || len(stopped) != 1 || stopped[0].Notification.StopReason != "answered by bob" {
		t.Fatalf("stopped %+v, %v", stopped, err)
	}
	if n := count(t, pool, `SELECT count(*) FROM deliveries WHERE status = 'cancelled'`); n != 1 {
		t.Errorf("%d deliveries cancelled, want 1", n)
	}
	if got, _ := s.Escalation(ctx, esc.ID); got.Status != store.EscalationStopped {
		t.Errorf("escalation %s", got.Status)
	}
	for _, tc := range []struct {
		at   time.Time
		want bool
	}{{t0, true}, {stopAt, true}, {stopAt.Add(time.Second), false}} {
		if got, err := s.ConversationStopped(ctx, "conv-k", tc.at); err != nil || got != tc.want {
			t.Errorf("stopped at %v = %v, %v; want %v", tc.at, got, err, tc.want)
		}
	}
	// Another escalation of the conversation, started before the stop and
	// due after it, stops when it comes due.
	if _, err := pool.Exec(ctx, `INSERT INTO escalations (key, kind, policy_id, policy, conversation_id, title, started_at, due_at, created_at, updated_at)
		VALUES ('late', 'deadline', 'p', '{}', 'conv-k', 't', $1, $2, $1, $1)`, t0, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, found, ids, err := s.FireDue(ctx, t0.Add(time.Hour), func(context.Context, store.Escalation) (store.Fired, error) {
		t.Error("fired an escalation of an answered conversation")
		return store.Fired{}, nil
	})
	if err != nil || !found || len(ids) != 0 || got.Status != store.EscalationStopped || got.StopReason != "answered by bob" {
		t.Errorf("late escalation: %s (%s) found=%v %v", got.Status, got.StopReason, found, err)
	}
	if err := s.ResumeConversation(ctx, "conv-k", stopAt); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ConversationStopped(ctx, "conv-k", t0); got {
		t.Error("still stopped after a reopening")
	}
}

// A step that cannot be fired leaves the escalation as it was; Postpone
// makes it due later.
func TestFireDueErrorAndPostpone(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	esc := startEscalation(t, s, "k", "", 0)
	if _, found, _, err := s.FireDue(ctx, t0.Add(10*time.Minute-time.Second), fireOne(1)); err != nil || found {
		t.Fatalf("due early: found=%v %v", found, err)
	}
	failing := func(context.Context, store.Escalation) (store.Fired, error) {
		return store.Fired{}, errors.New("rotation unreachable")
	}
	got, found, _, err := s.FireDue(ctx, t0.Add(10*time.Minute), failing)
	if err == nil || !found || got.ID != esc.ID || got.NextStep != 1 {
		t.Fatalf("failed fire: %+v found=%v %v", got, found, err)
	}
	if err := s.Postpone(ctx, esc.ID, t0.Add(11*time.Minute), t0.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, found, _, _ := s.FireDue(ctx, t0.Add(11*time.Minute-time.Second), fireOne(1)); found {
		t.Error("fired before the postponed time")
	}
	if got, found, ids, err := s.FireDue(ctx, t0.Add(11*time.Minute), fireOne(1)); err != nil || !found || len(ids) != 1 || got.NextStep != 2 {
		t.Errorf("after the postponement: next %d found=%v ids=%v %v", got.NextStep, found, ids, err)
	}
}

// Deadlines: what triage reports is kept, field by field; reporting the
// same again is no change, and touches no row (not even a lock: that
// would be a commit flushed to disk for every TRIAGED event); forgetting
// drops them.
func TestLearnDeadlines(t *testing.T) {
	s, pool := open(t)
	ctx := context.Background()
	great, okay := t0.Add(15*time.Minute), t0.Add(time.Hour)
	version := func() string {
		var v string
		if err := pool.QueryRow(ctx, `SELECT xmin::text || '/' || xmax::text FROM conversation_deadlines WHERE conversation_id = 'c'`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	for i, tc := range []struct {
		d    store.Deadlines
		want bool
	}{
		{store.Deadlines{Great: great}, true},
		{store.Deadlines{Great: great}, false},
		{store.Deadlines{Okay: okay}, true},
		{store.Deadlines{Okay: okay, Great: great}, false},
		{store.Deadlines{}, false},
	} {
		before := ""
		if i > 0 {
			before = version()
		}
		if changed, active, err := s.LearnDeadlines(ctx, "c", tc.d, t0); err != nil || changed != tc.want || len(active) != 0 {
			t.Errorf("report %d: changed=%v active %v %v, want %v and none", i, changed, active, err, tc.want)
		}
		if after := version(); !tc.want && after != before {
			t.Errorf("report %d changed nothing but wrote the row: xmin/xmax %s, then %s", i, before, after)
		}
	}
	if _, _, _, err := s.StartEscalation(ctx, newEscalation("k", "", "c"), t0, fireOne(0)); err != nil {
		t.Fatal(err)
	}
	got, _ := s.EscalationByKey(ctx, "k")
	if !got.Deadlines.Great.Equal(great) || !got.Deadlines.Okay.Equal(okay) || !got.Deadlines.TooLate.IsZero() {
		t.Errorf("deadlines %+v", got.Deadlines)
	}
	if err := s.ForgetDeadlines(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.EscalationByKey(ctx, "k"); got.Deadlines != (store.Deadlines{}) {
		t.Errorf("after forgetting: %+v", got.Deadlines)
	}
	// A change is reported with the active escalations, read with it.
	if changed, active, err := s.LearnDeadlines(ctx, "c", store.Deadlines{Great: great}, t0); err != nil || !changed || len(active) != 1 || active[0] != got.ID {
		t.Errorf("after a change: changed=%v active %v %v, want %s", changed, active, err, got.ID)
	}
}

// The deadlines an event reports are written by its escalation's
// transaction in its last round trip: while the steps are decided (rotation
// is asked then) the conversation's other events can still write the row,
// and the steps see the event's deadlines over those known before.
func TestStartEscalationWritesTheDeadlinesLast(t *testing.T) {
	s, pool := open(t)
	ctx := context.Background()
	great, okay := t0.Add(15*time.Minute), t0.Add(time.Hour)
	if _, _, err := s.LearnDeadlines(ctx, "c", store.Deadlines{Great: great}, t0); err != nil {
		t.Fatal(err)
	}
	ne := newEscalation("k", "", "c")
	ne.Reported = store.Deadlines{Okay: okay}
	var seen store.Deadlines
	fire := func(ctx context.Context, esc store.Escalation) (store.Fired, error) {
		seen = esc.Deadlines
		tx, err := pool.Begin(ctx)
		if err != nil {
			return store.Fired{}, err
		}
		defer func() { _ = tx.Rollback(ctx) }()
		if _, err := tx.Exec(ctx, `SELECT 1 FROM conversation_deadlines WHERE conversation_id = 'c' FOR UPDATE NOWAIT`); err != nil {
			t.Errorf("the deadline's row is held while the steps are decided: %v", err)
		}
		return fireOne(0)(ctx, esc)
	}
	if _, created, ids, err := s.StartEscalation(ctx, ne, t0, fire); err != nil || !created || len(ids) != 1 {
		t.Fatalf("start: created=%v ids=%v %v", created, ids, err)
	}
	if !seen.Great.Equal(great) || !seen.Okay.Equal(okay) {
		t.Errorf("the steps saw %+v, want great %v and okay %v", seen, great, okay)
	}
	if got, _ := s.EscalationByKey(ctx, "k"); !got.Deadlines.Great.Equal(great) || !got.Deadlines.Okay.Equal(okay) {
		t.Errorf("recorded %+v", got.Deadlines)
	}
}

// A handoff held for the incoming hero starts when their shift starts,
// from the shift's start when that is earlier; one for someone else stays
// held.
func TestShiftStartsAndHeldHandoffs(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	held := func(key, person string) store.NewEscalation {
		ne := newEscalation(key, "", "")
		ne.Kind, ne.PersonID, ne.Held, ne.StartedAt = "handoff", person, true, t0.Add(time.Hour)
		return ne
	}
	notYet := func(context.Context, store.Escalation) (store.Fired, error) {
		return store.Fired{NextStep: 0, DueAt: t0.Add(time.Hour), Status: store.EscalationActive}, nil
	}
	for _, ne := range []store.NewEscalation{held("for-alice", "alice"), held("for-bob", "bob")} {
		if _, _, _, err := s.StartEscalation(ctx, ne, t0, notYet); err != nil {
			t.Fatal(err)
		}
	}
	start := t0.Add(2 * time.Minute)
	for range 2 { // a redelivered shift_started is the same shift
		if err := s.RecordShiftStart(ctx, "shift-1", "alice", start); err != nil {
			t.Fatal(err)
		}
	}
	if got, ok, err := s.ShiftStarted(ctx, "alice", t0, t0.Add(time.Hour)); err != nil || !ok || !got.Equal(start) {
		t.Errorf("alice's shift: %v %v %v", got, ok, err)
	}
	if _, ok, _ := s.ShiftStarted(ctx, "alice", start.Add(time.Second), t0.Add(time.Hour)); ok {
		t.Error("a shift that started before the window was found")
	}
	if _, ok, _ := s.ShiftStarted(ctx, "bob", t0, t0.Add(time.Hour)); ok {
		t.Error("bob's shift was found")
	}
	var fired []store.Escalation
	ids, err := s.ReleaseHandoffs(ctx, "alice", start, start, func(_ context.Context, esc store.Escalation) (store.Fired, error) {
		fired = append(fired, esc)
		return fireOne(0)(ctx, esc)
	})
	if err != nil || len(ids) != 1 || len(fired) != 1 || fired[0].Key != "for-alice" || !fired[0].StartedAt.Equal(start) || fired[0].Held {
		t.Fatalf("released %v (fired %+v), %v", ids, fired, err)
	}
	if bob, _ := s.EscalationByKey(ctx, "for-bob"); !bob.Held {
		t.Error("bob's handoff was released")
	}
}

// An update of a group is recorded unless a newer one is; the rewrite
// gets the delivered messages of the open escalation.
func TestQueueAndFireRefresh(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	esc := startEscalation(t, s, "k", "sentry/c", 0)
	j := claimOne(t, s, "", t0)
	if _, err := s.MarkDelivered(ctx, j.Delivery.ID, 1, "D0ALICE/1", t0, event("d")); err != nil {
		t.Fatal(err)
	}
	var seen []time.Time
	due := func(at time.Time) func(pending, refreshed time.Time) time.Time {
		return func(pending, refreshed time.Time) time.Time {
			seen = append(seen, pending, refreshed)
			return at
		}
	}
	if id, at, err := s.QueueRefresh(ctx, "sentry/none", "x", t0, t0, due(t0)); err != nil || id != "" || !at.IsZero() {
		t.Errorf("a group without an escalation: %q %v %v", id, at, err)
	}
	id, at, err := s.QueueRefresh(ctx, "sentry/c", "latest: 3 events", t0.Add(time.Second), t0, due(t0.Add(time.Minute)))
	if err != nil || id != esc.ID || !at.Equal(t0.Add(time.Minute)) || !seen[0].IsZero() || !seen[1].IsZero() {
		t.Fatalf("queued %q at %v (due saw %v), %v", id, at, seen, err)
	}
	if id, _, _ := s.QueueRefresh(ctx, "sentry/c", "older", t0, t0, due(t0)); id != "" {
		t.Error("an older update replaced a newer one")
	}
	if found, err := s.FireRefresh(ctx, "", t0.Add(time.Minute-time.Second), t0.Add(2*time.Minute), nil); err != nil || found {
		t.Fatalf("a refresh fired early: %v %v", found, err)
	}
	var text string
	var sent []store.Sent
	found, err := s.FireRefresh(ctx, "", t0.Add(time.Minute), t0.Add(2*time.Minute), func(_ context.Context, e store.Escalation, ss []store.Sent) error {
		text, sent = e.RefreshText, ss
		return nil
	})
	if err != nil || !found || text != "latest: 3 events" || len(sent) != 1 || sent[0].Delivery.Receipt != "D0ALICE/1" {
		t.Fatalf("refresh: found=%v text=%q sent=%+v %v", found, text, sent, err)
	}
	seen = nil
	if _, _, err := s.QueueRefresh(ctx, "sentry/c", "latest: 4 events", t0.Add(2*time.Second), t0.Add(time.Minute), due(t0.Add(2*time.Minute))); err != nil {
		t.Fatal(err)
	}
	if !seen[0].IsZero() || !seen[1].Equal(t0.Add(time.Minute)) {
		t.Errorf("due saw pending %v, refreshed %v; want none pending, refreshed at +1m", seen[0], seen[1])
	}
	if got, _ := s.Escalation(ctx, esc.ID); got.Refreshes != 1 || !got.RefreshDueAt.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("escalation: %d refreshes, next due %v", got.Refreshes, got.RefreshDueAt)
	}
}

// An update of a storm group handled before the group's first escalation
// is recorded (its OPENED still being handled) is that escalation's first
// refresh; once the group has had an escalation, an update with none open
// is dropped, as before.
func TestAnUpdateBeforeTheEscalationIsKeptForIt(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	due := func(pending, refreshed time.Time) time.Time { return t0 }
	if id, _, err := s.QueueRefresh(ctx, "sentry/c", "latest: 2 events", t0, t0, due); err != nil || id != "" {
		t.Fatalf("queued for %q, %v; want no escalation yet", id, err)
	}
	if id, _, _ := s.QueueRefresh(ctx, "sentry/c", "older", t0.Add(-time.Second), t0, due); id != "" {
		t.Fatal("an escalation appeared")
	}
	esc := startEscalation(t, s, "k", "sentry/c", 0)
	got, err := s.Escalation(ctx, esc.ID)
	if err != nil || got.RefreshText != "latest: 2 events" || !got.RefreshDueAt.Equal(t0) || !got.RefreshEventAt.Equal(t0) {
		t.Fatalf("escalation's refresh %q due %v (event %v), %v; want the newer update, due at once", got.RefreshText, got.RefreshDueAt, got.RefreshEventAt, err)
	}
	// Acknowledged: the group has no open escalation, and updates go
	// nowhere until the next one.
	if _, err := s.Acknowledge(ctx, store.Ack{ConversationID: "conv-k", Actor: "alice", At: t0},
		func(n store.Notification) (outbox.Event, error) { return event(n.ID + "/acked"), nil }); err != nil {
		t.Fatal(err)
	}
	if id, _, err := s.QueueRefresh(ctx, "sentry/c", "after the ack", t0.Add(time.Minute), t0.Add(time.Minute), due); err != nil || id != "" {
		t.Fatalf("queued for %q, %v", id, err)
	}
	next, _, _, err := s.StartEscalation(ctx, newEscalation("k2", "sentry/c", "conv-k"), t0.Add(2*time.Minute), fireOne(0))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Escalation(ctx, next.ID); got.RefreshText != "" || !got.RefreshDueAt.IsZero() {
		t.Errorf("the next escalation inherited %q", got.RefreshText)
	}
}

// A refresh due while the escalation's first message is still on its way
// waits for it (until later) instead of rewriting nothing; once the
// message is delivered, it is rewritten.
func TestRefreshWaitsForAMessageOnItsWay(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	esc := startEscalation(t, s, "k", "sentry/c", 0)
	due := func(pending, refreshed time.Time) time.Time { return t0 }
	if id, _, err := s.QueueRefresh(ctx, "sentry/c", "latest: 5 events", t0, t0, due); err != nil || id != esc.ID {
		t.Fatalf("queued for %q, %v", id, err)
	}
	called := 0
	count := func(_ context.Context, _ store.Escalation, sent []store.Sent) error {
		called += len(sent)
		return nil
	}
	if found, err := s.FireRefresh(ctx, esc.ID, t0, t0.Add(time.Minute), count); err != nil || !found || called != 0 {
		t.Fatalf("refresh with the message on its way: found=%v called=%d %v", found, called, err)
	}
	if got, _ := s.Escalation(ctx, esc.ID); got.Refreshes != 0 || !got.RefreshDueAt.Equal(t0.Add(time.Minute)) || got.RefreshText != "latest: 5 events" {
		t.Fatalf("after waiting: %d refreshes, due %v, text %q", got.Refreshes, got.RefreshDueAt, got.RefreshText)
	}
	j := claimOne(t, s, "", t0)
	if _, err := s.MarkDelivered(ctx, j.Delivery.ID, 1, "D0ALICE/1", t0, event("d")); err != nil {
		t.Fatal(err)
	}
	if found, err := s.FireRefresh(ctx, "", t0.Add(time.Minute), t0.Add(2*time.Minute), count); err != nil || !found || called != 1 {
		t.Fatalf("refresh after the delivery: found=%v called=%d %v", found, called, err)
	}
}

// A digest sends the items of one slot once, without those whose
// conversation was answered since they were added.
func TestDigest(t *testing.T) {
	s, pool := open(t)
	ctx := context.Background()
	due := t0.Add(2 * time.Hour)
	item := func(key, conversation string) store.DigestItem {
		return store.DigestItem{Key: key, PolicyID: "community-new", Target: "hero", DueAt: due, ConversationID: conversation, Title: key, AddedAt: t0}
	}
	for _, it := range []store.DigestItem{item("a", "c-a"), item("b", "c-b"), item("a", "c-a")} {
		if _, err := s.AddDigestItem(ctx, it); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.StopConversation(ctx, "c-b", "answered", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	var got []store.DigestItem
	digest := func(_ context.Context, policyID, target string, at time.Time, items []store.DigestItem) ([]store.DigestPart, error) {
		got = items
		return []store.DigestPart{{FiredStep: store.FiredStep{Notification: ping("digest/"+policyID, ""), Deliveries: []store.NewDelivery{delivery("digest", alice, "slack")}},
			Keys: []string{items[0].Key}}}, nil
	}
	if found, _, err := s.FireDigest(ctx, due.Add(-time.Second), every4h, digest); err != nil || found {
		t.Fatalf("a digest before its time: %v %v", found, err)
	}
	found, ids, err := s.FireDigest(ctx, due, every4h, digest)
	if err != nil || !found || len(ids) != 1 || len(got) != 1 || got[0].Key != "a" {
		t.Fatalf("digest: found=%v ids=%q items=%+v %v", found, ids, got, err)
	}
	if n := count(t, pool, `SELECT count(*) FROM digest_items WHERE key = 'b' AND dropped`); n != 1 {
		t.Error("the answered conversation's item was not dropped")
	}
	if found, _, err := s.FireDigest(ctx, due.Add(time.Hour), every4h, digest); err != nil || found {
		t.Errorf("the digest went twice: %v %v", found, err)
	}
}

// every4h is the store.NextDigestFunc of 4-hourly digests.
func every4h(_ string, due time.Time) time.Time { return policy.Digest{Every: 4 * time.Hour}.Next(due) }

// digestRecorder is a store.DigestFunc that records the items of each
// digest it makes, in parts of at most two items.
type digestRecorder struct{ digests [][]string }

func (d *digestRecorder) fire(_ context.Context, policyID, target string, due time.Time, items []store.DigestItem) ([]store.DigestPart, error) {
	var all []string
	var parts []store.DigestPart
	for start := 0; start < len(items); start += 2 {
		key := fmt.Sprintf("digest/%s/%s/%d/%d", policyID, target, due.Unix(), len(parts)+1)
		part := store.DigestPart{FiredStep: store.FiredStep{Notification: ping(key, ""), Deliveries: []store.NewDelivery{delivery(key, alice, "slack")}}}
		for _, it := range items[start:min(start+2, len(items))] {
			part.Keys = append(part.Keys, it.Key)
			all = append(all, it.Key)
		}
		parts = append(parts, part)
	}
	d.digests = append(d.digests, all)
	return parts, nil
}

// An item that reaches its slot after the slot's digest went out (its
// event was handled late) is not marked sent by that digest, which never
// listed it: it goes out in the next one.
func TestDigestItemsArrivingAfterTheirDigestGoIntoTheNextOne(t *testing.T) {
	s, pool := open(t)
	ctx := context.Background()
	due := t0.Add(2 * time.Hour)
	item := func(key string) store.DigestItem {
		return store.DigestItem{Key: key, PolicyID: "community-new", Target: "hero", DueAt: due, ConversationID: "c-" + key, Title: key, AddedAt: t0}
	}
	var d digestRecorder
	if _, err := s.AddDigestItem(ctx, item("early")); err != nil {
		t.Fatal(err)
	}
	first, ids, err := s.FireDigest(ctx, due, every4h, d.fire)
	if err != nil || !first || len(ids) != 1 {
		t.Fatalf("first digest: found=%v ids=%q %v", first, ids, err)
	}
	id := ids[0]
	if _, err := s.AddDigestItem(ctx, item("late")); err != nil {
		t.Fatal(err)
	}
	if _, late, err := s.FireDigest(ctx, due.Add(time.Minute), every4h, d.fire); err != nil || len(late) != 0 {
		t.Fatalf("the late item went out in the slot already sent: notifications %q %v", late, err)
	}
	if n := count(t, pool, `SELECT count(*) FROM digest_items WHERE notification_id = $1`, id); n != 1 {
		t.Errorf("%d items point at the first digest, which listed 1", n)
	}
	_, next, err := s.FireDigest(ctx, due.Add(4*time.Hour), every4h, d.fire)
	if err != nil || len(next) != 1 || next[0] == id {
		t.Fatalf("next digest: %q (first %q) %v", next, id, err)
	}
	if want := [][]string{{"early"}, {"late"}}; fmt.Sprint(d.digests) != fmt.Sprint(want) {
		t.Errorf("digests %v, want %v", d.digests, want)
	}
}

// A digest too big for one message goes out in parts: each item is
// marked with the part that lists it.
func TestDigestInParts(t *testing.T) {
	s, pool := open(t)
	ctx := context.Background()
	due := t0.Add(2 * time.Hour)
	for _, key := range []string{"a", "b", "c", "d", "e"} {
		if _, err := s.AddDigestItem(ctx, store.DigestItem{Key: key, PolicyID: "community-new", Target: "hero", DueAt: due,
			ConversationID: "c-" + key, Title: key, AddedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	var d digestRecorder
	_, ids, err := s.FireDigest(ctx, due, every4h, d.fire)
	if err != nil || len(ids) != 3 {
		t.Fatalf("parts %q, %v; want 3", ids, err)
	}
	for i, want := range []int{2, 2, 1} {
		if n := count(t, pool, `SELECT count(*) FROM digest_items WHERE notification_id = $1`, ids[i]); n != want {
			t.Errorf("part %d lists %d items, want %d", i+1, n, want)
		}
	}
}

// A replica firing a digest lists every item of the slot even when
// another replica holds one of the rows for a moment (it looked at the
// slot and lost the race for it): the item is waited for, not skipped.
func TestDigestWaitsForAnItemAnotherReplicaHolds(t *testing.T) {
	s, pool := open(t)
	ctx := context.Background()
	due := t0.Add(2 * time.Hour)
	for _, key := range []string{"a", "b"} {
		if _, err := s.AddDigestItem(ctx, store.DigestItem{Key: key, PolicyID: "community-new", Target: "hero", DueAt: due,
			ConversationID: "c-" + key, Title: key, AddedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	other, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback(ctx)
	if _, err := other.Exec(ctx, `SELECT 1 FROM digest_items WHERE key = 'b' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	var d digestRecorder
	done := make(chan error, 1)
	go func() {
		_, _, err := s.FireDigest(ctx, due, every4h, d.fire)
		done <- err
	}()
	// Let the other replica go once the digest has finished or is waiting
	// for the row; either way the digest must list both items.
	var err2 error
	notifiertest.Eventually(t, "the digest done or waiting for the row", func() bool {
		select {
		case err2 = <-done:
			done <- err2
			return true
		default:
		}
		return count(t, pool, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`) > 0
	})
	if err := other.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if want := [][]string{{"a", "b"}}; fmt.Sprint(d.digests) != fmt.Sprint(want) {
		t.Errorf("digests %v, want %v", d.digests, want)
	}
}
