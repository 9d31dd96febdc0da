package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/sidekick/fakes"
)

// The support channel of the replies test, where conversations from
// elsewhere are mirrored.
const mirrorChannel = "C0MIRROR"

// TestRepliesReachCustomers answers customers on every channel through the
// whole stack, with Slack's Web API, GitHub's API and the customer's inbox
// (the dev stack's SMTP relay) faked at the wire:
//
//   - email: a reply (gRPC Reply, what the console and the CLI call) is a
//     staff message by the person, assigns them, counts as the first
//     response, and arrives once in the inbox as a real reply (Re:,
//     In-Reply-To, References, our Message-ID); its receipt marks it sent;
//     the customer's answer naming only our Message-ID lands in the same
//     conversation; a person answering from their own extra address is
//     that person;
//   - the support-channel mirror: a GitHub issue gets a header in the
//     support channel; a staff member's message in its thread becomes a
//     GitHub comment (the Slack user mapped to the person), a "!note"
//     message a private note, and GitHub's webhook of our own comment is
//     not a second message;
//   - Slack: a reply goes into the customer's thread under the person's
//     name, and Slack's message event of it is not a second message;
//   - bad input is refused with the contract's codes and sends nothing.
func TestRepliesReachCustomers(t *testing.T) {
	slack := fakes.NewSlack("sidekick-demo", "T0DEMO")
	t.Cleanup(slack.Close)
	gh := fakes.NewGitHubAPI("ghp_e2e_replies")
	t.Cleanup(gh.Close)
	gh.AddIssue("acme/main", 202)
	stack, _ := startStack(t,
		"SIDEKICK_SLACK_BOT_TOKEN=xoxb-e2e-replies",
		"SIDEKICK_SLACK_API_URL="+slack.APIURL(),
		"SIDEKICK_GITHUB_TOKEN=ghp_e2e_replies",
		"SIDEKICK_GITHUB_API_URL="+gh.URL(),
		"SIDEKICK_SUPPORT_CHANNEL="+mirrorChannel,
	)
	if stack.Inbox == nil {
		t.Fatal("the dev stack started no customer inbox")
	}
	a := dialStack(t, stack)
	hero := a.heroNow(t)

	t.Run("email", func(t *testing.T) { replyByEmail(t, stack.SMTPAddr, stack.Inbox, a, hero.GetId()) })
	t.Run("mirror to GitHub", func(t *testing.T) {
		mirrorToGitHub(t, stack.HTTPAddr, stack.Env, slack, gh, a, hero.GetId(), hero.GetSlackId())
	})
	t.Run("slack echo", func(t *testing.T) {
		slackEcho(t, stack.HTTPAddr, stack.Env["SIDEKICK_SLACK_SIGNING_SECRET"], slack, a, hero.GetId(), hero.GetName())
	})
	t.Run("refusals", func(t *testing.T) {
		refusals(t, stack.HTTPAddr, stack.Env["SIDEKICK_SENTRY_CLIENT_SECRET"], slack, gh, stack.Inbox, a)
	})
}

// reply answers a conversation as actor through gRPC and checks the staff
// message is the person's.
func (a api) reply(t *testing.T, convID, actor, text string) *triagev1.ReplyResponse {
	t.Helper()
	resp, err := a.conv.Reply(rpcCtx(t), &triagev1.ReplyRequest{ConversationId: convID, Actor: actor, Text: text})
	if err != nil {
		t.Fatalf("Reply(%s): %v", convID, err)
	}
	if au := resp.GetMessage().GetAuthor(); au.GetPersonId() != actor || au.GetRole() != supportv1.AuthorRole_AUTHOR_ROLE_STAFF {
		t.Errorf("reply author %v, want the person %s as staff", au, actor)
	}
	return resp
}

// awaitThread waits for the conversation of a thread and returns it.
func (a api) awaitThread(t *testing.T, ch supportv1.Channel, threadKey string) *supportv1.Conversation {
	t.Helper()
	var c *supportv1.Conversation
	waitFor(t, 15*time.Second, "the conversation of "+threadKey, func() bool {
		c = a.byThread(t, ch, threadKey)
		return c != nil
	})
	return c
}

