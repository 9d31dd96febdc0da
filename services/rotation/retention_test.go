package rotation

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/platform/logging"
	"github.com/sidekickhq/sidekick/platform/pg"
	"github.com/sidekickhq/sidekick/platform/pg/pgtest"
)

// retentionReplicas migrates a fresh database, seeds overrides and
// configuration versions of every kind, and returns n services on it.
func retentionReplicas(t *testing.T, n int, now time.Time) (*pgxpool.Pool, []*Service) {
	t.Helper()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	if err := pg.Migrate(ctx, url, Schema, Migrations(), logging.Discard()); err != nil {
		t.Fatal(err)
	}
	pool, err := pg.Connect(ctx, url, Schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	cfg := Config{ReloadInterval: time.Hour, OverrideRetention: 90 * 24 * time.Hour, ConfigRetention: 365 * 24 * time.Hour, RetentionBatch: 1}
	var out []*Service
	for range n {
		s, err := New(ctx, cfg, Deps{Pool: pool, Clock: clock.NewFake(now)})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	day := 24 * time.Hour
	if _, err := pool.Exec(ctx, `INSERT INTO overrides (id, rotation_id, kind, person_id, starts_at, ends_at, announced) VALUES
		('ended-long-ago',        'hero', 'replace', 'bob', $1::timestamptz - interval '1 day', $1, true),
		('ended-long-ago-unsent', 'hero', 'replace', 'bob', $1::timestamptz - interval '1 day', $1, false),
		('ended-lately',          'hero', 'replace', 'bob', $2::timestamptz - interval '1 day', $2, true),
		('ahead',                 'hero', 'replace', 'bob', $3, $3::timestamptz + interval '1 day', true)`,
		now.Add(-100*day), now.Add(-10*day), now.Add(day)); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO config_versions (yaml, digest, applied_at) VALUES
		('a', 'a', $1), ('b', 'b', $1), ('c', 'c', $1)`, now.Add(-400*day)); err != nil {
		t.Fatal(err)
	}
	return pool, out
}

func checkRotationRetained(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	var overrides, configs string
	if err := pool.QueryRow(context.Background(), `SELECT
		(SELECT string_agg(id, ' ' ORDER BY id) FROM overrides),
		(SELECT string_agg(yaml, ' ' ORDER BY version) FROM config_versions)`).Scan(&overrides, &configs); err != nil {
		t.Fatal(err)
	}
	if want := "ahead ended-lately ended-long-ago-unsent"; overrides != want {
		t.Errorf("overrides left: %q, want %q", overrides, want)
	}
	if configs != "c" {
		t.Errorf("configuration versions left: %q, want only the one in force (c)", configs)
	}
}

// Overrides that ended long ago go, unless not yet announced; overrides
// that ended lately or are ahead stay; old configuration versions go but
// the one in force.
func TestPruneOverridesAndConfigVersions(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	pool, ss := retentionReplicas(t, 1, now)
	got, err := ss[0].Prune(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got["overrides"] != 1 || got["config_versions"] != 2 {
		t.Fatalf("pruned %v, want 1 override and 2 configuration versions", got)
	}
	checkRotationRetained(t, pool)
}

// Replicas pruning at once all succeed and leave what one would.
func TestPruneWithReplicas(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	pool, ss := retentionReplicas(t, 3, now)
	var wg sync.WaitGroup
	errs := make([]string, len(ss))
	for i, s := range ss {
		wg.Go(func() {
			for range 3 {
				if _, err := s.Prune(context.Background()); err != nil {
					errs[i] = err.Error()
				}
			}
		})
	}
	wg.Wait()
	if e := strings.Join(errs, ""); e != "" {
		t.Fatalf("replicas failed: %v", errs)
	}
	checkRotationRetained(t, pool)
}
