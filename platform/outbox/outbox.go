// Package outbox is Sidekick's transactional outbox: a service writes the
// events of a change into its own schema's outbox table in the
// transaction that makes the change (Insert, or InsertRows and CopyRows
// for batches, then Notify), and a Relay publishes them to JetStream in
// order, marking them sent only after JetStream acknowledged them.
//
// Every service's outbox has the same shape, created by the service's own
// migrations:
//
//	CREATE TABLE outbox (
//	    seq         bigserial PRIMARY KEY,
//	    id          text NOT NULL UNIQUE,   -- ce-id and Nats-Msg-Id
//	    subject     text NOT NULL,
//	    type        text NOT NULL,          -- ce-type
//	    payload     bytea NOT NULL,
//	    headers     jsonb NOT NULL DEFAULT '{}',
//	    created_at  timestamptz NOT NULL,   -- ce-time
//	    sent_at     timestamptz
//	);
//	CREATE INDEX outbox_pending ON outbox (seq) WHERE sent_at IS NULL;
//	CREATE INDEX outbox_sent_at ON outbox (sent_at) WHERE sent_at IS NOT NULL;
//
// The table is the one search_path finds (platform/pg.Connect sets it to
// the service's schema), and so is everything keyed by the schema: the
// NOTIFY channel (<schema>_outbox) and the relay's advisory lock. Services
// sharing one database never wait for each other.
package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/sidekickhq/sidekick/platform/pg/prune"
)

// Event is one row of an outbox.
type Event struct {
	// ID is the CloudEvents id and the Nats-Msg-Id; unique in the table.
	ID string
	// Subject is where the event is published.
	Subject string
	// Type is the ce-type: the payload's protobuf message name.
	Type string
	// Payload is the encoded message.
	Payload []byte
	// Header holds extra NATS headers: a dead letter's error_location and
	// error, trace context. The CloudEvents headers are set by the relay.
	Header map[string]string
	// CreatedAt is the ce-time.
	CreatedAt time.Time
}

// Message encodes msg as the event id on subject, created at at.
func Message(subject, id string, at time.Time, msg proto.Message) (Event, error) {
	payload, err := proto.Marshal(msg)
	if err != nil {
		return Event{}, fmt.Errorf("encode %s event %s: %w", subject, id, err)
	}
	return Event{ID: id, Subject: subject, Type: string(proto.MessageName(msg)), Payload: payload, CreatedAt: at}, nil
}

// Execer runs a statement: a pgx.Tx, a pool, or a writer that batches.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Copier bulk-loads rows; a pgx.Tx is one.
type Copier interface {
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error)
}

// Insert queues events in one statement and wakes the relay when the
// transaction commits. An event whose id is already in the outbox is the
// same event: it is left as it is.
func Insert(ctx context.Context, q Execer, events ...Event) error {
	if len(events) == 0 {
		return nil
	}
	if err := InsertRows(ctx, q, events); err != nil {
		return err
	}
	return Notify(ctx, q)
}

// InsertRows queues events in order in one statement without waking the
// relay: call Notify once in the same transaction. Insert does both.
func InsertRows(ctx context.Context, q Execer, events []Event) error {
	if len(events) == 0 {
		return nil
	}
	withTrace(ctx, events)
	n := len(events)
	ids, subjects, types, hdrs := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	payloads, at := make([][]byte, n), make([]time.Time, n)
	for i, e := range events {
		h, err := headerJSON(e.Header)
		if err != nil {
			return fmt.Errorf("queue event %s: %w", e.ID, err)
		}
		ids[i], subjects[i], types[i], payloads[i], hdrs[i], at[i] = e.ID, e.Subject, e.Type, e.Payload, h, e.CreatedAt
	}
	// One statement whatever the count (one prepared statement), in order.
	_, err := q.Exec(ctx, `INSERT INTO outbox (id, subject, type, payload, headers, created_at)
		SELECT id, subject, type, payload, headers::jsonb, created_at
		FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::text[], $6::timestamptz[]) WITH ORDINALITY
			AS e(id, subject, type, payload, headers, created_at, n)
		ORDER BY n
		ON CONFLICT (id) DO NOTHING`, ids, subjects, types, payloads, hdrs, at)
	if err != nil {
		return fmt.Errorf("queue %d events: %w", n, err)
	}
	return nil
}

// CopyRows queues events in order with COPY, which is cheaper than an
// INSERT from a few dozen rows on; it does not wake the relay (call
// Notify), and an id already in the outbox fails the transaction, so use
// it for events with fresh ids.
func CopyRows(ctx context.Context, q Copier, events []Event) error {
	if len(events) == 0 {
		return nil
	}
	withTrace(ctx, events)
	src := pgx.CopyFromSlice(len(events), func(i int) ([]any, error) {
		e := events[i]
		h := e.Header
		if h == nil {
			h = map[string]string{}
		}
		return []any{e.ID, e.Subject, e.Type, e.Payload, h, e.CreatedAt}, nil
	})
	if _, err := q.CopyFrom(ctx, pgx.Identifier{"outbox"}, []string{"id", "subject", "type", "payload", "headers", "created_at"}, src); err != nil {
		return fmt.Errorf("copy %d events: %w", len(events), err)
	}
	return nil
}

// withTrace writes the trace context of ctx (the work that queues the
// events: a consumer's span, a gRPC call's) into each event's headers that
// has none, so the relay's publish continues that trace.
func withTrace(ctx context.Context, events []Event) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	prop := otel.GetTextMapPropagator()
	for i := range events {
		if events[i].Header["traceparent"] != "" {
			continue
		}
		if events[i].Header == nil {
			events[i].Header = map[string]string{}
		}
		prop.Inject(ctx, propagation.MapCarrier(events[i].Header))
	}
}

// headerJSON is what the headers column stores for h.
func headerJSON(h map[string]string) (string, error) {
	if len(h) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(h)
	if err != nil {
		return "", fmt.Errorf("encode headers: %w", err)
	}
	return string(b), nil
}

// Notify wakes the relay of the current schema when the transaction
// commits (Postgres folds repeated notifications of one transaction).
func Notify(ctx context.Context, q Execer) error {
	if _, err := q.Exec(ctx, `SELECT pg_notify(current_schema() || $1, '')`, channelSuffix); err != nil {
		return fmt.Errorf("notify the outbox relay: %w", err)
	}
	return nil
}

// channelSuffix follows the schema's name in its NOTIFY channel.
const channelSuffix = "_outbox"

// PruneRule is the retention rule of the outbox, for the service's
// pruner: sent rows older than keep go (0 or less keeps them); unsent rows
// always stay.
func PruneRule(keep time.Duration) prune.Rule {
	return prune.Rule{Table: "outbox", Keep: keep, SQL: `DELETE FROM outbox WHERE seq = ANY (ARRAY(
		SELECT seq FROM outbox WHERE sent_at IS NOT NULL AND sent_at < $1
		ORDER BY sent_at LIMIT $2 FOR UPDATE SKIP LOCKED))`}
}
