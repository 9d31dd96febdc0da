package e2e

import (
	"strings"
	"testing"
	"time"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/sidekick/fakes"
)

// TestBusinessProposalReachesTheBusinessContacts: a partnership proposal
// by email is pinged to the demo organisation's business contact, Dana
// Diaz, and to no engineer; it is not in the hero's queue and takes no
// first-response deadline (issue 17, item 6, through the whole stack).
func TestBusinessProposalReachesTheBusinessContacts(t *testing.T) {
	stack, console := startStack(t)
	a := dialStack(t, stack)
	const support = "support@sidekick.test"
	msg := rawEmail("Mia <mia@agency.example>", support, "Partnership proposal", "<proposal-1@agency.example>", time.Now(),
		"Hi! We'd love to explore a co marketing partnership and a joint webinar with your team. Who is the right person to talk to?")
	if err := fakes.SendMail(stack.SMTPAddr, "mia@agency.example", []string{support}, msg); err != nil {
		t.Fatalf("send: %v", err)
	}
	var c *supportv1.Conversation
	waitFor(t, time.Minute, "the proposal's conversation", func() bool {
		resp, err := a.conv.ListConversations(rpcCtx(t), &triagev1.ListConversationsRequest{Category: "business"})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetConversations()) == 1 {
			c = resp.GetConversations()[0]
		}
		return c != nil
	})
	waitFor(t, time.Minute, "a ping of the business contact", func() bool {
		return len(pingsAbout(console.String(), c.GetId())) > 0
	})
	for _, p := range pingsAbout(console.String(), c.GetId()) {
		if !strings.HasPrefix(p.Line, "[notify] ping Dana Diaz") {
			t.Errorf("%q: want only pings of Dana Diaz, the business contact", p.Line)
		}
	}
	if c.GetNextDeadlineAt() != nil || c.GetTeam() != "business" {
		t.Errorf("proposal: team %q, next deadline %v; want the business team and no deadline", c.GetTeam(), c.GetNextDeadlineAt())
	}
	queue, err := a.conv.ListConversations(rpcCtx(t), &triagev1.ListConversationsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range queue.GetConversations() {
		if q.GetId() == c.GetId() {
			t.Errorf("the proposal %s is in the hero's queue", c.GetId())
		}
	}
}