// delivered waits until a reply's delivery is sent and returns it.
func (a api) delivered(t *testing.T, convID, outboundID string) *triagev1.OutboundDelivery {
	t.Helper()
	var d *triagev1.OutboundDelivery
	waitFor(t, 20*time.Second, "reply "+outboundID+" sent", func() bool {
		for _, x := range a.get(t, convID).GetDeliveries() {
			if x.GetOutboundId() == outboundID {
				d = x
			}
		}
		return d.GetState() == triagev1.DeliveryState_DELIVERY_STATE_SENT
	})
	return d
}

// answeredBy checks what a first staff reply by person did.
func answeredBy(t *testing.T, c *supportv1.Conversation, person string) {
	t.Helper()
	if c.GetAssignee() != person || c.GetStatus() != supportv1.ConversationStatus_CONVERSATION_STATUS_AWAITING_CUSTOMER || c.GetFirstResponseAt() == nil {
		t.Errorf("after %s's reply: assignee %q status %s first response %v, want %s, awaiting the customer, responded",
			person, c.GetAssignee(), c.GetStatus(), c.GetFirstResponseAt(), person)
	}
}

func replyByEmail(t *testing.T, smtpAddr string, inbox *fakes.SMTP, a api, hero string) {
	const support = "support@sidekick.localhost"
	now := time.Now()
	send := func(from string, raw []byte) {
		t.Helper()
		if err := fakes.SendMail(smtpAddr, from, []string{support}, raw); err != nil {
			t.Fatalf("email from %s: %v", from, err)
		}
	}
	send("jo@acme.example", rawEmail("Jo Customer <jo@acme.example>", support, "Exports failing", "q1.e2e@acme.example", now,
		"Our exports to S3 fail since yesterday."))
	conv := a.awaitThread(t, supportv1.Channel_CHANNEL_EMAIL, "email:q1.e2e@acme.example")

	r := a.reply(t, conv.GetId(), hero, "Which region is the bucket in?")
	id := r.GetDelivery().GetOutboundId()
	ourID := "<" + id + "@sidekick.localhost>"
	waitFor(t, 20*time.Second, "the reply in the customer's inbox", func() bool { return inbox.WithMessageID(ourID) > 0 })
	var got fakes.Mail
	for _, m := range inbox.Messages() {
		if m.Header.Get("Message-Id") == ourID {
			got = m
		}
	}
	h := got.Header
	if strings.Join(got.To, ",") != "jo@acme.example" || h.Get("Subject") != "Re: Exports failing" ||
		h.Get("In-Reply-To") != "<q1.e2e@acme.example>" || !strings.Contains(h.Get("References"), "<q1.e2e@acme.example>") ||
		!strings.Contains(h.Get("From"), support) || !strings.Contains(string(got.Body), "Which region is the bucket in?") {
		t.Errorf("the reply as the customer got it: to %v, headers %v", got.To, h)
	}
	if d := a.delivered(t, conv.GetId(), id); !strings.Contains(d.GetProviderId(), id) {
		t.Errorf("delivery %v: want the Message-ID we chose as the provider id", d)
	}
	answeredBy(t, a.get(t, conv.GetId()).GetConversation(), hero)

	// The customer answers naming only our Message-ID.
	send("jo@acme.example", rawEmail("Jo Customer <jo@acme.example>", support, "Re: Exports failing", "q2.e2e@acme.example", now.Add(time.Minute),
		"eu-west-1", "In-Reply-To: "+ourID))
	waitFor(t, 15*time.Second, "the customer's answer in the same conversation", func() bool {
		return len(a.get(t, conv.GetId()).GetMessages()) == 3
	})
	if c := a.get(t, conv.GetId()).GetConversation(); c.GetStatus() != supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN {
		t.Errorf("after the customer's answer: status %s, want open", c.GetStatus())
	}
	if n := inbox.WithMessageID(ourID); n != 1 {
		t.Errorf("the reply arrived %d times, want once", n)
	}

	// Farah answers a customer from her second address, outside the staff
	// domain: the organisation file says it is hers.
	send("sam@initech.example", rawEmail("Sam <sam@initech.example>", support, "SSO loops", "s1.e2e@initech.example", now, "Login loops."))
	sso := a.awaitThread(t, supportv1.Channel_CHANNEL_EMAIL, "email:s1.e2e@initech.example")
	send("farah.faruqi@example.org", rawEmail("Farah Faruqi <farah.faruqi@example.org>", "Sam <sam@initech.example>", "Re: SSO loops",
		"f1.e2e@example.org", now.Add(time.Minute), "Clear the cookies for now; the fix ships today.",
		"Cc: "+support, "In-Reply-To: <s1.e2e@initech.example>", "References: <s1.e2e@initech.example>"))
	waitFor(t, 15*time.Second, "Farah's email in the conversation", func() bool {
		return len(a.get(t, sso.GetId()).GetMessages()) == 2
	})
	answeredBy(t, a.get(t, sso.GetId()).GetConversation(), "farah")
}

