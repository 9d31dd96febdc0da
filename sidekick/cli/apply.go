package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
)

func (r *root) applyCmd() *cobra.Command {
	var (
		file   string
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "apply -f sidekick.yaml [--dry-run]",
		Short: "Apply the organisation configuration (people, rotations, teams, overrides, policies)",
		Long: `Apply the organisation YAML idempotently: people, teams, rotations,
overrides and holidays, and the notifier's and triage's sections
(escalation policies and contact rules, business contacts, response
policies, triage settings). --dry-run prints the diff of every section and
changes nothing. '-f -' reads standard input. Applying the same file twice
changes nothing the second time.

Rotation checks the whole file before it stores anything: its own
sections, and the notifier's and triage's as those services read them
(unknown fields, targets, durations and tiers, and people or teams the file
does not have), each error with its line; with any error nothing is
applied. An applied file is a new version: the notifier and triage load
their sections from it within seconds, without a restart
(docs/rotation.md, "Configuration as code").`,
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
			cc, err := r.dial()
			if err != nil {
				return err
			}
			defer cc.Close()
			ctx, cancel := r.call(cmd.Context())
			defer cancel()
			resp, err := rotationv1.NewRotationServiceClient(cc).ApplyConfig(ctx, &rotationv1.ApplyConfigRequest{Config: data, DryRun: dryRun})
			if status.Code(err) == codes.InvalidArgument {
				return fmt.Errorf("%s: nothing applied: %s", file, status.Convert(err).Message())
			}
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
				fmt.Fprintf(r.io.Stdout, "applied %d change(s): version %.12s\n", len(resp.GetChanges()), resp.GetVersion())
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "organisation YAML file, or - for standard input")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the diff without applying")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}
