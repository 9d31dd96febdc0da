package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/sidekick/devstack"
)

// TestRetieringToPriorityTellsTheHero: a stranger's message is a
// Community conversation, which goes to the hero's digest, not a ping.
// A customer import then makes the author an Enterprise customer: triage
// re-tiers the conversation to Priority with Priority's deadline, and the
// hero is pinged as Priority's new-conversation policy says.
func TestRetieringToPriorityTellsTheHero(t *testing.T) {
	stack, console := startStack(t)
	a := dialStack(t, stack)
	hero := a.heroNow(t)
	now := time.Now()
	c := slackConversation(t, stack, a, now, "Ev0RETIER01", "U0NEWCUST1", "Funnels are empty since this morning")
	if c.GetTier() != supportv1.Tier_TIER_COMMUNITY {
		t.Fatalf("tier %s, want Community", c.GetTier())
	}
	before := c.GetNextDeadlineAt().AsTime()

	a.addCustomer(t, &triagev1.Customer{Id: "initech", Name: "Initech", Organisation: "Initech", Plan: "enterprise", SlackUserIds: []string{"U0NEWCUST1"}})
	var ping consolePing
	waitFor(t, 30*time.Second, "the hero's ping about the re-tiered conversation", func() bool {
		for _, p := range pingsAbout(console.String(), c.GetId()) {
			if strings.Contains(p.Line, "now Priority (was Community)") {
				ping = p
				return true
			}
		}
		return false
	})
	if !strings.HasPrefix(ping.Line, "[notify] ping "+hero.GetName()+" (Support Hero)") {
		t.Errorf("re-tier ping %q: want a ping of the hero, %s", ping.Line, hero.GetName())
	}
	got := a.get(t, c.GetId()).GetConversation()
	if got.GetTier() != supportv1.Tier_TIER_PRIORITY || got.GetNextDeadlineAt() == nil {
		t.Fatalf("after the import: tier %s, next deadline %v; want Priority with a deadline", got.GetTier(), got.GetNextDeadlineAt())
	}
	n := 0
	for _, p := range pingsAbout(console.String(), c.GetId()) {
		if strings.Contains(p.Line, "now Priority") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d re-tier pings, want 1", n)
	}
	t.Logf("deadline %s before, %s after", before.Format(time.RFC3339), got.GetNextDeadlineAt().AsTime().Format(time.RFC3339))
}

// slackConversation posts a customer's message in the support channel at
// now and returns the conversation it opens.
func slackConversation(t *testing.T, stack *devstack.Stack, a api, now time.Time, eventID, user, text string) *supportv1.Conversation {
	t.Helper()
	ts := fmt.Sprintf("%d.%06d", now.Unix(), now.Nanosecond()/1000)
	if code := postSlack(t, stack.HTTPAddr, stack.Env["SIDEKICK_SLACK_SIGNING_SECRET"], now.Unix(), messageEvent(eventID, user, text, ts)); code != http.StatusOK {
		t.Fatalf("Slack message from %s: want 200, got %d", user, code)
	}
	var c *supportv1.Conversation
	waitFor(t, 30*time.Second, "the conversation of "+user, func() bool {
		for _, x := range a.list(t, supportv1.Channel_CHANNEL_SLACK) {
			if x.GetAuthor().GetId() == user {
				c = x
			}
		}
		return c != nil
	})
	return c
}
