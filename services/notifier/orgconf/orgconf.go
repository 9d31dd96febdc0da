// Package orgconf checks the notifier's sections of the organisation file
// (escalation, business_contacts) exactly as the notifier reads them. It
// is its own package, outside internal/, so that rotation's ApplyConfig
// refuses what the notifier would refuse without linking the notifier.
package orgconf

import (
	"fmt"

	"github.com/sidekickhq/sidekick/platform/orgfile"
	"github.com/sidekickhq/sidekick/services/notifier/internal/policy"
)

// Check checks the notifier's sections of an organisation file
// (escalation, business_contacts) as the notifier reads them, and that
// every person and team they name is one of the file's: what rotation runs
// on every file it is asked to apply. Errors name the policy and the line.
func Check(f *orgfile.File) error {
	cfg, err := policy.FromFile(f)
	if err != nil {
		return err
	}
	people, err := sectionIDs(f, "people")
	if err != nil {
		return err
	}
	teams, err := sectionIDs(f, "teams")
	if err != nil {
		return err
	}
	return policy.CheckReferences(cfg, f, people, teams)
}

// sectionIDs are the ids of a section's items ("people", "teams").
func sectionIDs(f *orgfile.File, section string) (map[string]bool, error) {
	out := map[string]bool{}
	n := f.Section(section)
	if n == nil {
		return out, nil
	}
	var items []struct {
		ID string `yaml:"id"`
	}
	if err := n.Decode(&items); err != nil {
		return nil, fmt.Errorf("%s: %w", section, err)
	}
	for _, it := range items {
		out[it.ID] = true
	}
	return out, nil
}
