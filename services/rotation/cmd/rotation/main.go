// Command rotation runs Sidekick's rotation service. It is configured by
// SIDEKICK_* environment variables (see docs/configuration.md); the argument
// `migrate` applies the database migrations and exits, `version` prints
// the build.
package main

import (
	"context"
	"os"

	"github.com/sidekickhq/sidekick/platform/app"
	"github.com/sidekickhq/sidekick/platform/run"
	"github.com/sidekickhq/sidekick/services/rotation"
)

func main() {
	run.Main(func(ctx context.Context) error {
		return app.Main(ctx, app.Spec{Name: "rotation", Schema: rotation.Schema, Migrations: rotation.Migrations(), GRPC: true, Org: true, Config: &rotation.Config{}}, os.Args[1:], os.Environ(), rotation.FromKit)
	})
}
