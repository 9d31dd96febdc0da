package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
)

// ContactChannels are the channels a contact rule may name: the ways of
// reaching one person. Webhooks copy every message and are nobody's
// contact method.
var ContactChannels = []string{"slack", "email", "pagerduty", "console"}

// MaxContactRules bounds one person's rules.
const MaxContactRules = 10

// parseContactRules reads `escalation.contact_rules`: a mapping from person
// id to that person's rules, each {channel, after, urgency}. Every problem
// is reported, with the person and the line.
func parseContactRules(node *yaml.Node, cfg *Config) error {
	if node.Kind == 0 || (node.Kind == yaml.ScalarNode && node.Tag == "!!null") {
		return nil
	}
	if node.Kind != yaml.MappingNode {
		return fmt.Errorf("escalation: contact_rules (line %d): want a mapping of person id to a list of rules", node.Line)
	}
	cfg.ContactRules = map[string][]notify.ContactRule{}
	cfg.ContactRuleLines = map[string]int{}
	var errs []error
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, v := node.Content[i], node.Content[i+1]
		person := strings.TrimSpace(k.Value)
		at := fmt.Sprintf("escalation: contact_rules: %s (line %d)", person, k.Line)
		if person == "" {
			errs = append(errs, fmt.Errorf("escalation: contact_rules (line %d): empty person id", k.Line))
			continue
		}
		if line, dup := cfg.ContactRuleLines[person]; dup {
			errs = append(errs, fmt.Errorf("%s: rules already given on line %d", at, line))
			continue
		}
		cfg.ContactRuleLines[person] = k.Line
		rules, err := parsePersonRules(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", at, err))
			continue
		}
		cfg.ContactRules[person] = rules
	}
	return errors.Join(errs...)
}

func parsePersonRules(node *yaml.Node) ([]notify.ContactRule, error) {
	if node.Kind != yaml.SequenceNode || len(node.Content) == 0 {
		return nil, fmt.Errorf("line %d: want a list of rules, as in [{channel: slack}, {channel: email, after: 5m}]", node.Line)
	}
	if len(node.Content) > MaxContactRules {
		return nil, fmt.Errorf("%d rules: at most %d", len(node.Content), MaxContactRules)
	}
	var out []notify.ContactRule
	var errs []error
	for i, n := range node.Content {
		r, err := parseContactRule(n)
		if err != nil {
			errs = append(errs, fmt.Errorf("rule %d: %w", i+1, err))
			continue
		}
		if j := slices.Index(out, r); j >= 0 {
			errs = append(errs, fmt.Errorf("rule %d: the same as rule %d (%s)", i+1, j+1, r))
			continue
		}
		out = append(out, r)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func parseContactRule(n *yaml.Node) (notify.ContactRule, error) {
	if err := checkKeys(n, contactRuleKeys); err != nil {
		return notify.ContactRule{}, err
	}
	var ry struct {
		Channel string `yaml:"channel"`
		After   string `yaml:"after"`
		Urgency string `yaml:"urgency"`
	}
	if err := n.Decode(&ry); err != nil {
		return notify.ContactRule{}, fmt.Errorf("line %d: %w", n.Line, err)
	}
	r := notify.ContactRule{Channel: strings.ToLower(strings.TrimSpace(ry.Channel))}
	switch {
	case r.Channel == "":
		return r, fmt.Errorf("line %d: missing channel (want %s)", n.Line, strings.Join(ContactChannels, ", "))
	case !slices.Contains(ContactChannels, r.Channel):
		return r, fmt.Errorf("line %d: unknown channel %q (want %s)", n.Line, ry.Channel, strings.Join(ContactChannels, ", "))
	}
	if s := strings.TrimSpace(ry.After); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return r, fmt.Errorf("line %d: after %q is not a duration (0s, 5m, 1h)", n.Line, ry.After)
		}
		r.After = d
	}
	switch strings.TrimSpace(ry.Urgency) {
	case "":
	case "ping":
		r.Urgency = notify.Ping
	case "page":
		r.Urgency = notify.Page
	default:
		return r, fmt.Errorf("line %d: unknown urgency %q (want ping or page; leave it out for both)", n.Line, ry.Urgency)
	}
	return r, nil
}
