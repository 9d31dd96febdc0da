package escalate

import (
	"testing"
	"time"

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
	r := digestRequest("community-new", "hero", due, items, hero)
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
	if one := digestRequest("community-new", "hero", due, items[1:], hero); one.Title != "digest: 1 new conversation" ||
		one.Text != "• new Community conversation from Joe: Feature idea" {
		t.Errorf("one item: %q %q", one.Title, one.Text)
	}
	if other := digestRequest("community-new", "hero", due.Add(4*time.Hour), items, hero); other.IdempotencyKey == r.IdempotencyKey {
		t.Errorf("two slots share the key %s", r.IdempotencyKey)
	}
}
