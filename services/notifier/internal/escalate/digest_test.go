package escalate

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	"github.com/sidekickhq/sidekick/services/notifier/internal/deliver"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
	"github.com/sidekickhq/sidekick/services/notifier/internal/policy"
	"github.com/sidekickhq/sidekick/services/notifier/internal/store"
)

var communityDigest = &policy.Policy{ID: "community-new", Digest: &policy.Digest{Every: 4 * time.Hour, To: policy.Target{Kind: policy.Hero}}}

// TestDigestItem: what a conversation adds to its digest, and which
// digest it goes out in.
func TestDigestItem(t *testing.T) {
	at := time.Date(2026, 3, 2, 10, 7, 0, 0, time.UTC)
	trigger := Trigger{Key: "conversation.opened/ev-1", ConversationID: "conv-1", Title: "new Community conversation from Jane",
		Text: "  How do I self-host?\nI tried the chart.", Links: []notify.Link{{Title: "Open in Slack", URL: "https://slack/1"}, {URL: "https://sidekick/c/1"}}, At: at}
	for _, tc := range []struct {
		name  string
		t     Trigger
		every time.Duration
		want  store.DigestItem
	}{
		{"the title with the text's first line, the first link, the next 4-hourly slot", trigger, 0, store.DigestItem{
			Key: "conversation.opened/ev-1", PolicyID: "community-new", Target: "hero", DueAt: time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC),
			ConversationID: "conv-1", Title: "new Community conversation from Jane: How do I self-host?", Link: "https://slack/1", AddedAt: at}},
		{"SIDEKICK_NOTIFIER_DIGEST_EVERY replaces the policy's interval", trigger, 10 * time.Second, store.DigestItem{
			Key: "conversation.opened/ev-1", PolicyID: "community-new", Target: "hero", DueAt: at.Add(10 * time.Second),
			ConversationID: "conv-1", Title: "new Community conversation from Jane: How do I self-host?", Link: "https://slack/1", AddedAt: at}},
		{"no text, no link", Trigger{Key: "k", ConversationID: "c", Title: "t", At: time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)}, 0, store.DigestItem{
			Key: "k", PolicyID: "community-new", Target: "hero", DueAt: time.Date(2026, 3, 2, 16, 0, 0, 0, time.UTC),
			ConversationID: "c", Title: "t", AddedAt: time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)}},
	} {
		if got := digestItem(tc.t, communityDigest, tc.every); got != tc.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
}

// TestDigestRequest: what a digest says, whom it goes to, and its key.
func TestDigestRequest(t *testing.T) {
	due := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	hero := []deliver.Target{{Role: rotationv1.Role_ROLE_HERO}}
	items := []store.DigestItem{
		{Title: "new Community conversation from Jane: How do I self-host?", Link: "https://slack/1"},
		{Title: "new Community conversation from Joe: Feature idea"},
	}
	rs := digestRequests("community-new", "hero", due, items, hero, "")
	if len(rs) != 1 {
		t.Fatalf("%d parts, want 1", len(rs))
	}
	r := rs[0]
	if r.IdempotencyKey != "digest/community-new/hero/1772452800" || r.Origin != "digest" || r.Urgency != notify.Ping || !r.Lenient ||
		len(r.Targets) != 1 || r.Targets[0].Role != rotationv1.Role_ROLE_HERO {
		t.Errorf("request = %+v", r)
	}
	if r.Title != "digest: 2 new conversations" {
		t.Errorf("title = %q", r.Title)
	}
	want := "• new Community conversation from Jane: How do I self-host? — https://slack/1\n• new Community conversation from Joe: Feature idea"
	if r.Text != want {
		t.Errorf("text =\n%s\nwant\n%s", r.Text, want)
	}
	if one := digestRequests("community-new", "hero", due, items[1:], hero, "")[0]; one.Title != "digest: 1 new conversation" ||
		one.Text != "• new Community conversation from Joe: Feature idea" {
		t.Errorf("one item: %q %q", one.Title, one.Text)
	}
	if other := digestRequests("community-new", "hero", due.Add(4*time.Hour), items, hero, "")[0]; other.IdempotencyKey == r.IdempotencyKey {
		t.Errorf("two slots share the key %s", r.IdempotencyKey)
	}
}

// A digest of many conversations goes out in parts of digestLines, each
// title cut, each part a message Slack takes (3,000 characters of
// section text) and every conversation listed once, not 129 lines in one
// section that Slack refuses.
func TestLongDigestGoesOutInParts(t *testing.T) {
	var items []store.DigestItem
	for i := range 129 {
		items = append(items, store.DigestItem{Title: fmt.Sprintf("new Community conversation c%03d: %s", i, strings.Repeat("long subject ", 40)),
			Link: fmt.Sprintf("https://acme.slack.com/archives/C1/p17000000000%05d", i)})
	}
	due := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	rs := digestRequests("community-new", "hero", due, items, nil, "https://sidekick.example.com/console/")
	if len(rs) != 11 {
		t.Fatalf("%d parts, want 11 of up to %d", len(rs), digestLines)
	}
	listed := map[string]int{}
	for i, r := range rs {
		if want := fmt.Sprintf("digest: 129 new conversations (%d of 11)", i+1); r.Title != want {
			t.Errorf("title %q, want %q", r.Title, want)
		}
		if want := DigestKey("community-new", "hero", due, i+1); r.IdempotencyKey != want {
			t.Errorf("part %d key %q, want %q", i+1, r.IdempotencyKey, want)
		}
		if n := utf8.RuneCountInString(r.Title + r.Text); n > 2600 {
			t.Errorf("part %d: %d characters, over what a Slack section holds with its header", i+1, n)
		}
		if len(r.Links) != 1 || r.Links[0].URL != "https://sidekick.example.com/console/" {
			t.Errorf("links = %+v, want the queue", r.Links)
		}
		for _, c := range regexp.MustCompile(`conversation (c\d{3})`).FindAllStringSubmatch(r.Text, -1) {
			listed[c[1]]++
		}
	}
	if len(listed) != 129 {
		t.Errorf("%d conversations listed, want 129", len(listed))
	}
	for c, n := range listed {
		if n != 1 {
			t.Errorf("%s listed %d times", c, n)
		}
	}
	if DigestKey("community-new", "hero", due, 1) != "digest/community-new/hero/1772452800" {
		t.Errorf("the first part's key changed: %s", DigestKey("community-new", "hero", due, 1))
	}
}
