package worktime

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

// Level is the first-response threshold a conversation's clock has passed.
// Its values equal those of supportv1.DeadlineLevel, so [Level.Proto] is a
// plain conversion.
type Level int

// The levels of the first-response guideline, in the order the clock passes
// them.
const (
	// LevelUnspecified means no level: used for "no next level".
	LevelUnspecified Level = iota
	// LevelGreat: under the great threshold (15 working minutes by default).
	LevelGreat
	// LevelOkay: past great, under the okay threshold (1 working hour).
	LevelOkay
	// LevelLate: past okay, under the too-late threshold (1 working day).
	LevelLate
	// LevelBreached: past the too-late threshold.
	LevelBreached
)

// String returns the level's lowercase name ("great", "okay", "late",
// "breached"), or "unspecified".
func (l Level) String() string {
	switch l {
	case LevelGreat:
		return "great"
	case LevelOkay:
		return "okay"
	case LevelLate:
		return "late"
	case LevelBreached:
		return "breached"
	default:
		return "unspecified"
	}
}

// Proto returns the level as the contract's enum.
func (l Level) Proto() supportv1.DeadlineLevel {
	return supportv1.DeadlineLevel(l)
}

// The handbook's first-response guideline, in covered working time.
const (
	// DefaultGreat: a first response under 15 minutes is great.
	DefaultGreat = 15 * time.Minute
	// DefaultOkay: under one hour is okay.
	DefaultOkay = time.Hour
	// DefaultTooLate: over one working day is too late; a working day is
	// eight hours of covered time unless configured otherwise.
	DefaultTooLate = 8 * time.Hour
)

// Coverage says whose working time a tier's first-response clock runs
// in.
type Coverage string

// The coverages. The empty Coverage means "the default" (see
// [Policy.WithDefaults]).
const (
	// CoverageDuty: while whoever is on duty as Support Hero (the hero, or
	// the catcher covering them) is within working hours and not away. The
	// handbook's "a reasonable timeframe during your working day".
	CoverageDuty Coverage = "duty"
	// CoverageRoster: while anybody on the support roster is within working
	// hours (what every tier used before issue 17).
	CoverageRoster Coverage = "roster"
	// CoverageAlways: around the clock, in wall-clock time (e.g. Priority
	// for a company that promises it).
	CoverageAlways Coverage = "always"
)

// ParseCoverage reads a coverage name: duty, roster (or rotation, its
// older name), always; empty is the default.
func ParseCoverage(s string) (Coverage, error) {
	switch c := Coverage(strings.ToLower(strings.TrimSpace(s))); c {
	case "", CoverageDuty, CoverageRoster, CoverageAlways:
		return c, nil
	case "rotation":
		return CoverageRoster, nil
	}
	return "", fmt.Errorf("coverage %q: want duty, roster or always", s)
}

// UnmarshalYAML reads a coverage name with [ParseCoverage].
func (c *Coverage) UnmarshalYAML(node *yaml.Node) error {
	var s string
	if err := node.Decode(&s); err != nil {
		return err
	}
	v, err := ParseCoverage(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", node.Line, err)
	}
	*c = v
	return nil
}

// Thresholds are the covered-time boundaries of the first-response levels:
// elapsed time in [0, Great) is great, [Great, Okay) okay, [Okay, TooLate)
// late, and TooLate or more breached. In YAML the durations are written as
// Go durations ("15m", "1h", "8h"), which gopkg.in/yaml.v3 decodes into
// time.Duration.
type Thresholds struct {
	// Great is the covered time under which a first response is great.
	Great time.Duration `yaml:"great" json:"great"`
	// Okay is the covered time under which a first response is okay.
	Okay time.Duration `yaml:"okay" json:"okay"`
	// TooLate is one working day of covered time: a response after it is too
	// late and the conversation's deadline is breached.
	TooLate time.Duration `yaml:"too_late" json:"too_late"`
	// Coverage is whose working time the clock runs in; empty: the
	// default (SIDEKICK_TRIAGE_COVERAGE, else duty).
	Coverage Coverage `yaml:"coverage" json:"coverage"`
}

// DefaultThresholds returns the handbook's guideline: 15 minutes, 1 hour,
// 8 hours, in the working time of the person on duty.
func DefaultThresholds() Thresholds {
	return Thresholds{Great: DefaultGreat, Okay: DefaultOkay, TooLate: DefaultTooLate, Coverage: CoverageDuty}
}

