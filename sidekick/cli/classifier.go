package cli

import (
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sidekickhq/sidekick/services/triage"
)

func (r *root) reportClassifierCmd() *cobra.Command {
	var (
		asJSON bool
		org    string
	)
	cmd := &cobra.Command{
		Use:   "classifier [--org FILE] [--json]",
		Short: "Precision and recall of the category classifier per category",
		Long: `Measure the category classifier on the labelled evaluation set built into
Sidekick (realistic support messages for every category of the taxonomy):
six-fold cross-validation, in which the learned model is taught the other
folds' labels as it is taught the categories people confirm. Per category:
the messages labelled with it first (SUPPORT), suggested it first
(SUGGESTED), both (CORRECT), precision, recall and F1; then macro-F1 and how
the suggestions agreed with the labels (exact, overlapping, none).

--org reads the classification rules of an organisation file (its triage:
category_rules and classifier sections); without it, the built-in rules.
This runs locally and needs no running Sidekick.`,
		Example: `  sidekick report classifier
  sidekick report classifier --org sidekick.yaml --json | jq .macro_f1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cfg triage.Org
			if org != "" {
				data, err := os.ReadFile(org)
				if err != nil {
					return fmt.Errorf("--org: %w", err)
				}
				if cfg, err = triage.ParseOrg(data); err != nil {
					return fmt.Errorf("--org %s: %w", org, err)
				}
			}
			rep, err := triage.EvaluateClassifier(cfg)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(r.io.Stdout, rep)
			}
			return r.printClassifierReport(rep)
		},
	}
	cmd.Flags().StringVar(&org, "org", "", "organisation file whose classification rules to measure (default: the built-in rules)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (r *root) printClassifierReport(rep *triage.ClassifierReport) error {
	w := r.io.Stdout
	fmt.Fprintf(w, "Category classifier on %d labelled messages, %d-fold cross-validation\n\n", rep.Examples, rep.Folds)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CATEGORY\tSUPPORT\tSUGGESTED\tCORRECT\tPRECISION\tRECALL\tF1")
	// A share with nothing to divide by is "-", not a zero that reads as
	// a measured failure.
	frac := func(v float64, of int) string {
		if of == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", v)
	}
	for _, c := range rep.Categories {
		f1 := frac(c.F1, c.Support)
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%s\n", c.Category, c.Support, c.Suggested, c.Correct,
			frac(c.Precision, c.Suggested), frac(c.Recall, c.Support), f1)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nMacro-F1 %.3f over the categories with labelled messages\n", rep.MacroF1)
	fmt.Fprintf(w, "Suggestions: %s, nothing suggested for %d (counted as other)\n",
		agreementLine(int64(rep.Exact), int64(rep.Overlapping), int64(rep.None)), rep.Unsuggested)
	return nil
}

// agreementLine reads "3 exact (60%), 1 overlapping (20%), 1 none (20%)":
// each pair is one of the three, so the shares add up to 100%.
func agreementLine(exact, overlapping, none int64) string {
	n := exact + overlapping + none
	share := func(k int64) string {
		if n == 0 {
			return "-"
		}
		return percent(float64(k) / float64(n))
	}
	return fmt.Sprintf("%d exact (%s), %d overlapping (%s), %d none (%s)", exact, share(exact), overlapping, share(overlapping), none, share(none))
}
