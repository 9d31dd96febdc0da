package store

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"math/big"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

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

// Summarise computes the report over the customer conversations opened
// in [from, to) (alerts have their own figures, AlertStats), days in zone
// (an IANA name PostgreSQL knows). Categories count the predominant one
// ("uncategorised" without any); tiers and channels are their enum
// numbers as text. Persons and categories come in the database's order
// of their keys (its collation); days oldest first. Who answered first
// and the last close are on the row (first_responder, last_closed_at:
// migration 00009), kept by the engine.
//
// One statement reads the range from the conversations_report index
// alone (index-only: the range's rows lie anywhere in the table) and
// sends each conversation's few report columns; the groupings are
// summed here. The statement that grouped them in PostgreSQL (grouping
// sets with percentile_cont) spent about 0.8 s of a 1.45 s report over
// 107,000 conversations sorting them by each grouping and each group by
// its figures; here the sums are one pass and the percentiles a sort of
// each group's figures (docs/performance.md). What is exact: counts and
// percentiles equal the statement's to the bit (the same
// interpolation, percentiles), the resolution's mean is the exact mean
// rounded once, and the first response's mean is a sum of floats as
// avg's was (in another order, so it may differ in the last bit).
func Summarise(ctx context.Context, q Querier, from, to time.Time, zone string) (*Summary, error) {
	rows, err := q.Query(ctx, `SELECT tier, channel, coalesce(categories[1], 'uncategorised'),
			coalesce(first_responder, assignee), (opened_at AT TIME ZONE $3)::date,
			deadline_level, first_response_work_seconds, first_response_level,
			CASE WHEN status = $4 AND close_reason <> $5 THEN last_closed_at END, opened_at
		FROM conversations WHERE opened_at >= $1 AND opened_at < $2 AND alert IS NULL`,
		from, to, zone, int16(supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED), int16(supportv1.CloseReason_CLOSE_REASON_SPAM))
	if err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}
	defer rows.Close()
	var (
		tiers      = map[int16]*reportGroup{}
		persons    = map[string]*reportGroup{}
		categories = map[string]*reportGroup{}
		channels   = map[int16]int64{}
		days       = map[dayKey]int64{}
	)
	// group finds a text key's group without making a string of it for
	// each row (the statement's keys are never NULL).
	group := func(m map[string]*reportGroup, key []byte) *reportGroup {
		g := m[string(key)]
		if g == nil {
			g = &reportGroup{key: string(key)}
			m[g.key] = g
		}
		return g
	}
	var (
		c             reportRow
		tier, channel int16
		day, opened   time.Time
		frs           pgtype.Float8
		closed        pgtype.Timestamptz
		// The category and person (nil: skipped) are read raw below.
		dest = []any{&tier, &channel, nil, nil, &day, &c.deadlineLevel, &frs, &c.frl, &closed, &opened}
	)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("summary: %w", err)
		}
		raw := rows.RawValues()
		category, person := group(categories, raw[2]), group(persons, raw[3])
		// Microseconds, as PostgreSQL keeps both times: the resolution is
		// exact (extract(epoch FROM closed - opened) was).
		c.frs, c.responded = frs.Float64, frs.Valid
		c.resMicros, c.closed = closed.Time.Sub(opened).Microseconds(), closed.Valid
		tg := tiers[tier]
		if tg == nil {
			tg = &reportGroup{key: strconv.Itoa(int(tier))}
			tiers[tier] = tg
		}
		tg.add(c)
		person.add(c)
		category.add(c)
		channels[channel]++
		days[dayKey{day: day, channel: channel, tier: tier, category: category}]++
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}

	var s Summary
	for _, tier := range slices.Sorted(maps.Keys(tiers)) {
		r := tiers[tier].stats()
		s.ByTier = append(s.ByTier, Count{Key: r.Key, Count: r.Conversations})
		s.Tiers = append(s.Tiers, TierStats{Tier: tier, ResponseStats: r})
	}
	byKey, err := collated(ctx, q, slices.Collect(maps.Keys(persons)), slices.Collect(maps.Keys(categories)))
	if err != nil {
		return nil, err
	}
	for _, k := range slices.SortedFunc(maps.Keys(persons), byKey) {
		s.ByPerson = append(s.ByPerson, persons[k].stats())
	}
	for _, k := range slices.SortedFunc(maps.Keys(categories), byKey) {
		r := categories[k].stats()
		s.ByCategory = append(s.ByCategory, Count{Key: k, Count: r.Conversations})
		s.ByCategoryResponse = append(s.ByCategoryResponse, r)
	}
	for _, ch := range slices.Sorted(maps.Keys(channels)) {
		s.ByChannel = append(s.ByChannel, Count{Key: strconv.Itoa(int(ch)), Count: channels[ch]})
	}
	for _, k := range slices.SortedFunc(maps.Keys(days), func(a, b dayKey) int {
		return cmp.Or(a.day.Compare(b.day), cmp.Compare(a.channel, b.channel), cmp.Compare(a.tier, b.tier), byKey(a.category.key, b.category.key))
	}) {
		s.Days = append(s.Days, DayCount{Day: k.day.Format(time.DateOnly), Channel: strconv.Itoa(int(k.channel)),
			Tier: strconv.Itoa(int(k.tier)), Category: k.category.key, Count: days[k]})
	}
	return s.finish(ctx, q, from, to)
}