// Level returns the level a clock with the given covered elapsed time is in.
func (t Thresholds) Level(elapsed time.Duration) Level {
	switch {
	case elapsed < t.Great:
		return LevelGreat
	case elapsed < t.Okay:
		return LevelOkay
	case elapsed < t.TooLate:
		return LevelLate
	default:
		return LevelBreached
	}
}

// Start returns the covered elapsed time at which level l begins: zero for
// great, Great for okay, Okay for late, TooLate for breached. It returns
// zero for LevelUnspecified.
func (t Thresholds) Start(l Level) time.Duration {
	switch l {
	case LevelOkay:
		return t.Great
	case LevelLate:
		return t.Okay
	case LevelBreached:
		return t.TooLate
	default:
		return 0
	}
}

// withDefaults fills zero thresholds from d.
func (t Thresholds) withDefaults(d Thresholds) Thresholds {
	if t.Great == 0 {
		t.Great = d.Great
	}
	if t.Okay == 0 {
		t.Okay = d.Okay
	}
	if t.TooLate == 0 {
		t.TooLate = d.TooLate
	}
	if t.Coverage == "" {
		t.Coverage = d.Coverage
	}
	return t
}

// Validate reports thresholds that are not positive and increasing.
func (t Thresholds) Validate() error {
	if t.Great <= 0 || t.Okay <= 0 || t.TooLate <= 0 {
		return fmt.Errorf("thresholds must be positive (great %s, okay %s, too_late %s)", t.Great, t.Okay, t.TooLate)
	}
	if t.Great >= t.Okay || t.Okay >= t.TooLate {
		return fmt.Errorf("thresholds must increase: great %s < okay %s < too_late %s", t.Great, t.Okay, t.TooLate)
	}
	return nil
}

// Policy holds the first-response thresholds per customer tier. The
// handbook gives one guideline for everybody, which is the default; an
// organisation may tighten it for Priority customers or relax it for the
// Community, e.g.
//
//	response_policy:
//	  priority:  {great: 10m, okay: 30m, too_late: 4h, coverage: always}
//	  community: {too_late: 16h}
//
// Thresholds left out (zero) take the handbook's values, and the clock
// runs in the working time of the person on duty (see
// [Policy.WithDefaults]).
type Policy struct {
	// Priority applies to Scale and Enterprise customers and high-paying
	// Cloud customers.
	Priority Thresholds `yaml:"priority" json:"priority"`
	// Subscriber applies to paying Cloud customers.
	Subscriber Thresholds `yaml:"subscriber" json:"subscriber"`
	// Community applies to everyone else, including unknown customers.
	Community Thresholds `yaml:"community" json:"community"`
}

// DefaultPolicy returns the handbook's guideline for every tier.
func DefaultPolicy() Policy {
	d := DefaultThresholds()
	return Policy{Priority: d, Subscriber: d, Community: d}
}

// WithDefaults returns p with every zero threshold replaced by the
// handbook's value.
func (p Policy) WithDefaults() Policy {
	d := DefaultThresholds()
	p.Priority = p.Priority.withDefaults(d)
	p.Subscriber = p.Subscriber.withDefaults(d)
	p.Community = p.Community.withDefaults(d)
	return p
}

// Validate reports a tier whose thresholds are not positive and increasing.
// Call it after [Policy.WithDefaults] when zero means "default".
func (p Policy) Validate() error {
	var errs []error
	for _, tt := range []struct {
		name string
		t    Thresholds
	}{{"priority", p.Priority}, {"subscriber", p.Subscriber}, {"community", p.Community}} {
		if _, err := ParseCoverage(string(tt.t.Coverage)); err != nil {
			errs = append(errs, fmt.Errorf("response policy %s: %w", tt.name, err))
		}
		if err := tt.t.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("response policy %s: %w", tt.name, err))
		}
	}
	return errors.Join(errs...)
}

// For returns the thresholds of a tier. An unspecified tier is treated as
// Community, as an unknown customer is.
func (p Policy) For(tier supportv1.Tier) Thresholds {
	switch tier {
	case supportv1.Tier_TIER_PRIORITY:
		return p.Priority
	case supportv1.Tier_TIER_SUBSCRIBER:
		return p.Subscriber
	default:
		return p.Community
	}
}
