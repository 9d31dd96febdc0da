package cli

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
)

// defaultReportSpan is the report range when --from is not given.
const defaultReportSpan = 7 * 24 * time.Hour

func (r *root) reportCmd() *cobra.Command {
	var (
		asJSON, asCSV bool
		from, to      string
	)
	cmd := &cobra.Command{
		Use:   "report [--from T] [--to T] [--json | --csv]",
		Short: "Conversations per category, tier and channel; first response and resolution times",
		Long: `Summarise the conversations opened in [--from, --to): how many per category,
tier and channel, and per tier the first response time in working time (mean,
median, p90) with the share of decided conversations answered great (under 15
minutes), okay (15 minutes to 1 hour), late (1 hour to one working day) and
breached (answered later, or not answered and past one working day: counted
whether or not answered). Then the same first response figures per person
(who answered first; unanswered conversations under their assignee) and per
category, the resolution time (opening to close, wall time) per tier, and
how often the suggested categories matched what people confirmed.

--to defaults to now and --from to seven days before --to. Times are RFC 3339
(2026-02-02T09:00:00+01:00) or "2026-02-02 09:00" / "2026-02-02" in UTC.
--json prints the SummaryResponse as protobuf JSON (shares as fractions,
times in seconds; by_day counts each UTC day's conversations by channel,
category and tier, the console's per-day charts). --csv prints one table for spreadsheets: a row per tier,
person and category (section tier, person, category) with the first response
and resolution figures in seconds, then a row per count (section
conversations_by_category, _by_tier, _by_channel).`,
		Example: `  sidekick report
  sidekick report --from 2026-01-01 --to 2026-02-01
  sidekick report --from 2026-01-01 --to 2026-02-01 --json | jq '.response[] | {tier, p90_seconds}'
  sidekick report --from 2026-01-01 --to 2026-02-01 --csv > january.csv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			end := time.Now()
			if to != "" {
				t, err := parseTime(to)
				if err != nil {
					return fmt.Errorf("--to: %w", err)
				}
				end = t
			}
			start := end.Add(-defaultReportSpan)
			if from != "" {
				t, err := parseTime(from)
				if err != nil {
					return fmt.Errorf("--from: %w", err)
				}
				start = t
			}
			if !end.After(start) {
				return errors.New("--to must be after --from")
			}
			req := &triagev1.SummaryRequest{From: timestamppb.New(start), To: timestamppb.New(end)}
			var resp *triagev1.SummaryResponse
			err := r.rpc(cmd.Context(), "report", func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
				resp, err = triagev1.NewReportServiceClient(cc).Summary(ctx, req)
				return err
			})
			if err != nil {
				return err
			}
			switch {
			case asJSON:
				return writeJSON(r.io.Stdout, protoJSON(resp))
			case asCSV:
				return writeReportCSV(r.io.Stdout, resp)
			}
			return r.printReport(req, resp)
		},
	}
	cmd.AddCommand(r.reportClassifierCmd())
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "start of the range (default: seven days before --to)")
	f.StringVar(&to, "to", "", "end of the range, exclusive (default: now)")
	f.BoolVar(&asJSON, "json", false, "print protobuf JSON")
	f.BoolVar(&asCSV, "csv", false, "print CSV")
	cmd.MarkFlagsMutuallyExclusive("json", "csv")
	return cmd
}

func (r *root) printReport(req *triagev1.SummaryRequest, resp *triagev1.SummaryResponse) error {
	loc := r.location()
	w := r.io.Stdout
	fmt.Fprintf(w, "Conversations opened %s to %s\n", fmtTime(req.GetFrom(), loc), fmtTime(req.GetTo(), loc))
	// enumKey renders "TIER_PRIORITY" or "priority" alike as "priority".
	enumKey := func(prefix string) func(string) string {
		return func(k string) string { return short(dash(k), prefix) }
	}
	counts := func(title string, key func(string) string, cs []*triagev1.Count) error {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "%s\tCONVERSATIONS\n", title)
		for _, c := range cs {
			fmt.Fprintf(tw, "%s\t%d\n", key(c.GetKey()), c.GetCount())
		}
		if len(cs) == 0 {
			fmt.Fprintf(tw, "(none)\t0\n")
		}
		return tw.Flush()
	}
	if err := counts("CATEGORY", dash, resp.GetByCategory()); err != nil {
		return err
	}
	if err := counts("TIER", enumKey("TIER_"), resp.GetByTier()); err != nil {
		return err
	}
	if err := counts("CHANNEL", enumKey("CHANNEL_"), resp.GetByChannel()); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nFirst response, in working time")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIER\tCONVERSATIONS\tRESPONDED\tMEAN\tMEDIAN\tP90\tGREAT\tOKAY\tLATE\tBREACHED")
	for _, s := range resp.GetResponse() {
		mean, median, p90 := times(s.GetResponded(), s.GetMeanSeconds(), s.GetMedianSeconds(), s.GetP90Seconds())
		// Shares are of the decided conversations, answered or not, so a
		// tier whose only conversation breached unanswered shows it.
		great, okay, late, breached := "-", "-", "-", "0"
		if d := s.GetDecided(); d > 0 {
			great, okay, late = percent(s.GetGreatShare()), percent(s.GetOkayShare()), percent(s.GetLateShare())
			breached = fmt.Sprintf("%d (%s)", s.GetBreached(), percent(s.GetBreachedShare()))
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", short(s.GetTier().String(), "TIER_"),
			s.GetConversations(), s.GetResponded(), mean, median, p90, great, okay, late, breached)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	groups := func(title, column string, key func(string) string, gs []*triagev1.GroupResponseStats) error {
		if len(gs) == 0 {
			return nil
		}
		fmt.Fprintf(w, "\n%s\n", title)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "%s\tCONVERSATIONS\tRESPONDED\tMEAN\tMEDIAN\tP90\tGREAT\tOKAY\tLATE\tBREACHED\n", column)
		for _, g := range gs {
			mean, median, p90 := times(g.GetResponded(), g.GetMeanSeconds(), g.GetMedianSeconds(), g.GetP90Seconds())
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\n", key(g.GetKey()), g.GetConversations(), g.GetResponded(),
				mean, median, p90, g.GetGreat(), g.GetOkay(), g.GetLate(), g.GetBreached())
		}
		return tw.Flush()
	}
	person := func(k string) string {
		if k == "" {
			return "(nobody)"
		}
		return k
	}
	if err := groups("First response by person (who answered first; unanswered by assignee)", "PERSON", person, resp.GetByPerson()); err != nil {
		return err
	}
	if err := groups("First response by category", "CATEGORY", dash, resp.GetByCategoryResponse()); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nResolution, opening to close in wall time (spam left out)")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIER\tCLOSED\tMEAN\tMEDIAN\tP90")
	for _, s := range resp.GetResponse() {
		res := s.GetResolution()
		mean, median, p90 := times(res.GetClosed(), res.GetMeanSeconds(), res.GetMedianSeconds(), res.GetP90Seconds())
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", short(s.GetTier().String(), "TIER_"), res.GetClosed(), mean, median, p90)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if al := resp.GetAlerts(); al.GetOpened() > 0 {
		// Alerts (Sentry issues) are the teams' secondaries': measured by
		// time to acknowledge and resolve, left out of everything above.
		fmt.Fprintf(w, "\nAlerts (Sentry issues, left out above): %d opened, %d occurrences\n", al.GetOpened(), al.GetOccurrences())
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME TO\tCOUNT\tMEAN\tMEDIAN\tP90")
		mean, median, p90 := times(al.GetAcknowledged(), al.GetAcknowledgeMeanSeconds(), al.GetAcknowledgeMedianSeconds(), al.GetAcknowledgeP90Seconds())
		fmt.Fprintf(tw, "acknowledge\t%d\t%s\t%s\t%s\n", al.GetAcknowledged(), mean, median, p90)
		res := al.GetResolution()
		mean, median, p90 = times(res.GetClosed(), res.GetMeanSeconds(), res.GetMedianSeconds(), res.GetP90Seconds())
		fmt.Fprintf(tw, "resolve\t%d\t%s\t%s\t%s\n", res.GetClosed(), mean, median, p90)
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if a := resp.GetAgreement(); a.GetPairs() > 0 {
		fmt.Fprintf(w, "\nCategory suggestions against what people confirmed (%d conversations): %s\n",
			a.GetPairs(), agreementLine(a.GetExact(), a.GetOverlapping(), a.GetNone()))
	}
	return nil
}

func percent(share float64) string { return fmt.Sprintf("%.0f%%", share*100) }

// times renders mean, median and p90 seconds, or dashes when n is zero.
func times(n int64, mean, median, p90 float64) (string, string, string) {
	if n == 0 {
		return "-", "-", "-"
	}
	return fmtSeconds(mean), fmtSeconds(median), fmtSeconds(p90)
}

// writeReportCSV writes the summary as one CSV table (see the command's
// help): times in seconds, counts as integers, empty cells where a figure
// is undefined (no response, nothing closed).
func writeReportCSV(out io.Writer, resp *triagev1.SummaryResponse) error {
	w := csv.NewWriter(out)
	_ = w.Write([]string{"section", "key", "conversations", "responded", "mean_seconds", "median_seconds", "p90_seconds",
		"great", "okay", "late", "breached", "closed", "resolution_mean_seconds", "resolution_median_seconds", "resolution_p90_seconds"})
	secs := func(n int64, v float64) string {
		if n == 0 {
			return ""
		}
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	num := func(n int64) string { return strconv.FormatInt(n, 10) }
	row := func(section, key string, conversations, responded int64, mean, median, p90 float64, great, okay, late, breached int64, res *triagev1.Resolution) {
		_ = w.Write([]string{section, key, num(conversations), num(responded),
			secs(responded, mean), secs(responded, median), secs(responded, p90),
			num(great), num(okay), num(late), num(breached), num(res.GetClosed()),
			secs(res.GetClosed(), res.GetMeanSeconds()), secs(res.GetClosed(), res.GetMedianSeconds()), secs(res.GetClosed(), res.GetP90Seconds())})
	}
	for _, s := range resp.GetResponse() {
		row("tier", short(s.GetTier().String(), "TIER_"), s.GetConversations(), s.GetResponded(), s.GetMeanSeconds(), s.GetMedianSeconds(), s.GetP90Seconds(),
			s.GetGreat(), s.GetOkay(), s.GetLate(), s.GetBreached(), s.GetResolution())
	}
	for _, sg := range []struct {
		section string
		groups  []*triagev1.GroupResponseStats
	}{{"person", resp.GetByPerson()}, {"category", resp.GetByCategoryResponse()}} {
		for _, g := range sg.groups {
			row(sg.section, g.GetKey(), g.GetConversations(), g.GetResponded(), g.GetMeanSeconds(), g.GetMedianSeconds(), g.GetP90Seconds(),
				g.GetGreat(), g.GetOkay(), g.GetLate(), g.GetBreached(), g.GetResolution())
		}
	}
	if al := resp.GetAlerts(); al.GetOpened() > 0 {
		// Time to acknowledge in the response columns, to resolve in the
		// resolution ones; the occurrences in "great" would mislead, so
		// they have a row of their own.
		row("alerts", "", al.GetOpened(), al.GetAcknowledged(), al.GetAcknowledgeMeanSeconds(), al.GetAcknowledgeMedianSeconds(),
			al.GetAcknowledgeP90Seconds(), 0, 0, 0, 0, al.GetResolution())
		_ = w.Write([]string{"alert_occurrences", "", num(al.GetOccurrences()), "", "", "", "", "", "", "", "", "", "", "", ""})
	}
	for _, sc := range []struct {
		section string
		prefix  string
		counts  []*triagev1.Count
	}{{"conversations_by_category", "", resp.GetByCategory()}, {"conversations_by_tier", "TIER_", resp.GetByTier()}, {"conversations_by_channel", "CHANNEL_", resp.GetByChannel()}} {
		for _, c := range sc.counts {
			key := c.GetKey()
			if sc.prefix != "" {
				key = strings.ToLower(strings.TrimPrefix(key, sc.prefix))
			}
			_ = w.Write([]string{sc.section, key, num(c.GetCount()), "", "", "", "", "", "", "", "", "", "", "", ""})
		}
	}
	w.Flush()
	return w.Error()
}
