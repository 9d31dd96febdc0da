package cli

import (
	"github.com/spf13/cobra"

	"github.com/sidekickhq/sidekick/platform/app"
	"github.com/sidekickhq/sidekick/platform/config"
	"github.com/sidekickhq/sidekick/sidekick/console"
)

func (r *root) consoleCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "console",
		Short: "Serve the web console (queue, conversations, who is on call) on its own",
		Long: `Serve the web console at /console on SIDEKICK_HTTP_ADDR (:8080), reading
conversations from triage (SIDEKICK_TRIAGE_ADDR) and the schedule from
rotation (SIDEKICK_ROTATION_ADDR) over gRPC with SIDEKICK_GRPC_TOKEN.
'sidekick dev' already serves it; this runs it as its own process, with the
usual /healthz, /readyz and /metrics.

People sign in with their organisation's OpenID Connect provider
(SIDEKICK_CONSOLE_OIDC_ISSUER, _CLIENT_ID, _CLIENT_SECRET, _REDIRECT_URL),
matched to the organisation file by email, or with SIDEKICK_CONSOLE_TOKEN and
their name; one of them is required unless SIDEKICK_DEV=true. Either way the
person is recorded as the actor of what they do; behind an
authenticating proxy, SIDEKICK_CONSOLE_TRUST_PROXY_USER=true records the
proxy's X-Forwarded-User instead.

With SIDEKICK_CONSOLE_LIVE=true it also connects to NATS (SIDEKICK_NATS_URL,
with its credentials as for the services) and subscribes to triage's
conversation events, so that the queue and conversation pages open in
browsers update as conversations change. See docs/console.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Refuse a bad configuration before connecting to anything.
			var cfg console.Config
			if err := config.Load(&cfg, r.io.Environ); err != nil {
				return err
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			spec := console.Spec()
			if cfg.Live {
				spec = console.LiveSpec()
			}
			return app.MainIO(cmd.Context(), spec, nil, r.io.Environ, r.io.Stdout)
		},
	}
}
