package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Count is a key with a number of conversations.
type Count struct {
	Key   string
	Count int64
}

// TierStats are the first-response figures of one tier.
type TierStats struct {
	Tier int16
	// Conversations opened; Responded those with a first staff reply whose
	// working time is known.
	Conversations, Responded int64
	// Mean, Median and P90 of the first response's working time, in
	// seconds (percentiles interpolated linearly); zero without responses.
	Mean, Median, P90 float64
	// Great, Okay and Late count first responses at each level; Breached
	// counts those past too late plus unanswered conversations already
	// breached.
	Great, Okay, Late, Breached int64
}

// Summary is the raw report over conversations opened in a range.
type Summary struct {
	ByCategory, ByTier, ByChannel []Count
	Tiers                         []TierStats
}

const inRange = ` FROM conversations WHERE opened_at >= $1 AND opened_at < $2`

// Summarise computes the report over conversations opened in [from, to).
// Categories count the predominant one ("uncategorised" without any);
// tiers and channels are their enum numbers as text.
func Summarise(ctx context.Context, q Querier, from, to time.Time) (*Summary, error) {
	var s Summary
	counts := func(sql string) ([]Count, error) {
		rows, err := q.Query(ctx, sql, from, to)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Count, error) {
			var c Count
			return c, r.Scan(&c.Key, &c.Count)
		})
	}
	var err error
	if s.ByCategory, err = counts(`SELECT coalesce(categories[1], 'uncategorised') AS k, count(*) AS n` + inRange + ` GROUP BY k ORDER BY n DESC, k`); err != nil {
		return nil, fmt.Errorf("summary by category: %w", err)
	}
	if s.ByTier, err = counts(`SELECT tier::text AS k, count(*) AS n` + inRange + ` GROUP BY tier ORDER BY tier`); err != nil {
		return nil, fmt.Errorf("summary by tier: %w", err)
	}
	if s.ByChannel, err = counts(`SELECT channel::text AS k, count(*) AS n` + inRange + ` GROUP BY channel ORDER BY n DESC, channel`); err != nil {
		return nil, fmt.Errorf("summary by channel: %w", err)
	}
	rows, err := q.Query(ctx, `SELECT tier, count(*), count(first_response_work_seconds),
		coalesce(avg(first_response_work_seconds), 0),
		coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY first_response_work_seconds), 0),
		coalesce(percentile_cont(0.9) WITHIN GROUP (ORDER BY first_response_work_seconds), 0),
		count(*) FILTER (WHERE first_response_work_seconds IS NOT NULL AND first_response_level = 1),
		count(*) FILTER (WHERE first_response_work_seconds IS NOT NULL AND first_response_level = 2),
		count(*) FILTER (WHERE first_response_work_seconds IS NOT NULL AND first_response_level = 3),
		count(*) FILTER (WHERE (first_response_work_seconds IS NOT NULL AND first_response_level = 4)
			OR (first_response_work_seconds IS NULL AND deadline_level = 4))`+inRange+` GROUP BY tier ORDER BY tier`, from, to)
	if err != nil {
		return nil, fmt.Errorf("summary of response times: %w", err)
	}
	s.Tiers, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (TierStats, error) {
		var t TierStats
		return t, r.Scan(&t.Tier, &t.Conversations, &t.Responded, &t.Mean, &t.Median, &t.P90, &t.Great, &t.Okay, &t.Late, &t.Breached)
	})
	if err != nil {
		return nil, fmt.Errorf("summary of response times: %w", err)
	}
	return &s, nil
}
