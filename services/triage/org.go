package triage

import (
	"bytes"
	"errors"
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

// ParseOrg reads triage's settings from the bytes of an organisation file.
func ParseOrg(data []byte) (Org, error) {
	f, err := orgfile.Parse(data)
	if err != nil {
		return Org{}, err
	}
	return OrgFrom(f)
}

// OrgFrom reads triage's settings from its sections of the organisation
// file (`policies` and `triage`); a nil file gives the defaults.
func OrgFrom(f *orgfile.File) (Org, error) {
	var org Org
	if n := f.Section("policies"); n != nil {
		if err := parsePolicies(n, &org.Policy); err != nil {
			return org, err
		}
	}
	var sec *triageSection
	if n := f.Section("triage"); n != nil {
		s, err := decodeStrict[triageSection](n)
		if err != nil {
			return org, fmt.Errorf("organisation file: triage: %w", err)
		}
		sec = &s
	}
	if sec == nil {
		return org, nil
	}
	org.Policy = overlay(org.Policy, sec.ResponsePolicy)
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

// decodeStrict decodes node into a T, refusing unknown keys.
func decodeStrict[T any](node *yaml.Node) (T, error) {
	var out T
	raw, err := yaml.Marshal(node)
	if err != nil {
		return out, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&out); err != nil {
		return out, fmt.Errorf("line %d: %w", node.Line, err)
	}
	return out, nil
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

func overlay(base, top worktime.Policy) worktime.Policy {
	return worktime.Policy{
		Priority:   overlayThresholds(base.Priority, top.Priority),
		Subscriber: overlayThresholds(base.Subscriber, top.Subscriber),
		Community:  overlayThresholds(base.Community, top.Community),
	}
}

// policy combines the environment's thresholds (every tier) with the
// organisation file's per-tier ones and checks the result.
func (c Config) policy() (worktime.Policy, error) {
	cov, err := worktime.ParseCoverage(c.Coverage)
	if err != nil {
		return worktime.Policy{}, fmt.Errorf("triage: SIDEKICK_TRIAGE_COVERAGE: %w", err)
	}
	d := worktime.Thresholds{Great: c.ResponseGreat, Okay: c.ResponseOkay, TooLate: c.ResponseTooLate, Coverage: cov}
	p := overlay(worktime.Policy{Priority: d, Subscriber: d, Community: d}, c.Org.Policy).WithDefaults()
	if err := p.Validate(); err != nil {
		return p, errors.Join(errors.New("triage: response policy (SIDEKICK_TRIAGE_RESPONSE_GREAT, SIDEKICK_TRIAGE_RESPONSE_OKAY, SIDEKICK_TRIAGE_RESPONSE_TOO_LATE, SIDEKICK_TRIAGE_COVERAGE, organisation file)"), err)
	}
	return p, nil
}
