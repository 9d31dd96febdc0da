// Package outbox relays triage's transactional outbox to JetStream: pending
// rows are claimed in order (SELECT … FOR UPDATE SKIP LOCKED), published
// with their outbox id as Nats-Msg-Id, and marked sent only after the
// PubAck, in the same transaction that claimed them. A relay that dies
// between the publish and the mark leaves the rows pending; the next relay
// publishes them again and JetStream's duplicate window drops the copies.
//
// Only one relay publishes at a time (a transaction-level advisory lock),
// so events leave in the order they were committed even with several
// replicas.
package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sidekickhq/sidekick/platform/pg/prune"
	"github.com/sidekickhq/sidekick/platform/promreg"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/services/triage/internal/store"
)

// Publisher publishes a batch in order and reports each event's ack;
// *bus.Publisher satisfies it.
type Publisher interface {
	PublishAll(ctx context.Context, events []bus.Event) ([]*jetstream.PubAck, error)
}

// Config tunes a Relay.
type Config struct {
	// Batch is the most events published per transaction; default 100.
	Batch int
	// Interval is how often the outbox is polled when no notification
	// arrives; default 1s.
	Interval time.Duration
	// RetryDelay is the wait after a failed batch; default Interval.
	RetryDelay time.Duration
	// KeepSent is how long sent rows are kept before pruning; default 24h.
	// KeepInbox is how long handled inbound ids are kept; at least
	// MinKeepInbox, which is also the default.
	KeepSent, KeepInbox time.Duration
	// PruneEvery is how often pruning runs; default 10m.
	PruneEvery time.Duration
	// PruneBatch is the most rows deleted per pruning transaction;
	// default 1000.
	PruneBatch int
}

// MinKeepInbox is the shortest time inbound message ids are kept: the
// inbound stream's max age and a week. A message stays replayable for the
// stream's max age after each copy a channel redelivers (GitHub redelivers
// a delivery up to 3 days later), and its id must be remembered as long.
const MinKeepInbox = bus.DefaultEventMaxAge + 7*24*time.Hour

func (c Config) withDefaults() Config {
	if c.Batch <= 0 {
		c.Batch = 100
	}
	if c.Interval <= 0 {
		c.Interval = time.Second
	}
	if c.RetryDelay <= 0 {
		c.RetryDelay = c.Interval
	}
	if c.KeepSent <= 0 {
		c.KeepSent = 24 * time.Hour
	}
	if c.KeepInbox < MinKeepInbox {
		c.KeepInbox = MinKeepInbox
	}
	if c.PruneEvery <= 0 {
		c.PruneEvery = 10 * time.Minute
	}
	return c
}

// lockKey is the advisory lock that lets one relay publish at a time.
const lockKey = 0x7472696167650001 // "triage" + 1

// Relay publishes pending outbox rows.
type Relay struct {
	pool   *pgxpool.Pool
	pub    Publisher
	cfg    Config
	logger *slog.Logger
	now    func() time.Time

	pruner    *prune.Pruner
	oldest    prometheus.Gauge
	published prometheus.Counter
	failures  prometheus.Counter
}

// New returns a relay; its metrics register on reg.
func New(pool *pgxpool.Pool, pub Publisher, cfg Config, logger *slog.Logger, now func() time.Time, reg prometheus.Registerer) (*Relay, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	if cfg.KeepInbox > 0 && cfg.KeepInbox < MinKeepInbox {
		logger.Info("inbox retention raised to the minimum: ids must outlive the inbound stream's max age and late redeliveries",
			"configured", cfg.KeepInbox, "used", MinKeepInbox)
	}
	r := &Relay{pool: pool, pub: pub, cfg: cfg.withDefaults(), logger: logger, now: now}
	var err error
	if r.pruner, err = prune.New(pool, prune.Config{Service: "triage", Interval: r.cfg.PruneEvery, Batch: r.cfg.PruneBatch},
		store.RetentionRules(r.cfg.KeepSent, r.cfg.KeepInbox), logger, now, reg); err != nil {
		return nil, err
	}
	if r.oldest, err = promreg.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sidekick_triage_outbox_oldest_seconds",
		Help: "Age of the oldest conversation event not yet published; 0 when the outbox is empty.",
	})); err != nil {
		return nil, err
	}
	if r.published, err = promreg.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sidekick_triage_outbox_published_total",
		Help: "Conversation events published from the outbox and marked sent.",
	})); err != nil {
		return nil, err
	}
	if r.failures, err = promreg.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sidekick_triage_outbox_failures_total",
		Help: "Outbox batches that failed (publish or database error).",
	})); err != nil {
		return nil, err
	}
	return r, nil
}

