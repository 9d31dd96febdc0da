package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

// Count is a key with a number of conversations.
type Count struct {
	Key   string
	Count int64
}

// TierStats are the first-response figures of one tier.
type TierStats struct {
	Tier int16
	ResponseStats
}

// ResponseStats are the first-response and resolution figures of a group
// of conversations.
type ResponseStats struct {
	// Key is the group: a tier number as text, a person id or a category.
	Key string
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
	// Closed counts the conversations closed (spam left out), and
	// ResMean, ResMedian and ResP90 their wall time from opening to the
	// last close, in seconds.
	Closed                     int64
	ResMean, ResMedian, ResP90 float64
}

// Summary is the raw report over conversations opened in a range.
type Summary struct {
	ByCategory, ByTier, ByChannel []Count
	Tiers                         []TierStats
	// ByPerson groups by who answered first, or for unanswered
	// conversations by the assignee ("" when nobody holds them).
	ByPerson []ResponseStats
	// ByCategoryResponse groups by the predominant category.
	ByCategoryResponse []ResponseStats
	// Days count the conversations by calendar day, channel, tier and
	// predominant category, oldest day first; days without conversations
	// have no rows.
	Days []DayCount
	// Alerts are the alert conversations, which every other figure leaves
	// out.
	Alerts AlertStats
}

// AlertStats are the figures of the alert conversations opened in a
// range, in wall time: time to acknowledge (opening to the first
// acknowledgement) and to resolve (opening to the last close).
type AlertStats struct {
	Opened, Occurrences, Acknowledged int64
	AckMean, AckMedian, AckP90        float64
	Closed                            int64
	ResMean, ResMedian, ResP90        float64
}

// DayCount is the number of customer conversations opened on one day
// with one channel, tier and predominant category.
type DayCount struct {
	// Day is YYYY-MM-DD in the zone Summarise was given.
	Day                     string
	Channel, Tier, Category string
	Count                   int64
}

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

// Summarise computes the report over the customer conversations opened
// in [from, to) (alerts have their own figures, AlertStats), days in zone
// (an IANA name PostgreSQL knows). Categories count the predominant one
// ("uncategorised" without any); tiers and channels are their enum
// numbers as text. q must be a transaction (it sets work_mem for it).
//
// One pass over the range, reading the conversations_report index alone
// (index-only), since the range's rows lie anywhere in the table: a
// statement for each grouping read it nine times (2-3 s each at a
// million conversations, docs/performance.md). The figures are grouping
// sets of one aggregate, the days (thousands of groups) a plain count
// beside it. Who answered first and the last close are on the row
// (first_responder, last_closed_at: migration 00009), kept by the engine.
func Summarise(ctx context.Context, q Querier, from, to time.Time, zone string) (*Summary, error) {
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
	// The counts by category and channel go most first; ties stay in
	// key order (the database's collation for categories, the number for
	// channels).
	mostFirst := func(a, b Count) int { return cmp.Compare(b.Count, a.Count) }
	slices.SortStableFunc(s.ByCategory, mostFirst)
	slices.SortStableFunc(s.ByChannel, mostFirst)
	if s.Alerts, err = alertStats(ctx, q, from, to); err != nil {
		return nil, fmt.Errorf("summary of alerts: %w", err)
	}
	return &s, nil
}

func alertStats(ctx context.Context, q Querier, from, to time.Time) (AlertStats, error) {
	var a AlertStats
	err := q.QueryRow(ctx, `WITH c AS (
		SELECT c.opened_at, coalesce((c.alert->>'occurrences')::bigint, 0) AS occurrences,
			extract(epoch FROM (c.alert->>'acknowledgedAt')::timestamptz - c.opened_at) AS ack,
			CASE WHEN c.status = $3 THEN extract(epoch FROM c.last_closed_at - c.opened_at) END AS res
		FROM conversations c WHERE c.opened_at >= $1 AND c.opened_at < $2 AND c.alert IS NOT NULL)
	SELECT count(*), coalesce(sum(occurrences), 0)::bigint, count(ack),
		coalesce(avg(ack), 0), coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY ack), 0),
		coalesce(percentile_cont(0.9) WITHIN GROUP (ORDER BY ack), 0),
		count(res), coalesce(avg(res), 0), coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY res), 0),
		coalesce(percentile_cont(0.9) WITHIN GROUP (ORDER BY res), 0)
	FROM c`, from, to, int16(supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED)).Scan(
		&a.Opened, &a.Occurrences, &a.Acknowledged, &a.AckMean, &a.AckMedian, &a.AckP90,
		&a.Closed, &a.ResMean, &a.ResMedian, &a.ResP90)
	return a, err
}
