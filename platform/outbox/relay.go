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
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/platform/promreg"
)

// Publisher publishes a batch in order and reports each event's ack (nil
// where it failed); *bus.Publisher is one, and sets the CloudEvents
// headers and Nats-Msg-Id from each event.
type Publisher interface {
	PublishAll(ctx context.Context, events []bus.Event) ([]*jetstream.PubAck, error)
}

// Config tunes a Relay.
type Config struct {
	// Batch is the most events published per transaction; default 100.
	Batch int
	// Interval is how often the outbox is polled when no notification
	// arrives (one from another replica's commit can be missed while the
	// listener reconnects); default 1s.
	Interval time.Duration
	// RetryDelay is the wait after a failed batch; default Interval.
	RetryDelay time.Duration
}

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
	return c
}

// lockClass is the first key of the relay's advisory lock
// (pg_try_advisory_xact_lock(int, int)); the second is the schema's hash.
// Two-key locks never collide with the one-key locks of migrations and
// pruning.
const lockClass = 0x6f757462 // "outb"

// Relay publishes the pending rows of one schema's outbox: it claims them
// in order (SELECT … FOR UPDATE SKIP LOCKED) under a transaction-level
// advisory lock, so only one relay of the schema publishes at a time and
// events leave in the order they were written; publishes them with their
// id as Nats-Msg-Id; and marks sent, in the claiming transaction, only the
// prefix JetStream acknowledged. A relay that dies between the publish and
// the mark leaves the rows pending; the next one publishes them again and
// JetStream's duplicate window drops the copies.
type Relay struct {
	pool   *pgxpool.Pool
	pub    Publisher
	cfg    Config
	clock  clock.Clock
	logger *slog.Logger

	oldest    prometheus.Gauge
	published prometheus.Counter
	failures  prometheus.Counter
}

// New returns a relay of the outbox pool's search_path finds; its metrics
// register on reg (a service's registry adds the service label).
func New(pool *pgxpool.Pool, pub Publisher, cfg Config, c clock.Clock, logger *slog.Logger, reg prometheus.Registerer) (*Relay, error) {
	switch {
	case pool == nil:
		return nil, errors.New("outbox: pool is required")
	case pub == nil:
		return nil, errors.New("outbox: publisher is required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Relay{pool: pool, pub: pub, cfg: cfg.withDefaults(), clock: clock.OrReal(c), logger: logger}
	var err error
	if r.oldest, err = promreg.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sidekick_outbox_oldest_seconds",
		Help: "Age of the oldest outbox event not yet published; 0 when the outbox is empty.",
	})); err != nil {
		return nil, err
	}
	if r.published, err = promreg.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sidekick_outbox_published_total",
		Help: "Events published from the outbox and marked sent.",
	})); err != nil {
		return nil, err
	}
	if r.failures, err = promreg.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sidekick_outbox_failures_total",
		Help: "Outbox batches that failed (publish or database error; retried).",
	})); err != nil {
		return nil, err
	}
	return r, nil
}

// pending is a claimed row.
type pending struct {
	seq   int64
	event Event
}

// Flush publishes one batch and returns how many events it marked sent.
// busy is true when another relay of the schema held the lock.
func (r *Relay) Flush(ctx context.Context) (sent int, busy bool, err error) {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return 0, false, fmt.Errorf("outbox: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit it is a no-op
	var locked bool
	if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1, hashtext(current_schema()))`, int32(lockClass)).Scan(&locked); err != nil {
		return 0, false, fmt.Errorf("outbox: lock: %w", err)
	}
	if !locked {
		return 0, true, nil
	}
	rows, err := claim(ctx, tx, r.cfg.Batch)
	if err != nil || len(rows) == 0 {
		return 0, false, err
	}
	events := make([]bus.Event, len(rows))
	for i, row := range rows {
		e := row.event
		events[i] = bus.Event{Subject: e.Subject, ID: e.ID, Type: e.Type, Time: e.CreatedAt, Data: e.Payload}
		if len(e.Header) > 0 {
			events[i].Header = make(nats.Header, len(e.Header))
			for k, v := range e.Header {
				events[i].Header.Set(k, v)
			}
		}
	}
	acks, pubErr := r.pub.PublishAll(ctx, events)
	// Mark the acknowledged prefix only: an event after a failed one is
	// published again next time (JetStream drops the copy), so order holds.
	var seqs []int64
	for i := range rows {
		if i >= len(acks) || acks[i] == nil {
			break
		}
		seqs = append(seqs, rows[i].seq)
	}
	if len(seqs) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE outbox SET sent_at = $2 WHERE seq = ANY($1)`, seqs, r.clock.Now()); err != nil {
			return 0, false, fmt.Errorf("outbox: mark %d events sent: %w", len(seqs), errors.Join(err, pubErr))
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

// claim locks up to limit unsent events in order.
func claim(ctx context.Context, tx pgx.Tx, limit int) ([]pending, error) {
	rows, err := tx.Query(ctx, `SELECT seq, id, subject, type, payload, headers, created_at FROM outbox
		WHERE sent_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`, limit)
	if err != nil {
		return nil, fmt.Errorf("outbox: claim: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (pending, error) {
		var p pending
		e := &p.event
		return p, row.Scan(&p.seq, &e.ID, &e.Subject, &e.Type, &e.Payload, &e.Header, &e.CreatedAt)
	})
	if err != nil {
		return nil, fmt.Errorf("outbox: claim: %w", err)
	}
	return out, nil
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
	var oldest *time.Time
	if err := r.pool.QueryRow(ctx, `SELECT min(created_at) FROM outbox WHERE sent_at IS NULL`).Scan(&oldest); err != nil {
		return
	}
	if oldest == nil {
		r.oldest.Set(0)
		return
	}
	r.oldest.Set(max(0, r.clock.Now().Sub(*oldest).Seconds()))
}

// Run relays until ctx is done: it drains at start, whenever a commit's
// notification arrives, and every Interval on its clock.
func (r *Relay) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait() // the listener has given its connection back
	}()
	wake := make(chan struct{}, 1)
	wg.Go(func() { r.listen(ctx, wake) })
	for {
		start := r.clock.Now()
		delay := r.cfg.Interval
		if _, err := r.Drain(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.logger.Warn("outbox relay failed; retrying", "error", err, "retry_in", r.cfg.RetryDelay)
			delay = r.cfg.RetryDelay
		}
		if !clock.WaitUntil(ctx, r.clock, start.Add(delay), wake) {
			return nil
		}
	}
}

// listen holds a connection LISTENing on the schema's outbox channel and
// pokes wake for every notification; on failure it retries after
// Interval (the relay keeps polling meanwhile).
func (r *Relay) listen(ctx context.Context, wake chan<- struct{}) {
	for ctx.Err() == nil {
		err := r.listenOnce(ctx, wake)
		if ctx.Err() != nil {
			return
		}
		r.logger.Debug("outbox listener stopped; polling until it is back", "error", err)
		clock.Wait(ctx, r.clock, r.cfg.Interval)
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
	var schema string
	if err := conn.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return fmt.Errorf("current schema: %w", err)
	}
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{schema + channelSuffix}.Sanitize()); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// A commit between the drain and the LISTEN would otherwise wait for
	// the next poll.
	poke(wake)
	for {
		if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
			return fmt.Errorf("wait: %w", err)
		}
		poke(wake)
	}
}

func poke(wake chan<- struct{}) {
	select {
	case wake <- struct{}{}:
	default:
	}
}
