package slack

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
)

// TestPacePerConversation: each Slack conversation has its own budget of
// one message a second after a burst; another conversation is not held
// back by the first.
func TestPacePerConversation(t *testing.T) {
	p := newPacer(1, 2)
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	delay := func(conv string) time.Duration {
		r := p.limiter(conv).ReserveN(now, 1)
		if !r.OK() {
			t.Fatal("reservation refused")
		}
		return r.DelayFrom(now)
	}
	if d1, d2 := delay("U0ALICE"), delay("U0ALICE"); d1 != 0 || d2 != 0 {
		t.Fatalf("the burst of 2 must go at once: %v %v", d1, d2)
	}
	if d := delay("U0ALICE"); d != time.Second {
		t.Fatalf("the third message to one conversation waits a second, got %v", d)
	}
	if d := delay("C0SUPPORT"); d != 0 {
		t.Fatalf("another conversation waited %v", d)
	}
}

// TestSendGivesUpWhenThePaceOutlastsTheContext: a send that would wait
// past its deadline returns a retryable error and posts nothing.
func TestSendGivesUpWhenThePaceOutlastsTheContext(t *testing.T) {
	srv, posts := postCounter(t)
	c := New(Options{Token: "xoxb-test", APIURL: srv.URL + "/", Pace: rate.Every(time.Hour), Burst: 1})
	m := notify.Message{Recipient: notify.Recipient{PersonID: "alice", SlackID: "U0ALICE"}, Title: "t", Text: "x"}
	if _, err := c.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Send(ctx, m)
	if err == nil || notify.IsPermanent(err) {
		t.Fatalf("want a retryable error, got %v", err)
	}
	if n := posts.Load(); n != 1 {
		t.Fatalf("%d posts, want 1", n)
	}
}

// TestSendHandsBackAPostWhoseTurnIsFarOff: a post whose conversation's
// pace has no room within MaxPaceWait is not waited for: Send returns a
// notify.LaterError saying when its turn comes, and posts nothing.
func TestSendHandsBackAPostWhoseTurnIsFarOff(t *testing.T) {
	srv, posts := postCounter(t)
	c := New(Options{Token: "xoxb-test", APIURL: srv.URL + "/", Pace: rate.Every(time.Minute), Burst: 1, MaxPaceWait: time.Second})
	m := notify.Message{Recipient: notify.Recipient{PersonID: "alice", SlackID: "U0ALICE"}, Title: "t", Text: "x"}
	if _, err := c.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	_, err := c.Send(context.Background(), m)
	after, ok := notify.Later(err)
	if !ok || after <= time.Second || after > time.Minute {
		t.Fatalf("err = %v, want a LaterError of up to a minute", err)
	}
	if n := posts.Load(); n != 1 {
		t.Fatalf("%d posts, want 1", n)
	}
	other := m
	other.Recipient.SlackID = "U0BOB"
	if _, err := c.Send(context.Background(), other); err != nil {
		t.Fatalf("another conversation: %v", err)
	}
}

// postCounter is a Slack API that takes every post and counts them.
func postCounter(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true,"channel":"D01","ts":"1.1"}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &posts
}
