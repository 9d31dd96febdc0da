// Package policy is the escalation policy model: which events notify whom,
// through which urgency, and when. It is pure: it reads the `escalation`
// and `business_contacts` sections of the organisation file, picks the
// policy for an event and plans the escalation steps as absolute due times.
// Resolving targets to people (rotation) and sending (deliver) happen
// elsewhere.
//
// A policy's steps run in order. A step's `after` is either a duration,
// counted from the previous step (from the start for the first step), or a
// response deadline ("okay_deadline", optionally "+15m"), an absolute time
// computed by triage in working time. Steps never run earlier than the
// step before them. `repeat: N` runs the whole sequence N more times,
// `repeat_after` (default 30m) after the last step of the round before.
package policy

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
)

// Kind is what happened.
type Kind string

// Event kinds a policy can match.
const (
	// NewConversation is a conversation just opened.
	NewConversation Kind = "new_conversation"
	// Deadline is a conversation passing a first-response threshold; the
	// event's Level says which.
	Deadline Kind = "deadline"
	// SentryAlert is an error or alert reported by Sentry.
	SentryAlert Kind = "sentry_alert"
	// ExplicitEscalation is someone escalating a conversation by hand.
	ExplicitEscalation Kind = "explicit_escalation"
	// Handoff is the end of a hero's shift, with the handoff summary.
	Handoff Kind = "handoff"
	// CoverageGap is a stretch of time with nobody on the roster covering.
	CoverageGap Kind = "coverage_gap"
	// ShiftReminder is a shift about to start (SIDEKICK_NOTIFIER_SHIFT_REMINDER
	// ahead); `hero` in its steps is the person whose shift it is.
	ShiftReminder Kind = "shift_reminder"
)

var kinds = []Kind{NewConversation, Deadline, SentryAlert, ExplicitEscalation, Handoff, CoverageGap, ShiftReminder}

// personal reports whether events of kind k belong to no team and no
// conversation (a handoff, a coverage gap, a shift reminder).
func (k Kind) personal() bool { return k == Handoff || k == CoverageGap || k == ShiftReminder }

// Tier is the customer tier of a conversation.
type Tier string

// Customer tiers, highest first.
const (
	Priority   Tier = "priority"
	Subscriber Tier = "subscriber"
	Community  Tier = "community"
)

var tiers = []Tier{Priority, Subscriber, Community}

// Level is the first-response threshold a conversation has just passed,
// as in a deadline event.
type Level string

// Deadline levels (sidekick.support.v1.DeadlineLevel).
const (
	// Okay: past "great", still within "okay".
	Okay Level = "okay"
	// Late: past "okay", still within "too late".
	Late Level = "late"
	// Breached: past "too late".
	Breached Level = "breached"
)

var levels = []Level{Okay, Late, Breached}

// Names of the response deadlines a step's `after` can refer to, as keys
// of the map given to Plan. In YAML they are spelled with a "_deadline"
// suffix: "okay_deadline".
const (
	GreatDeadline   = "great"
	OkayDeadline    = "okay"
	TooLateDeadline = "too_late"
)

var deadlineNames = []string{GreatDeadline, OkayDeadline, TooLateDeadline}

// TargetKind says whom a step notifies.
type TargetKind string

// Targets.
const (
	// Hero is the Support Hero on duty when the step is due.
	Hero TargetKind = "hero"
	// TeamSecondary is the secondary on call of the team owning the
	// conversation (its category's team, or the Sentry project's team).
	TeamSecondary TargetKind = "team_secondary"
	// Person is one person by id: "person:alice".
	Person TargetKind = "person"
	// SlackChannel is a post in a channel: "slack_channel:support".
	SlackChannel TargetKind = "slack_channel"
	// BusinessContacts are the organisation's business_contacts (marketing
	// and partnership proposals go to them, not to engineers).
	BusinessContacts TargetKind = "business_contacts"
)

// Target is whom a step notifies.
type Target struct {
	Kind TargetKind
	// Name is the person id or channel name for Person and SlackChannel.
	Name string
}

// String returns the configuration spelling: "hero", "person:alice".
func (t Target) String() string {
	if t.Name != "" {
		return string(t.Kind) + ":" + t.Name
	}
	return string(t.Kind)
}

