// Command ingest-sentry runs Sidekick's ingest-sentry service. It is configured by
// SIDEKICK_* environment variables (see docs/configuration.md); the argument
// `migrate` applies the database migrations and exits, `version` prints
// the build.
package main

import (
	"context"
	"os"

	"github.com/sidekickhq/sidekick/platform/app"
	"github.com/sidekickhq/sidekick/platform/run"
	ingestsentry "github.com/sidekickhq/sidekick/services/ingest-sentry"
)

func main() {
	run.Main(func(ctx context.Context) error {
		return app.Main(ctx, ingestsentry.Spec(), os.Args[1:], os.Environ())
	})
}
