package cli

import (
	"context"
	"errors"
	"fmt"
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
		asJSON   bool
		from, to string
	)
	cmd := &cobra.Command{
		Use:   "report [--from T] [--to T] [--json]",
		Short: "Conversations per category, tier and channel; first response times per tier",
		Long: `Summarise the conversations opened in [--from, --to): how many per category,
tier and channel, and per tier the first response time in working time (mean,
median, p90) with the share answered great (under 15 minutes), okay (15
minutes to 1 hour) and late (1 hour to one working day); the rest breached.
Last, how often the suggested categories matched what people confirmed.

--to defaults to now and --from to seven days before --to. Times are RFC 3339
(2026-02-02T09:00:00+01:00) or "2026-02-02 09:00" / "2026-02-02" in UTC.
--json prints the SummaryResponse as protobuf JSON (shares as fractions,
times in seconds).`,
		Example: `  sidekick report
  sidekick report --from 2026-01-01 --to 2026-02-01
  sidekick report --from 2026-01-01 --to 2026-02-01 --json | jq '.response[] | {tier, p90_seconds}'`,
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
			if asJSON {
				return writeJSON(r.io.Stdout, protoJSON(resp))
			}
			return r.printReport(req, resp)
		},
	}
	cmd.AddCommand(r.reportClassifierCmd())
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "start of the range (default: seven days before --to)")
	f.StringVar(&to, "to", "", "end of the range, exclusive (default: now)")
	f.BoolVar(&asJSON, "json", false, "print protobuf JSON")
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
	fmt.Fprintln(tw, "TIER\tCONVERSATIONS\tRESPONDED\tMEAN\tMEDIAN\tP90\tGREAT\tOKAY\tLATE")
	for _, s := range resp.GetResponse() {
		mean, median, p90, great, okay, late := "-", "-", "-", "-", "-", "-"
		if s.GetResponded() > 0 {
			mean, median, p90 = fmtSeconds(s.GetMeanSeconds()), fmtSeconds(s.GetMedianSeconds()), fmtSeconds(s.GetP90Seconds())
			great, okay, late = percent(s.GetGreatShare()), percent(s.GetOkayShare()), percent(s.GetLateShare())
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", short(s.GetTier().String(), "TIER_"),
			s.GetConversations(), s.GetResponded(), mean, median, p90, great, okay, late)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if a := resp.GetAgreement(); a.GetPairs() > 0 {
		fmt.Fprintf(w, "\nCategory suggestions against what people confirmed (%d conversations): %s\n",
			a.GetPairs(), agreementLine(a.GetExact(), a.GetOverlapping(), a.GetNone()))
	}
	return nil
}

func percent(share float64) string { return fmt.Sprintf("%.0f%%", share*100) }