// ParseTarget reads "hero", "team_secondary", "business_contacts",
// "person:<id>" or "slack_channel:<name>".
func ParseTarget(s string) (Target, error) {
	kind, name, hasName := strings.Cut(strings.TrimSpace(s), ":")
	switch k := TargetKind(kind); k {
	case Hero, TeamSecondary, BusinessContacts:
		if hasName {
			return Target{}, fmt.Errorf("target %q takes no name", kind)
		}
		return Target{Kind: k}, nil
	case Person, SlackChannel:
		name = strings.TrimPrefix(strings.TrimSpace(name), "#")
		if name == "" {
			return Target{}, fmt.Errorf("target %q needs a name, as in %s:<name>", kind, kind)
		}
		return Target{Kind: k, Name: name}, nil
	case "":
		return Target{}, fmt.Errorf("missing target")
	default:
		return Target{}, fmt.Errorf("unknown target %q (want hero, team_secondary, person:<id>, slack_channel:<name> or business_contacts)", s)
	}
}

// ParseUrgency reads "ping" or "page".
func ParseUrgency(s string) (notify.Urgency, error) {
	switch s {
	case "ping":
		return notify.Ping, nil
	case "page":
		return notify.Page, nil
	}
	return 0, fmt.Errorf("unknown via %q (want ping or page)", s)
}

// After says when a rule is due.
type After struct {
	// Deadline names a response deadline (OkayDeadline, …); empty means
	// Offset counts from the previous step.
	Deadline string
	// Offset is added to the deadline, or to the previous step's due time.
	Offset time.Duration
}

// String returns the configuration spelling: "30m", "okay_deadline+15m".
func (a After) String() string {
	if a.Deadline == "" {
		return a.Offset.String()
	}
	s := a.Deadline + "_deadline"
	if a.Offset > 0 {
		s += "+" + a.Offset.String()
	}
	return s
}

// ParseAfter reads a duration ("0s", "30m", "1h30m") or a deadline name
// with an optional offset ("okay_deadline", "too_late_deadline+1h"). An
// empty string is 0s.
func ParseAfter(s string) (After, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return After{}, nil
	}
	head, off, hasOff := strings.Cut(s, "+")
	if name, ok := strings.CutSuffix(strings.TrimSpace(head), "_deadline"); ok {
		if !slices.Contains(deadlineNames, name) {
			return After{}, fmt.Errorf("unknown deadline %q (want great_deadline, okay_deadline or too_late_deadline)", name+"_deadline")
		}
		a := After{Deadline: name}
		if hasOff {
			d, err := time.ParseDuration(strings.TrimSpace(off))
			if err != nil || d < 0 {
				return After{}, fmt.Errorf("bad offset %q after %s_deadline", off, name)
			}
			a.Offset = d
		}
		return a, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return After{}, fmt.Errorf("after %q is neither a duration nor a deadline name", s)
	}
	if d < 0 {
		return After{}, fmt.Errorf("after %q is negative", s)
	}
	return After{Offset: d}, nil
}

// Match selects the events a policy applies to. Empty fields match
// anything.
type Match struct {
	Kind Kind
	Tier Tier
	// Level is for Deadline events only.
	Level Level
	// Team is the owning team's id.
	Team string
	// Categories match the conversation's predominant category
	// (case-insensitive).
	Categories []string
}

// Rule is one configured step of a policy.
type Rule struct {
	Notify Target
	Via    notify.Urgency
	After  After
}

// Digest collects matching conversations into a summary sent every Every
// to To, instead of notifying about each one.
type Digest struct {
	Every time.Duration
	To    Target
}

// Next returns the first digest time strictly after t: multiples of Every
// counted from the Unix epoch, so every replica agrees on the schedule (a
// 4h digest goes out at 00:00, 04:00, … UTC).
func (d Digest) Next(t time.Time) time.Time {
	if d.Every <= 0 {
		return time.Time{}
	}
	return t.Truncate(d.Every).Add(d.Every)
}

// DefaultRepeatAfter is the pause between rounds of a repeating policy when
// repeat_after is not set.
const DefaultRepeatAfter = 30 * time.Minute

// MaxRepeat bounds repeat.
const MaxRepeat = 10

