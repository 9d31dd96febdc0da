package cli

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
)

func (r *root) overridesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "overrides",
		Short: "List and delete overrides and swaps",
		Long: `Overrides are objects: list them (the organisation file's and those made
with 'sidekick override' or 'sidekick swap'), and delete one by id. A swap's
two sides go together: delete either side's id or the swap id.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(r.overridesListCmd(), r.overridesDeleteCmd())
	return cmd
}

func (r *root) overridesListCmd() *cobra.Command {
	var (
		asJSON             bool
		rotation, from, to string
	)
	cmd := &cobra.Command{
		Use:   "list [--rotation R] [--from T] [--to T]",
		Short: "List the overrides overlapping a range, by start",
		Long: `List the overrides of a rotation (default: every rotation) overlapping
[--from, --to): --from defaults to now and --to to four weeks after --from.
FROM says where an override lives: "file" (change it in the organisation
file) or "api" (delete it with 'sidekick overrides delete ID').
--json prints one protobuf JSON Override per line.

` + rotationTimeHelp + `
Without --rotation, a time without a zone is UTC.`,
		Example: `  sidekick overrides list --rotation hero
  sidekick overrides list --from "2026-03-01" --to "2026-04-01"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			times, err := r.listTimes(cmd.Context(), rotation, from, to)
			if err != nil {
				return err
			}
			req := &rotationv1.ListOverridesRequest{Rotation: rotation, From: times[0], To: times[1]}
			var resp *rotationv1.ListOverridesResponse
			err = r.rpc(cmd.Context(), "list overrides", func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
				resp, err = rotationv1.NewRotationServiceClient(cc).ListOverrides(ctx, req)
				return err
			})
			if err != nil {
				return err
			}
			if asJSON {
				for _, o := range resp.GetOverrides() {
					if err := writeJSONLine(r.io.Stdout, protoJSON(o)); err != nil {
						return err
					}
				}
				return nil
			}
			if len(resp.GetOverrides()) == 0 {
				_, err := fmt.Fprintln(r.io.Stdout, "no overrides in that range")
				return err
			}
			loc := r.location()
			tw := tabwriter.NewWriter(r.io.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tROTATION\tSTART\tEND\tWHAT\tSWAP\tFROM\tNOTE")
			for _, o := range resp.GetOverrides() {
				where := "api"
				if o.GetFromFile() {
					where = "file"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", o.GetId(), o.GetRotationId(), fmtTime(o.GetStart(), loc), fmtTime(o.GetEnd(), loc),
					overrideWhat(o), dash(o.GetSwapId()), where, o.GetNote())
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&rotation, "rotation", "", "rotation id (default: every rotation)")
	f.StringVar(&from, "from", "", "start of the range (default now)")
	f.StringVar(&to, "to", "", "end of the range (default four weeks after --from)")
	f.BoolVar(&asJSON, "json", false, "one protobuf JSON override per line")
	return cmd
}

// listTimes reads --from and --to in the rotation's zone, or in UTC
// without a rotation.
func (r *root) listTimes(ctx context.Context, rotation, from, to string) ([]*timestamppb.Timestamp, error) {
	if rotation == "" {
		return timeFlags([2]string{"from", from}, [2]string{"to", to})
	}
	return r.rotationTimeFlags(ctx, rotation, [2]string{"from", from}, [2]string{"to", to})
}

func (r *root) overridesDeleteCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete an override, or both sides of a swap",
		Long: `Delete an override made with 'sidekick override' or 'sidekick swap' by its id.
A swap's two sides go together: give either side's id or the swap id. An
override of the organisation file is refused: remove it from the file and
apply it. Each deleted override is announced on
support.rotation.override_deleted.`,
		Example: `  sidekick overrides delete ovr-3f2a9c
  sidekick overrides delete swap-9dca1cfa1d01feb9`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var resp *rotationv1.DeleteOverrideResponse
			err := r.rpc(cmd.Context(), "delete override", func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
				resp, err = rotationv1.NewRotationServiceClient(cc).DeleteOverride(ctx, &rotationv1.DeleteOverrideRequest{Id: args[0]})
				return err
			})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(r.io.Stdout, protoJSON(resp))
			}
			for _, o := range resp.GetDeleted() {
				if _, err := fmt.Fprintln(r.io.Stdout, "deleted "+describeOverride(o, r.location())); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print what was deleted as protobuf JSON")
	return cmd
}
