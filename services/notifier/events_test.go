package notifier

import (
	"testing"
	"time"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/notifier/internal/policy"
)

func TestOpenedTrigger(t *testing.T) {
	ev := opened("ev-1", "conv-1", time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC))
	ev.Conversation.ShareUrl = "https://sidekick.example.com/c/conv-1"
	ev.Conversation.Categories = []string{"Deployments", "Billing"}
	ev.Conversation.Team = "platform"
	r := OpenedTrigger(ev)
	if r.Key != "conversation.opened/ev-1" || r.ConversationID != "conv-1" || r.Group != "" {
		t.Errorf("key %q conversation %q group %q", r.Key, r.ConversationID, r.Group)
	}
	want := policy.Event{Kind: policy.NewConversation, Tier: policy.Priority, Team: "platform", Category: "Deployments"}
	if r.Event != want {
		t.Errorf("event = %+v, want %+v", r.Event, want)
	}
	if r.Title != "new Priority conversation from Jane Doe (Acme Inc)" {
		t.Errorf("title = %q", r.Title)
	}
	if r.Text != "Checkout fails since the upgrade\nSince this morning every checkout returns a 500." {
		t.Errorf("text = %q", r.Text)
	}
	if len(r.Links) != 2 || r.Links[0].Title != "Open in Slack" || r.Links[1].URL != ev.Conversation.ShareUrl {
		t.Errorf("links = %+v", r.Links)
	}
}

func TestWho(t *testing.T) {
	for _, tc := range []struct {
		conv *supportv1.Conversation
		want string
	}{
		{&supportv1.Conversation{}, "an unknown sender"},
		{&supportv1.Conversation{Author: &supportv1.Author{Email: "jane@acme.com"}}, "jane@acme.com"},
		{&supportv1.Conversation{Author: &supportv1.Author{Name: "Jane"}, Customer: &supportv1.CustomerRef{Name: "Acme"}}, "Jane (Acme)"},
		{&supportv1.Conversation{Customer: &supportv1.CustomerRef{Name: "Acme"}}, "Acme"},
	} {
		if got := who(tc.conv); got != tc.want {
			t.Errorf("who(%v) = %q, want %q", tc.conv, got, tc.want)
		}
	}
}
