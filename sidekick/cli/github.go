package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sidekickhq/sidekick/sidekick/internal/githubredeliver"
)

func (r *root) githubCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "github",
		Short: "GitHub intake tools",
	}
	var (
		since     string
		repo, org string
		hookID    int64
		dryRun    bool
	)
	redeliver := &cobra.Command{
		Use:   "redeliver --since DURATION (--repo owner/name | --org O) --hook-id N [--dry-run]",
		Short: "Ask GitHub to redeliver the webhook deliveries that failed",
		Long: `GitHub never retries a failed webhook delivery. After an outage of
ingest-github (or of NATS behind it), this asks GitHub to redeliver every
delivery of the last --since whose attempts all failed. Redeliveries keep
their X-GitHub-Delivery id, so anything that did get through is dropped as a
duplicate: redelivering too much is harmless.

--since is a duration such as 90m, 6h or 3d (GitHub keeps three days; default
3d). Name the hook with --repo owner/name or --org O, and --hook-id (the
number at the end of the webhook's settings URL). --dry-run lists what would
be redelivered.

The token comes from SIDEKICK_GITHUB_TOKEN (admin on the repository, or owner
of the organization); the API from SIDEKICK_GITHUB_API_URL (default
https://api.github.com; GitHub Enterprise: https://HOST/api/v3). One line is
printed per failed delivery, then a summary; refused redeliveries make the
exit status non-zero.`,
		Example: `  SIDEKICK_GITHUB_TOKEN=ghp_... sidekick github redeliver --since 6h --repo acme/main --hook-id 109948940
  sidekick github redeliver --since 1d --org acme --hook-id 4242 --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			window, err := parseSince(since)
			if err != nil {
				return err
			}
			opts := githubredeliver.Options{Org: org, HookID: hookID, Since: window, DryRun: dryRun}
			if repo != "" {
				owner, name, ok := strings.Cut(repo, "/")
				if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
					return fmt.Errorf("--repo %q: want owner/name", repo)
				}
				opts.Owner, opts.Repo = owner, name
			}
			if hookID <= 0 {
				return errors.New("--hook-id is required: the number at the end of the webhook's settings URL")
			}
			env := r.opEnv()
			if env.GitHubToken == "" {
				return errors.New("SIDEKICK_GITHUB_TOKEN is not set: a token with admin rights on the repository (or owner of the organization) is required")
			}
			opts.Token, opts.BaseURL = env.GitHubToken, env.GitHubAPIURL
			res, err := githubredeliver.Redeliver(cmd.Context(), opts, r.io.Stdout)
			if err != nil {
				return fmt.Errorf("github redeliver: %d of %d refused: %w", res.Errors, res.Failed, err)
			}
			return nil
		},
	}
	f := redeliver.Flags()
	f.StringVar(&since, "since", "3d", "how far back to look: 90m, 6h, 3d")
	f.StringVar(&repo, "repo", "", "repository of the hook: owner/name")
	f.StringVar(&org, "org", "", "organization of the hook")
	f.Int64Var(&hookID, "hook-id", 0, "the hook's id (required)")
	f.BoolVar(&dryRun, "dry-run", false, "list what would be redelivered, without asking")
	redeliver.MarkFlagsOneRequired("repo", "org")
	redeliver.MarkFlagsMutuallyExclusive("repo", "org")
	cmd.AddCommand(redeliver)
	return cmd
}

// parseSince reads a Go duration, also accepting whole days ("3d").
func parseSince(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err == nil && n > 0 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--since %q: want a positive duration such as 90m, 6h or 3d", s)
	}
	return d, nil
}