// Prune deletes, once, sent outbox rows and inbox ids older than the
// retention settings, and returns how many per table. Run does it every
// PruneEvery, in batches of PruneBatch.
func (r *Relay) Prune(ctx context.Context) (map[string]int64, error) {
	return r.pruner.Prune(ctx)
}

// Flush publishes one batch and returns how many events it marked sent.
// busy is true when another relay held the lock.
func (r *Relay) Flush(ctx context.Context) (sent int, busy bool, err error) {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return 0, false, fmt.Errorf("outbox: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit it is a no-op
	var locked bool
	if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, int64(lockKey)).Scan(&locked); err != nil {
		return 0, false, fmt.Errorf("outbox: lock: %w", err)
	}
	if !locked {
		return 0, true, nil
	}
	rows, err := store.ClaimOutbox(ctx, tx, r.cfg.Batch)
	if err != nil || len(rows) == 0 {
		return 0, false, err
	}
	events := make([]bus.Event, len(rows))
	for i, row := range rows {
		events[i] = bus.Event{Subject: row.Subject, ID: row.ID, Type: row.Type, Time: row.CreatedAt, Data: row.Payload}
	}
	acks, pubErr := r.pub.PublishAll(ctx, events)
	// Mark the acknowledged prefix only: an event after a failed one is
	// published again next time (JetStream drops the copy), so order holds.
	var seqs []int64
	for i := range rows {
		if i >= len(acks) || acks[i] == nil {
			break
		}
		seqs = append(seqs, rows[i].Seq)
	}
	if len(seqs) > 0 {
		if err := store.MarkSent(ctx, tx, seqs, r.now()); err != nil {
			return 0, false, fmt.Errorf("outbox: %w", errors.Join(err, pubErr))
		}
		if err := tx.Commit(ctx); err != nil {
			return 0, false, fmt.Errorf("outbox: commit marks: %w", errors.Join(err, pubErr))
		}
		r.published.Add(float64(len(seqs)))
	}
	if pubErr != nil {
		return len(seqs), false, fmt.Errorf("outbox: %w", pubErr)
	}
	return len(seqs), false, nil
}

// Drain flushes batches until the outbox is empty (or another relay holds
// the lock) and updates the oldest-event gauge.
func (r *Relay) Drain(ctx context.Context) (int, error) {
	total := 0
	for {
		n, busy, err := r.Flush(ctx)
		total += n
		if err != nil {
			r.failures.Inc()
			r.observe(ctx)
			return total, err
		}
		if busy || n < r.cfg.Batch {
			r.observe(ctx)
			return total, nil
		}
	}
}

func (r *Relay) observe(ctx context.Context) {
	oldest, ok, err := store.OldestPending(ctx, r.pool)
	switch {
	case err != nil:
		return
	case !ok:
		r.oldest.Set(0)
	default:
		r.oldest.Set(max(0, r.now().Sub(oldest).Seconds()))
	}
}

// Run relays until ctx is done: it drains at start, whenever the outbox
// notification arrives, and every Interval. Beside it, it prunes sent rows
// and old inbox ids every PruneEvery.
func (r *Relay) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait() // the listener has given its connection back
	}()
	wake := make(chan struct{}, 1)
	wg.Go(func() { r.listen(ctx, wake) })
	wg.Go(func() { _ = r.pruner.Run(ctx) })
	for {
		delay := r.cfg.Interval
		if _, err := r.Drain(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.logger.Warn("outbox relay failed; retrying", "error", err, "retry_in", r.cfg.RetryDelay)
			delay = r.cfg.RetryDelay
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// listen holds a connection LISTENing on the outbox channel and pokes
// wake for every notification; on failure it retries after Interval (the
// relay keeps polling meanwhile).
func (r *Relay) listen(ctx context.Context, wake chan<- struct{}) {
	for ctx.Err() == nil {
		err := r.listenOnce(ctx, wake)
		if ctx.Err() != nil {
			return
		}
		r.logger.Debug("outbox listener stopped; polling until it is back", "error", err)
		t := time.NewTimer(r.cfg.Interval)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

func (r *Relay) listenOnce(ctx context.Context, wake chan<- struct{}) error {
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire: %w", err)
	}
	defer func() {
		// The connection is in LISTEN mode: close it rather than return it.
		_ = conn.Conn().Close(context.WithoutCancel(ctx))
		conn.Release()
	}()
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{store.NotifyChannel}.Sanitize()); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	for {
		if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
			return fmt.Errorf("wait: %w", err)
		}
		select {
		case wake <- struct{}{}:
		default:
		}
	}
}
