package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/sidekick/fakes"
)

// TestAlertsStayOutOfTheSupportChannel: with a support channel configured,
// a Sentry alert is paged to its team's secondary and gets no thread in
// the customer support channel (the handbook gives Sentry errors to the
// secondary, not to the customers' channel), while a customer's email
// that comes after it does get its thread there: the mirror is on, and
// the alert passed it by.
func TestAlertsStayOutOfTheSupportChannel(t *testing.T) {
	slack := fakes.NewSlack("sidekick-demo", "T0DEMO")
	t.Cleanup(slack.Close)
	stack, _ := startStack(t,
		"SIDEKICK_SLACK_BOT_TOKEN=xoxb-e2e-alert-mirror",
		"SIDEKICK_SLACK_API_URL="+slack.APIURL(),
		"SIDEKICK_SUPPORT_CHANNEL="+mirrorChannel,
		"SIDEKICK_SENTRY_COALESCE_INTERVAL=100ms",
		"SIDEKICK_SENTRY_OWNERSHIP=api=platform",
	)
	if stack.Inbox == nil {
		t.Fatal("the dev stack started no customer inbox")
	}
	a := dialStack(t, stack)
	const title = "StripeTimeout: Request to Stripe timed out after 30s"
	sentry := fakes.Sentry{URL: "http://" + stack.HTTPAddr + "/sentry/webhook", Secret: stack.Env["SIDEKICK_SENTRY_CLIENT_SECRET"]}
	ev := fakes.SentryEvent{Org: "acme", Project: "api", IssueID: "4510000077", EventID: fmt.Sprintf("%032x", 77), Title: title, Time: time.Now()}
	if code, err := sentry.Send(context.Background(), "error", "mirror-77", fakes.SentryErrorCreated(ev)); err != nil || code != http.StatusOK {
		t.Fatalf("Sentry webhook: status %d, err %v", code, err)
	}
	var alert *supportv1.Conversation
	waitFor(t, time.Minute, "the alert", func() bool {
		alert = a.byThread(t, supportv1.Channel_CHANNEL_SENTRY, "sentry:"+ev.IssueID)
		return alert != nil
	})
	if page := awaitSlackPage(t, slack, alert.GetId()); page.Channel == mirrorChannel {
		t.Errorf("the page went to the support channel, not to the secondary")
	}

	// A customer writes after the alert was opened: its thread in the
	// support channel comes after anything the alert's opening would have
	// posted there.
	msg := rawEmail("Dana <dana@example.org>", "support@sidekick.test", "Export is slow",
		"<mirror-after-alert@example.org>", time.Now(), "Our cohort export takes an hour.")
	if err := fakes.SendMail(stack.SMTPAddr, "dana@example.org", []string{"support@sidekick.test"}, msg); err != nil {
		t.Fatalf("send email: %v", err)
	}
	waitFor(t, time.Minute, "the email's thread in the support channel", func() bool {
		for _, m := range slack.Posted() {
			if m.Channel == mirrorChannel && m.ThreadTS == "" && strings.Contains(m.Text+string(m.Blocks), "Export is slow") {
				return true
			}
		}
		return false
	})
	for _, m := range slack.Posted() {
		if m.Channel != mirrorChannel {
			continue
		}
		if (m.Metadata != nil && m.Metadata.EventPayload["conversation_id"] == alert.GetId()) || strings.Contains(m.Text+string(m.Blocks), title) {
			t.Errorf("the alert was posted in the support channel: %q", m.Text)
		}
	}
}
