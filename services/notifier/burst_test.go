package notifier

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notifiertest"
)

// startSlack runs the service with cfg and Slack's Web API faked at the
// wire until the test ends.
func (h *harness) startSlack(t *testing.T, cfg Config) (*Service, *notifiertest.Slack) {
	t.Helper()
	fake := notifiertest.StartSlack(t)
	cfg.SlackBotToken, cfg.SlackAPIURL = "xoxb-test", fake.URL()
	s, err := New(cfg, h.deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return s, fake
}

// A burst of new conversations for the hero, through NATS, is one Slack
// DM: the first conversation's message, rewritten (chat.update) with the
// growing list as the others come in; every conversation's delivery is
// recorded delivered with that message's receipt, and a delivered event is
// published for each.
func TestBurstOfNewConversationsIsOneSlackMessage(t *testing.T) {
	h := newHarness(t)
	cfg := testConfig()
	cfg.BurstWindow, cfg.BurstEvery = time.Minute, time.Second
	_, fake := h.startSlack(t, cfg)

	const count = 25
	var seq uint64
	for i := range count {
		id := fmt.Sprintf("burst-%d", i)
		seq = h.publish(t, bus.ConversationSubject("opened"), "ev-"+id, notifiertest.Opened("ev-"+id, "conv-"+id, h.clock.Now()))
	}
	notifiertest.AckedThrough(t, h.js, bus.StreamConversations, DurableConversations, seq)
	// Each rewrite waits a second of the service's clock after the last.
	notifiertest.Eventually(t, "every conversation delivered", func() bool {
		if len(notifiertest.NotifyEvents(t, h.js, bus.NotifySubject("delivered"))) == count {
			return true
		}
		h.clock.Advance(time.Second)
		return false
	})
	posts, updates := fake.Calls("chat.postMessage"), fake.Calls("chat.update")
	if len(posts) != 1 || len(updates) == 0 {
		t.Fatalf("%d posts and %d updates, want one message rewritten", len(posts), len(updates))
	}
	last := updates[len(updates)-1].Form.Get("blocks")
	if !strings.Contains(last, fmt.Sprintf("%d new conversations", count)) {
		t.Errorf("the last rewrite does not count %d conversations: %s", count, last)
	}
	var receipts []string
	rows, err := h.pool.Query(context.Background(), `SELECT DISTINCT status || ' ' || receipt FROM deliveries`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			t.Fatal(err)
		}
		receipts = append(receipts, r)
	}
	if want := "delivered " + posts[0].Channel + "/" + posts[0].TS; len(receipts) != 1 || receipts[0] != want {
		t.Errorf("deliveries are %q, want every one %q", receipts, want)
	}
}
