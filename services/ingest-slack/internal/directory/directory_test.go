package directory

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/services/ingest-slack/internal/slackfake"
)

// spengler is users.info's documented example user.
const spengler = `{
    "id": "W012A3CDE",
    "team_id": "T012AB3C4",
    "name": "spengler",
    "deleted": false,
    "color": "9f69e7",
    "real_name": "Egon Spengler",
    "tz": "America/Los_Angeles",
    "tz_label": "Pacific Daylight Time",
    "tz_offset": -25200,
    "profile": {
        "avatar_hash": "ge3b51ca72de",
        "status_text": "Print is dead",
        "status_emoji": ":books:",
        "real_name": "Egon Spengler",
        "display_name": "spengler",
        "real_name_normalized": "Egon Spengler",
        "display_name_normalized": "spengler",
        "email": "spengler@ghostbusters.example.com",
        "image_24": "https://.../...",
        "team": "T012AB3C4"
    },
    "is_admin": true,
    "is_owner": false,
    "is_primary_owner": false,
    "is_restricted": false,
    "is_ultra_restricted": false,
    "is_bot": false,
    "updated": 1502138686,
    "is_app_user": false,
    "has_2fa": false
}`

func TestUserCachedUntilExpiry(t *testing.T) {
	fake := slackfake.Start(t, "ghostbusters")
	fake.AddUser(spengler)
	clk := clock.NewFake(time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC))
	d := New(slack.New("xoxb-test", slack.OptionAPIURL(fake.APIURL())), Options{TTL: time.Hour, Now: clk.Now})
	ctx := context.Background()

	if _, ok := d.Cached("W012A3CDE"); ok {
		t.Fatal("Cached before any lookup")
	}
	p, cached, err := d.User(ctx, "W012A3CDE")
	if err != nil || cached {
		t.Fatalf("first lookup: %v cached=%v", err, cached)
	}
	if c, ok := d.Cached("W012A3CDE"); !ok || c != p {
		t.Fatalf("Cached after the lookup = %v, %v", c, ok)
	}
	if p.TeamID != "T012AB3C4" || p.RealName != "Egon Spengler" || p.DisplayName != "spengler" || p.Email != "spengler@ghostbusters.example.com" || p.IsRestricted || p.IsBot {
		t.Fatalf("profile = %+v", p)
	}
	if _, cached, _ := d.User(ctx, "W012A3CDE"); !cached || fake.Calls("users.info") != 1 {
		t.Fatalf("second lookup: cached=%v calls=%d", cached, fake.Calls("users.info"))
	}
	// Past the TTL and the stale window, a lookup waits for the Web API.
	clk.Advance(time.Hour + 24*time.Hour)
	if _, ok := d.Cached("W012A3CDE"); ok {
		t.Fatal("Cached a day past expiry")
	}
	if _, cached, _ := d.User(ctx, "W012A3CDE"); cached || fake.Calls("users.info") != 2 {
		t.Fatalf("a day past expiry: cached=%v calls=%d", cached, fake.Calls("users.info"))
	}
}

