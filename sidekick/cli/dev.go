package cli

import (
	"github.com/spf13/cobra"

	"github.com/sidekickhq/sidekick/sidekick/devstack"
)

func (r *root) devCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "dev",
		Short: "Run the whole system in one process (what `make run` does)",
		Long: `Run every Sidekick service in one process with an embedded NATS JetStream
server, a throwaway PostgreSQL cluster started from the local server binaries
(or SIDEKICK_DATABASE_URL), and the demo organisation. What would be sent to
Slack or email is printed here instead.

Addresses and secrets have dev defaults and are taken from the environment
when set: SIDEKICK_HTTP_ADDR (127.0.0.1:8080), SIDEKICK_GRPC_ADDR
(127.0.0.1:9090), SIDEKICK_SMTP_ADDR (127.0.0.1:2525), SIDEKICK_NATS_ADDR
(127.0.0.1:4222), SIDEKICK_DATA_DIR (.sidekick), SIDEKICK_ORG_CONFIG (the demo
organisation), SIDEKICK_SLACK_SIGNING_SECRET, SIDEKICK_GITHUB_WEBHOOK_SECRET,
SIDEKICK_SENTRY_CLIENT_SECRET, SIDEKICK_EMAIL_INBOUND_TOKEN. Ctrl-C stops
everything, the database server included.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return devstack.Run(cmd.Context(), devstack.Options{
				Environ:  r.io.Environ,
				Services: devstack.All(),
				Console:  r.io.Stdout,
			}, func(s *devstack.Stack) { devstack.Banner(r.io.Stdout, s) })
		},
	}
}
