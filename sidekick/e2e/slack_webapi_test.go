package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/sidekick/fakes"
)

// TestSlackThroughTheWebAPI runs Slack both ways through a fake of its Web
// API: ingest-slack looks the customer up with users.info and the message
// link from the workspace's URL, asked once with auth.test (no Web API
// call per event for it); the notifier DMs the hero with
// chat.postMessage, buttons included; clicking Acknowledge in that DM
// acknowledges the notification, and the notifier rewrites the DM with
// chat.update, without its buttons. Nothing goes to the console.
func TestSlackThroughTheWebAPI(t *testing.T) {
	slack := slackWithCustomer(t)
	stack, console := startStack(t,
		"SIDEKICK_SLACK_BOT_TOKEN=xoxb-e2e-0000-token",
		"SIDEKICK_SLACK_API_URL="+slack.APIURL(),
	)
	a := dialStack(t, stack)
	a.addCustomer(t, acmeSubscriber)
	hero := a.heroNow(t)
	secret := stack.Env["SIDEKICK_SLACK_SIGNING_SECRET"]
	now := time.Now()

	ts := fmt.Sprintf("%d.000300", now.Unix())
	if code := postSlack(t, stack.HTTPAddr, secret, now.Unix(), messageEvent("Ev0WEBAPI01", "U0CUSTOMER1", "Session recordings are blank", ts)); code != http.StatusOK {
		t.Fatalf("Slack message event: want 200, got %d", code)
	}

	// The hero's DM, with the buttons.
	var dm fakes.SlackMessage
	waitFor(t, 15*time.Second, "the DM to the hero", func() bool {
		for _, m := range slack.Posted() {
			if m.Target == hero.GetSlackId() {
				dm = m
				return true
			}
		}
		return false
	})
	ack, convID, notifID := ackButton(t, dm)

	// The conversation carries what the Web API said.
	c := a.get(t, convID).GetConversation()
	wantLink := "https://sidekick-demo.slack.com/archives/C0SUPPORT/p" + strings.ReplaceAll(ts, ".", "")
	if c.GetPermalink() != wantLink || c.GetAuthor().GetName() != "Wile E. Coyote" || c.GetAuthor().GetRole() != supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER ||
		c.GetTier() != supportv1.Tier_TIER_SUBSCRIBER {
		t.Errorf("conversation: permalink %q (want %q), author %q %s, tier %s",
			c.GetPermalink(), wantLink, c.GetAuthor().GetName(), c.GetAuthor().GetRole(), c.GetTier())
	}
	if slack.Calls("users.info") == 0 || slack.Calls("auth.test") == 0 || slack.Calls("chat.getPermalink") != 0 {
		t.Errorf("ingest-slack's Web API calls: users.info %d (want some), auth.test %d (want some), chat.getPermalink %d (want none)",
			slack.Calls("users.info"), slack.Calls("auth.test"), slack.Calls("chat.getPermalink"))
	}

	// The hero clicks Acknowledge in the DM.
	click := blockActions("T0DEMO", hero.GetSlackId(), hero.GetId(), dm.Channel, dm.TS, ack.ActionID, ack.Value, fmt.Sprintf("%d.654321", now.Unix()))
	if code := postInteraction(t, stack.HTTPAddr, secret, click); code != http.StatusOK {
		t.Fatalf("block_actions: want 200, got %d", code)
	}
	checkAcknowledged(t, a, stack, notifID, convID, hero.GetSlackId(), hero.GetId())
	waitFor(t, 15*time.Second, "the DM to be rewritten without buttons", func() bool {
		for _, u := range slack.Updated() {
			if u.Channel == dm.Channel && u.TS == dm.TS && len(u.Buttons()) == 0 {
				return true
			}
		}
		return false
	})
	if pings := conversationPings(console.String()); len(pings) != 0 {
		t.Errorf("Slack delivered the ping, yet the console shows %+v", pings)
	}
}

// ackButton returns the Acknowledge button of a Slack message from the
// notifier and the conversation and notification its value names.
func ackButton(t *testing.T, m fakes.SlackMessage) (b fakes.SlackButton, conv, notif string) {
	t.Helper()
	b, ok := m.Button("sidekick_ack")
	if !ok {
		t.Fatalf("the message has no Acknowledge button: %s", m.Blocks)
	}
	if conv, notif, ok = parseButtonValue(b.Value); !ok {
		t.Fatalf("button value %q is not conv:<id>|notif:<id>", b.Value)
	}
	return b, conv, notif
}

// parseButtonValue reads "conv:<id>|notif:<id>".
func parseButtonValue(v string) (conv, notif string, ok bool) {
	c, n, found := strings.Cut(v, "|")
	conv, okc := strings.CutPrefix(c, "conv:")
	notif, okn := strings.CutPrefix(n, "notif:")
	return conv, notif, found && okc && okn && conv != "" && notif != ""
}

// slackWithCustomer is a fake Slack workspace whose users.info knows the
// customer U0CUSTOMER1 (of another workspace, through Slack Connect).
func slackWithCustomer(t *testing.T) *fakes.Slack {
	t.Helper()
	slack := fakes.NewSlack("sidekick-demo", "T0DEMO")
	t.Cleanup(slack.Close)
	if err := slack.AddUser(`{"id":"U0CUSTOMER1","team_id":"T0ACME","name":"wile","real_name":"Wile E. Coyote",
		"is_bot":false,"profile":{"real_name":"Wile E. Coyote","display_name":"wile","email":"wile@acme.example"}}`); err != nil {
		t.Fatal(err)
	}
	return slack
}
