package triage

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/services/triage/internal/coverage"
	"github.com/sidekickhq/sidekick/services/triage/internal/engine"
)

// BenchmarkDeadlineTimers arms 100,000 deadlines, due one after another
// over one minute of real time (about 1,700 a second), and runs triage
// with its production timer settings (batches of 500, a 250ms longest
// sleep) on the real clock and real Postgres. Each timer's lag is the time
// its firing transaction committed minus its due time; p50, p99 and the
// maximum are reported. Each firing evaluates the conversation's clock
// (wall-clock coverage), writes the new level and next deadline, an audit
// line and a DEADLINE event, and re-arms the timer for the next threshold;
// the outbox relay publishes the events to JetStream meanwhile.
func BenchmarkDeadlineTimers(b *testing.B) {
	const (
		n      = 100_000
		spread = time.Minute
		margin = 20 * time.Second // to arm them before the first is due
	)
	h := newHarness(b)
	h.deps.Logger = slog.New(slog.DiscardHandler)
	h.deps.Clock = clock.Real()
	h.deps.Coverage = coverage.Always{}
	var (
		mu   sync.Mutex
		lags = make([]time.Duration, 0, n)
	)
	h.deps.OnTimerFired = func(lag time.Duration) {
		mu.Lock()
		lags = append(lags, lag)
		mu.Unlock()
	}
	first := time.Now().Add(margin)
	armDeadlines(b, h.pool, n, first, spread)
	if time.Now().After(first) {
		b.Fatalf("arming %d deadlines took longer than %s", n, margin)
	}
	cfg := testConfig()
	cfg.TimerInterval = 250 * time.Millisecond
	cfg.TimerBatch = 500
	cfg.RelayInterval = time.Second
	b.ResetTimer()
	for range b.N { // one pass whatever b.N: run with -benchtime 1x
		h.startConfig(b, cfg, h.deps)
		waitLong(b, "every deadline fired", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(lags) >= n
		})
		break
	}
	b.StopTimer()
	mu.Lock()
	sorted := slices.Clone(lags)
	mu.Unlock()
	slices.Sort(sorted)
	pct := func(p float64) time.Duration { return sorted[int(p*float64(len(sorted)-1))] }
	b.ReportMetric(float64(pct(0.50).Microseconds())/1000, "p50-lag-ms")
	b.ReportMetric(float64(pct(0.99).Microseconds())/1000, "p99-lag-ms")
	b.ReportMetric(float64(sorted[len(sorted)-1].Microseconds())/1000, "max-lag-ms")
	b.ReportMetric(float64(len(sorted))/spread.Seconds(), "due/s")
	if pct(0.99) >= time.Second {
		b.Errorf("p99 lag %s, want under 1s", pct(0.99))
	}
	var events int
	if err := h.pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox WHERE subject = 'support.conversation.deadline'`).Scan(&events); err != nil || events != n {
		b.Fatalf("%d deadline events queued, want %d (%v)", events, n, err)
	}
}

// armDeadlines inserts n open conversations whose response clocks started
// fifteen minutes before their timers are due, from first over spread.
func armDeadlines(b *testing.B, pool *pgxpool.Pool, n int, first time.Time, spread time.Duration) {
	b.Helper()
	ctx := context.Background()
	now := time.Now()
	convs := make([][]any, n)
	timers := make([][]any, n)
	for i := range n {
		due := first.Add(time.Duration(int64(spread) * int64(i) / int64(n)))
		start := due.Add(-15 * time.Minute)
		id := engine.NewID()
		clock := fmt.Sprintf(`{"spans":[{"start":%q}]}`, start.UTC().Format(time.RFC3339Nano))
		convs[i] = []any{id, int16(1), fmt.Sprintf("T0BENCH/C0BENCH/%d", i), int16(1), int16(3), "unknown customer",
			"Timer benchmark", []byte(`{"id":"U0CUST","role":"AUTHOR_ROLE_CUSTOMER"}`), start, start, due, int16(1), int32(1), now, []byte(clock)}
		timers[i] = []any{id, int16(1), due, now}
	}
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"conversations"}, []string{"id", "channel", "thread_key", "status", "tier", "tier_reason",
			"subject", "author", "opened_at", "last_customer_message_at", "next_deadline_at", "deadline_level", "message_count", "updated_at", "clock"},
			pgx.CopyFromRows(convs)); err != nil {
			return err
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"timers"}, []string{"conversation_id", "status", "due_at", "armed_at"}, pgx.CopyFromRows(timers))
		return err
	})
	if err != nil {
		b.Fatalf("arm %d deadlines: %v", n, err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE conversations; ANALYZE timers`); err != nil {
		b.Fatal(err)
	}
}