func mirrorToGitHub(t *testing.T, httpAddr string, env map[string]string, slack *fakes.Slack, gh *fakes.GitHubAPI, a api, hero, heroSlack string) {
	hooks := fakes.GitHub{URL: "http://" + httpAddr + "/github/webhook", Secret: env["SIDEKICK_GITHUB_WEBHOOK_SECRET"]}
	send := func(event, delivery string, body []byte) {
		t.Helper()
		if code, err := hooks.Send(context.Background(), event, delivery, body); err != nil || code != http.StatusOK {
			t.Fatalf("GitHub %s delivery %s: status %d, err %v", event, delivery, code, err)
		}
	}
	issue := fakes.GitHubIssue{Repo: "acme/main", Number: 202, Title: "Flags off after deploy",
		Body: "Every flag reads as off for a minute after each deploy.", Login: "jane-doe", Association: "NONE", CreatedAt: time.Now()}
	send("issues", "b2d3c0de-0000-4000-8000-000000000202", fakes.GitHubIssueOpened(issue))
	conv := a.awaitThread(t, supportv1.Channel_CHANNEL_GITHUB, "github:acme/main#202")

	// Its header in the support channel.
	var header fakes.SlackMessage
	waitFor(t, 20*time.Second, "the mirror header", func() bool {
		for _, m := range slack.Posted() {
			if m.Channel == mirrorChannel && m.ThreadTS == "" && m.Metadata != nil && m.Metadata.EventPayload["conversation_id"] == conv.GetId() {
				header = m
				return true
			}
		}
		return false
	})
	if _, ok := header.Button("sidekick_assign"); !ok || !strings.Contains(string(header.Blocks), "Flags off after deploy") {
		t.Errorf("mirror header without the assign button or the subject: %s", header.Blocks)
	}
	// The issue's copy in the thread: triage has the header's ts (the
	// copy waited for it), so the thread leads to the conversation.
	waitFor(t, 20*time.Second, "the issue copied into the mirror thread", func() bool {
		for _, m := range slack.Posted() {
			if m.Channel == mirrorChannel && m.ThreadTS == header.TS && strings.Contains(m.Text, "Every flag reads as off") {
				return true
			}
		}
		return false
	})

	// The hero answers in the thread; then keeps a note there.
	secret := env["SIDEKICK_SLACK_SIGNING_SECRET"]
	now := time.Now()
	ts := fmt.Sprintf("%d.000401", now.Unix())
	if code := postSlack(t, httpAddr, secret, now.Unix(), threadEvent("Ev0MIRROR01", mirrorChannel, heroSlack, "T0DEMO", "Fixed in 1.4.2, please upgrade.", ts, header.TS, "")); code != http.StatusOK {
		t.Fatalf("mirror thread message: status %d", code)
	}
	var comment fakes.GitHubAPIComment
	waitFor(t, 20*time.Second, "the GitHub comment", func() bool {
		for _, c := range gh.Comments() {
			if c.Thread == "acme/main#202" && strings.Contains(c.Body, "Fixed in 1.4.2, please upgrade.") {
				comment = c
				return true
			}
		}
		return false
	})
	got := a.get(t, conv.GetId())
	if len(got.GetDeliveries()) != 1 {
		t.Fatalf("deliveries %v, want the one reply", got.GetDeliveries())
	}
	d := a.delivered(t, conv.GetId(), got.GetDeliveries()[0].GetOutboundId())
	if d.GetPermalink() != comment.HTMLURL {
		t.Errorf("delivery link %q, want the comment's %q", d.GetPermalink(), comment.HTMLURL)
	}
	answeredBy(t, a.get(t, conv.GetId()).GetConversation(), hero)

	ts2 := fmt.Sprintf("%d.000402", now.Unix())
	if code := postSlack(t, httpAddr, secret, now.Unix(), threadEvent("Ev0MIRROR02", mirrorChannel, heroSlack, "T0DEMO", "!note checking with platform", ts2, header.TS, "")); code != http.StatusOK {
		t.Fatalf("mirror thread note: status %d", code)
	}
	waitFor(t, 15*time.Second, "the note from the support channel", func() bool {
		return len(a.get(t, conv.GetId()).GetNotes()) == 1
	})

	// GitHub tells us of our own comment; then the customer answers.
	send("issue_comment", "b2d3c0de-0000-4000-8000-000000000203", fakes.GitHubIssueCommentCreated(issue,
		fakes.GitHubComment{ID: comment.ID, Login: "sidekick-replies[bot]", Association: "NONE", Body: comment.Body, CreatedAt: comment.CreatedAt}))
	send("issue_comment", "b2d3c0de-0000-4000-8000-000000000204", fakes.GitHubIssueCommentCreated(issue,
		fakes.GitHubComment{ID: comment.ID + 1000, Login: "jane-doe", Association: "NONE", Body: "Upgraded, all good.", CreatedAt: time.Now()}))
	waitFor(t, 15*time.Second, "the customer's comment", func() bool {
		ms := a.get(t, conv.GetId()).GetMessages()
		return len(ms) > 0 && strings.Contains(ms[len(ms)-1].GetText(), "Upgraded, all good.")
	})
	got = a.get(t, conv.GetId())
	if n := len(got.GetMessages()); n != 3 {
		t.Errorf("%d messages, want 3: the issue, the reply once, the answer", n)
	}
	if n := len(got.GetNotes()); n != 1 || !strings.Contains(got.GetNotes()[0].GetText(), "checking with platform") {
		t.Errorf("notes %v, want the one from the support channel", got.GetNotes())
	}
	if n := gh.CommentsContaining("Fixed in 1.4.2"); n != 1 || gh.CommentsContaining("checking with platform") != 0 {
		t.Errorf("GitHub got the reply %d times (want once) or the note", n)
	}
}

