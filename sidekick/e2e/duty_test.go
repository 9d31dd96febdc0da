package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
)

// dutyOrg: bob (London, 09:00-17:30) is hero the week of 2 March 2026;
// dmitri (Tokyo, 10:00-18:00, which is 01:00-09:00 London in March) is on
// the hero rotation too, off duty that week; no catchers. Subscribers
// follow the default (the hero on duty), Priority runs around the clock,
// and the Community tier keeps the whole roster's hours, as every tier did
// before (issue 17).
const dutyOrg = `
people:
  - {id: bob, name: Bob Brown, email: bob@example.com, slack: U0BOB, team: support,
     timezone: Europe/London, working_hours: "Mon-Fri 09:00-17:30"}
  - {id: dmitri, name: Dmitri Dunn, email: dmitri@example.com, slack: U0DMITRI, team: support,
     timezone: Asia/Tokyo, working_hours: "Mon-Fri 10:00-18:00"}
rotations:
  - {id: hero, type: weekly, length: 1, start: "2026-03-02 09:00", timezone: Europe/London, participants: [bob, dmitri]}
  - {id: support-secondary, type: weekly, length: 1, start: "2026-03-02 09:00", timezone: Europe/London, participants: [dmitri, bob]}
teams:
  - {id: support, name: Support, secondary: support-secondary}
support: {hero: hero, hero_is_team_secondary: true, catchers: false}
policies:
  - {tier: priority, coverage: always}
  - {tier: community, coverage: roster}
`

// TestDeadlinesFollowTheHeroOnDuty: at 02:00 London on a Tuesday, while
// the hero sleeps and his off-duty colleague in Tokyo works, three
// customers write. The Subscriber's first-response clock waits for the
// hero's morning: its first threshold (great, 15 minutes) falls at 09:15,
// and moving the clock to 08:59 passes nothing. The Priority customer's
// clock runs around the clock (02:15), and the Community one's in the
// roster's hours, the Tokyo colleague's included (02:15). At 09:16 the
// Subscriber's great deadline has passed.
func TestDeadlinesFollowTheHeroOnDuty(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	night := time.Date(2026, 3, 3, 2, 0, 0, 0, london)
	path := filepath.Join(t.TempDir(), "duty.yaml")
	if err := os.WriteFile(path, []byte(dutyOrg), 0o644); err != nil {
		t.Fatal(err)
	}
	stack, _ := startStackAt(t, night, "SIDEKICK_ORG_CONFIG="+path)
	a := dialStack(t, stack.Stack)
	a.addCustomer(t, acmeSubscriber)
	a.addCustomer(t, &triagev1.Customer{Id: "globex", Name: "Globex", Organisation: "Globex", Plan: "enterprise", SlackUserIds: []string{"U0CUSTOMER2"}})
	if hero := a.heroNow(t); hero.GetId() != "bob" {
		t.Fatalf("hero on duty %s, want bob", hero.GetId())
	}

	secret := stack.Env["SIDEKICK_SLACK_SIGNING_SECRET"]
	now := stack.Clock.Now()
	authors := map[string]supportv1.Tier{
		"U0CUSTOMER1": supportv1.Tier_TIER_SUBSCRIBER,
		"U0CUSTOMER2": supportv1.Tier_TIER_PRIORITY,
		"U0STRANGER1": supportv1.Tier_TIER_COMMUNITY,
	}
	i := 0
	for user := range authors {
		i++
		ts := fmt.Sprintf("%d.%06d", now.Unix(), 100+i)
		if code := postSlack(t, stack.HTTPAddr, secret, now.Unix(), messageEvent(fmt.Sprintf("Ev0DUTY%04d", i), user, "Our exports fail since last night", ts)); code != http.StatusOK {
			t.Fatalf("Slack message from %s: want 200, got %d", user, code)
		}
	}
	byTier := map[supportv1.Tier]*supportv1.Conversation{}
	waitFor(t, 30*time.Second, "three conversations with their deadlines", func() bool {
		clear(byTier)
		for _, c := range a.list(t, supportv1.Channel_CHANNEL_SLACK) {
			if c.GetNextDeadlineAt() != nil && c.GetTier() == authors[c.GetAuthor().GetId()] {
				byTier[c.GetTier()] = c
			}
		}
		return len(byTier) == 3
	})
	at := func(h, m int) time.Time { return time.Date(2026, 3, 3, h, m, 0, 0, london) }
	for tier, want := range map[supportv1.Tier]time.Time{
		supportv1.Tier_TIER_SUBSCRIBER: at(9, 15), // the hero's morning
		supportv1.Tier_TIER_PRIORITY:   at(2, 15), // around the clock
		supportv1.Tier_TIER_COMMUNITY:  at(2, 15), // the roster: dmitri works
	} {
		// (The Slack ts carries microseconds; the clock starts at them.)
		if got := byTier[tier].GetNextDeadlineAt().AsTime().Truncate(time.Second); !got.Equal(want) {
			t.Errorf("%s: first threshold at %s, want %s", tier, got.In(london).Format("Mon 15:04"), want.Format("Mon 15:04"))
		}
	}

	// 08:59: the Priority clock has run for 6h59m (late: past okay at
	// 03:00); the Subscriber's has not started.
	level := func(tier supportv1.Tier) supportv1.DeadlineLevel {
		return a.get(t, byTier[tier].GetId()).GetConversation().GetDeadlineLevel()
	}
	stack.advanceUntil(t, at(8, 59).Sub(stack.Clock.Now()), "the Priority conversation late", func() bool {
		return level(supportv1.Tier_TIER_PRIORITY) == supportv1.DeadlineLevel_DEADLINE_LEVEL_LATE
	})
	if l := level(supportv1.Tier_TIER_SUBSCRIBER); l != supportv1.DeadlineLevel_DEADLINE_LEVEL_GREAT {
		t.Errorf("Subscriber at %s: %s, want great (the hero's day has not begun)", stack.Clock.Now().In(london).Format("15:04:05"), l)
	}
	// 09:16: 16 minutes of the hero's day.
	stack.advanceUntil(t, at(9, 16).Sub(stack.Clock.Now()), "the Subscriber's great deadline to pass", func() bool {
		return level(supportv1.Tier_TIER_SUBSCRIBER) == supportv1.DeadlineLevel_DEADLINE_LEVEL_OKAY
	})
	if got := a.get(t, byTier[supportv1.Tier_TIER_SUBSCRIBER].GetId()).GetConversation().GetNextDeadlineAt().AsTime().Truncate(time.Second); !got.Equal(at(10, 0)) {
		t.Errorf("Subscriber's okay deadline %s, want 10:00 (an hour of the hero's day)", got.In(london).Format("15:04"))
	}
}
