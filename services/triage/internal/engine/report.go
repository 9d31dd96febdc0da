package engine

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/store"
)

// DefaultReportSpan is the report range when from is not given.
const DefaultReportSpan = 7 * 24 * time.Hour

// Summary reports on the conversations opened in [from, to) (to defaults
// to now, from to DefaultReportSpan before to):
//
//   - counts by predominant category, tier and channel (keys are lowercase
//     names: "performance", "priority", "slack");
//   - per tier (Priority, Subscriber, Community, always all three), the
//     first response time in covered working time (mean, median and p90,
//     percentiles interpolated), over the conversations whose first
//     response is known;
//   - per tier, the share of decided conversations whose first response
//     was great (under the great threshold), okay (under okay) and late
//     (under too late); decided means answered, or unanswered and already
//     past too late. Breached counts answered past too late and unanswered
//     past too late alike;
//   - per tier, person (who answered first; the assignee of unanswered
//     ones) and predominant category: the first response times, the
//     levels, and the resolution time (opening to last close, wall time,
//     spam left out);
//   - per calendar day in loc (nil: UTC), the counts by channel, category
//     and tier, every day of the range listed (ReportDayLimit at most).
func (e *Engine) Summary(ctx context.Context, from, to time.Time, loc *time.Location) (*triagev1.SummaryResponse, error) {
	if to.IsZero() {
		to = e.now()
	}
	if from.IsZero() {
		from = to.Add(-DefaultReportSpan)
	}
	if !to.After(from) {
		return nil, fmt.Errorf("report range: to must be after from: %w", ErrInvalid)
	}
	if loc == nil {
		loc = time.UTC
	}
	// One read-only snapshot for the report's statements (triage's
	// connections run without JIT: PostgresSettings).
	var s *store.Summary
	err := pgx.BeginTxFunc(ctx, e.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		var err error
		s, err = store.Summarise(ctx, tx, from, to, loc.String())
		return err
	})
	if err != nil {
		return nil, err
	}
	resp := &triagev1.SummaryResponse{}
	for _, c := range s.ByCategory {
		resp.ByCategory = append(resp.ByCategory, &triagev1.Count{Key: c.Key, Count: c.Count})
	}
	for _, c := range s.ByTier {
		resp.ByTier = append(resp.ByTier, &triagev1.Count{Key: enumKey(c.Key, supportv1.Tier_name, "TIER_"), Count: c.Count})
	}
	for _, c := range s.ByChannel {
		resp.ByChannel = append(resp.ByChannel, &triagev1.Count{Key: enumKey(c.Key, supportv1.Channel_name, "CHANNEL_"), Count: c.Count})
	}
	byTier := map[supportv1.Tier]store.TierStats{}
	for _, t := range s.Tiers {
		byTier[supportv1.Tier(t.Tier)] = t
	}
	for _, tier := range []supportv1.Tier{supportv1.Tier_TIER_PRIORITY, supportv1.Tier_TIER_SUBSCRIBER, supportv1.Tier_TIER_COMMUNITY} {
		t := byTier[tier]
		st := &triagev1.TierResponseStats{
			Tier: tier, Conversations: t.Conversations, Responded: t.Responded,
			MeanSeconds: t.Mean, MedianSeconds: t.Median, P90Seconds: t.P90,
			Great: t.Great, Okay: t.Okay, Late: t.Late, Breached: t.Breached, Resolution: resolution(t.ResponseStats),
		}
		if decided := t.Great + t.Okay + t.Late + t.Breached; decided > 0 {
			st.Decided = decided
			st.GreatShare = float64(t.Great) / float64(decided)
			st.OkayShare = float64(t.Okay) / float64(decided)
			st.LateShare = float64(t.Late) / float64(decided)
			st.BreachedShare = float64(t.Breached) / float64(decided)
		}
		resp.Response = append(resp.Response, st)
	}
	resp.ByPerson = groupStats(s.ByPerson)
	resp.ByCategoryResponse = groupStats(s.ByCategoryResponse)
	al := s.Alerts
	resp.Alerts = &triagev1.AlertStats{
		Opened: al.Opened, Occurrences: al.Occurrences, Acknowledged: al.Acknowledged,
		AcknowledgeMeanSeconds: al.AckMean, AcknowledgeMedianSeconds: al.AckMedian, AcknowledgeP90Seconds: al.AckP90,
		Resolution: &triagev1.Resolution{Closed: al.Closed, MeanSeconds: al.ResMean, MedianSeconds: al.ResMedian, P90Seconds: al.ResP90},
	}
	resp.ByDay = dayCounts(s.Days, from, to, loc)
	a, err := e.Agreement(ctx, from, to)
	if err != nil {
		return nil, err
	}
	resp.Agreement = &triagev1.CategoryAgreement{
		Pairs: int64(a.Pairs), Exact: int64(a.Exact), Overlapping: int64(a.Overlap), None: int64(a.None),
		ExactRate: a.ExactRate(), OverlapRate: a.OverlapRate(), NoneRate: a.NoneRate(),
	}
	return resp, nil
}

