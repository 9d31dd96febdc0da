package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sidekickhq/sidekick/platform/bus"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/sidekick/fakes"
)

// rawEmail builds an RFC 5322 message with CRLF line ends; extra header
// lines ("In-Reply-To: <…>") go after the standard ones.
func rawEmail(from, to, subject, messageID string, date time.Time, body string, extra ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\n", from)
	fmt.Fprintf(&b, "To: %s\r\n", to)
	fmt.Fprintf(&b, "Subject: %s\r\n", subject)
	fmt.Fprintf(&b, "Date: %s\r\n", date.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s>\r\n", messageID)
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	b.WriteString(strings.ReplaceAll(body, "\n", "\r\n"))
	b.WriteString("\r\n")
	return []byte(b.String())
}

// TestEmailOverSMTP is the email path: a customer's message and their
// follow-up (In-Reply-To and References naming the first) reach the
// stack's SMTP listener as a mail relay would send them. They make one
// conversation holding both messages, the Support Hero is pinged once on
// the console, and an out-of-office auto-reply opens nothing.
func TestEmailOverSMTP(t *testing.T) {
	stack, console := startStack(t)
	a := dialStack(t, stack)
	// Globex pays $120 a month: a Subscriber, whose new conversations ping
	// the hero at once (Community ones would wait for the digest).
	a.addCustomer(t, &triagev1.Customer{
		Id: "globex", Name: "Globex", Organisation: "Globex", Plan: "cloud",
		MonthlyRevenueCents: 12000, EmailDomains: []string{"globex.example"},
	})
	hero := a.heroNow(t)
	const support = "support@sidekick.test"
	now := time.Now()

	// An auto-reply first: recorded, opens no conversation.
	ooo := rawEmail("Initech Mailer <noreply@initech.example>", support, "Automatic reply: Out of office",
		"ooo-1@initech.example", now, "I am out of the office until Monday.", "Auto-Submitted: auto-replied")
	if err := fakes.SendMail(stack.SMTPAddr, "noreply@initech.example", []string{support}, ooo); err != nil {
		t.Fatalf("auto-reply over SMTP: %v", err)
	}

	first := rawEmail("Jane Roe <jane@globex.example>", support, "Exports stuck since Monday",
		"q1.7f3a@globex.example", now, "Hello,\nour CSV exports have been stuck in 'pending' since Monday.\nJane")
	if err := fakes.SendMail(stack.SMTPAddr, "jane@globex.example", []string{support}, first); err != nil {
		t.Fatalf("first email over SMTP: %v", err)
	}
	reply := rawEmail("Jane Roe <jane@globex.example>", support, "Re: Exports stuck since Monday",
		"q2.9b1c@globex.example", now.Add(time.Minute), "Any news? Finance needs them today.\n\n> our CSV exports have been stuck",
		"In-Reply-To: <q1.7f3a@globex.example>", "References: <q1.7f3a@globex.example>")
	if err := fakes.SendMail(stack.SMTPAddr, "jane@globex.example", []string{support}, reply); err != nil {
		t.Fatalf("reply over SMTP: %v", err)
	}

	// One conversation, both messages in it.
	var conv *supportv1.Conversation
	waitFor(t, 15*time.Second, "an email conversation with two messages", func() bool {
		cs := a.list(t, supportv1.Channel_CHANNEL_EMAIL)
		if len(cs) == 0 {
			return false
		}
		conv = cs[0]
		return len(a.get(t, conv.GetId()).GetMessages()) == 2
	})
	got := a.get(t, conv.GetId())
	c := got.GetConversation()
	if c.GetSubject() != "Exports stuck since Monday" || c.GetTier() != supportv1.Tier_TIER_SUBSCRIBER ||
		c.GetCustomer().GetId() != "globex" || c.GetStatus() != supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN {
		t.Errorf("conversation: subject %q tier %s customer %q status %s",
			c.GetSubject(), c.GetTier(), c.GetCustomer().GetId(), c.GetStatus())
	}
	msgs := got.GetMessages()
	if !strings.Contains(msgs[0].GetSourceId(), "q1.7f3a@globex.example") || !strings.Contains(msgs[1].GetSourceId(), "q2.9b1c@globex.example") {
		t.Errorf("messages in order q1, q2: got %q, %q", msgs[0].GetSourceId(), msgs[1].GetSourceId())
	}
	for _, m := range msgs {
		if m.GetThreadKey() != c.GetThreadKey() || m.GetAuthor().GetEmail() != "jane@globex.example" {
			t.Errorf("message %s: thread %q (want %q), author %q", m.GetId(), m.GetThreadKey(), c.GetThreadKey(), m.GetAuthor().GetEmail())
		}
	}

	// Subscribers hear of it: one opened event, one message event.
	js := jetStream(t, stack)
	waitFor(t, 15*time.Second, "the opened and message events", func() bool {
		return subjectCount(t, js, bus.StreamConversations, bus.ConversationSubject("opened")) >= 1 &&
			subjectCount(t, js, bus.StreamConversations, bus.ConversationSubject("message")) >= 1
	})
	var opened supportv1.ConversationEvent
	if !lastOn(t, js, bus.StreamConversations, bus.ConversationSubject("opened"), &opened) ||
		opened.GetConversation().GetId() != c.GetId() || opened.GetMessage().GetSourceId() != msgs[0].GetSourceId() {
		t.Errorf("opened event: %v", &opened)
	}

	// The hero is pinged once on the console.
	ping := "[notify] ping " + hero.GetName() + " (Support Hero)"
	waitFor(t, 15*time.Second, "the console ping of the hero", func() bool {
		return strings.Contains(console.String(), ping)
	})

	// The auto-reply was handled (recorded) and opened nothing.
	waitFor(t, 15*time.Second, "triage to record the auto-reply", func() bool {
		return counter(t, stack.Registry, "sidekick_triage_messages_handled_total", map[string]string{"kind": "automated", "result": "recorded"}) >= 1
	})
	if cs := a.list(t, supportv1.Channel_CHANNEL_EMAIL); len(cs) != 1 {
		t.Fatalf("want exactly 1 email conversation (the auto-reply opens none), got %d", len(cs))
	}
	if n := subjectCount(t, js, bus.StreamConversations, bus.ConversationSubject("opened")); n != 1 {
		t.Errorf("%d opened events, want 1", n)
	}
	pings := conversationPings(console.String())
	if len(pings) != 1 || pings[0].ConversationID != c.GetId() || !strings.HasPrefix(pings[0].Line, ping) {
		t.Fatalf("want exactly one ping, of the hero about %s; got %+v", c.GetId(), pings)
	}
}
