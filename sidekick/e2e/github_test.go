package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sidekickhq/sidekick/platform/bus"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/sidekick/fakes"
)

// remindPolicy pings the hero about every new conversation at once and
// again 5 seconds later, unless it was answered in between.
const remindPolicy = `escalation:
  policies:
    - id: e2e-remind
      match: {kind: new_conversation}
      steps:
        - {notify: hero, via: ping, after: 0s}
        - {notify: hero, via: ping, after: 5s}
`

// notifierMails splits the notifier's mails about a conversation into
// pings (new messages) and follow-ups (replies to a message it sent, such
// as "answered").
func notifierMails(all []fakes.Mail, conversationID string) (pings, followUps []fakes.Mail) {
	sent := map[string]bool{}
	for _, m := range all {
		sent[m.Header.Get("Message-Id")] = true
	}
	for _, m := range all {
		if m.Header.Get("X-Sidekick-Conversation") != conversationID {
			continue
		}
		if sent[m.Header.Get("In-Reply-To")] {
			followUps = append(followUps, m)
		} else {
			pings = append(pings, m)
		}
	}
	return pings, followUps
}

// TestGitHubIssueAnsweredByStaff is the GitHub path: a customer opens an
// issue (a signed issues webhook) and a member of the organisation
// comments (issue_comment, author_association MEMBER). That is one
// conversation, responded: first_response_at is set, it is assigned to the
// commenter, and the notifier stops reminding the hero about it. The hero
// is reached by email, captured by a fake SMTP server.
//
// The escalation policy reminds the hero 5 seconds after the first ping.
// A second issue opened after the answer, left unanswered, is the
// control: by the time its reminder arrives the first issue's reminder,
// due earlier, would have been sent had the notifier not stopped.
func TestGitHubIssueAnsweredByStaff(t *testing.T) {
	mail, err := fakes.NewSMTP()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mail.Close() })
	stack, _ := startStack(t,
		"SIDEKICK_ORG_CONFIG="+orgFile(t, remindPolicy),
		"SIDEKICK_SMTP_URL="+mail.URL("Sidekick <sidekick@sidekick.test>"),
	)
	a := dialStack(t, stack)
	hero := a.heroNow(t)
	gh := fakes.GitHub{URL: "http://" + stack.HTTPAddr + "/github/webhook", Secret: stack.Env["SIDEKICK_GITHUB_WEBHOOK_SECRET"]}
	ctx := context.Background()
	send := func(event, delivery string, body []byte) {
		t.Helper()
		code, err := gh.Send(ctx, event, delivery, body)
		if err != nil || code != http.StatusOK {
			t.Fatalf("GitHub %s delivery %s: status %d, err %v", event, delivery, code, err)
		}
	}

	// A forged delivery is refused.
	forged := fakes.GitHub{URL: gh.URL, Secret: "not-the-secret"}
	if code, err := forged.Send(ctx, "issues", "forged-1", fakes.GitHubIssueOpened(fakes.GitHubIssue{Repo: "acme/main", Number: 1, Title: "x", Login: "mallory", Association: "NONE"})); err != nil || code != http.StatusUnauthorized {
		t.Fatalf("forged delivery: want 401, got %d (%v)", code, err)
	}

	issue := fakes.GitHubIssue{
		Repo: "acme/main", Number: 101, Title: "Feature flags not evaluated on cold start",
		Body: "After a deploy the first requests see every flag as off.", Login: "jane-doe", Association: "NONE",
		CreatedAt: time.Now(),
	}
	send("issues", "a1d3c0de-0000-4000-8000-000000000101", fakes.GitHubIssueOpened(issue))
	threadKey := "github:acme/main#101"
	var conv *supportv1.Conversation
	waitFor(t, 15*time.Second, "the GitHub conversation", func() bool {
		conv = a.byThread(t, supportv1.Channel_CHANNEL_GITHUB, threadKey)
		return conv != nil
	})
	if conv.GetAuthor().GetId() != "jane-doe" || conv.GetStatus() != supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN {
		t.Fatalf("opened conversation: author %q status %s", conv.GetAuthor().GetId(), conv.GetStatus())
	}
	waitFor(t, 15*time.Second, "the hero's email ping", func() bool {
		pings, _ := notifierMails(mail.Messages(), conv.GetId())
		return len(pings) == 1
	})
	pings, _ := notifierMails(mail.Messages(), conv.GetId())
	if to := pings[0].To; len(to) != 1 || to[0] != hero.GetEmail() {
		t.Errorf("ping sent to %v, want the hero %s", to, hero.GetEmail())
	}

	// A member answers.
	comment := fakes.GitHubComment{ID: 5550101, Login: "bob-acme", Association: "MEMBER",
		Body: "Thanks Jane, we can reproduce it and are on it.", CreatedAt: time.Now()}
	send("issue_comment", "a1d3c0de-0000-4000-8000-000000000102", fakes.GitHubIssueCommentCreated(issue, comment))
	waitFor(t, 15*time.Second, "the conversation to be responded", func() bool {
		return a.get(t, conv.GetId()).GetConversation().GetFirstResponseAt() != nil
	})
	c := a.get(t, conv.GetId()).GetConversation()
	if c.GetStatus() != supportv1.ConversationStatus_CONVERSATION_STATUS_AWAITING_CUSTOMER {
		t.Errorf("status after the staff reply: %s, want AWAITING_CUSTOMER", c.GetStatus())
	}
	if c.GetAssignee() != "bob-acme" {
		t.Errorf("assignee %q, want the commenter bob-acme", c.GetAssignee())
	}
	if c.GetMessageCount() != 2 {
		t.Errorf("message count %d, want 2", c.GetMessageCount())
	}
	if got := c.GetFirstResponseAt().AsTime(); got.Before(c.GetOpenedAt().AsTime()) {
		t.Errorf("first response %s before opening %s", got, c.GetOpenedAt().AsTime())
	}
	// Subscribers hear who responded.
	js := jetStream(t, stack)
	var responded supportv1.ConversationEvent
	waitFor(t, 15*time.Second, "the responded event", func() bool {
		return lastOn(t, js, bus.StreamConversations, bus.ConversationSubject("responded"), &responded)
	})
	if responded.GetConversation().GetId() != conv.GetId() || responded.GetActor() != "bob-acme" ||
		responded.GetMessage().GetAuthor().GetRole() != supportv1.AuthorRole_AUTHOR_ROLE_STAFF {
		t.Errorf("responded event: %v", &responded)
	}

	// The notifier tells the hero it was answered: a follow-up in the
	// thread of the ping.
	waitFor(t, 15*time.Second, "the follow-up saying the conversation was answered", func() bool {
		_, followUps := notifierMails(mail.Messages(), conv.GetId())
		return len(followUps) >= 1
	})

	// The control: another issue, never answered, gets its reminder.
	control := fakes.GitHubIssue{Repo: "acme/main", Number: 102, Title: "Toolbar does not load on Safari",
		Body: "Blank toolbar since yesterday.", Login: "jane-doe", Association: "NONE", CreatedAt: time.Now()}
	send("issues", "a1d3c0de-0000-4000-8000-000000000103", fakes.GitHubIssueOpened(control))
	var other *supportv1.Conversation
	waitFor(t, 15*time.Second, "the control conversation", func() bool {
		other = a.byThread(t, supportv1.Channel_CHANNEL_GITHUB, "github:acme/main#102")
		return other != nil
	})
	waitFor(t, 20*time.Second, "the control conversation's reminder", func() bool {
		pings, _ := notifierMails(mail.Messages(), other.GetId())
		return len(pings) == 2
	})
	if pings, _ := notifierMails(mail.Messages(), conv.GetId()); len(pings) != 1 {
		var subjects []string
		for _, m := range pings {
			subjects = append(subjects, m.Header.Get("Subject"))
		}
		t.Fatalf("the answered conversation was pinged %d times, want 1 (no reminder after the answer): %s",
			len(pings), strings.Join(subjects, " | "))
	}
	if n := len(a.list(t, supportv1.Channel_CHANNEL_GITHUB)); n != 2 {
		t.Fatalf("want 2 GitHub conversations, got %d", n)
	}
}