func slackEcho(t *testing.T, httpAddr, secret string, slack *fakes.Slack, a api, hero, heroName string) {
	now := time.Now()
	root := fmt.Sprintf("%d.000501", now.Unix())
	if code := postSlack(t, httpAddr, secret, now.Unix(), messageEvent("Ev0ECHO0001", "U0CUSTOMER1", "Is the ingestion API down?", root)); code != http.StatusOK {
		t.Fatalf("Slack message event: status %d", code)
	}
	conv := a.awaitThread(t, supportv1.Channel_CHANNEL_SLACK, "slack:T0DEMO/C0SUPPORT/"+root)
	r := a.reply(t, conv.GetId(), hero, "Not on our side; which endpoint?")
	id := r.GetDelivery().GetOutboundId()
	var posted fakes.SlackMessage
	waitFor(t, 20*time.Second, "the reply in the customer's thread", func() bool {
		for _, m := range slack.Posted() {
			if m.Metadata != nil && m.Metadata.EventPayload["outbound_id"] == id {
				posted = m
				return true
			}
		}
		return false
	})
	if posted.Channel != "C0SUPPORT" || posted.ThreadTS != root || posted.Username != heroName || posted.Metadata.EventType != "sidekick_reply" {
		t.Errorf("posted reply: channel %s thread %s as %q, metadata %v", posted.Channel, posted.ThreadTS, posted.Username, posted.Metadata)
	}
	if d := a.delivered(t, conv.GetId(), id); d.GetProviderId() != posted.TS {
		t.Errorf("delivery %v, want Slack's ts %s", d, posted.TS)
	}

	// Slack's message event of our own post, then the customer again.
	echo := threadEvent("Ev0ECHO0002", "C0SUPPORT", "", "T0DEMO", posted.Text, posted.TS, root,
		fmt.Sprintf(`"bot_id": "B0SIDEKICK", "app_id": "A0SIDEKICK", "subtype": "bot_message", "username": %q,
    "metadata": {"event_type": "sidekick_reply", "event_payload": {"outbound_id": %q}},`, heroName, id))
	if code := postSlack(t, httpAddr, secret, now.Unix(), echo); code != http.StatusOK {
		t.Fatalf("echo event: status %d", code)
	}
	again := threadEvent("Ev0ECHO0003", "C0SUPPORT", "U0CUSTOMER1", "T0ACME", "The /capture endpoint.", fmt.Sprintf("%d.000503", now.Unix()), root, "")
	if code := postSlack(t, httpAddr, secret, now.Unix(), again); code != http.StatusOK {
		t.Fatalf("customer's answer: status %d", code)
	}
	waitFor(t, 15*time.Second, "the customer's answer", func() bool {
		ms := a.get(t, conv.GetId()).GetMessages()
		return len(ms) > 0 && ms[len(ms)-1].GetText() == "The /capture endpoint."
	})
	if ms := a.get(t, conv.GetId()).GetMessages(); len(ms) != 3 {
		t.Errorf("%d messages, want 3: the question, the reply once, the answer", len(ms))
	}
}

