package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sidekickhq/sidekick/platform/pg/pgtest"
	"github.com/sidekickhq/sidekick/services/notifier"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notifiertest"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
	"github.com/sidekickhq/sidekick/services/notifier/internal/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var (
	t0    = notifiertest.Start
	alice = notify.Recipient{PersonID: "alice", Name: "Alice", SlackID: "U0ALICE"}
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

func event(id string) store.OutboxEvent {
	return store.OutboxEvent{EventID: id, Subject: "support.notify.delivered", Payload: []byte{}, OccurredAt: t0}
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