// Policy is one escalation policy: either steps (with bounded repeats) or
// a digest.
type Policy struct {
	ID    string
	Match Match
	Steps []Rule
	// Repeat is how many more times the steps run after the first round.
	Repeat int
	// RepeatAfter is the pause between the last step of a round and the
	// first of the next.
	RepeatAfter time.Duration
	// Digest is set instead of Steps for policies that collect.
	Digest *Digest
	// AckTimeout, when positive, escalates again an acknowledged
	// conversation with no staff reply that long after the
	// acknowledgement: the acknowledged step is sent again and the steps
	// after it follow with their spacing (PagerDuty's acknowledgement
	// timeout). Once per acknowledgement.
	AckTimeout time.Duration `json:",omitempty"`
}

// Contact is a business contact: who gets marketing and partnership
// proposals.
type Contact struct {
	Name  string `yaml:"name"`
	Email string `yaml:"email"`
	// Slack is the contact's Slack member id.
	Slack string `yaml:"slack"`
}

// Config is the escalation configuration.
type Config struct {
	// Policies in order: the first that matches an event applies.
	Policies         []Policy
	BusinessContacts []Contact
	// ContactRules are people's own notification rules by person id
	// (`escalation.contact_rules`), in file order; a person without any
	// is told the default way.
	ContactRules map[string][]notify.ContactRule
	// ContactRuleLines is the line of each person's rules, for errors.
	ContactRuleLines map[string]int
}

// Event is what a policy is chosen for.
type Event struct {
	Kind  Kind
	Tier  Tier
	Level Level
	// Team owning the conversation or the Sentry project; may be empty.
	Team string
	// Category is the conversation's predominant category; may be empty.
	Category string
}

// Match returns the first policy matching e, or nil when none does (the
// event notifies nobody).
func (c *Config) Match(e Event) *Policy {
	for i := range c.Policies {
		if c.Policies[i].matches(e) {
			return &c.Policies[i]
		}
	}
	return nil
}

// Policy returns the policy with the given id, or nil.
func (c *Config) Policy(id string) *Policy {
	for i := range c.Policies {
		if c.Policies[i].ID == id {
			return &c.Policies[i]
		}
	}
	return nil
}

func (p *Policy) matches(e Event) bool {
	m := p.Match
	switch {
	case m.Kind != e.Kind:
		return false
	case m.Tier != "" && m.Tier != e.Tier:
		return false
	case m.Level != "" && m.Level != e.Level:
		return false
	case m.Team != "" && !strings.EqualFold(m.Team, e.Team):
		return false
	case len(m.Categories) > 0 && !slices.ContainsFunc(m.Categories, func(c string) bool { return strings.EqualFold(c, e.Category) }):
		return false
	}
	return true
}

// Step is one planned notification.
type Step struct {
	// Index numbers the planned steps from 0 across rounds; it is part of
	// each delivery's idempotency key, so it is stable for a given plan.
	Index int
	// Round counts repeats from 0; Rule is the configured step's position.
	Round, Rule int
	Due         time.Time
	Target      Target
	Urgency     notify.Urgency
}

// Plan returns the policy's steps with absolute due times for an event that
// started at start. deadlines maps deadline names (OkayDeadline, …) to the
// times triage computed; a rule anchored on a deadline that is absent (the
// conversation has none, or was answered) is left out. Due times never go
// backwards: a deadline already past when the step before it is due makes
// the step due with it. A digest policy plans no steps.
func (p *Policy) Plan(start time.Time, deadlines map[string]time.Time) []Step {
	if p.Digest != nil || len(p.Steps) == 0 {
		return nil
	}
	var first []Step
	prev := start
	for i, r := range p.Steps {
		due := prev.Add(r.After.Offset)
		if r.After.Deadline != "" {
			d, ok := deadlines[r.After.Deadline]
			if !ok || d.IsZero() {
				continue
			}
			due = d.Add(r.After.Offset)
			if due.Before(prev) {
				due = prev
			}
		}
		first = append(first, Step{Rule: i, Due: due, Target: r.Notify, Urgency: r.Via})
		prev = due
	}
	if len(first) == 0 {
		return nil
	}
	pause := p.RepeatAfter
	if pause <= 0 {
		pause = DefaultRepeatAfter
	}
	shift := first[len(first)-1].Due.Sub(first[0].Due) + pause
	out := make([]Step, 0, len(first)*(p.Repeat+1))
	for round := 0; round <= p.Repeat; round++ {
		for _, s := range first {
			s.Round = round
			s.Due = s.Due.Add(time.Duration(round) * shift)
			s.Index = len(out)
			out = append(out, s)
		}
	}
	return out
}
