// Package store keeps rotation's configuration versions and API-created
// overrides in its Postgres schema.
package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sidekickhq/sidekick/platform/orgfile"
	"github.com/sidekickhq/sidekick/platform/outbox"
	"github.com/sidekickhq/sidekick/services/rotation/internal/schedule"
)

// Store reads and writes rotation state.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store over pool (search_path = rotation schema).
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Current returns the configuration in force and its version; version 0 and
// nil YAML when none was ever applied.
func (s *Store) Current(ctx context.Context) (version int64, yaml []byte, err error) {
	var text string
	err = s.pool.QueryRow(ctx, `SELECT version, yaml FROM config_versions ORDER BY version DESC LIMIT 1`).Scan(&version, &text)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("load config: %w", err)
	}
	return version, []byte(text), nil
}

// Save records a new configuration version unless it equals the current
// one; it reports whether a version was written. announce, when set, gives
// the event that tells other services of the new version (its number
// given), written to the outbox in the same transaction.
func (s *Store) Save(ctx context.Context, yaml []byte, by string, announce func(version int64) (outbox.Event, error)) (bool, error) {
	digest := orgfile.Digest(yaml)
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("save config: %w", err)
	}
	defer tx.Rollback(ctx)
	// Serialise concurrent applies so two replicas never both write.
	if _, err := tx.Exec(ctx, `LOCK TABLE config_versions IN SHARE ROW EXCLUSIVE MODE`); err != nil {
		return false, fmt.Errorf("lock config: %w", err)
	}
	var current string
	err = tx.QueryRow(ctx, `SELECT digest FROM config_versions ORDER BY version DESC LIMIT 1`).Scan(&current)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return false, fmt.Errorf("read config digest: %w", err)
	}
	if current == digest {
		return false, nil
	}
	var version int64
	if err := tx.QueryRow(ctx, `INSERT INTO config_versions (yaml, digest, applied_by) VALUES ($1, $2, $3) RETURNING version`,
		string(yaml), digest, by).Scan(&version); err != nil {
		return false, fmt.Errorf("insert config: %w", err)
	}
	if announce != nil {
		ev, err := announce(version)
		if err != nil {
			return false, fmt.Errorf("announce config: %w", err)
		}
		if err := outbox.Insert(ctx, tx, ev); err != nil {
			return false, fmt.Errorf("announce config: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("commit config: %w", err)
	}
	return true, nil
}

// Version returns the newest configuration version and override change
// marker, so replicas can tell when to recompile.
func (s *Store) Version(ctx context.Context) (string, error) {
	var cfg int64
	var n int64
	var latest *time.Time
	err := s.pool.QueryRow(ctx, `SELECT
		coalesce((SELECT max(version) FROM config_versions), 0),
		(SELECT count(*) FROM overrides),
		(SELECT max(created_at) FROM overrides)`).Scan(&cfg, &n, &latest)
	if err != nil {
		return "", fmt.Errorf("read versions: %w", err)
	}
	v := fmt.Sprintf("%d/%d", cfg, n)
	if latest != nil {
		v += "/" + latest.UTC().Format(time.RFC3339Nano)
	}
	return v, nil
}

// Overrides returns every API-created override.
func (s *Store) Overrides(ctx context.Context) ([]schedule.Override, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, rotation_id, kind, person_id, with_person, starts_at, ends_at, swap_id, note
		FROM overrides ORDER BY starts_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list overrides: %w", err)
	}
	return scanOverrides(rows)
}

func scanOverrides(rows pgx.Rows) ([]schedule.Override, error) {
	defer rows.Close()
	var out []schedule.Override
	for rows.Next() {
		var o schedule.Override
		var kind string
		if err := rows.Scan(&o.ID, &o.Rotation, &kind, &o.Person, &o.With, &o.Start, &o.End, &o.SwapID, &o.Note); err != nil {
			return nil, fmt.Errorf("scan override: %w", err)
		}
		k, err := schedule.ParseOverrideKind(kind)
		if err != nil {
			return nil, err
		}
		o.Kind = k
		out = append(out, o)
	}
	return out, rows.Err()
}

// Unannounced returns, locked in tx, the overrides not yet announced:
// those recorded before AddOverrides wrote their events to the outbox.
func Unannounced(ctx context.Context, tx pgx.Tx) ([]schedule.Override, error) {
	rows, err := tx.Query(ctx, `SELECT id, rotation_id, kind, person_id, with_person, starts_at, ends_at, swap_id, note
		FROM overrides WHERE NOT announced ORDER BY created_at, id FOR UPDATE`)
	if err != nil {
		return nil, fmt.Errorf("list unannounced overrides: %w", err)
	}
	return scanOverrides(rows)
}

