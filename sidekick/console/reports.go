package console

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
)

// reportDays is the default range of the reports page: the last week.
const reportDays = 7

// bar is one bar of a chart drawn on the server: a label, a count and
// its length relative to the longest bar, in percent.
type bar struct {
	Label string
	Count int64
	Width float64
}

// bars turns counts into bars.
func bars(cs []*triagev1.Count, label func(string) string) []bar {
	var most int64
	for _, c := range cs {
		most = max(most, c.GetCount())
	}
	out := make([]bar, 0, len(cs))
	for _, c := range cs {
		b := bar{Label: c.GetKey(), Count: c.GetCount()}
		if label != nil {
			b.Label = label(c.GetKey())
		}
		if most > 0 {
			b.Width = float64(c.GetCount()) * 100 / float64(most)
		}
		out = append(out, b)
	}
	return out
}

// dayChartHeight is the height of a per-day chart's drawing, in its own
// units; each day is dayChartStep wide.
const (
	dayChartHeight = 100
	dayChartStep   = 10
)

// series is one key of a per-day chart: its name and colour class.
type series struct {
	Key, Class string
}

// segment is one key's part of a day's column.
type segment struct {
	Series series
	Count  int64
	Y, H   float64
}

// dayColumn is one day of a per-day chart.
type dayColumn struct {
	Day   string
	Total int64
	// Counts are the day's counts in the order of the chart's Series.
	Counts []int64
	X      float64
	Segs   []segment
}

// dayChart is conversations per day split by one dimension (channel,
// category or tier), drawn on the server as stacked columns with a table
// of the same numbers.
type dayChart struct {
	ID, Title     string
	Series        []series
	Days          []dayColumn
	Width, Height int
}

// perDay builds a per-day chart from triage's per-day counts; of picks
// the dimension, and totals (the range's counts) give the series and
// their order.
func perDay(id, title string, days []*triagev1.DayCounts, totals []*triagev1.Count, of func(*triagev1.DayCounts) []*triagev1.Count) dayChart {
	ch := dayChart{ID: id, Title: title, Width: max(len(days), 1) * dayChartStep, Height: dayChartHeight}
	index := map[string]int{}
	for i, c := range totals {
		index[c.GetKey()] = i
		ch.Series = append(ch.Series, series{Key: c.GetKey(), Class: fmt.Sprintf("s%d", i%8)})
	}
	var most int64
	for _, d := range days {
		most = max(most, d.GetConversations())
	}
	for i, d := range days {
		col := dayColumn{Day: d.GetDay(), Total: d.GetConversations(), Counts: make([]int64, len(ch.Series)), X: float64(i*dayChartStep) + 1}
		for _, c := range of(d) {
			if k, ok := index[c.GetKey()]; ok {
				col.Counts[k] = c.GetCount()
			}
		}
		y := float64(dayChartHeight)
		for k, n := range col.Counts {
			if n == 0 || most == 0 {
				continue
			}
			h := float64(n) * dayChartHeight / float64(most)
			y -= h
			col.Segs = append(col.Segs, segment{Series: ch.Series[k], Count: n, Y: y, H: h})
		}
		ch.Days = append(ch.Days, col)
	}
	return ch
}

// reportsData is the reports page.
type reportsData struct {
	From, To                    string
	S                           *triagev1.SummaryResponse
	Channels, Tiers, Categories []bar
	PerDay                      []dayChart
	Dir                         directory
	CSV                         string
}

// reportRange reads from and to (days, YYYY-MM-DD, in the console's zone,
// both included; default the last seven days to today) into the
// instants [from, to).
func (s *Service) reportRange(q map[string][]string) (string, string, time.Time, time.Time, string) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	now := s.deps.Clock.Now().In(s.loc)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, s.loc)
	fromDay, toDay := today.AddDate(0, 0, 1-reportDays), today
	for _, d := range []struct {
		v   string
		set *time.Time
	}{{get("from"), &fromDay}, {get("to"), &toDay}} {
		if d.v == "" {
			continue
		}
		day, err := time.ParseInLocation(time.DateOnly, d.v, s.loc)
		if err != nil {
			return "", "", time.Time{}, time.Time{}, "Dates are days as YYYY-MM-DD."
		}
		*d.set = day
	}
	if toDay.Before(fromDay) {
		return "", "", time.Time{}, time.Time{}, "The range ends before it starts."
	}
	return fromDay.Format(time.DateOnly), toDay.Format(time.DateOnly), fromDay, toDay.AddDate(0, 0, 1), ""
}

