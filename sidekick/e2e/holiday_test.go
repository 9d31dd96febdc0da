package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

// holidayOrg: bob, alone on the hero rotation in London (09:00-17:30),
// keeps England's public holidays (holidays: GB); no catchers.
const holidayOrg = `
people:
  - {id: bob, name: Bob Brown, email: bob@example.com, slack: U0BOB, team: support,
     timezone: Europe/London, working_hours: "Mon-Fri 09:00-17:30", holidays: GB}
rotations:
  - {id: hero, type: weekly, length: 1, start: "2026-03-02 09:00", timezone: Europe/London, participants: [bob]}
  - {id: support-secondary, type: weekly, length: 1, start: "2026-03-02 09:00", timezone: Europe/London, participants: [bob]}
teams:
  - {id: support, name: Support, secondary: support-secondary}
support: {hero: hero, hero_is_team_secondary: true, catchers: false}
`

// TestAHolidayMovesADeadline, through the whole stack on the fake clock: a
// Subscriber writes on Thursday 2 April 2026 at 17:20 London, ten minutes
// before the hero's day ends. Good Friday and Easter Monday are public
// holidays in England, so the first-response clock's remaining five
// minutes of the great threshold run on Tuesday morning: 09:05 on 7 April,
// not 09:05 on Friday. At Friday noon nothing has passed; at 09:06 on
// Tuesday the great deadline has.
func TestAHolidayMovesADeadline(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	at := func(day, h, m int) time.Time { return time.Date(2026, 4, day, h, m, 0, 0, london) }
	path := filepath.Join(t.TempDir(), "holiday.yaml")
	if err := os.WriteFile(path, []byte(holidayOrg), 0o644); err != nil {
		t.Fatal(err)
	}
	stack, _ := startStackAt(t, at(2, 17, 20), "SIDEKICK_ORG_CONFIG="+path)
	a := dialStack(t, stack.Stack)
	a.addCustomer(t, acmeSubscriber)

	secret := stack.Env["SIDEKICK_SLACK_SIGNING_SECRET"]
	now := stack.Clock.Now()
	if code := postSlack(t, stack.HTTPAddr, secret, now.Unix(),
		messageEvent("Ev0HOLIDAY01", "U0CUSTOMER1", "Exports fail before the long weekend", fmt.Sprintf("%d.000100", now.Unix()))); code != http.StatusOK {
		t.Fatalf("Slack message: want 200, got %d", code)
	}
	var conv *supportv1.Conversation
	waitFor(t, 30*time.Second, "the Subscriber conversation with its deadline", func() bool {
		for _, c := range a.list(t, supportv1.Channel_CHANNEL_SLACK) {
			if c.GetTier() == supportv1.Tier_TIER_SUBSCRIBER && c.GetNextDeadlineAt() != nil {
				conv = c
				return true
			}
		}
		return false
	})
	// (The Slack ts carries microseconds; the clock starts at them.)
	if got := conv.GetNextDeadlineAt().AsTime().Truncate(time.Second); !got.Equal(at(7, 9, 5)) {
		t.Fatalf("great deadline %s, want Tue 7 Apr 09:05 (Good Friday and Easter Monday are holidays)", got.In(london).Format("Mon 2 Jan 15:04"))
	}
	level := func() supportv1.DeadlineLevel { return a.get(t, conv.GetId()).GetConversation().GetDeadlineLevel() }
	stack.Clock.Advance(at(3, 12, 0).Sub(stack.Clock.Now()))
	if l := level(); l != supportv1.DeadlineLevel_DEADLINE_LEVEL_GREAT {
		t.Errorf("Good Friday noon: %s, want great (the clock stands still on a holiday)", l)
	}
	stack.advanceUntil(t, at(7, 9, 6).Sub(stack.Clock.Now()), "the great deadline to pass on Tuesday", func() bool {
		return level() == supportv1.DeadlineLevel_DEADLINE_LEVEL_OKAY
	})
}
