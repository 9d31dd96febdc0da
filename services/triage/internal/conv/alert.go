package conv

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

// Alerts.
//
// A Sentry issue (and any future alert source) is an alert conversation,
// not a customer's: one per issue, whose occurrences are counted as the
// coalesced messages about it arrive (attributes occurrences, first_seen,
// last_seen and level, set by ingest-sentry). An alert has no customer
// tier and no first-response deadline; notifier routes it to the owning
// team's secondary.

// The attributes an alert message carries.
const (
	AttrOccurrences = "occurrences"
	AttrFirstSeen   = "first_seen"
	AttrLastSeen    = "last_seen"
	AttrLevel       = "level"
	AttrProject     = "project"
)

// IsAlert reports whether m opens (or belongs to) an alert conversation:
// it comes from Sentry.
func IsAlert(m *supportv1.InboundMessage) bool {
	return m.GetChannel() == supportv1.Channel_CHANNEL_SENTRY
}

// IsAlertConversation reports whether c is an alert.
func IsAlertConversation(c *supportv1.Conversation) bool {
	return c.GetKind() == supportv1.ConversationKind_CONVERSATION_KIND_ALERT
}

// levelRank orders Sentry's levels, the most severe highest.
func levelRank(l string) int {
	switch strings.ToLower(l) {
	case "fatal":
		return 5
	case "error":
		return 4
	case "warning":
		return 3
	case "info":
		return 2
	case "debug":
		return 1
	}
	return 0
}

// countOccurrences adds what an alert message counts to c's alert: its
// occurrences (1 when it says none), the earliest first_seen, the latest
// last_seen (the message's own time when they are missing) and the most
// severe level.
func countOccurrences(c *supportv1.Conversation, m *supportv1.InboundMessage, at time.Time) {
	if c.Alert == nil {
		c.Alert = &supportv1.Alert{}
	}
	a := c.Alert
	attrs := m.GetAttributes()
	n, err := strconv.ParseInt(attrs[AttrOccurrences], 10, 64)
	if err != nil || n < 0 {
		n = 1
	}
	a.Occurrences += n
	first, last := at, at
	if t, err := time.Parse(time.RFC3339Nano, attrs[AttrFirstSeen]); err == nil {
		first = t
	}
	if t, err := time.Parse(time.RFC3339Nano, attrs[AttrLastSeen]); err == nil {
		last = t
	}
	if a.FirstSeen == nil || first.Before(a.FirstSeen.AsTime()) {
		a.FirstSeen = timestamppb.New(first)
	}
	if a.LastSeen == nil || last.After(a.LastSeen.AsTime()) {
		a.LastSeen = timestamppb.New(last)
	}
	if l := attrs[AttrLevel]; levelRank(l) > levelRank(a.Level) {
		a.Level = l
	}
	if a.Project == "" {
		a.Project = attrs[AttrProject]
	}
}

// Acknowledge records the first acknowledgement of an alert by who at at;
// it reports whether it was the first. Customer conversations and system
// actors acknowledge nothing.
func Acknowledge(c *supportv1.Conversation, who string, at time.Time) bool {
	if !IsAlertConversation(c) || who == "" || who == System || c.GetAlert().GetAcknowledgedAt() != nil {
		return false
	}
	if c.Alert == nil {
		c.Alert = &supportv1.Alert{}
	}
	c.Alert.AcknowledgedAt, c.Alert.AcknowledgedBy = timestamppb.New(at), who
	return true
}

// sentryIssueURL finds Sentry issue links: https://acme.sentry.io/issues/123/,
// https://sentry.io/organizations/acme/issues/123/, or a self-hosted
// Sentry's /organizations/acme/issues/123/.
var sentryIssueURL = regexp.MustCompile(`(?i)(?:sentry\.io/(?:organizations/[\w.-]+/)?issues/|/organizations/[\w.-]+/issues/)(\d+)`)

// AlertReferences returns the thread keys of the alerts text refers to
// by their Sentry issue links, each once.
func AlertReferences(text string) []string {
	var out []string
	for _, m := range sentryIssueURL.FindAllStringSubmatch(text, -1) {
		key := "sentry:" + m[1]
		if !slices.Contains(out, key) {
			out = append(out, key)
		}
	}
	return out
}
