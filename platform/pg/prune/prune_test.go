package prune_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sidekickhq/sidekick/platform/pg/pgtest"
	"github.com/sidekickhq/sidekick/platform/pg/prune"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func clock() time.Time { return now }

const eventsRule = `DELETE FROM events WHERE id = ANY (ARRAY(
	SELECT id FROM events WHERE at < $1 AND NOT keep LIMIT $2 FOR UPDATE SKIP LOCKED))`

// newPool returns a pool on a fresh database with an events table holding
// old rows, old rows to keep, and young rows.
func newPool(t *testing.T, old int) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(ctx, `CREATE TABLE events (id bigserial PRIMARY KEY, at timestamptz NOT NULL, keep boolean NOT NULL DEFAULT false);
		CREATE INDEX events_at ON events (at) WHERE NOT keep`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO events (at) SELECT $1::timestamptz - make_interval(secs => g) FROM generate_series(1, $2) g`,
		now.Add(-48*time.Hour), old); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO events (at, keep) VALUES ($1, true), ($1, true)`, now.Add(-48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO events (at) SELECT $1::timestamptz FROM generate_series(1, 5)`, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	return pool
}

func count(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Old rows go in batches; rows the rule keeps and young rows stay; the
// counter says how many went.
func TestPruneDeletesOldRowsInBatches(t *testing.T) {
	pool := newPool(t, 2500)
	reg := prometheus.NewRegistry()
	p, err := prune.New(pool, prune.Config{Service: "test", Batch: 1000},
		[]prune.Rule{{Table: "events", Keep: 24 * time.Hour, SQL: eventsRule}, {Table: "off", SQL: "SELECT broken"}},
		nil, clock, prometheus.WrapRegistererWith(prometheus.Labels{"service": "test"}, reg))
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Prune(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got["events"] != 2500 {
		t.Fatalf("pruned %v, want 2500 events", got)
	}
	if n := count(t, pool); n != 7 {
		t.Fatalf("%d rows left, want the 2 kept and the 5 young", n)
	}
	want := `
# HELP sidekick_retention_pruned_rows_total Rows deleted by the retention pruner, by table (rows deleted by ON DELETE CASCADE not counted).
# TYPE sidekick_retention_pruned_rows_total counter
sidekick_retention_pruned_rows_total{service="test",table="events"} 2500
`
	// platform/app's registerer adds the service label.
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "sidekick_retention_pruned_rows_total"); err != nil {
		t.Fatal(err)
	}
	if got, _ := p.Prune(context.Background()); got["events"] != 0 {
		t.Fatalf("second round pruned %v", got)
	}
}

// A row another transaction holds is skipped, not waited for.
func TestPruneSkipsLockedRows(t *testing.T) {
	pool := newPool(t, 3)
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT 1 FROM events WHERE id = 1 FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	p, err := prune.New(pool, prune.Config{Service: "test"}, []prune.Rule{{Table: "events", Keep: 24 * time.Hour, SQL: eventsRule}}, nil, clock, nil)
	if err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	got, err := p.Prune(tctx)
	if err != nil {
		t.Fatal(err)
	}
	if got["events"] != 2 {
		t.Fatalf("pruned %v, want the 2 unlocked old rows", got)
	}
}

// Replicas pruning at the same time neither fail nor delete a row twice;
// together they delete every old row.
func TestReplicasPruneConcurrently(t *testing.T) {
	pool := newPool(t, 5000)
	rules := []prune.Rule{{Table: "events", Keep: 24 * time.Hour, SQL: eventsRule}}
	var wg sync.WaitGroup
	totals := make([]int64, 4)
	errs := make([]error, 4)
	for i := range totals {
		p, err := prune.New(pool, prune.Config{Service: "test", Batch: 100}, rules, nil, clock, prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for range 3 {
				got, err := p.Prune(context.Background())
				totals[i] += got["events"]
				if err != nil {
					errs[i] = err
				}
			}
		})
	}
	wg.Wait()
	var sum int64
	for i := range totals {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		sum += totals[i]
	}
	// A replica that finds the lock taken leaves the table for this round,
	// so the last rows may wait for the next one.
	p, _ := prune.New(pool, prune.Config{Service: "test"}, rules, nil, clock, nil)
	last, err := p.Prune(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sum+last["events"] != 5000 {
		t.Fatalf("replicas pruned %d then %d, want 5000 in all", sum, last["events"])
	}
	if n := count(t, pool); n != 7 {
		t.Fatalf("%d rows left, want 7", n)
	}
}
