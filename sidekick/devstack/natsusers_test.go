package devstack

import (
	"slices"
	"testing"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/natsauth"
	ingestsentry "github.com/sidekickhq/sidekick/services/ingest-sentry"
	"github.com/sidekickhq/sidekick/services/notifier"
	"github.com/sidekickhq/sidekick/services/triage"
)

// TestNATSUsersNameTheServicesConsumers: the permissions of natsauth name
// durable consumers by their names; a service renaming one would be
// refused its own consumer in production, and natsauth's tests (which use
// natsauth's names) would not notice. Here the services' own names meet
// natsauth's.
func TestNATSUsersNameTheServicesConsumers(t *testing.T) {
	want := map[string][]natsauth.Consumer{
		"triage": {
			{Stream: bus.StreamInbound, Durable: triage.DurableInbound, Filter: bus.AllInbound},
			{Stream: bus.StreamRotation, Durable: triage.DurableRotation},
			{Stream: bus.StreamActions, Durable: triage.DurableActions},
			{Stream: bus.StreamNotify, Durable: triage.DurableAcks, Filter: bus.NotifySubject("acked")},
		},
		"notifier": {
			{Stream: bus.StreamConversations, Durable: notifier.DurableConversations, Filter: bus.AllConversations},
			{Stream: bus.StreamActions, Durable: notifier.DurableActions},
			{Stream: bus.StreamRotation, Durable: notifier.DurableRotation},
		},
		"ingest-sentry": {
			{Stream: ingestsentry.OccurrenceStream, Durable: ingestsentry.CoalescerDurable},
		},
	}
	for _, spec := range All() {
		if spec.NoBus {
			continue
		}
		u, ok := natsauth.Lookup(spec.Name)
		if !ok {
			t.Errorf("%s uses NATS and has no NATS user in natsauth", spec.Name)
			continue
		}
		for _, c := range want[spec.Name] {
			if !slices.Contains(u.Consumers, c) {
				t.Errorf("%s: consumer %+v is not among natsauth's %+v", spec.Name, c, u.Consumers)
			}
		}
	}
}
