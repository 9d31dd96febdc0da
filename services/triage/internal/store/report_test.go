package store_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sidekickhq/sidekick/services/triage"
	"github.com/sidekickhq/sidekick/services/triage/internal/store"
	"github.com/sidekickhq/sidekick/services/triage/internal/triagetest"
)

// TestSummariseEqualsTheGroupedStatement: on random conversations (keys
// whose collation order is not byte order, shared and distinct response
// times, microseconds, spam, alerts, days in zones off the hour), the
// report summed in Go equals the one statement that grouped it in
// PostgreSQL: every count, key, order and percentile to the bit, and the
// means to rounding (avg summed floats in its own sort's order).
func TestSummariseEqualsTheGroupedStatement(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Postgres")
	}
	pool := triagetest.Database(t, triage.Schema, triage.Migrations())
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 19))
	start := time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC)
	seedReport(t, pool, rng, start, 3000)

	// The whole span, one day, a range cutting days in Kolkata (+5:30),
	// and one holding nothing.
	ranges := [][2]time.Time{
		{start.Add(-24 * time.Hour), start.Add(20 * 24 * time.Hour)},
		{start.Add(3 * 24 * time.Hour), start.Add(4 * 24 * time.Hour)},
		{start.Add(5*24*time.Hour + 7*time.Hour + 13*time.Minute), start.Add(11 * 24 * time.Hour)},
		{start.Add(-48 * time.Hour), start.Add(-24 * time.Hour)},
	}
	for _, r := range ranges {
		for _, zone := range []string{"UTC", "Asia/Kolkata", "America/St_Johns", "Pacific/Chatham"} {
			got, want := summarise(t, pool, store.Summarise, r, zone), summarise(t, pool, store.SummariseInSQL, r, zone)
			if len(want.Tiers) == 0 && r[0].After(start) {
				t.Fatalf("%v in %s: nothing in the range; the test would prove nothing", r, zone)
			}
			if diff := reportDiff(got, want); diff != "" {
				t.Fatalf("%v in %s:\n%s", r, zone, diff)
			}
		}
	}
}

func summarise(t *testing.T, pool *pgxpool.Pool, f func(context.Context, store.Querier, time.Time, time.Time, string) (*store.Summary, error),
	r [2]time.Time, zone string) *store.Summary {
	t.Helper()
	var s *store.Summary
	err := pgx.BeginTxFunc(context.Background(), pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		s, err = f(context.Background(), tx, r[0], r[1], zone)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// seedReport writes n random conversations opened over three weeks from
// start (and a few alerts) straight into the table, as the engine leaves
// them.
func seedReport(t *testing.T, pool *pgxpool.Pool, rng *rand.Rand, start time.Time, n int) {
	t.Helper()
	// Keys a byte order sorts otherwise than most collations: case,
	// hyphens, accents, the empty person (nobody holds it).
	persons := []string{"", "alice", "Bob", "bob", "b-ob", "zoë", "Émile", "carol"}
	categories := []string{"performance", "not-a-bug", "Billing", "feature-flags", "feature-request", "api", "Zebra", "éclair"}
	// Response times drawn from few values (ties at the percentiles'
	// rows) or from many.
	few := []float64{60, 300, 300, 900, 3600.5, 3600.5}
	rows := make([][]any, 0, n)
	for i := range n {
		opened := start.Add(time.Duration(rng.Int64N(int64(20*24*time.Hour/time.Microsecond))) * time.Microsecond)
		var cats []string
		for range rng.IntN(3) {
			cats = append(cats, categories[rng.IntN(len(categories))])
		}
		var frs *float64
		var responder *string
		level, frl := int16(rng.IntN(5)), int16(0)
		if rng.IntN(4) > 0 {
			v := rng.ExpFloat64() * 1800
			if rng.IntN(2) == 0 {
				v = few[rng.IntN(len(few))]
			}
			frs, frl = &v, int16(1+rng.IntN(4))
			if rng.IntN(5) > 0 {
				responder = &persons[1+rng.IntN(len(persons)-1)]
			}
		}
		status, reason := int16(1+rng.IntN(3)), int16(0)
		var closed *time.Time
		if status == 3 {
			reason = int16(1 + rng.IntN(3))
			c := opened.Add(time.Duration(rng.Int64N(int64(72*time.Hour/time.Microsecond))) * time.Microsecond)
			closed = &c
		}
		var alert *string
		if rng.IntN(20) == 0 {
			a := `{"occurrences": 3}`
			alert = &a
		}
		rows = append(rows, []any{fmt.Sprint("conv-", i), int16(1 + rng.IntN(4)), fmt.Sprint("thread-", i), status, reason,
			int16(1 + rng.IntN(3)), append([]string{}, cats...), persons[rng.IntN(len(persons))], opened, opened,
			level, frs, frl, responder, closed, alert})
	}
	if _, err := pool.CopyFrom(context.Background(), pgx.Identifier{"conversations"}, []string{"id", "channel", "thread_key",
		"status", "close_reason", "tier", "categories", "assignee", "opened_at", "updated_at", "deadline_level",
		"first_response_work_seconds", "first_response_level", "first_responder", "last_closed_at", "alert"},
		pgx.CopyFromRows(rows)); err != nil {
		t.Fatal(err)
	}
}

// reportDiff says how got differs from want: means within a few units in
// the last place, everything else exactly.
func reportDiff(got, want *store.Summary) string {
	means := func(s *store.Summary) (out []float64) {
		for _, l := range [][]*store.ResponseStats{ptrs(s.ByPerson), ptrs(s.ByCategoryResponse), tierPtrs(s.Tiers)} {
			for _, r := range l {
				out = append(out, r.Mean, r.ResMean)
				r.Mean, r.ResMean = 0, 0
			}
		}
		return out
	}
	g, w := *got, *want
	g.ByPerson, g.ByCategoryResponse, g.Tiers = clone(g.ByPerson), clone(g.ByCategoryResponse), clone(g.Tiers)
	w.ByPerson, w.ByCategoryResponse, w.Tiers = clone(w.ByPerson), clone(w.ByCategoryResponse), clone(w.Tiers)
	gm, wm := means(&g), means(&w)
	if !reflect.DeepEqual(g, w) {
		return fmt.Sprintf("got  %+v\nwant %+v", g, w)
	}
	for i := range gm {
		if math.Abs(gm[i]-wm[i]) > 1e-12*math.Max(1, math.Abs(wm[i])) {
			return fmt.Sprintf("mean %d: got %v, want %v", i, gm[i], wm[i])
		}
	}
	return ""
}

func clone[T any](s []T) []T { return append([]T(nil), s...) }

func ptrs(s []store.ResponseStats) []*store.ResponseStats {
	out := make([]*store.ResponseStats, len(s))
	for i := range s {
		out[i] = &s[i]
	}
	return out
}

func tierPtrs(s []store.TierStats) []*store.ResponseStats {
	out := make([]*store.ResponseStats, len(s))
	for i := range s {
		out[i] = &s[i].ResponseStats
	}
	return out
}
