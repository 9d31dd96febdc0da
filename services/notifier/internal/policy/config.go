package policy

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sidekickhq/sidekick/platform/orgfile"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
)

// The YAML shapes. Values that need parsing stay strings here so that
// errors can name the policy and step they belong to.
type (
	policyYAML struct {
		ID          string      `yaml:"id"`
		Match       matchYAML   `yaml:"match"`
		Steps       []ruleYAML  `yaml:"steps"`
		Repeat      int         `yaml:"repeat"`
		RepeatAfter string      `yaml:"repeat_after"`
		Digest      *digestYAML `yaml:"digest"`
		AckTimeout  string      `yaml:"ack_timeout"`
	}
	matchYAML struct {
		Kind       string   `yaml:"kind"`
		Tier       string   `yaml:"tier"`
		Level      string   `yaml:"level"`
		Team       string   `yaml:"team"`
		Categories []string `yaml:"categories"`
	}
	ruleYAML struct {
		Notify string `yaml:"notify"`
		Via    string `yaml:"via"`
		After  string `yaml:"after"`
	}
	digestYAML struct {
		Every string `yaml:"every"`
		To    string `yaml:"to"`
	}
)

// The fields each mapping may have; anything else is an error naming its
// line, so a typo ("afer") cannot silently mean "at once".
var (
	escalationKeys  = []string{"policies", "defaults", "contact_rules"}
	policyKeys      = []string{"id", "match", "steps", "repeat", "repeat_after", "digest", "ack_timeout"}
	matchKeys       = []string{"kind", "tier", "level", "team", "categories"}
	ruleKeys        = []string{"notify", "via", "after"}
	digestKeys      = []string{"every", "to"}
	contactKeys     = []string{"name", "email", "slack"}
	contactRuleKeys = []string{"channel", "after", "urgency"}
)

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// Parse reads the escalation configuration from the organisation file:
// its `escalation` and `business_contacts` sections (other sections belong
// to other services and are ignored). Validation is strict: unknown
// fields, kinds, tiers, levels, targets, urgencies and durations are
// errors naming the policy, the step and the line. Your policies are tried
// first, in order; the built-in defaults (Default) follow, except those
// whose id you reuse, unless `escalation.defaults: false`. A file without
// an escalation section gets the defaults.
func Parse(data []byte) (*Config, error) {
	f, err := orgfile.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("escalation: %w", err)
	}
	return FromFile(f)
}

