package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

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
	// Day is YYYY-MM-DD in the zone ByDay was given.
	Day                     string
	Channel, Tier, Category string
	Count                   int64
}

// ByDay counts the customer conversations opened in [from, to) by
// calendar day in zone (an IANA name PostgreSQL knows), channel, tier and
// predominant category, oldest day first. Days without conversations have
// no rows.
func ByDay(ctx context.Context, q Querier, from, to time.Time, zone string) ([]DayCount, error) {
	rows, err := q.Query(ctx, `SELECT to_char(opened_at AT TIME ZONE $3, 'YYYY-MM-DD') AS d, channel::text, tier::text,
		coalesce(categories[1], 'uncategorised') AS k, count(*)`+inRange+` GROUP BY d, channel, tier, k ORDER BY d, channel, tier, k`,
		from, to, zone)
	if err != nil {
		return nil, fmt.Errorf("summary by day: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (DayCount, error) {
		var c DayCount
		return c, r.Scan(&c.Day, &c.Channel, &c.Tier, &c.Category, &c.Count)
	})
}

// inRange selects the customer conversations opened in [$1, $2): alerts
// have their own figures (AlertStats).
const inRange = ` FROM conversations WHERE opened_at >= $1 AND opened_at < $2 AND alert IS NULL`

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
	tiers, err := responseStats(ctx, q, `tier::text`, from, to)
	if err != nil {
		return nil, fmt.Errorf("summary of response times: %w", err)
	}
	for _, t := range tiers {
		n, err := strconv.ParseInt(t.Key, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("summary of response times: tier %q: %w", t.Key, err)
		}
		s.Tiers = append(s.Tiers, TierStats{Tier: int16(n), ResponseStats: t})
	}
	if s.ByPerson, err = responseStats(ctx, q, `coalesce(responder, assignee)`, from, to); err != nil {
		return nil, fmt.Errorf("summary of response times by person: %w", err)
	}
	if s.ByCategoryResponse, err = responseStats(ctx, q, `coalesce(categories[1], 'uncategorised')`, from, to); err != nil {
		return nil, fmt.Errorf("summary of response times by category: %w", err)
	}
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

// responseStats computes ResponseStats over the conversations opened in
// [from, to), grouped by the SQL expression group over the conversation's
// columns plus responder (who answered first) and closed_at (the last
// close of a closed conversation, spam left out), both kept on the row by
// the engine (first_responder, last_closed_at: migration 00009), so the
// report reads no audit trail.
func responseStats(ctx context.Context, q Querier, group string, from, to time.Time) ([]ResponseStats, error) {
	rows, err := q.Query(ctx, `WITH c AS (
		SELECT c.tier, c.assignee, c.categories, c.opened_at, c.deadline_level,
			c.first_response_work_seconds, c.first_response_level, c.first_responder AS responder,
			CASE WHEN c.status = $3 AND c.close_reason <> $4 THEN c.last_closed_at END AS closed_at
		FROM conversations c
		WHERE c.opened_at >= $1 AND c.opened_at < $2 AND c.alert IS NULL)
	SELECT `+group+` AS k, count(*), count(first_response_work_seconds),
		coalesce(avg(first_response_work_seconds), 0),
		coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY first_response_work_seconds), 0),
		coalesce(percentile_cont(0.9) WITHIN GROUP (ORDER BY first_response_work_seconds), 0),
		count(*) FILTER (WHERE first_response_work_seconds IS NOT NULL AND first_response_level = 1),
		count(*) FILTER (WHERE first_response_work_seconds IS NOT NULL AND first_response_level = 2),
		count(*) FILTER (WHERE first_response_work_seconds IS NOT NULL AND first_response_level = 3),
		count(*) FILTER (WHERE (first_response_work_seconds IS NOT NULL AND first_response_level = 4)
			OR (first_response_work_seconds IS NULL AND deadline_level = 4)),
		count(closed_at),
		coalesce(avg(extract(epoch FROM closed_at - opened_at)), 0),
		coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM closed_at - opened_at)), 0),
		coalesce(percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM closed_at - opened_at)), 0)
	FROM c GROUP BY k ORDER BY k`, from, to,
		int16(supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED), int16(supportv1.CloseReason_CLOSE_REASON_SPAM))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ResponseStats, error) {
		var s ResponseStats
		return s, r.Scan(&s.Key, &s.Conversations, &s.Responded, &s.Mean, &s.Median, &s.P90, &s.Great, &s.Okay, &s.Late, &s.Breached,
			&s.Closed, &s.ResMean, &s.ResMedian, &s.ResP90)
	})
}
