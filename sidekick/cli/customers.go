package cli

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
)

// maxImportBytes keeps one import under gRPC's default 4 MiB message limit.
const maxImportBytes = 4<<20 - 64<<10

func (r *root) customersCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "customers",
		Aliases: []string{"customer"},
		Short:   "Import and look up the customer directory behind tiers",
		Long: `The customer directory (plan, monthly revenue, in-sales-process flag, email
domains, Slack ids, GitHub logins, Sentry users) decides each conversation's
tier. Import it from CSV or JSON (a weekly export from Stripe and HubSpot,
say) with 'customers import'; look one customer up with 'customers show'.`,
	}
	cmd.AddCommand(r.customersImportCmd(), r.customersShowCmd())
	return cmd
}

func (r *root) customersImportCmd() *cobra.Command {
	var (
		dryRun, asJSON bool
		format         string
	)
	cmd := &cobra.Command{
		Use:   "import FILE.csv|FILE.json [--dry-run]",
		Short: "Create or update customers from a CSV or JSON file; prints the diff",
		Long: `Create or update the customers listed in FILE (customers not listed are left
alone), then re-tier every open conversation. Prints one line per change;
--dry-run prints the same lines and changes nothing.

CSV: a header line naming the columns, in any order (only id is required):
  id,name,organisation,plan,monthly_revenue,in_sales_process,email_domains,slack_user_ids,github_logins,sentry_users
monthly_revenue is in dollars ("499", "1234.50", "$1,234.50"), in_sales_process
is true or false, and the last four columns are ';'-separated lists.

JSON: an array of objects with the same fields; lists as arrays of strings,
monthly_revenue as a number or a string (or monthly_revenue_cents, as
'customers show --json' prints it).

The format follows the extension (.csv, .json), or --format; FILE "-" reads
standard input. Every bad row is reported with its line number and nothing is
sent until the file is clean.`,
		Example: `  sidekick customers import customers.csv --dry-run
  sidekick customers import customers.csv
  curl -s https://crm.internal/export.json | sidekick customers import - --format json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			data, err := r.readInput(name)
			if err != nil {
				return err
			}
			f, err := customerFormat(name, format, data)
			if err != nil {
				return err
			}
			customers, err := parseCustomers(f, data)
			var bad rowErrors
			if errors.As(err, &bad) {
				return fmt.Errorf("%s: %d bad row(s), nothing imported:\n%w", displayName(name), len(bad), err)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", displayName(name), err)
			}
			req := &triagev1.UpsertCustomersRequest{Customers: customers, DryRun: dryRun}
			if n := proto.Size(req); n > maxImportBytes {
				return fmt.Errorf("%s: %d customers make a %d-byte request, over the 4 MiB gRPC limit: split the file", displayName(name), len(customers), n)
			}
			var resp *triagev1.UpsertCustomersResponse
			err = r.rpc(cmd.Context(), "import customers", func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
				resp, err = triagev1.NewCustomerServiceClient(cc).UpsertCustomers(ctx, req)
				return err
			})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(r.io.Stdout, protoJSON(resp))
			}
			w := r.io.Stdout
			for _, c := range resp.GetChanges() {
				fmt.Fprintln(w, c)
			}
			switch n := len(resp.GetChanges()); {
			case n == 0:
				_, err = fmt.Fprintf(w, "no changes (%s read)\n", plural(len(customers), "customer"))
			case dryRun || !resp.GetApplied():
				_, err = fmt.Fprintf(w, "dry run: %d change(s) among %s, nothing applied\n", n, plural(len(customers), "customer"))
			default:
				_, err = fmt.Fprintf(w, "applied %d change(s) among %s\n", n, plural(len(customers), "customer"))
			}
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVar(&dryRun, "dry-run", false, "print the changes without applying them")
	f.StringVar(&format, "format", "", "csv or json (default: from the file extension)")
	f.BoolVar(&asJSON, "json", false, "print the response (changes, applied) as protobuf JSON")
	return cmd
}

// plural renders "1 customer" or "2 customers".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func displayName(name string) string {
	if name == "-" {
		return "standard input"
	}
	return name
}

func (r *root) customersShowCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show a customer with its tier and why",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var resp *triagev1.GetCustomerResponse
			err := r.rpc(cmd.Context(), "get customer "+args[0], func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
				resp, err = triagev1.NewCustomerServiceClient(cc).GetCustomer(ctx, &triagev1.GetCustomerRequest{Id: args[0]})
				return err
			})
			if err != nil {
				return err
			}
			c := resp.GetCustomer()
			if asJSON {
				return writeJSON(r.io.Stdout, protoJSON(c))
			}
			tw := tabwriter.NewWriter(r.io.Stdout, 0, 4, 2, ' ', 0)
			row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
			row("ID", c.GetId())
			row("Name", dash(c.GetName()))
			row("Organisation", dash(c.GetOrganisation()))
			row("Plan", dash(c.GetPlan()))
			row("Monthly revenue", fmtDollars(c.GetMonthlyRevenueCents()))
			row("In sales process", fmt.Sprint(c.GetInSalesProcess()))
			tier := short(c.GetTier().String(), "TIER_")
			if c.GetTierReason() != "" {
				tier += " (" + c.GetTierReason() + ")"
			}
			row("Tier", tier)
			row("Email domains", joinOr(c.GetEmailDomains()))
			row("Slack users", joinOr(c.GetSlackUserIds()))
			row("GitHub logins", joinOr(c.GetGithubLogins()))
			row("Sentry users", joinOr(c.GetSentryUsers()))
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print protobuf JSON")
	return cmd
}