// MarkAnnounced records in tx that the overrides were announced.
func MarkAnnounced(ctx context.Context, tx pgx.Tx, ids []string) error {
	if _, err := tx.Exec(ctx, `UPDATE overrides SET announced = true WHERE id = ANY($1)`, ids); err != nil {
		return fmt.Errorf("mark overrides announced: %w", err)
	}
	return nil
}

// ErrConflict means an override id is already stored for a different
// override.
var ErrConflict = errors.New("override id already used by a different override")

// AddOverrides inserts overrides in one transaction, recorded as created
// at createdAt, with announce's event for each new one written to the
// outbox in that transaction (announce nil: no events). An id already
// stored with the same content is left as it is (an idempotent retry); with
// different content nothing is stored and the error wraps ErrConflict.
func (s *Store) AddOverrides(ctx context.Context, createdAt time.Time, announce func(schedule.Override) (outbox.Event, error), os ...schedule.Override) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("add overrides: %w", err)
	}
	defer tx.Rollback(ctx)
	var events []outbox.Event
	for _, o := range os {
		// announced: the override_created event goes to the outbox below
		// (the flag is for overrides recorded before that was so).
		tag, err := tx.Exec(ctx, `INSERT INTO overrides (id, rotation_id, kind, person_id, with_person, starts_at, ends_at, swap_id, note, created_at, announced)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, true) ON CONFLICT (id) DO NOTHING`,
			o.ID, o.Rotation, o.Kind.String(), o.Person, o.With, o.Start, o.End, o.SwapID, o.Note, createdAt)
		if err != nil {
			return fmt.Errorf("insert override %s: %w", o.ID, err)
		}
		if tag.RowsAffected() == 1 {
			if announce != nil {
				ev, err := announce(o)
				if err != nil {
					return fmt.Errorf("announce override %s: %w", o.ID, err)
				}
				events = append(events, ev)
			}
			continue
		}
		var same bool
		err = tx.QueryRow(ctx, `SELECT rotation_id = $2 AND kind = $3 AND person_id = $4 AND with_person = $5
				AND starts_at = $6 AND ends_at = $7 AND swap_id = $8 AND note = $9
			FROM overrides WHERE id = $1`,
			o.ID, o.Rotation, o.Kind.String(), o.Person, o.With, o.Start, o.End, o.SwapID, o.Note).Scan(&same)
		if err != nil {
			return fmt.Errorf("compare override %s: %w", o.ID, err)
		}
		if !same {
			return fmt.Errorf("%w: %s", ErrConflict, o.ID)
		}
	}
	if err := outbox.Insert(ctx, tx, events...); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit overrides: %w", err)
	}
	return nil
}

// ErrNotFound means no stored override has the id, as an override id or a
// swap id.
var ErrNotFound = errors.New("no stored override or swap with that id")

// DeleteOverride deletes, in one transaction, the stored override id or,
// when it is one side of a swap (or id is a swap id), both sides, with
// announce's event for each written to the outbox in that transaction
// (announce nil: no events). It returns what it deleted; an unknown id is
// an error wrapping ErrNotFound.
func (s *Store) DeleteOverride(ctx context.Context, id string, announce func(schedule.Override) (outbox.Event, error)) ([]schedule.Override, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("delete override: %w", err)
	}
	defer tx.Rollback(ctx)
	rows, err := tx.Query(ctx, `DELETE FROM overrides
		WHERE id = $1 OR swap_id = $1
			OR swap_id IN (SELECT swap_id FROM overrides WHERE id = $1 AND swap_id <> '')
		RETURNING id, rotation_id, kind, person_id, with_person, starts_at, ends_at, swap_id, note`, id)
	if err != nil {
		return nil, fmt.Errorf("delete override %s: %w", id, err)
	}
	deleted, err := scanOverrides(rows)
	if err != nil {
		return nil, err
	}
	if len(deleted) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	sort.Slice(deleted, func(i, j int) bool { return deleted[i].ID < deleted[j].ID })
	var events []outbox.Event
	for _, o := range deleted {
		if announce == nil {
			break
		}
		ev, err := announce(o)
		if err != nil {
			return nil, fmt.Errorf("announce deletion of override %s: %w", o.ID, err)
		}
		events = append(events, ev)
	}
	if err := outbox.Insert(ctx, tx, events...); err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("commit override deletion: %w", err)
	}
	return deleted, nil
}
