// Package tier holds the customer tier rules of the support handbook and
// the matching of a message author to a customer identity.
//
// Tiers, highest first:
//   - Priority: Scale or Enterprise plans (current, or a customer in the
//     sales process for one), and Cloud customers paying at least the
//     configured monthly revenue (default $2,000).
//   - Subscriber: paying Cloud customers (revenue above zero).
//   - Community: everyone else, including unknown authors.
package tier

import (
	"fmt"
	"strings"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

// DefaultPriorityRevenueCents is the monthly revenue from which a Cloud
// customer is Priority: $2,000.
const DefaultPriorityRevenueCents = 200000

// Customer is what the rules look at.
type Customer struct {
	Plan                string
	MonthlyRevenueCents int64
	InSalesProcess      bool
}

// Rules decides tiers.
type Rules struct {
	// PriorityRevenueCents is the monthly revenue from which a customer is
	// Priority; zero or less means DefaultPriorityRevenueCents.
	PriorityRevenueCents int64
}

// NormalizePlan lowercases and trims a plan name.
func NormalizePlan(plan string) string { return strings.ToLower(strings.TrimSpace(plan)) }

// IsPriorityPlan reports whether plan is one of the Priority plans.
func IsPriorityPlan(plan string) bool {
	switch NormalizePlan(plan) {
	case "scale", "enterprise":
		return true
	}
	return false
}

// Of returns the tier of a customer and why; nil is an unknown author.
func (r Rules) Of(c *Customer) (supportv1.Tier, string) {
	threshold := r.PriorityRevenueCents
	if threshold <= 0 {
		threshold = DefaultPriorityRevenueCents
	}
	if c == nil {
		return supportv1.Tier_TIER_COMMUNITY, "unknown customer"
	}
	plan := NormalizePlan(c.Plan)
	switch {
	case IsPriorityPlan(plan) && c.InSalesProcess:
		return supportv1.Tier_TIER_PRIORITY, "plan " + plan + " (in sales process)"
	case IsPriorityPlan(plan):
		return supportv1.Tier_TIER_PRIORITY, "plan " + plan
	case c.InSalesProcess:
		return supportv1.Tier_TIER_PRIORITY, "in sales process"
	case c.MonthlyRevenueCents >= threshold:
		return supportv1.Tier_TIER_PRIORITY, fmt.Sprintf("revenue %s/month >= %s", Dollars(c.MonthlyRevenueCents), Dollars(threshold))
	case c.MonthlyRevenueCents > 0:
		return supportv1.Tier_TIER_SUBSCRIBER, fmt.Sprintf("paying %s/month", Dollars(c.MonthlyRevenueCents))
	case plan == "":
		return supportv1.Tier_TIER_COMMUNITY, "no paid plan"
	default:
		return supportv1.Tier_TIER_COMMUNITY, "plan " + plan + ", not paying"
	}
}

// Dollars formats cents as "$1,234" (or "$1,234.50").
func Dollars(cents int64) string {
	neg := cents < 0
	if neg {
		cents = -cents
	}
	whole, frac := cents/100, cents%100
	s := fmt.Sprint(whole)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	out := "$" + b.String()
	if frac != 0 {
		out += fmt.Sprintf(".%02d", frac)
	}
	if neg {
		out = "-" + out
	}
	return out
}

// Identity kinds of the customer directory.
const (
	KindEmailDomain = "email_domain"
	KindSlack       = "slack"
	KindGitHub      = "github"
	KindSentry      = "sentry"
)

// Identity is one way a customer is recognised.
type Identity struct {
	Kind  string
	Value string
}

// Candidates lists the identities of a message author to look up, most
// specific first: the channel's own user id (Slack user id, GitHub login,
// Sentry user), then the email domain and its parent domains.
func Candidates(ch supportv1.Channel, a *supportv1.Author) []Identity {
	if a == nil {
		return nil
	}
	var out []Identity
	add := func(kind, value string) {
		value = strings.TrimSpace(value)
		if value == "" {
			return
		}
		for _, id := range out {
			if id.Kind == kind && strings.EqualFold(id.Value, value) {
				return
			}
		}
		out = append(out, Identity{Kind: kind, Value: value})
	}
	switch ch {
	case supportv1.Channel_CHANNEL_SLACK:
		add(KindSlack, a.GetId())
	case supportv1.Channel_CHANNEL_GITHUB:
		add(KindGitHub, a.GetHandle())
		add(KindGitHub, a.GetId())
	case supportv1.Channel_CHANNEL_SENTRY:
		add(KindSentry, a.GetId())
		add(KindSentry, a.GetEmail())
		add(KindSentry, a.GetHandle())
	}
	email := a.GetEmail()
	if email == "" && ch == supportv1.Channel_CHANNEL_EMAIL {
		email = a.GetId()
	}
	// The domain and its parents: jo@eu.acme.com matches acme.com.
	for d := EmailDomain(email); strings.Count(d, ".") >= 1; d = d[strings.IndexByte(d, '.')+1:] {
		add(KindEmailDomain, d)
	}
	return out
}

// EmailDomain returns the lowercased domain of an address, or "".
func EmailDomain(addr string) string {
	addr = strings.TrimSpace(addr)
	if i := strings.LastIndexByte(addr, '<'); i >= 0 {
		addr = strings.TrimSuffix(addr[i+1:], ">")
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 || at == len(addr)-1 {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(addr[at+1:], "."))
}
