package devstack

import (
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
func All() []Component {
	return []Component{
		{Name: "rotation", Schema: rotation.Schema, Migrations: rotation.Migrations(), Build: rotation.FromKit},
		{Name: "triage", Schema: triage.Schema, Migrations: triage.Migrations(), Build: triage.FromKit},
		{Name: "notifier", Schema: notifier.Schema, Migrations: notifier.Migrations(), Build: notifier.FromKit},
		{Name: "ingest-slack", Build: ingestslack.FromKit},
		{Name: "ingest-email", Build: ingestemail.FromKit},
		{Name: "ingest-github", Build: ingestgithub.FromKit},
		{Name: "ingest-sentry", Build: ingestsentry.FromKit},
		{Name: "console", Build: console.FromKit},
	}
}
