package devstack

import (
	"github.com/sidekickhq/sidekick/platform/app"
	ingestemail "github.com/sidekickhq/sidekick/services/ingest-email"
	ingestgithub "github.com/sidekickhq/sidekick/services/ingest-github"
	ingestsentry "github.com/sidekickhq/sidekick/services/ingest-sentry"
	ingestslack "github.com/sidekickhq/sidekick/services/ingest-slack"
	"github.com/sidekickhq/sidekick/services/notifier"
	"github.com/sidekickhq/sidekick/services/rotation"
	"github.com/sidekickhq/sidekick/services/triage"
	"github.com/sidekickhq/sidekick/sidekick/console"
)

// All is every Sidekick service in start order: rotation first, since the
// others ask it who is on call.
func All() []app.Spec {
	return []app.Spec{
		rotation.Spec(), triage.Spec(), notifier.Spec(),
		ingestslack.Spec(), ingestemail.Spec(), ingestgithub.Spec(), ingestsentry.Spec(),
		console.LiveSpec(),
	}
}
