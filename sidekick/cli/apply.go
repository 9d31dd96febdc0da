package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/sidekickhq/sidekick/platform/orgfile"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	"github.com/sidekickhq/sidekick/services/notifier"
	"github.com/sidekickhq/sidekick/services/triage"
)

func (r *root) applyCmd() *cobra.Command {
	var (
		file   string
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "apply -f sidekick.yaml [--dry-run]",
		Short: "Apply the organisation configuration (people, rotations, teams, overrides)",
		Long: `Apply the organisation YAML idempotently. --dry-run prints the diff and
changes nothing. '-f -' reads standard input. Applying the same file twice
changes nothing the second time.

The whole file is checked before anything is sent: rotation's sections by
rotation, and here the notifier's (escalation, business_contacts: unknown
fields, targets, durations, and people or teams the file does not have)
and triage's (policies, triage), each error with its line; with any error
nothing is applied.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var data []byte
			var err error
			if file == "-" {
				data, err = io.ReadAll(r.io.Stdin)
			} else {
				data, err = os.ReadFile(file)
			}
			if err != nil {
				return fmt.Errorf("read %s: %w", file, err)
			}
			if err := checkOrg(data); err != nil {
				return fmt.Errorf("%s: nothing applied: %w", file, err)
			}
			cc, err := r.dial()
			if err != nil {
				return err
			}
			defer cc.Close()
			ctx, cancel := r.call(cmd.Context())
			defer cancel()
			resp, err := rotationv1.NewRotationServiceClient(cc).ApplyConfig(ctx, &rotationv1.ApplyConfigRequest{Config: data, DryRun: dryRun})
			if err != nil {
				return fmt.Errorf("apply: %w", err)
			}
			if len(resp.GetChanges()) == 0 {
				fmt.Fprintln(r.io.Stdout, "no changes")
				return nil
			}
			for _, c := range resp.GetChanges() {
				fmt.Fprintln(r.io.Stdout, c)
			}
			if dryRun {
				fmt.Fprintf(r.io.Stdout, "dry run: %d change(s) not applied\n", len(resp.GetChanges()))
			} else {
				fmt.Fprintf(r.io.Stdout, "applied %d change(s)\n", len(resp.GetChanges()))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "organisation YAML file, or - for standard input")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the diff without applying")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

// checkOrg checks the sections other services than rotation read, as they
// read them, so a typo there is refused with its line before anything is
// applied instead of surfacing at the next restart of that service.
func checkOrg(data []byte) error {
	f, err := orgfile.Parse(data)
	if err != nil {
		return err
	}
	if err := notifier.CheckOrg(f); err != nil {
		return err
	}
	if _, err := triage.OrgFrom(f); err != nil {
		return err
	}
	return nil
}
