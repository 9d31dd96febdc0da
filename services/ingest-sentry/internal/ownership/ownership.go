// Package ownership maps a Sentry project (and optionally event tags) to
// the team that owns it, so a Sentry conversation is routed to that team's
// secondary on-call.
//
// Rules come from SIDEKICK_SENTRY_OWNERSHIP, such as
//
//	frontend=core-experience,api=platform,api[component=billing]=core-analytics
//
// (tags inside brackets, ';'-separated), and from the `sentry.ownership`
// section of the organisation file:
//
//	sentry:
//	  ownership:
//	    - {project: frontend, team: core-experience}
//	    - {project: api, tags: {component: billing}, team: core-analytics}
//	    - {project: "*", team: platform}
//
// or, without tags, a mapping {frontend: core-experience, api: platform}.
// A rule naming the project beats a "*" rule; among those, the one
// matching the most tags wins; among equals, the first listed (environment
// rules before file rules).
package ownership

import (
	"errors"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/sidekickhq/sidekick/platform/orgfile"
)

// Rule assigns Team to events of Project whose tags include Tags.
type Rule struct {
	Project string            `yaml:"project"`
	Tags    map[string]string `yaml:"tags"`
	Team    string            `yaml:"team"`
}

// Rules is an ordered list of rules.
type Rules []Rule

// Team returns the team owning an event of project with tags, or "".
func (rs Rules) Team(project string, tags map[string]string) string {
	best, bestTags := "", -1
	for _, r := range rs {
		if r.Project != "*" && !strings.EqualFold(r.Project, project) {
			continue
		}
		ok := true
		for k, v := range r.Tags {
			if tags[k] != v {
				ok = false
				break
			}
		}
		n := len(r.Tags)
		if r.Project != "*" {
			n += 1 << 20 // a named project beats any wildcard rule
		}
		if ok && n > bestTags {
			best, bestTags = r.Team, n
		}
	}
	return best
}

// ParseEnv reads the SIDEKICK_SENTRY_OWNERSHIP form.
func ParseEnv(s string) (Rules, error) {
	var rs Rules
	for _, item := range splitTop(s) {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		i := strings.LastIndex(item, "=")
		if i < 0 || strings.LastIndex(item, "]") > i {
			return nil, fmt.Errorf("ownership rule %q: want project[tag=value;…]=team", item)
		}
		lhs, team := strings.TrimSpace(item[:i]), strings.TrimSpace(item[i+1:])
		r := Rule{Project: lhs, Team: team}
		if open := strings.Index(lhs, "["); open >= 0 {
			if !strings.HasSuffix(lhs, "]") {
				return nil, fmt.Errorf("ownership rule %q: unclosed '['", item)
			}
			r.Project = strings.TrimSpace(lhs[:open])
			r.Tags = map[string]string{}
			for _, kv := range strings.Split(lhs[open+1:len(lhs)-1], ";") {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || strings.TrimSpace(k) == "" {
					return nil, fmt.Errorf("ownership rule %q: tag %q is not key=value", item, kv)
				}
				r.Tags[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		}
		if err := r.check(); err != nil {
			return nil, fmt.Errorf("ownership rule %q: %w", item, err)
		}
		rs = append(rs, r)
	}
	return rs, nil
}

// ParseOrgFile reads the sentry.ownership section of the organisation
// file; other sections are ignored and a file without it has no rules.
func ParseOrgFile(data []byte) (Rules, error) {
	f, err := orgfile.Parse(data)
	if err != nil {
		return nil, err
	}
	return FromSection(f.Section("sentry"))
}

// FromSection reads the ownership rules of the organisation file's
// `sentry` section; nil has no rules.
func FromSection(sentry *yaml.Node) (Rules, error) {
	if sentry == nil {
		return nil, nil
	}
	var doc struct {
		Ownership yaml.Node `yaml:"ownership"`
	}
	if err := sentry.Decode(&doc); err != nil {
		return nil, fmt.Errorf("organisation file: sentry: %w", err)
	}
	n := &doc.Ownership
	var rs Rules
	switch n.Kind {
	case 0:
		return nil, nil
	case yaml.MappingNode:
		var m yaml.Node = *n
		for i := 0; i+1 < len(m.Content); i += 2 {
			rs = append(rs, Rule{Project: m.Content[i].Value, Team: m.Content[i+1].Value})
		}
	case yaml.SequenceNode:
		if err := n.Decode(&rs); err != nil {
			return nil, fmt.Errorf("organisation file: sentry.ownership: %w", err)
		}
	default:
		return nil, errors.New("organisation file: sentry.ownership must be a list of rules or a project: team mapping")
	}
	for i, r := range rs {
		if err := r.check(); err != nil {
			return nil, fmt.Errorf("organisation file: sentry.ownership[%d]: %w", i, err)
		}
	}
	return rs, nil
}

func (r Rule) check() error {
	switch {
	case r.Project == "":
		return errors.New("no project")
	case r.Team == "":
		return errors.New("no team")
	case strings.ContainsAny(r.Project, reserved) || strings.ContainsAny(r.Team, reserved):
		return fmt.Errorf("project and team may not contain any of %q or spaces", reserved)
	}
	return nil
}

// reserved are the characters of the rule syntax and whitespace.
const reserved = ",;=[] \t\r\n"

// splitTop splits s at commas outside brackets.
func splitTop(s string) []string {
	if strings.Count(s, "[") != strings.Count(s, "]") {
		return []string{s} // unbalanced: one item, rejected by the parser
	}
	var out []string
	depth, start := 0, 0
	for i, c := range s {
		switch c {
		case '[':
			depth++
		case ']':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}
