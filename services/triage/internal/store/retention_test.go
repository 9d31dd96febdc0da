package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sidekickhq/sidekick/platform/pg/prune"
	"github.com/sidekickhq/sidekick/services/triage"
	"github.com/sidekickhq/sidekick/services/triage/internal/store"
	"github.com/sidekickhq/sidekick/services/triage/internal/triagetest"
)

// seedRetention writes outbox rows (sent long ago, sent lately, never
// sent) and inbox ids (handled past the minimum retention, within it but
// past the configured 30 days, lately).
func seedRetention(t *testing.T, pool *pgxpool.Pool, now time.Time) {
	t.Helper()
	ctx := context.Background()
	day := 24 * time.Hour
	if _, err := pool.Exec(ctx, `INSERT INTO outbox (id, subject, type, payload, created_at, sent_at) VALUES
		('sent-old', 's', 't', '', $1, $1), ('sent-lately', 's', 't', '', $2, $2), ('unsent-old', 's', 't', '', $1, NULL)`,
		now.Add(-3*day), now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO inbox (message_id, handled_at) VALUES
		('handled-40d', $1), ('handled-31d', $2), ('handled-1d', $3)`,
		now.Add(-40*day), now.Add(-31*day), now.Add(-day)); err != nil {
		t.Fatal(err)
	}
}

func checkTriageRetained(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	var ob, in string
	if err := pool.QueryRow(context.Background(), `SELECT
		(SELECT string_agg(id, ' ' ORDER BY id) FROM outbox),
		(SELECT string_agg(message_id, ' ' ORDER BY message_id) FROM inbox)`).Scan(&ob, &in); err != nil {
		t.Fatal(err)
	}
	if want := "sent-lately unsent-old"; ob != want {
		t.Errorf("outbox left: %q, want %q", ob, want)
	}
	// 31 days is past the 720h configured but within the inbound stream's
	// 30 days and the week of late redeliveries: kept.
	if want := "handled-1d handled-31d"; in != want {
		t.Errorf("inbox left: %q, want %q", in, want)
	}
}

// Sent rows older than keepSent and inbox ids older than the minimum go;
// unsent rows and inbox ids a replay could still need stay. Several
// replicas pruning at once all succeed.
func TestPruneOutboxAndInbox(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Postgres")
	}
	pool := triagetest.Database(t, triage.Schema, triage.Migrations())
	clock := triagetest.NewClock()
	seedRetention(t, pool, clock.Now())
	rules := store.RetentionRules(24*time.Hour, 720*time.Hour)
	cfg := prune.Config{Service: triage.Name, Batch: 1}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	totals := make([]map[string]int64, 3)
	for i := range errs {
		p, err := prune.New(pool, cfg, rules, nil, clock.Now, prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { totals[i], errs[i] = p.Prune(context.Background()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	// A replica that finds a table's lock taken leaves it to the holder, so
	// one more round finishes anything left.
	p, err := prune.New(pool, cfg, rules, nil, clock.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	last, err := p.Prune(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var outboxN, inboxN int64
	for _, m := range append(totals, last) {
		outboxN += m["outbox"]
		inboxN += m["inbox"]
	}
	if outboxN != 1 || inboxN != 1 {
		t.Fatalf("pruned %d outbox rows and %d inbox ids, want 1 and 1", outboxN, inboxN)
	}
	checkTriageRetained(t, pool)
}