// reports is GET /console/reports?from=&to=[&format=csv]: triage's
// Summary for the range, the numbers `sidekick report` prints, with
// charts drawn on the server; format=csv downloads the tables.
func (s *Service) reports(w http.ResponseWriter, r *http.Request, v *visitor) {
	fromDay, toDay, from, to, problem := s.reportRange(r.URL.Query())
	if problem != "" {
		s.renderPage(w, r, http.StatusBadRequest, "reports", v, reportsData{From: r.URL.Query().Get("from"), To: r.URL.Query().Get("to")}, "", problem)
		return
	}
	ctx, cancel := s.call(r.Context())
	defer cancel()
	sum, err := s.deps.Reports.Summary(ctx, &triagev1.SummaryRequest{From: timestamppb.New(from), To: timestamppb.New(to), TimeZone: s.loc.String()})
	if err != nil {
		s.rpcError(w, r, v, "Loading the report", err)
		return
	}
	if r.URL.Query().Get("format") == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="sidekick-report-%s-%s.csv"`, fromDay, toDay))
		writeReportCSV(w, sum)
		return
	}
	d := reportsData{From: fromDay, To: toDay, S: sum, Dir: s.directory(r.Context(), false),
		Channels:   bars(sum.GetByChannel(), nil),
		Tiers:      bars(sum.GetByTier(), nil),
		Categories: bars(sum.GetByCategory(), nil),
		PerDay: []dayChart{
			perDay("per-day-channel", "Per day by channel", sum.GetByDay(), sum.GetByChannel(), (*triagev1.DayCounts).GetByChannel),
			perDay("per-day-category", "Per day by category", sum.GetByDay(), sum.GetByCategory(), (*triagev1.DayCounts).GetByCategory),
			perDay("per-day-tier", "Per day by tier", sum.GetByDay(), sum.GetByTier(), (*triagev1.DayCounts).GetByTier),
		},
		CSV: BasePath + "/reports?format=csv&from=" + fromDay + "&to=" + toDay,
	}
	s.render(w, r, http.StatusOK, "reports", v, d)
}

// writeReportCSV writes the report's tables, one row per figure group:
// section, key, then the numbers; the per-day counts (sections
// channel_by_day, category_by_day, tier_by_day) name their day in the
// last column.
func writeReportCSV(w http.ResponseWriter, sum *triagev1.SummaryResponse) {
	cw := csv.NewWriter(w)
	sec := func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }
	num := func(n int64) string { return strconv.FormatInt(n, 10) }
	_ = cw.Write([]string{"section", "key", "conversations", "responded", "median_first_response_s", "p90_first_response_s", "great", "okay", "late", "breached", "closed", "median_resolution_s", "day"})
	for _, sec2 := range []struct {
		name string
		cs   []*triagev1.Count
	}{{"channel", sum.GetByChannel()}, {"tier", sum.GetByTier()}, {"category", sum.GetByCategory()}} {
		for _, c := range sec2.cs {
			_ = cw.Write([]string{sec2.name, c.GetKey(), num(c.GetCount()), "", "", "", "", "", "", "", "", "", ""})
		}
	}
	for _, d := range sum.GetByDay() {
		for _, sec2 := range []struct {
			name string
			cs   []*triagev1.Count
		}{{"channel_by_day", d.GetByChannel()}, {"category_by_day", d.GetByCategory()}, {"tier_by_day", d.GetByTier()}} {
			for _, c := range sec2.cs {
				_ = cw.Write([]string{sec2.name, c.GetKey(), num(c.GetCount()), "", "", "", "", "", "", "", "", "", d.GetDay()})
			}
		}
	}
	for _, t := range sum.GetResponse() {
		_ = cw.Write([]string{"response_by_tier", tierName(t.GetTier()), num(t.GetConversations()), num(t.GetResponded()), sec(t.GetMedianSeconds()), sec(t.GetP90Seconds()),
			num(t.GetGreat()), num(t.GetOkay()), num(t.GetLate()), num(t.GetBreached()), num(t.GetResolution().GetClosed()), sec(t.GetResolution().GetMedianSeconds()), ""})
	}
	for _, g := range []struct {
		name string
		gs   []*triagev1.GroupResponseStats
	}{{"response_by_person", sum.GetByPerson()}, {"response_by_category", sum.GetByCategoryResponse()}} {
		for _, x := range g.gs {
			_ = cw.Write([]string{g.name, x.GetKey(), num(x.GetConversations()), num(x.GetResponded()), sec(x.GetMedianSeconds()), sec(x.GetP90Seconds()),
				num(x.GetGreat()), num(x.GetOkay()), num(x.GetLate()), num(x.GetBreached()), num(x.GetResolution().GetClosed()), sec(x.GetResolution().GetMedianSeconds()), ""})
		}
	}
	cw.Flush()
}

// seconds shows a duration in seconds the short way (12m, 3h 5m).
func seconds(v float64) string {
	if v <= 0 {
		return "—"
	}
	return shortDuration(time.Duration(v * float64(time.Second)))
}

// share shows a fraction as a percentage.
func share(v float64) string { return strconv.FormatFloat(v*100, 'f', 0, 64) + "%" }
