package console_test

import (
	"context"
	"strings"
	"testing"

	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify/console"
)

func TestSendWritesAReadableBlock(t *testing.T) {
	var b strings.Builder
	ch := console.New(&b)
	_, err := ch.Send(context.Background(), notify.Message{
		NotificationID: "n-1", ConversationID: "conv-1", Urgency: notify.Ping,
		Recipient: notify.Recipient{PersonID: "alice", Name: "alice", Role: "Support Hero"},
		Title:     "new Priority conversation from Jane Doe (Acme)",
		Text:      "Checkout fails\n\nSince this morning.",
		Links:     []notify.Link{{Title: "Open in Slack", URL: "https://acme.slack.com/p1"}, {Title: "Sidekick", URL: "https://sidekick.example.com/c/conv-1"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "[notify] ping alice (Support Hero): new Priority conversation from Jane Doe (Acme) — https://acme.slack.com/p1\n" +
		"    Checkout fails\n" +
		"    Since this morning.\n" +
		"    Sidekick: https://sidekick.example.com/c/conv-1\n" +
		"    conversation conv-1 · notification n-1\n"
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}
