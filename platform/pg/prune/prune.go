// Package prune deletes rows a service no longer needs, table by table,
// in small batches. Each batch is its own short transaction: it takes a
// transaction-level advisory lock for its table (pg_try_advisory_xact_lock;
// when another replica holds it, this replica leaves the table to it for
// this round) and deletes at most Batch rows picked with FOR UPDATE SKIP
// LOCKED, so pruning never waits on rows live work holds and never holds
// locks for long.
//
// What may go is each service's business: a Rule is one DELETE statement
// kept next to the table's owner.
package prune

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/platform/promreg"
)

// Rule prunes one table.
type Rule struct {
	// Table names the rule in metrics, logs and its advisory lock.
	Table string
	// Keep is how long rows are kept; 0 or less turns the rule off.
	Keep time.Duration
	// SQL deletes at most $2 (an integer) rows that may go and whose age
	// is measured before $1 (the cutoff, now - Keep), picking them with
	// FOR UPDATE SKIP LOCKED, e.g.
	//
	//	DELETE FROM outbox WHERE seq = ANY (ARRAY(
	//	    SELECT seq FROM outbox WHERE sent_at < $1
	//	    LIMIT $2 FOR UPDATE SKIP LOCKED))
	SQL string
}

// Config tunes a Pruner.
type Config struct {
	// Service namespaces the advisory locks and names the service in logs.
	// (Metrics get their service label from the registerer platform/app
	// passes, like every Sidekick metric.)
	Service string
	// Interval is the time between two rounds; default 10m.
	Interval time.Duration
	// Batch is the most rows deleted per transaction; default 1000.
	Batch int
	// Pause is the wait between two batches of one table, which leaves
	// room to other work on a busy database; default none.
	Pause time.Duration
	// Clock paces Run's rounds; nil: the wall clock. (The cutoff is
	// computed from the now passed to New; Pause, which spares a busy
	// database, is wall-clock time.)
	Clock clock.Clock
}

// Pruner runs rules periodically.
type Pruner struct {
	pool   *pgxpool.Pool
	cfg    Config
	rules  []Rule
	logger *slog.Logger
	now    func() time.Time

	rows   *prometheus.CounterVec
	errors *prometheus.CounterVec
	last   prometheus.Gauge
}

// New returns a pruner of rules; its metrics register on reg.
func New(pool *pgxpool.Pool, cfg Config, rules []Rule, logger *slog.Logger, now func() time.Time, reg prometheus.Registerer) (*Pruner, error) {
	if pool == nil {
		return nil, errors.New("prune: pool is required")
	}
	if cfg.Service == "" {
		return nil, errors.New("prune: Service is required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Minute
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 1000
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	cfg.Clock = clock.OrReal(cfg.Clock)
	p := &Pruner{pool: pool, cfg: cfg, rules: rules, logger: logger, now: now}
	var err error
	if p.rows, err = promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sidekick_retention_pruned_rows_total",
		Help: "Rows deleted by the retention pruner, by table (rows deleted by ON DELETE CASCADE not counted).",
	}, []string{"table"})); err != nil {
		return nil, err
	}
	if p.errors, err = promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sidekick_retention_errors_total",
		Help: "Failed pruning rounds of a table (retried next round).",
	}, []string{"table"})); err != nil {
		return nil, err
	}
	if p.last, err = promreg.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sidekick_retention_last_success_timestamp_seconds",
		Help: "When the retention pruner last finished a round without error (Unix time).",
	})); err != nil {
		return nil, err
	}
	for _, r := range rules {
		if r.Keep > 0 {
			p.rows.WithLabelValues(r.Table)
			p.errors.WithLabelValues(r.Table)
		}
	}
	return p, nil
}

// Run prunes at once and then every Interval until ctx is done. Failures
// are logged and counted; the next round retries.
func (p *Pruner) Run(ctx context.Context) error {
	for {
		if _, err := p.Prune(ctx); err != nil && ctx.Err() == nil {
			p.logger.Warn("retention: prune failed; retrying next round", "error", err, "retry_in", p.cfg.Interval)
		}
		if !clock.Wait(ctx, p.cfg.Clock, p.cfg.Interval) {
			return nil
		}
	}
}

// Prune runs one round: every rule, batch after batch, until a batch
// deletes fewer than Batch rows or another replica holds the table's lock.
// It returns the rows deleted per table.
func (p *Pruner) Prune(ctx context.Context) (map[string]int64, error) {
	now := p.now()
	out := map[string]int64{}
	var errs []error
	for _, r := range p.rules {
		if r.Keep <= 0 {
			continue
		}
		n, err := p.pruneTable(ctx, r, now.Add(-r.Keep))
		out[r.Table] += n
		if err != nil {
			p.errors.WithLabelValues(r.Table).Inc()
			errs = append(errs, fmt.Errorf("prune %s: %w", r.Table, err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if n > 0 {
			p.logger.Info("retention: pruned", "service", p.cfg.Service, "table", r.Table, "rows", n, "older_than", now.Add(-r.Keep))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return out, err
	}
	p.last.Set(float64(now.Unix()))
	return out, nil
}

func (p *Pruner) pruneTable(ctx context.Context, r Rule, cutoff time.Time) (int64, error) {
	key := lockKey(p.cfg.Service, r.Table)
	var total int64
	for {
		n, locked, err := p.batch(ctx, r, key, cutoff)
		total += n
		if err != nil || !locked || n < int64(p.cfg.Batch) {
			return total, err
		}
		if p.cfg.Pause > 0 {
			select {
			case <-ctx.Done():
				return total, ctx.Err()
			case <-time.After(p.cfg.Pause):
			}
		}
	}
}

// batch deletes one batch in its own transaction; locked is false when
// another replica is pruning the table.
func (p *Pruner) batch(ctx context.Context, r Rule, key int64, cutoff time.Time) (n int64, locked bool, err error) {
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return 0, false, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(ctx)
	if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, key).Scan(&locked); err != nil {
		return 0, false, fmt.Errorf("advisory lock: %w", err)
	}
	if !locked {
		return 0, false, nil
	}
	tag, err := tx.Exec(ctx, r.SQL, cutoff, p.cfg.Batch)
	if err != nil {
		return 0, true, fmt.Errorf("delete: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, true, fmt.Errorf("commit: %w", err)
	}
	n = tag.RowsAffected()
	p.rows.WithLabelValues(r.Table).Add(float64(n))
	return n, true, nil
}

// lockKey is the advisory lock of one service's table.
func lockKey(service, table string) int64 {
	h := fnv.New64a()
	h.Write([]byte("sidekick/prune/" + service + "/" + table))
	return int64(h.Sum64())
}
