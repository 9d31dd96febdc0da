package consume

import (
	"strings"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

func tierName(t supportv1.Tier) string {
	switch t {
	case supportv1.Tier_TIER_PRIORITY:
		return "Priority"
	case supportv1.Tier_TIER_SUBSCRIBER:
		return "Subscriber"
	case supportv1.Tier_TIER_COMMUNITY:
		return "Community"
	}
	return "untriaged"
}

func channelName(c supportv1.Channel) string {
	switch c {
	case supportv1.Channel_CHANNEL_SLACK:
		return "Slack"
	case supportv1.Channel_CHANNEL_EMAIL:
		return "email"
	case supportv1.Channel_CHANNEL_GITHUB:
		return "GitHub"
	case supportv1.Channel_CHANNEL_SENTRY:
		return "Sentry"
	}
	return "source"
}

// who names the customer behind a conversation: "Jane Doe (Acme)".
func who(c *supportv1.Conversation) string {
	a := c.GetAuthor()
	person := firstNonEmpty(a.GetName(), a.GetHandle(), a.GetEmail(), c.GetCustomer().GetName(), a.GetId())
	org := firstNonEmpty(c.GetCustomer().GetOrganisation(), a.GetOrganisation())
	if c.GetCustomer().GetName() != "" && c.GetCustomer().GetName() != person {
		org = firstNonEmpty(org, c.GetCustomer().GetName())
	}
	switch {
	case person == "" && org == "":
		return "an unknown sender"
	case org == "" || org == person:
		return person
	case person == "":
		return org
	}
	return person + " (" + org + ")"
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			return s
		}
	}
	return ""
}

func excerpt(s string, n int) string {
	s = strings.TrimSpace(s)
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return strings.TrimSpace(string(r[:n])) + "…"
}