// FromFile is Parse on an organisation file already parsed; a nil file
// gets the defaults.
func FromFile(f *orgfile.File) (*Config, error) {
	cfg := &Config{}
	if n := f.Section("business_contacts"); n != nil {
		contacts, err := parseContacts(n)
		if err != nil {
			return nil, err
		}
		cfg.BusinessContacts = contacts
	}
	esc := f.Section("escalation")
	withDefaults := true
	var errs []error
	if esc != nil && esc.Kind != yaml.ScalarNode { // "escalation:" alone is null
		if err := checkKeys(esc, escalationKeys); err != nil {
			return nil, fmt.Errorf("escalation: %w", err)
		}
		var ey struct {
			Policies     []yaml.Node `yaml:"policies"`
			Defaults     *bool       `yaml:"defaults"`
			ContactRules yaml.Node   `yaml:"contact_rules"`
		}
		if err := esc.Decode(&ey); err != nil {
			return nil, fmt.Errorf("escalation: %w", err)
		}
		if ey.Defaults != nil {
			withDefaults = *ey.Defaults
		}
		if err := parseContactRules(&ey.ContactRules, cfg); err != nil {
			errs = append(errs, err)
		}
		seen := map[string]int{}
		for i := range ey.Policies {
			node := &ey.Policies[i]
			p, err := parsePolicy(node, cfg)
			if err != nil {
				errs = append(errs, fmt.Errorf("escalation: %s (line %d): %w", policyName(node, i), node.Line, err))
				continue
			}
			if line, dup := seen[p.ID]; dup {
				errs = append(errs, fmt.Errorf("escalation: policy %q (line %d): id already used on line %d", p.ID, node.Line, line))
				continue
			}
			seen[p.ID] = node.Line
			cfg.Policies = append(cfg.Policies, p)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if withDefaults {
		for _, d := range Default().Policies {
			if cfg.Policy(d.ID) == nil {
				cfg.Policies = append(cfg.Policies, d)
			}
		}
	}
	return cfg, nil
}

func policyName(node *yaml.Node, i int) string {
	if node.Kind == yaml.MappingNode {
		for j := 0; j+1 < len(node.Content); j += 2 {
			if node.Content[j].Value == "id" && node.Content[j+1].Value != "" {
				return fmt.Sprintf("policy %q", node.Content[j+1].Value)
			}
		}
	}
	return fmt.Sprintf("policy #%d", i+1)
}

func parsePolicy(node *yaml.Node, cfg *Config) (Policy, error) {
	if err := checkKeys(node, policyKeys); err != nil {
		return Policy{}, err
	}
	var py policyYAML
	if err := node.Decode(&py); err != nil {
		return Policy{}, err
	}
	if py.ID == "" {
		return Policy{}, errors.New("missing id")
	}
	if !idPattern.MatchString(py.ID) {
		return Policy{}, fmt.Errorf("id %q: use lower-case letters, digits, '-' and '_'", py.ID)
	}
	p := Policy{ID: py.ID, Repeat: py.Repeat}
	if err := checkKeys(child(node, "match"), matchKeys); err != nil {
		return Policy{}, fmt.Errorf("match: %w", err)
	}
	m, err := parseMatch(py.Match)
	if err != nil {
		return Policy{}, fmt.Errorf("match: %w", err)
	}
	p.Match = m

	switch {
	case py.Digest != nil && len(py.Steps) > 0:
		return Policy{}, errors.New("has both steps and a digest; use one")
	case py.Digest == nil && len(py.Steps) == 0:
		return Policy{}, errors.New("needs steps or a digest")
	case py.Digest != nil:
		if err := checkKeys(child(node, "digest"), digestKeys); err != nil {
			return Policy{}, fmt.Errorf("digest: %w", err)
		}
		every, err := time.ParseDuration(py.Digest.Every)
		if err != nil || every <= 0 {
			return Policy{}, fmt.Errorf("digest: every %q is not a positive duration", py.Digest.Every)
		}
		to, err := ParseTarget(py.Digest.To)
		if err != nil {
			return Policy{}, fmt.Errorf("digest: %w", err)
		}
		if err := checkTarget(to, m, cfg); err != nil {
			return Policy{}, fmt.Errorf("digest: %w", err)
		}
		if py.Repeat != 0 || py.RepeatAfter != "" {
			return Policy{}, errors.New("repeat applies to steps, not to a digest")
		}
		if py.AckTimeout != "" {
			return Policy{}, errors.New("ack_timeout applies to steps, not to a digest")
		}
		p.Digest = &Digest{Every: every, To: to}
		return p, nil
	}

	stepNodes := child(node, "steps")
	for i, ry := range py.Steps {
		if stepNodes != nil && i < len(stepNodes.Content) {
			if err := checkKeys(stepNodes.Content[i], ruleKeys); err != nil {
				return Policy{}, fmt.Errorf("step %d: %w", i+1, err)
			}
		}
		r, err := parseRule(ry, m, cfg)
		if err != nil {
			return Policy{}, fmt.Errorf("step %d: %w", i+1, err)
		}
		p.Steps = append(p.Steps, r)
	}
	if py.Repeat < 0 || py.Repeat > MaxRepeat {
		return Policy{}, fmt.Errorf("repeat %d: want 0 to %d", py.Repeat, MaxRepeat)
	}
	if py.RepeatAfter != "" {
		d, err := time.ParseDuration(py.RepeatAfter)
		if err != nil || d <= 0 {
			return Policy{}, fmt.Errorf("repeat_after %q is not a positive duration", py.RepeatAfter)
		}
		if py.Repeat == 0 {
			return Policy{}, errors.New("repeat_after without repeat")
		}
		p.RepeatAfter = d
	} else if py.Repeat > 0 {
		p.RepeatAfter = DefaultRepeatAfter
	}
	if py.AckTimeout != "" {
		d, err := time.ParseDuration(py.AckTimeout)
		switch {
		case err != nil || d <= 0:
			return Policy{}, fmt.Errorf("ack_timeout %q is not a positive duration", py.AckTimeout)
		case m.Kind.personal():
			return Policy{}, fmt.Errorf("ack_timeout: %s events have no conversation a staff reply could answer", m.Kind)
		}
		p.AckTimeout = d
	}
	return p, nil
}

func parseMatch(my matchYAML) (Match, error) {
	m := Match{Kind: Kind(my.Kind), Tier: Tier(my.Tier), Level: Level(my.Level), Team: my.Team}
	switch {
	case my.Kind == "":
		return Match{}, errors.New("missing kind")
	case !slices.Contains(kinds, m.Kind):
		return Match{}, fmt.Errorf("unknown kind %q (want %s)", my.Kind, join(kinds))
	case m.Tier != "" && !slices.Contains(tiers, m.Tier):
		return Match{}, fmt.Errorf("unknown tier %q (want %s)", my.Tier, join(tiers))
	case m.Level != "" && m.Kind != Deadline:
		return Match{}, fmt.Errorf("level is for kind %s only", Deadline)
	case m.Level != "" && !slices.Contains(levels, m.Level):
		return Match{}, fmt.Errorf("unknown level %q (want %s)", my.Level, join(levels))
	}
	for _, c := range my.Categories {
		if c = strings.TrimSpace(c); c == "" {
			return Match{}, errors.New("empty category")
		}
		m.Categories = append(m.Categories, c)
	}
	return m, nil
}

func parseRule(ry ruleYAML, m Match, cfg *Config) (Rule, error) {
	t, err := ParseTarget(ry.Notify)
	if err != nil {
		return Rule{}, fmt.Errorf("notify: %w", err)
	}
	if err := checkTarget(t, m, cfg); err != nil {
		return Rule{}, err
	}
	if ry.Via == "" {
		return Rule{}, errors.New("missing via (ping or page)")
	}
	u, err := ParseUrgency(ry.Via)
	if err != nil {
		return Rule{}, err
	}
	a, err := ParseAfter(ry.After)
	if err != nil {
		return Rule{}, err
	}
	if a.Deadline != "" && m.Kind != NewConversation && m.Kind != Deadline {
		return Rule{}, fmt.Errorf("after %s: %s events have no response deadlines", a, m.Kind)
	}
	return Rule{Notify: t, Via: u, After: a}, nil
}

func checkTarget(t Target, m Match, cfg *Config) error {
	if t.Kind == BusinessContacts && len(cfg.BusinessContacts) == 0 {
		return errors.New("notify business_contacts, but business_contacts is empty")
	}
	if t.Kind == TeamSecondary && m.Kind.personal() && m.Team == "" {
		return fmt.Errorf("%s events belong to no team; name the team in match or notify someone else", m.Kind)
	}
	return nil
}

func parseContacts(node *yaml.Node) ([]Contact, error) {
	if node.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("business_contacts: line %d: want a list", node.Line)
	}
	var out []Contact
	var errs []error
	for i, n := range node.Content {
		where := fmt.Sprintf("business_contacts[%d] (line %d)", i, n.Line)
		if err := checkKeys(n, contactKeys); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
			continue
		}
		var c Contact
		if err := n.Decode(&c); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
			continue
		}
		switch {
		case c.Name == "":
			errs = append(errs, fmt.Errorf("%s: missing name", where))
		case c.Email == "" && c.Slack == "":
			errs = append(errs, fmt.Errorf("%s: %s needs an email or a slack id", where, c.Name))
		case c.Email != "" && !strings.Contains(c.Email, "@"):
			errs = append(errs, fmt.Errorf("%s: email %q is not an address", where, c.Email))
		}
		out = append(out, c)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// checkKeys reports a key of mapping node that is not allowed. A nil node
// (the section is absent) is fine.
func checkKeys(node *yaml.Node, allowed []string) error {
	if node == nil || (node.Kind == yaml.ScalarNode && node.Tag == "!!null") {
		return nil
	}
	if node.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: want a mapping with %s", node.Line, strings.Join(allowed, ", "))
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		k := node.Content[i]
		if !slices.Contains(allowed, k.Value) {
			return fmt.Errorf("line %d: unknown field %q (want %s)", k.Line, k.Value, strings.Join(allowed, ", "))
		}
	}
	return nil
}