func refusals(t *testing.T, httpAddr, sentrySecret string, slack *fakes.Slack, gh *fakes.GitHubAPI, inbox *fakes.SMTP, a api) {
	// What a reply would add; the mirror may still be posting copies of
	// earlier messages meanwhile.
	replies := func() int {
		n := 0
		for _, m := range slack.Posted() {
			if m.Metadata != nil && m.Metadata.EventType == "sidekick_reply" {
				n++
			}
		}
		return n
	}
	posts, comments, mails := replies(), len(gh.Comments()), len(inbox.Messages())
	open := a.list(t, supportv1.Channel_CHANNEL_SLACK)[0]
	wantCode := func(what string, err error, code codes.Code) {
		t.Helper()
		if status.Code(err) != code {
			t.Errorf("%s: %v, want %s", what, err, code)
		}
	}
	_, err := a.conv.Reply(rpcCtx(t), &triagev1.ReplyRequest{ConversationId: open.GetId(), Actor: "farah", Text: "  "})
	wantCode("empty reply", err, codes.InvalidArgument)
	_, err = a.conv.Reply(rpcCtx(t), &triagev1.ReplyRequest{ConversationId: "no-such-conversation", Actor: "farah", Text: "hello"})
	wantCode("reply to an unknown conversation", err, codes.NotFound)
	_, err = a.conv.Assign(rpcCtx(t), &triagev1.AssignRequest{Id: open.GetId(), Assignee: "U0NOBODY", Actor: "farah"})
	wantCode("assign to nobody", err, codes.InvalidArgument)
	if err != nil && !strings.Contains(err.Error(), "U0NOBODY") {
		t.Errorf("the refusal does not name the assignee: %v", err)
	}

	sentry := fakes.Sentry{URL: "http://" + httpAddr + "/sentry/webhook", Secret: sentrySecret}
	ev := fakes.SentryEvent{Org: "acme", Project: "api", IssueID: "4505870202", EventID: fmt.Sprintf("%032x", 202), Title: "Timeouts", Time: time.Now()}
	if code, err := sentry.Send(context.Background(), "error", "replies-202", fakes.SentryErrorCreated(ev)); err != nil || code != http.StatusOK {
		t.Fatalf("Sentry webhook: status %d, err %v", code, err)
	}
	alert := a.awaitThread(t, supportv1.Channel_CHANNEL_SENTRY, "sentry:4505870202")
	_, err = a.conv.Reply(rpcCtx(t), &triagev1.ReplyRequest{ConversationId: alert.GetId(), Actor: "farah", Text: "hello"})
	wantCode("reply to a Sentry alert", err, codes.FailedPrecondition)

	if replies() != posts || len(gh.Comments()) != comments || len(inbox.Messages()) != mails {
		t.Errorf("refused replies sent something: Slack %d→%d, GitHub %d→%d, email %d→%d",
			posts, replies(), comments, len(gh.Comments()), mails, len(inbox.Messages()))
	}
}

// threadEvent is a Slack message event in a thread (thread_ts) of a
// channel; extra is more JSON fields of the message, each followed by a
// comma (a bot's post).
func threadEvent(eventID, channel, user, userTeam, text, ts, threadTS, extra string) []byte {
	who := ""
	if user != "" {
		who = fmt.Sprintf(`"user": %q, "user_team": %q, "team": %q,`, user, userTeam, userTeam)
	}
	return []byte(fmt.Sprintf(`{
  "token": "XXYYZZ",
  "team_id": "T0DEMO",
  "api_app_id": "A0SIDEKICK",
  "event": {
    "type": "message",
    "channel": %q,
    "channel_type": "channel",
    %s %s
    "text": %q,
    "ts": %q,
    "thread_ts": %q,
    "event_ts": %q
  },
  "type": "event_callback",
  "event_id": %q,
  "event_time": %d
}`, channel, who, extra, text, ts, threadTS, ts, eventID, time.Now().Unix()))
}
