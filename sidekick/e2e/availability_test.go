package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	notifyv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/notify/v1"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	"github.com/sidekickhq/sidekick/sidekick/devstack"
	"github.com/sidekickhq/sidekick/sidekick/fakes"
)

// The person shown as on call is the person who gets paged: with the hero
// on time off, a page to the hero reaches the backup rotation names, at
// the wire (a Slack DM and a PagerDuty incident), and never the hero; at
// 03:00 for the hero, a ping reaches a catcher at work and a page the hero.
func TestPageFollowsAvailability(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	// Tuesday 3 March 2026, 10:00 London: carol's week as hero, and she is
	// at a conference all week.
	tuesday := time.Date(2026, 3, 3, 10, 0, 0, 0, london)
	carolLine := `timezone: Europe/Berlin, working_hours: "Mon-Fri 09:00-17:00"}`
	org := strings.Replace(string(devstack.DemoOrg), carolLine,
		`timezone: Europe/Berlin, working_hours: "Mon-Fri 09:00-17:00", time_off: [{start: "2026-03-02", end: "2026-03-06", note: conference}]}`, 1)
	if org == string(devstack.DemoOrg) {
		t.Fatal("the demo organisation changed: carol's line not found")
	}
	path := filepath.Join(t.TempDir(), "sidekick.yaml")
	if err := os.WriteFile(path, []byte(org), 0o644); err != nil {
		t.Fatal(err)
	}
	slack := fakes.NewSlack("sidekick-demo", "T0DEMO")
	t.Cleanup(slack.Close)
	pd := fakes.NewPagerDuty("e2e-routing-key")
	t.Cleanup(pd.Close)
	stack, _ := startStackAt(t, tuesday,
		"SIDEKICK_ORG_CONFIG="+path,
		"SIDEKICK_SLACK_BOT_TOKEN=xoxb-e2e-0000-token",
		"SIDEKICK_SLACK_API_URL="+slack.APIURL(),
		"SIDEKICK_PAGERDUTY_ROUTING_KEY=e2e-routing-key",
		"SIDEKICK_PAGERDUTY_URL="+pd.URL(),
	)
	a := dialStack(t, stack.Stack)
	who, err := a.rotation.WhoIsOnCall(rpcCtx(t), &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_HERO})
	if err != nil {
		t.Fatal(err)
	}
	if who.GetOnCall().GetPerson().GetId() != "carol" || !who.GetGap() ||
		who.GetOnCall().GetAvailability() != rotationv1.Availability_AVAILABILITY_TIME_OFF {
		t.Fatalf("carol on time off as hero: %v", who)
	}
	backup := who.GetHigh().GetReceiver().GetPerson()
	if backup.GetId() == "" || backup.GetId() == "carol" {
		t.Fatalf("a page reaches %q: %v", backup.GetId(), who.GetHigh())
	}
	if _, err := a.notifier.Notify(rpcCtx(t), &notifyv1.NotifyRequest{
		IdempotencyKey: "e2e-page-the-hero", Urgency: notifyv1.Urgency_URGENCY_HIGH, Title: "the database is on fire",
		Recipients: []*notifyv1.Recipient{{Target: &notifyv1.Recipient_Role{Role: &notifyv1.RoleTarget{Role: "hero"}}}},
	}); err != nil {
		t.Fatal(err)
	}
	stack.advanceUntil(t, 0, "the page to reach "+backup.GetId(), func() bool {
		dm := slices.ContainsFunc(slack.Posted(), func(m fakes.SlackMessage) bool {
			return m.Target == backup.GetSlackId() && strings.Contains(m.Text, "the database is on fire")
		})
		paged := slices.ContainsFunc(pd.Events(), func(e fakes.PagerDutyEvent) bool {
			return e.EventAction == "trigger" && strings.HasSuffix(e.DedupKey, "-"+backup.GetId())
		})
		return dm && paged
	})
	for _, m := range slack.Posted() {
		if m.Target == "U0CAROL" {
			t.Errorf("carol, on time off, got %s %q", m.Method, m.Text)
		}
	}
	for _, e := range pd.Events() {
		if strings.HasSuffix(e.DedupKey, "-carol") {
			t.Errorf("carol, on time off, was paged: %+v", e)
		}
	}

	// A week later, Tuesday 03:00 London: eve, in Los Angeles, is the
	// hero and outside her working hours; catchers in Tokyo and Sydney are
	// at work. A ping goes to the catcher rotation names, a page wakes eve.
	night := time.Date(2026, 3, 10, 3, 0, 0, 0, london)
	stack.Clock.Advance(night.Sub(stack.Clock.Now()))
	who, err = a.rotation.WhoIsOnCall(rpcCtx(t), &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_HERO})
	if err != nil {
		t.Fatal(err)
	}
	hero, catcher := who.GetOnCall().GetPerson(), who.GetLow().GetReceiver()
	if hero.GetId() != "eve" || who.GetHigh().GetReceiver().GetPerson().GetId() != "eve" ||
		catcher.GetReason() != rotationv1.Reason_REASON_CATCHER || catcher.GetPerson().GetId() == "eve" {
		t.Fatalf("at night: %v", who)
	}
	for key, u := range map[string]notifyv1.Urgency{"e2e-night-ping": notifyv1.Urgency_URGENCY_LOW, "e2e-night-page": notifyv1.Urgency_URGENCY_HIGH} {
		if _, err := a.notifier.Notify(rpcCtx(t), &notifyv1.NotifyRequest{
			IdempotencyKey: key, Urgency: u, Title: key,
			Recipients: []*notifyv1.Recipient{{Target: &notifyv1.Recipient_Role{Role: &notifyv1.RoleTarget{Role: "hero"}}}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	sentTo := func(slackID, title string) bool {
		return slices.ContainsFunc(slack.Posted(), func(m fakes.SlackMessage) bool {
			return m.Target == slackID && strings.Contains(m.Text, title)
		})
	}
	stack.advanceUntil(t, 0, "the night's ping and page", func() bool {
		return sentTo(catcher.GetPerson().GetSlackId(), "e2e-night-ping") && sentTo(hero.GetSlackId(), "e2e-night-page")
	})
	if sentTo(hero.GetSlackId(), "e2e-night-ping") || sentTo(catcher.GetPerson().GetSlackId(), "e2e-night-page") {
		t.Errorf("the ping reached eve or the page the catcher: %v", slack.Posted())
	}
}
