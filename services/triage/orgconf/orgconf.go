// Package orgconf reads triage's sections of the organisation file
// (`policies` and `triage`). It is its own package, outside internal/, so
// that rotation's ApplyConfig checks these sections exactly as triage
// reads them (Check) without linking the rest of triage, and so triage
// reads a version applied through rotation the same way it reads the file
// on disk at start.
package orgconf

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sidekickhq/sidekick/platform/orgfile"
	"github.com/sidekickhq/sidekick/services/triage/internal/classify"
	"github.com/sidekickhq/sidekick/services/triage/internal/worktime"
)

// Org is what triage reads from the organisation file
// (SIDEKICK_ORG_CONFIG): its `triage:` section and the response policies
// of its `policies:` list. Other sections belong to other services and are
// ignored. For example:
//
//	policies:                           # shared with other services
//	  - {tier: priority, first_response: 10m, okay: 30m, too_late: 4h, coverage: always}
//	triage:
//	  response_policy:                  # per tier; left out: the defaults
//	    community: {too_late: 16h}
//	  business_team: partnerships       # team of marketing/partnership proposals
//	  category_rules:                   # added to the built-in rules
//	    - {category: billing, weight: 3, channels: ["slack:C0BILLING"]}
//	    - {category: plugins, weight: 3, sentry_projects: [plugin-server]}
//	  classifier:                       # tuning; `categories` here replaces the built-in rules
//	    model_threshold: 0.6
//	    spam: {threshold: 0.85}
//
// The `triage:` section is strict (an unknown key is an error naming its
// line); `policies:` entries may carry keys for other services.
type Org struct {
	// Policy holds per-tier thresholds from the file; zero durations keep
	// the environment's defaults.
	Policy worktime.Policy
	// Rules are the category rules (nil: the built-in ones).
	Rules *classify.Rules
	// BusinessTeam overrides SIDEKICK_TRIAGE_BUSINESS_TEAM when set.
	BusinessTeam string
}

type triageSection struct {
	ResponsePolicy worktime.Policy `yaml:"response_policy"`
	BusinessTeam   string          `yaml:"business_team"`
	CategoryRules  []classify.Rule `yaml:"category_rules"`
	Classifier     *classify.Rules `yaml:"classifier"`
}

type policyEntry struct {
	Tier          string        `yaml:"tier"`
	FirstResponse time.Duration `yaml:"first_response"`
	Great         time.Duration `yaml:"great"`
	Okay          time.Duration `yaml:"okay"`
	TooLate       time.Duration `yaml:"too_late"`
	// Coverage: duty, roster or always (see worktime.Coverage).
	Coverage string `yaml:"coverage"`
}

// Parse reads triage's settings from the bytes of an organisation file.
func Parse(data []byte) (Org, error) {
	f, err := orgfile.Parse(data)
	if err != nil {
		return Org{}, err
	}
	return From(f)
}

// Check reads triage's sections as From does and checks that the team
// they name (business_team) is one of the file's teams; errors name the
// line. It is what rotation runs on every file it is asked to apply.
func Check(f *orgfile.File) error {
	org, err := From(f)
	if err != nil {
		return err
	}
	if org.BusinessTeam == "" {
		return nil
	}
	teams := f.Section("teams")
	if teams != nil {
		for _, t := range teams.Content {
			for j := 0; j+1 < len(t.Content); j += 2 {
				if t.Content[j].Value == "id" && t.Content[j+1].Value == org.BusinessTeam {
					return nil
				}
			}
		}
	}
	line := 0
	if n := f.Section("triage"); n != nil {
		line = n.Line
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == "business_team" {
				line = n.Content[j].Line
			}
		}
	}
	return fmt.Errorf("organisation file: triage: line %d: business_team: unknown team %q", line, org.BusinessTeam)
}

