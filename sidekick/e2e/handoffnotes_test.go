package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/sidekick/fakes"
)

// An hour before the hero's week ends the outgoing hero gets, as a Slack
// DM, the open conversations that still lack a handoff note (subject,
// customer, tier, deadline), once; a conversation with its note and a
// business proposal are not in it.
func TestOutgoingHeroIsToldWhichConversationsLackANote(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	// Monday 2 March 2026, 07:30 London: bob's week as hero ends at
	// 09:00, when carol's starts.
	monday := time.Date(2026, 3, 2, 7, 30, 0, 0, london)
	slack := fakes.NewSlack("sidekick-demo", "T0DEMO")
	t.Cleanup(slack.Close)
	stack, _ := startStackAt(t, monday,
		"SIDEKICK_ORG_CONFIG="+orgFile(t, ""),
		"SIDEKICK_SLACK_BOT_TOKEN=xoxb-e2e-0000-token",
		"SIDEKICK_SLACK_API_URL="+slack.APIURL(),
	)
	a := dialStack(t, stack.Stack)
	a.addCustomer(t, acmeSubscriber)
	secret := stack.Env["SIDEKICK_SLACK_SIGNING_SECRET"]
	t.Cleanup(func() {
		if t.Failed() {
			for _, m := range slack.Posted() {
				t.Logf("slack %s to %s: %q %s", m.Method, m.Target, m.Text, m.Blocks)
			}
		}
	})
	post := func(n int, user, subject string) {
		t.Helper()
		now := stack.Clock.Now()
		ts := fmt.Sprintf("%d.%06d", now.Unix(), n)
		if code := postSlack(t, stack.HTTPAddr, secret, now.Unix(), messageEvent(fmt.Sprintf("Ev0HANDOFF%04d", n), user, subject, ts)); code != http.StatusOK {
			t.Fatalf("Slack message: want 200, got %d", code)
		}
	}
	open := func(n int, user, subject string) *supportv1.Conversation {
		t.Helper()
		post(n, user, subject)
		var conv *supportv1.Conversation
		waitFor(t, 30*time.Second, "the conversation "+subject, func() bool {
			for _, c := range a.list(t, supportv1.Channel_CHANNEL_SLACK) {
				if c.GetSubject() == subject {
					conv = c
					return true
				}
			}
			return false
		})
		return conv
	}
	without := open(1, "U0CUSTOMER1", "Exports fail since the upgrade")
	noted := open(2, "U0CUSTOMER1", "Funnels show no data for yesterday")
	// A business proposal: the business contact (Dana) is told.
	post(3, "U0CUSTOMER2", "Partnership proposal: co marketing and sponsorship for your partner program")
	waitFor(t, 30*time.Second, "the proposal to reach the business contact", func() bool {
		return slices.ContainsFunc(slack.Posted(), func(m fakes.SlackMessage) bool {
			return m.Target == "U0DANA" && strings.Contains(string(m.Blocks), "Partnership proposal")
		})
	})
	if _, err := a.conv.AddNote(rpcCtx(t), &triagev1.AddNoteRequest{Id: noted.GetId(), Text: "waiting for their logs", Handoff: true, Actor: "bob"}); err != nil {
		t.Fatal(err)
	}

	// reminders are the DMs to bob about handoff notes.
	reminders := func() []fakes.SlackMessage {
		var out []fakes.SlackMessage
		for _, m := range slack.Posted() {
			if m.Target == "U0BOB" && strings.Contains(m.Text, "handoff note") {
				out = append(out, m)
			}
		}
		return out
	}
	// 07:55: more than an hour to go, nothing yet.
	stack.Clock.Advance(25 * time.Minute)
	time.Sleep(time.Second) // the loop's check at 07:55 (nothing to find here proves little, see below)
	if n := len(reminders()); n != 0 {
		t.Fatalf("%d reminders more than an hour before the handoff", n)
	}
	stack.advanceUntil(t, 6*time.Minute, "bob's reminder", func() bool { return len(reminders()) == 1 })
	r := reminders()[0]
	body := r.Text + string(r.Blocks)
	for _, want := range []string{"1 open conversation lacks a handoff note", without.GetSubject(), "subscriber", "Acme", "next deadline"} {
		if !strings.Contains(body, want) {
			t.Errorf("the reminder lacks %q: %s", want, body)
		}
	}
	for _, not := range []string{noted.GetSubject(), "Partnership proposal"} {
		if strings.Contains(body, not) {
			t.Errorf("the reminder lists %q: %s", not, body)
		}
	}
	// Later checks before the handoff send nothing more.
	stack.Clock.Advance(10 * time.Minute)
	time.Sleep(2 * time.Second)
	if n := len(reminders()); n != 1 {
		t.Errorf("%d reminders, want 1", n)
	}
}
