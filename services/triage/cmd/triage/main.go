// Command triage runs Sidekick's triage service. It is configured by
// SIDEKICK_* environment variables (see docs/configuration.md); the argument
// `migrate` applies the database migrations and exits, `version` prints
// the build.
package main

import (
	"context"
	"os"

	"github.com/sidekickhq/sidekick/platform/app"
	"github.com/sidekickhq/sidekick/platform/run"
	"github.com/sidekickhq/sidekick/services/triage"
)

func main() {
	run.Main(func(ctx context.Context) error {
		return app.Main(ctx, triage.Spec(), os.Args[1:], os.Environ())
	})
}
