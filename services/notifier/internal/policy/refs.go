package policy

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/sidekickhq/sidekick/platform/orgfile"
)

// CheckReferences reports what cfg's policies name that the organisation
// file does not have: a policy matching an unknown team, a step or a
// digest notifying an unknown person, contact rules of an unknown person. Errors name the policy, its line and
// the step, as FromFile's do. The built-in defaults name nobody.
func CheckReferences(cfg *Config, f *orgfile.File, people, teams map[string]bool) error {
	lines := policyLines(f)
	var errs []error
	for _, p := range cfg.Policies {
		line, ok := lines[p.ID]
		if !ok {
			continue // a built-in default
		}
		at := fmt.Sprintf("escalation: policy %q (line %d)", p.ID, line)
		if p.Match.Team != "" && !teams[p.Match.Team] {
			errs = append(errs, fmt.Errorf("%s: match: unknown team %q", at, p.Match.Team))
		}
		for i, st := range p.Steps {
			if st.Notify.Kind == Person && !people[st.Notify.Name] {
				errs = append(errs, fmt.Errorf("%s: step %d: notify: unknown person %q", at, i+1, st.Notify.Name))
			}
		}
		if d := p.Digest; d != nil && d.To.Kind == Person && !people[d.To.Name] {
			errs = append(errs, fmt.Errorf("%s: digest: to: unknown person %q", at, d.To.Name))
		}
	}
	persons := slices.SortedFunc(maps.Keys(cfg.ContactRuleLines), func(a, b string) int {
		return cfg.ContactRuleLines[a] - cfg.ContactRuleLines[b]
	})
	for _, person := range persons {
		if !people[person] {
			errs = append(errs, fmt.Errorf("escalation: contact_rules: line %d: unknown person %q", cfg.ContactRuleLines[person], person))
		}
	}
	return errors.Join(errs...)
}

// policyLines maps the id of each policy of the file's escalation section
// to its line.
func policyLines(f *orgfile.File) map[string]int {
	out := map[string]int{}
	esc := f.Section("escalation")
	if esc == nil || esc.Kind != yaml.MappingNode {
		return out
	}
	for i := 0; i+1 < len(esc.Content); i += 2 {
		if esc.Content[i].Value != "policies" {
			continue
		}
		for _, p := range esc.Content[i+1].Content {
			for j := 0; j+1 < len(p.Content); j += 2 {
				if p.Content[j].Value == "id" {
					out[p.Content[j+1].Value] = p.Line
				}
			}
		}
	}
	return out
}