// A profile past its TTL is answered at once, without waiting for Slack,
// and looked up again in the background, once; the next message gets
// what Slack answered. A failed lookup keeps the stale profile and is
// tried again a minute later, not on every message.
func TestStaleUserAnsweredWhileLookedUpAgain(t *testing.T) {
	fake := slackfake.Start(t, "ghostbusters")
	fake.AddUser(spengler)
	clk := clock.NewFake(time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC))
	refreshed := make(chan error, 10)
	d := New(slack.New("xoxb-test", slack.OptionAPIURL(fake.APIURL())), Options{TTL: time.Hour, Now: clk.Now,
		Refreshed: func(err error) { refreshed <- err }})
	old, _, err := d.User(context.Background(), "W012A3CDE")
	if err != nil {
		t.Fatal(err)
	}
	fake.AddUser(strings.Replace(spengler, "spengler@ghostbusters.example.com", "egon@ghostbusters.example.com", 1))

	clk.Advance(time.Hour)
	release := fake.HoldUsers() // Slack is slow: a caller that waited would hang here
	for range 3 {
		if p, ok := d.Cached("W012A3CDE"); !ok || p != old {
			t.Fatalf("stale lookup = %+v, %v, want the cached profile at once", p, ok)
		}
	}
	release()
	if err := <-refreshed; err != nil {
		t.Fatalf("background lookup: %v", err)
	}
	if p, ok := d.Cached("W012A3CDE"); !ok || p.Email != "egon@ghostbusters.example.com" {
		t.Fatalf("after the background lookup: %+v, %v", p, ok)
	}
	if n := fake.Calls("users.info"); n != 2 {
		t.Fatalf("users.info called %d times, want 2 (one lookup, one refresh for three stale reads)", n)
	}

	clk.Advance(time.Hour)
	fake.FailUsers("ratelimited")
	if p, ok := d.Cached("W012A3CDE"); !ok || p.Email != "egon@ghostbusters.example.com" {
		t.Fatalf("stale lookup before a failing refresh: %+v, %v", p, ok)
	}
	if err := <-refreshed; err == nil {
		t.Fatal("background lookup against a failing users.info: no error")
	}
	if p, ok := d.Cached("W012A3CDE"); !ok || p.Email != "egon@ghostbusters.example.com" {
		t.Fatalf("after a failed refresh: %+v, %v, want the stale profile", p, ok)
	}
	if n := fake.Calls("users.info"); n != 3 {
		t.Fatalf("users.info called %d times after a failed refresh, want 3 (no retry within a minute)", n)
	}
	fake.FailUsers("")
	clk.Advance(time.Minute)
	d.Cached("W012A3CDE")
	if err := <-refreshed; err != nil || fake.Calls("users.info") != 4 {
		t.Fatalf("retry a minute later: %v, %d calls", err, fake.Calls("users.info"))
	}
}

func TestUserErrorsAreNotCached(t *testing.T) {
	fake := slackfake.Start(t, "ghostbusters")
	fake.AddUser(spengler)
	d := New(slack.New("xoxb-test", slack.OptionAPIURL(fake.APIURL())), Options{})
	ctx := context.Background()
	fake.FailUsers("ratelimited")
	if _, _, err := d.User(ctx, "W012A3CDE"); err == nil {
		t.Fatal("want an error")
	}
	fake.FailUsers("")
	if p, _, err := d.User(ctx, "W012A3CDE"); err != nil || p.Name != "spengler" {
		t.Fatalf("after recovery: %v %+v", err, p)
	}
	if _, _, err := d.User(ctx, "UNKNOWN"); err == nil {
		t.Fatal("unknown user: want user_not_found")
	}
}

func TestWorkspaceURL(t *testing.T) {
	fake := slackfake.Start(t, "ghostbusters")
	d := New(slack.New("xoxb-test", slack.OptionAPIURL(fake.APIURL())), Options{})
	u, err := d.WorkspaceURL(context.Background())
	if err != nil || u != "https://ghostbusters.slack.com/" {
		t.Fatalf("workspace url %q, %v", u, err)
	}
	bad := New(slack.New("xoxp-not-a-bot", slack.OptionAPIURL(fake.APIURL())), Options{})
	if u, err := bad.WorkspaceURL(context.Background()); err == nil {
		t.Fatalf("auth.test without a bot token answered %q", u)
	}
}

func TestCacheBounded(t *testing.T) {
	fake := slackfake.Start(t, "ghostbusters")
	ids := []string{"W01", "W02", "W03", "W04"}
	for _, id := range ids {
		fake.AddUser(`{"id":"` + id + `","team_id":"T012AB3C4","name":"u","profile":{}}`)
	}
	d := New(slack.New("xoxb-test", slack.OptionAPIURL(fake.APIURL())), Options{MaxEntries: 2})
	ctx := context.Background()
	for _, id := range ids {
		if _, _, err := d.User(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	d.mu.Lock()
	n := len(d.users)
	d.mu.Unlock()
	if n > 2 {
		t.Fatalf("cache holds %d entries, bound 2", n)
	}
}
