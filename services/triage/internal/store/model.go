package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// LoadModel returns the stored category model's version and JSON, locked
// for update when forUpdate; version 0 and no data when none is stored.
// Locking takes a transaction-level advisory lock too, so two first
// learners do not both insert.
func LoadModel(ctx context.Context, q Querier, forUpdate bool) (int64, []byte, error) {
	sql := `SELECT version, model FROM classifier_model WHERE id = 1`
	if forUpdate {
		if _, err := q.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(modelLockKey)); err != nil {
			return 0, nil, fmt.Errorf("lock category model: %w", err)
		}
		sql += ` FOR UPDATE`
	}
	var (
		version int64
		data    []byte
	)
	err := q.QueryRow(ctx, sql).Scan(&version, &data)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("load category model: %w", err)
	}
	return version, data, nil
}

const modelLockKey = 0x7472696167650002 // "triage" + 2

// ModelVersion returns the stored model's version, 0 when none.
func ModelVersion(ctx context.Context, q Querier) (int64, error) {
	var v int64
	err := q.QueryRow(ctx, `SELECT version FROM classifier_model WHERE id = 1`).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("category model version: %w", err)
	}
	return v, nil
}

// SaveModel stores the model as version.
func SaveModel(ctx context.Context, q Querier, version int64, docs int, data []byte, at time.Time) error {
	_, err := q.Exec(ctx, `INSERT INTO classifier_model (id, version, docs, model, updated_at) VALUES (1, $1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET version = excluded.version, docs = excluded.docs, model = excluded.model, updated_at = excluded.updated_at`,
		version, docs, data, at)
	if err != nil {
		return fmt.Errorf("save category model: %w", err)
	}
	return nil
}

// AgreementPair is one conversation's suggested and confirmed categories.
type AgreementPair struct {
	Suggested, Confirmed []string
}

// AgreementPairs lists the suggestion and the confirmed categories of the
// conversations opened in [from, to) whose categories people confirmed.
func AgreementPairs(ctx context.Context, q Querier, from, to time.Time) ([]AgreementPair, error) {
	rows, err := q.Query(ctx, `SELECT suggested_categories, categories FROM conversations
		WHERE categories_confirmed AND opened_at >= $1 AND opened_at < $2`, from, to)
	if err != nil {
		return nil, fmt.Errorf("agreement pairs: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AgreementPair, error) {
		var p AgreementPair
		return p, r.Scan(&p.Suggested, &p.Confirmed)
	})
	if err != nil {
		return nil, fmt.Errorf("agreement pairs: %w", err)
	}
	return out, nil
}