// child returns the value of key in mapping node, or nil.
func child(node *yaml.Node, key string) *yaml.Node {
	if node == nil || node.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		if node.Content[i].Value == key {
			return node.Content[i+1]
		}
	}
	return nil
}

func join[T ~string](xs []T) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = string(x)
	}
	return strings.Join(s, ", ")
}

// Default is the escalation configuration the handbook describes, used when
// the organisation file has no escalation section and after your own
// policies otherwise:
//
//   - business-proposals: marketing and partnership conversations ping the
//     business contacts, never an engineer;
//   - priority-new: a Priority conversation pings the hero at once and pages
//     them when the "okay" deadline passes;
//   - subscriber-new: a Subscriber conversation pings the hero at once;
//   - community-new: Community conversations go into a 4-hourly digest for
//     the hero instead of paging;
//   - new-conversation: a conversation of unknown tier pings the hero;
//   - community-breached: a Community conversation past "too late" pings
//     the team's secondary;
//   - deadline-breached: any other conversation past "too late" pages the
//     team's secondary and pings the hero;
//   - sentry-alert: Sentry alerts page the owning team's secondary;
//   - explicit-escalation: an escalation by hand pings the team's secondary
//     and pages them if nobody acknowledged within 15 minutes;
//   - handoff: the incoming hero gets the handoff summary;
//   - shift-reminder: whoever's shift starts soon is told;
//   - coverage-gap: the hero hears about a gap in coverage.
//
// Deadline events at the okay and late levels match no default policy: the
// priority-new plan already pages at the okay deadline.
func Default() *Config {
	ping := func(t TargetKind, after time.Duration) Rule {
		return Rule{Notify: Target{Kind: t}, Via: notify.Ping, After: After{Offset: after}}
	}
	page := func(t TargetKind, after time.Duration) Rule {
		return Rule{Notify: Target{Kind: t}, Via: notify.Page, After: After{Offset: after}}
	}
	return &Config{Policies: []Policy{
		{
			ID:    "business-proposals",
			Match: Match{Kind: NewConversation, Categories: []string{"business", "Marketing", "Partnership"}},
			Steps: []Rule{ping(BusinessContacts, 0)},
		},
		{
			ID:    "priority-new",
			Match: Match{Kind: NewConversation, Tier: Priority},
			Steps: []Rule{
				ping(Hero, 0),
				{Notify: Target{Kind: Hero}, Via: notify.Page, After: After{Deadline: OkayDeadline}},
			},
		},
		{
			ID:    "subscriber-new",
			Match: Match{Kind: NewConversation, Tier: Subscriber},
			Steps: []Rule{ping(Hero, 0)},
		},
		{
			ID:     "community-new",
			Match:  Match{Kind: NewConversation, Tier: Community},
			Digest: &Digest{Every: 4 * time.Hour, To: Target{Kind: Hero}},
		},
		{
			ID:    "new-conversation",
			Match: Match{Kind: NewConversation},
			Steps: []Rule{ping(Hero, 0)},
		},
		{
			ID:    "community-breached",
			Match: Match{Kind: Deadline, Tier: Community, Level: Breached},
			Steps: []Rule{ping(TeamSecondary, 0)},
		},
		{
			ID:    "deadline-breached",
			Match: Match{Kind: Deadline, Level: Breached},
			Steps: []Rule{page(TeamSecondary, 0), ping(Hero, 0)},
		},
		{
			ID:    "sentry-alert",
			Match: Match{Kind: SentryAlert},
			Steps: []Rule{page(TeamSecondary, 0)},
		},
		{
			ID:    "explicit-escalation",
			Match: Match{Kind: ExplicitEscalation},
			Steps: []Rule{ping(TeamSecondary, 0), page(TeamSecondary, 15*time.Minute)},
		},
		{
			ID:    "handoff",
			Match: Match{Kind: Handoff},
			Steps: []Rule{ping(Hero, 0)},
		},
		{
			ID:    "shift-reminder",
			Match: Match{Kind: ShiftReminder},
			Steps: []Rule{ping(Hero, 0)},
		},
		{
			ID:    "coverage-gap",
			Match: Match{Kind: CoverageGap},
			Steps: []Rule{ping(Hero, 0)},
		},
	}}
}
