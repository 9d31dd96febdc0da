package fakes_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/slack-go/slack"

	"github.com/sidekickhq/sidekick/sidekick/fakes"
)

// TestSignSlackDocumentedExample is the worked example of Slack's
// "Verifying requests from Slack" guide.
func TestSignSlackDocumentedExample(t *testing.T) {
	const (
		secret = "8f742231b10e8888abcd99yyyzzz85a5"
		body   = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
		want   = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
	)
	if got := fakes.SignSlack(secret, 1531420618, []byte(body)); got != want {
		t.Fatalf("SignSlack = %s, want %s", got, want)
	}
}

// TestSlackEventsVerifiedBySlackGo sends a first attempt and a retry of a
// shared-channel message and checks them with slack-go's verifier and
// parser, as a Slack app would.
func TestSlackEventsVerifiedBySlackGo(t *testing.T) {
	const secret = "events-secret"
	type got struct {
		retry, reason string
		verr          error
		event         map[string]any
	}
	seen := make(chan got, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		g := got{retry: r.Header.Get("X-Slack-Retry-Num"), reason: r.Header.Get("X-Slack-Retry-Reason")}
		v, err := slack.NewSecretsVerifier(r.Header, secret)
		if err == nil {
			_, _ = v.Write(body)
			err = v.Ensure()
		}
		g.verr = err
		_ = json.Unmarshal(body, &g.event)
		seen <- g
	}))
	t.Cleanup(srv.Close)

	body := fakes.SlackSharedMessageEvent(fakes.SlackSharedMessage{
		EventID: "Ev0CHAOS1", TeamID: "T0OURS", UserTeam: "T0THEIRS", UserID: "U0CUST", Name: "Cust",
		Channel: "C0SHARED", TS: "1700000000.000100", Text: "hello", AppID: "A0APP", BotUserID: "U0BOT",
	})
	s := fakes.SlackEvents{URL: srv.URL, Secret: secret}
	for retry, reason := range []string{"", fakes.SlackRetryTimeout} {
		code, err := s.Send(context.Background(), body, retry, reason)
		if err != nil || code != http.StatusOK {
			t.Fatalf("attempt %d: %d, %v", retry, code, err)
		}
	}
	first, second := <-seen, <-seen
	for i, g := range []got{first, second} {
		if g.verr != nil {
			t.Errorf("attempt %d: signature: %v", i, g.verr)
		}
		ev, _ := g.event["event"].(map[string]any)
		if g.event["event_id"] != "Ev0CHAOS1" || ev["user_team"] != "T0THEIRS" || ev["ts"] != "1700000000.000100" || g.event["event_time"] != float64(1700000000) {
			t.Errorf("attempt %d: event %v", i, g.event)
		}
	}
	if first.retry != "" || first.reason != "" {
		t.Errorf("first attempt has retry headers %q %q", first.retry, first.reason)
	}
	if second.retry != "1" || second.reason != fakes.SlackRetryTimeout {
		t.Errorf("retry headers %q %q, want 1 %s", second.retry, second.reason, fakes.SlackRetryTimeout)
	}
}