// finish orders the counts by category and channel most first (ties
// stay in key order: the database's collation for categories, the
// number for channels) and adds the alerts' figures.
func (s *Summary) finish(ctx context.Context, q Querier, from, to time.Time) (*Summary, error) {
	mostFirst := func(a, b Count) int { return cmp.Compare(b.Count, a.Count) }
	slices.SortStableFunc(s.ByCategory, mostFirst)
	slices.SortStableFunc(s.ByChannel, mostFirst)
	var err error
	if s.Alerts, err = alertStats(ctx, q, from, to); err != nil {
		return nil, fmt.Errorf("summary of alerts: %w", err)
	}
	return s, nil
}

// dayKey is a group of Summary.Days.
type dayKey struct {
	day           time.Time
	channel, tier int16
	category      *reportGroup
}

// reportRow is what the report reads of one conversation.
type reportRow struct {
	deadlineLevel, frl int16
	// frs is the first response's working time in seconds, when
	// responded; resMicros the time from opening to the last close, when
	// closed (spam left out).
	frs               float64
	responded, closed bool
	resMicros         int64
}

// reportGroup sums the conversations of one group of the report.
type reportGroup struct {
	key                            string
	n, great, okay, late, breached int64
	frsSum                         float64
	frs, res                       []float64
	resMicros                      int64
}

func (g *reportGroup) add(c reportRow) {
	g.n++
	if c.responded {
		g.frs = append(g.frs, c.frs)
		g.frsSum += c.frs
		switch c.frl {
		case 1:
			g.great++
		case 2:
			g.okay++
		case 3:
			g.late++
		case 4:
			g.breached++
		}
	} else if c.deadlineLevel == 4 {
		g.breached++
	}
	if c.closed {
		// The seconds PostgreSQL's float8 of the exact decimal is: one
		// correctly rounded division of two exact numbers.
		g.res = append(g.res, float64(c.resMicros)/1e6)
		g.resMicros += c.resMicros
	}
}

func (g *reportGroup) stats() ResponseStats {
	r := ResponseStats{Key: g.key, Conversations: g.n, Responded: int64(len(g.frs)),
		Great: g.great, Okay: g.okay, Late: g.late, Breached: g.breached, Closed: int64(len(g.res))}
	if len(g.frs) > 0 {
		r.Mean = g.frsSum / float64(len(g.frs))
	}
	if len(g.res) > 0 {
		r.ResMean, _ = new(big.Rat).SetFrac(big.NewInt(g.resMicros), big.NewInt(int64(len(g.res))*1e6)).Float64()
	}
	r.Median, r.P90 = percentiles(g.frs)
	r.ResMedian, r.ResP90 = percentiles(g.res)
	return r
}

// percentiles are the median and p90 of v (reordered) as PostgreSQL's
// percentile_cont(ARRAY[0.5, 0.9]) computes them: linear interpolation
// between the two values nearest each, in the same float operations, so
// the same to the bit; zero for no values. The four values are selected,
// not sorted for (a third of the time of sorting the groups).
func percentiles(v []float64) (p50, p90 float64) {
	if len(v) == 0 {
		return 0, 0
	}
	// done: v[:done] holds the smallest values, in no order, and the
	// values from done on are no smaller.
	done := 0
	at := func(p float64) float64 {
		pos := p * float64(len(v)-1)
		first, second := math.Floor(pos), math.Ceil(pos)
		k := int(first)
		nth(v[done:], k-done)
		done = k + 1
		lo := v[k]
		if first == second {
			return lo
		}
		// The next value up is the least of those after lo.
		hi := slices.Min(v[done:])
		// float8_lerp: lo + (hi - lo) * proportion; the conversion keeps
		// the product rounded on its own (no fused multiply-add).
		return lo + float64((hi-lo)*(pos-first))
	}
	p50 = at(0.5)
	return p50, at(0.9)
}

// nth reorders v so that v[k] is the value a sort would put there, with
// no greater value before it and no smaller one after (quickselect;
// Hoare's partition, so many equal values cost no more than distinct
// ones). The values must not be NaN.
func nth(v []float64, k int) {
	lo, hi := 0, len(v)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		// The median of three as the pivot, also at v[lo] and v[hi] the
		// sentinels the scans below stop at.
		if v[mid] < v[lo] {
			v[mid], v[lo] = v[lo], v[mid]
		}
		if v[hi] < v[lo] {
			v[hi], v[lo] = v[lo], v[hi]
		}
		if v[hi] < v[mid] {
			v[hi], v[mid] = v[mid], v[hi]
		}
		pivot := v[mid]
		i, j := lo, hi
		for i <= j {
			for v[i] < pivot {
				i++
			}
			for v[j] > pivot {
				j--
			}
			if i <= j {
				v[i], v[j] = v[j], v[i]
				i++
				j--
			}
		}
		// v[lo..j] <= pivot, v[i..hi] >= pivot, and between them values
		// equal to it.
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return
		}
	}
}

// collated returns a comparison of keys in the database's order (its
// collation, as the ORDER BY of the grouped statement had them): one
// small round trip for the persons and categories found.
func collated(ctx context.Context, q Querier, keys ...[]string) (func(a, b string) int, error) {
	var all []string
	for _, k := range keys {
		all = append(all, k...)
	}
	var sorted []string
	if err := q.QueryRow(ctx, `SELECT coalesce(array_agg(k ORDER BY k), '{}') FROM (SELECT DISTINCT k FROM unnest($1::text[]) k) d`,
		all).Scan(&sorted); err != nil {
		return nil, fmt.Errorf("summary: order the keys: %w", err)
	}
	rank := make(map[string]int, len(sorted))
	for i, k := range sorted {
		rank[k] = i
	}
	return func(a, b string) int { return cmp.Compare(rank[a], rank[b]) }, nil
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