// From reads triage's settings from its sections of the organisation
// file (`policies` and `triage`); a nil file gives the defaults.
func From(f *orgfile.File) (Org, error) {
	var org Org
	if n := f.Section("policies"); n != nil {
		if err := parsePolicies(n, &org.Policy); err != nil {
			return org, err
		}
	}
	var sec *triageSection
	if f.Section("triage") != nil {
		s, err := decodeTriage(f.Data)
		if err != nil {
			return org, fmt.Errorf("organisation file: triage: %w", err)
		}
		sec = s
	}
	if sec == nil {
		return org, nil
	}
	org.Policy = Overlay(org.Policy, sec.ResponsePolicy)
	org.BusinessTeam = strings.TrimSpace(sec.BusinessTeam)
	if sec.Classifier != nil || len(sec.CategoryRules) > 0 {
		rules := classify.DefaultRules()
		if sec.Classifier != nil {
			r := *sec.Classifier
			if len(r.Categories) == 0 {
				r.Categories = rules.Categories
			}
			if len(r.Spam.Phrases) == 0 {
				r.Spam.Phrases = rules.Spam.Phrases
			}
			rules = r
		}
		rules.Categories = append(rules.Categories, sec.CategoryRules...)
		if _, err := rules.WithDefaults().Compile(); err != nil {
			return org, fmt.Errorf("organisation file: triage: category rules: %w", err)
		}
		org.Rules = &rules
	}
	return org, nil
}

// decodeTriage decodes the triage section of a whole file, refusing
// unknown keys. It decodes the file's own bytes rather than the section's
// node, so the line of an unknown key is the file's (the other sections
// are read by their services and pass here unread).
func decodeTriage(data []byte) (*triageSection, error) {
	var out struct {
		Triage *triageSection `yaml:"triage"`
		Rest   map[string]any `yaml:",inline"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&out); err != nil {
		return nil, err
	}
	return out.Triage, nil
}

// parsePolicies reads the response thresholds of `policies:` entries
// ({tier, first_response | great, okay, too_late}); first_response is the
// great threshold. Entries without a tier or thresholds are left to other
// services.
func parsePolicies(node *yaml.Node, p *worktime.Policy) error {
	if node.Kind != yaml.SequenceNode {
		return fmt.Errorf("organisation file: policies: line %d: want a list", node.Line)
	}
	for _, n := range node.Content {
		var e policyEntry
		if err := n.Decode(&e); err != nil {
			return fmt.Errorf("organisation file: policies: line %d: %w", n.Line, err)
		}
		if e.Tier == "" {
			continue
		}
		cov, err := worktime.ParseCoverage(e.Coverage)
		if err != nil {
			return fmt.Errorf("organisation file: policies: line %d: %w", n.Line, err)
		}
		th := worktime.Thresholds{Great: e.Great, Okay: e.Okay, TooLate: e.TooLate, Coverage: cov}
		if e.FirstResponse != 0 {
			if e.Great != 0 && e.Great != e.FirstResponse {
				return fmt.Errorf("organisation file: policies: line %d: first_response %s and great %s disagree", n.Line, e.FirstResponse, e.Great)
			}
			th.Great = e.FirstResponse
		}
		switch strings.ToLower(strings.TrimSpace(e.Tier)) {
		case "priority":
			p.Priority = overlayThresholds(p.Priority, th)
		case "subscriber":
			p.Subscriber = overlayThresholds(p.Subscriber, th)
		case "community":
			p.Community = overlayThresholds(p.Community, th)
		case "all", "*":
			p.Priority = overlayThresholds(p.Priority, th)
			p.Subscriber = overlayThresholds(p.Subscriber, th)
			p.Community = overlayThresholds(p.Community, th)
		default:
			err = fmt.Errorf("organisation file: policies: line %d: unknown tier %q (want priority, subscriber, community or all)", n.Line, e.Tier)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func overlayThresholds(base, top worktime.Thresholds) worktime.Thresholds {
	if top.Great != 0 {
		base.Great = top.Great
	}
	if top.Okay != 0 {
		base.Okay = top.Okay
	}
	if top.TooLate != 0 {
		base.TooLate = top.TooLate
	}
	if top.Coverage != "" {
		base.Coverage = top.Coverage
	}
	return base
}

// Overlay sets the thresholds top has over base's, tier by tier.
func Overlay(base, top worktime.Policy) worktime.Policy {
	return worktime.Policy{
		Priority:   overlayThresholds(base.Priority, top.Priority),
		Subscriber: overlayThresholds(base.Subscriber, top.Subscriber),
		Community:  overlayThresholds(base.Community, top.Community),
	}
}