// ReportDayLimit bounds the days a report lists in by_day (ten years), so
// a request for all of history cannot make a list of every day since
// year 1; a longer range gets no by_day.
const ReportDayLimit = 3660

// dayCounts lists every calendar day in loc that [from, to) touches with
// its counts, in the order and with the keys of the range's totals.
func dayCounts(rows []store.DayCount, from, to time.Time, loc *time.Location) []*triagev1.DayCounts {
	date := func(t time.Time) time.Time {
		y, m, d := t.In(loc).Date()
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	}
	first, last := date(from), date(to.Add(-time.Nanosecond))
	if last.Sub(first) >= ReportDayLimit*24*time.Hour {
		return nil
	}
	type tally struct{ channel, category, tier map[string]int64 }
	byDay := map[string]*tally{}
	for _, r := range rows {
		t := byDay[r.Day]
		if t == nil {
			t = &tally{map[string]int64{}, map[string]int64{}, map[string]int64{}}
			byDay[r.Day] = t
		}
		t.channel[r.Channel] += r.Count
		t.category[r.Category] += r.Count
		t.tier[r.Tier] += r.Count
	}
	var out []*triagev1.DayCounts
	for d := first; !d.After(last); d = d.AddDate(0, 0, 1) {
		day := &triagev1.DayCounts{Day: d.Format(time.DateOnly)}
		if t := byDay[day.Day]; t != nil {
			for _, n := range t.tier {
				day.Conversations += n
			}
			day.ByChannel = dayKeys(t.channel, true, func(k string) string { return enumKey(k, supportv1.Channel_name, "CHANNEL_") })
			day.ByCategory = dayKeys(t.category, true, func(k string) string { return k })
			day.ByTier = dayKeys(t.tier, false, func(k string) string { return enumKey(k, supportv1.Tier_name, "TIER_") })
		}
		out = append(out, day)
	}
	return out
}

// dayKeys turns one day's counts into Counts ordered as the range's
// totals are: most first then by key (channels, categories), or by the
// key's enum number (tiers).
func dayKeys(counts map[string]int64, mostFirst bool, name func(string) string) []*triagev1.Count {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if mostFirst && counts[a] != counts[b] {
			return counts[a] > counts[b]
		}
		if na, errA := strconv.Atoi(a); errA == nil {
			if nb, errB := strconv.Atoi(b); errB == nil {
				return na < nb
			}
		}
		return a < b
	})
	out := make([]*triagev1.Count, 0, len(keys))
	for _, k := range keys {
		out = append(out, &triagev1.Count{Key: name(k), Count: counts[k]})
	}
	return out
}

func resolution(s store.ResponseStats) *triagev1.Resolution {
	return &triagev1.Resolution{Closed: s.Closed, MeanSeconds: s.ResMean, MedianSeconds: s.ResMedian, P90Seconds: s.ResP90}
}

func groupStats(in []store.ResponseStats) []*triagev1.GroupResponseStats {
	out := make([]*triagev1.GroupResponseStats, 0, len(in))
	for _, s := range in {
		out = append(out, &triagev1.GroupResponseStats{
			Key: s.Key, Conversations: s.Conversations, Responded: s.Responded,
			MeanSeconds: s.Mean, MedianSeconds: s.Median, P90Seconds: s.P90,
			Great: s.Great, Okay: s.Okay, Late: s.Late, Breached: s.Breached, Resolution: resolution(s),
		})
	}
	return out
}

// enumKey turns an enum number stored as text into its lowercase name.
func enumKey(number string, names map[int32]string, prefix string) string {
	n, err := strconv.Atoi(number)
	if err != nil {
		return number
	}
	name, ok := names[int32(n)]
	if !ok {
		return number
	}
	return strings.ToLower(strings.TrimPrefix(name, prefix))
}
