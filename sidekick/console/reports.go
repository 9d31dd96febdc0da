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

// reportsData is the reports page.
type reportsData struct {
	From, To                    string
	S                           *triagev1.SummaryResponse
	Channels, Tiers, Categories []bar
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
	sum, err := s.deps.Reports.Summary(ctx, &triagev1.SummaryRequest{From: timestamppb.New(from), To: timestamppb.New(to)})
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
		CSV:        BasePath + "/reports?format=csv&from=" + fromDay + "&to=" + toDay,
	}
	s.render(w, r, http.StatusOK, "reports", v, d)
}

// writeReportCSV writes the report's tables, one row per figure group:
// section, key, then the numbers.
func writeReportCSV(w http.ResponseWriter, sum *triagev1.SummaryResponse) {
	cw := csv.NewWriter(w)
	sec := func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }
	num := func(n int64) string { return strconv.FormatInt(n, 10) }
	_ = cw.Write([]string{"section", "key", "conversations", "responded", "median_first_response_s", "p90_first_response_s", "great", "okay", "late", "breached", "closed", "median_resolution_s"})
	for _, sec2 := range []struct {
		name string
		cs   []*triagev1.Count
	}{{"channel", sum.GetByChannel()}, {"tier", sum.GetByTier()}, {"category", sum.GetByCategory()}} {
		for _, c := range sec2.cs {
			_ = cw.Write([]string{sec2.name, c.GetKey(), num(c.GetCount()), "", "", "", "", "", "", "", "", ""})
		}
	}
	for _, t := range sum.GetResponse() {
		_ = cw.Write([]string{"response_by_tier", tierName(t.GetTier()), num(t.GetConversations()), num(t.GetResponded()), sec(t.GetMedianSeconds()), sec(t.GetP90Seconds()),
			num(t.GetGreat()), num(t.GetOkay()), num(t.GetLate()), num(t.GetBreached()), num(t.GetResolution().GetClosed()), sec(t.GetResolution().GetMedianSeconds())})
	}
	for _, g := range []struct {
		name string
		gs   []*triagev1.GroupResponseStats
	}{{"response_by_person", sum.GetByPerson()}, {"response_by_category", sum.GetByCategoryResponse()}} {
		for _, x := range g.gs {
			_ = cw.Write([]string{g.name, x.GetKey(), num(x.GetConversations()), num(x.GetResponded()), sec(x.GetMedianSeconds()), sec(x.GetP90Seconds()),
				num(x.GetGreat()), num(x.GetOkay()), num(x.GetLate()), num(x.GetBreached()), num(x.GetResolution().GetClosed()), sec(x.GetResolution().GetMedianSeconds())})
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
