package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

// The groupings of Summarise's statement: the first four as
// GROUPING(tier, person, category, channel) numbers their grouping sets
// (a bit set for each column left out), then the days.
const (
	byTier     = 0b0111
	byPerson   = 0b1011
	byCategory = 0b1101
	byChannel  = 0b1110
	byDay      = 16 // day, channel, tier and category: counts only
)

// summariseInSQL is the report as one statement grouped it before
// Summarise summed the groups in Go (43a9ee4): grouping sets with
// percentile_cont over the same rows. Tests hold Summarise to it.
func summariseInSQL(ctx context.Context, q Querier, from, to time.Time, zone string) (*Summary, error) {
	// The groupings' sorts hold the range's rows (about 15 MB for 100,000
	// conversations): in memory, not in temporary files.
	if _, err := q.Exec(ctx, `SET LOCAL work_mem = '64MB'`); err != nil {
		return nil, fmt.Errorf("summary: work_mem: %w", err)
	}
	rows, err := q.Query(ctx, `WITH c AS MATERIALIZED (
		SELECT tier, channel, coalesce(categories[1], 'uncategorised') AS category,
			coalesce(first_responder, assignee) AS person, to_char(opened_at AT TIME ZONE $5, 'YYYY-MM-DD') AS day,
			deadline_level, first_response_work_seconds AS frs, first_response_level AS frl,
			extract(epoch FROM CASE WHEN status = $3 AND close_reason <> $4 THEN last_closed_at END - opened_at) AS res
		FROM conversations WHERE opened_at >= $1 AND opened_at < $2 AND alert IS NULL),
	stats AS (
		SELECT GROUPING(tier, person, category, channel) AS g, tier, person, category, channel, '' AS day,
			count(*) AS n, count(frs) AS responded, coalesce(avg(frs), 0) AS mean,
			coalesce(percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY frs), ARRAY[0, 0]) AS pct,
			count(*) FILTER (WHERE frs IS NOT NULL AND frl = 1) AS great,
			count(*) FILTER (WHERE frs IS NOT NULL AND frl = 2) AS okay,
			count(*) FILTER (WHERE frs IS NOT NULL AND frl = 3) AS late,
			count(*) FILTER (WHERE (frs IS NOT NULL AND frl = 4) OR (frs IS NULL AND deadline_level = 4)) AS breached,
			count(res) AS closed, coalesce(avg(res), 0) AS res_mean,
			coalesce(percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY res), ARRAY[0, 0]) AS res_pct
		FROM c GROUP BY GROUPING SETS ((tier), (person), (category), (channel))),
	days AS (
		SELECT `+fmt.Sprint(byDay)+` AS g, tier, '' AS person, category, channel, day, count(*) AS n,
			0, 0, ARRAY[0, 0]::float8[], 0, 0, 0, 0, 0, 0, ARRAY[0, 0]::float8[]
		FROM c GROUP BY day, channel, tier, category)
	SELECT g, coalesce(tier::text, ''), coalesce(person, ''), coalesce(category, ''), coalesce(channel::text, ''), day,
		n, responded, mean, pct, great, okay, late, breached, closed, res_mean, res_pct
	FROM (SELECT * FROM stats UNION ALL SELECT * FROM days) r
	ORDER BY g, day, channel, tier, person, category`, from, to,
		int16(supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED), int16(supportv1.CloseReason_CLOSE_REASON_SPAM), zone)
	if err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}
	defer rows.Close()
	var s Summary
	for rows.Next() {
		var (
			g                               int
			tier, person, category, ch, day string
			r                               ResponseStats
		)
		var pct, resPct []float64 // median and p90: one sort of the group for both
		if err := rows.Scan(&g, &tier, &person, &category, &ch, &day, &r.Conversations, &r.Responded, &r.Mean, &pct,
			&r.Great, &r.Okay, &r.Late, &r.Breached, &r.Closed, &r.ResMean, &resPct); err != nil {
			return nil, fmt.Errorf("summary: %w", err)
		}
		if len(pct) != 2 || len(resPct) != 2 {
			return nil, fmt.Errorf("summary: %d and %d percentiles, want 2 each", len(pct), len(resPct))
		}
		r.Median, r.P90, r.ResMedian, r.ResP90 = pct[0], pct[1], resPct[0], resPct[1]
		switch g {
		case byTier:
			n, err := strconv.ParseInt(tier, 10, 16)
			if err != nil {
				return nil, fmt.Errorf("summary: tier %q: %w", tier, err)
			}
			r.Key = tier
			s.ByTier = append(s.ByTier, Count{Key: tier, Count: r.Conversations})
			s.Tiers = append(s.Tiers, TierStats{Tier: int16(n), ResponseStats: r})
		case byPerson:
			r.Key = person
			s.ByPerson = append(s.ByPerson, r)
		case byCategory:
			r.Key = category
			s.ByCategory = append(s.ByCategory, Count{Key: category, Count: r.Conversations})
			s.ByCategoryResponse = append(s.ByCategoryResponse, r)
		case byChannel:
			s.ByChannel = append(s.ByChannel, Count{Key: ch, Count: r.Conversations})
		case byDay:
			s.Days = append(s.Days, DayCount{Day: day, Channel: ch, Tier: tier, Category: category, Count: r.Conversations})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}
	return s.finish(ctx, q, from, to)
}
