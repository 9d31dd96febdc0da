package slack_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sidekickhq/sidekick/services/notifier/internal/notifiertest"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify/slack"
)

func start(t *testing.T, f *notifiertest.Slack) *slack.Channel {
	return slack.New(slack.Options{Token: "xoxb-test", APIURL: f.URL()})
}

func message() notify.Message {
	return notify.Message{
		NotificationID: "n-1", DeliveryID: "d-1", ConversationID: "conv-1", Urgency: notify.Ping,
		Recipient: notify.Recipient{PersonID: "alice", Name: "Alice", SlackID: "U0ALICE", Role: "Support Hero"},
		Title:     "new Priority conversation from Jane <Acme>", Text: "Checkout fails & more",
		Links: []notify.Link{{Title: "Open in Slack", URL: "https://acme.slack.com/archives/C1/p1"}},
	}
}

type blockJSON struct {
	Type     string `json:"type"`
	Elements []struct {
		ActionID string `json:"action_id"`
		Value    string `json:"value"`
	} `json:"elements"`
	Text struct {
		Text string `json:"text"`
	} `json:"text"`
}

func blocks(t *testing.T, form url.Values) []blockJSON {
	t.Helper()
	var bs []blockJSON
	if err := json.Unmarshal([]byte(form.Get("blocks")), &bs); err != nil {
		t.Fatalf("blocks %q: %v", form.Get("blocks"), err)
	}
	return bs
}

func TestSendPostsDMWithButtonsAndUpdateEditsIt(t *testing.T) {
	f := notifiertest.StartSlack(t)
	ch := start(t, f)
	r, err := ch.Send(context.Background(), message())
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if r.Ref != "D0ALICE/1700000000.000001" {
		t.Errorf("receipt = %q", r.Ref)
	}
	calls := f.Calls("")
	if len(calls) != 1 || calls[0].Method != "chat.postMessage" || calls[0].Form.Get("channel") != "U0ALICE" {
		t.Fatalf("calls = %+v", calls)
	}
	if calls[0].Auth != "Bearer xoxb-test" && calls[0].Form.Get("token") != "xoxb-test" {
		t.Errorf("token not sent: auth %q", calls[0].Auth)
	}
	bs := blocks(t, calls[0].Form)
	if !strings.Contains(bs[0].Text.Text, "Jane &lt;Acme&gt;") || !strings.Contains(bs[0].Text.Text, "Checkout fails &amp; more") {
		t.Errorf("section not escaped: %q", bs[0].Text.Text)
	}
	actions := bs[len(bs)-1]
	if actions.Type != "actions" || len(actions.Elements) != 3 {
		t.Fatalf("actions block = %+v", actions)
	}
	for i, id := range []string{slack.ActionAck, slack.ActionEscalate, slack.ActionClose} {
		if actions.Elements[i].ActionID != id || actions.Elements[i].Value != "conv:conv-1|notif:n-1" {
			t.Errorf("button %d = %+v", i, actions.Elements[i])
		}
	}

	if err := ch.Update(context.Background(), r, message(), "acknowledged by alice"); err != nil {
		t.Fatalf("Update: %v", err)
	}
	upd := f.Calls("")[1]
	if upd.Method != "chat.update" || upd.Form.Get("channel") != "D0ALICE" || upd.Form.Get("ts") != "1700000000.000001" {
		t.Fatalf("update call = %+v", upd)
	}
	ub := blocks(t, upd.Form)
	if last := ub[len(ub)-1]; last.Type != "context" || !strings.Contains(upd.Form.Get("blocks"), "Acknowledged by alice") {
		t.Errorf("updated blocks = %s", upd.Form.Get("blocks"))
	}
}

func TestRateLimitIsRetryAfterAndUnknownUserIsPermanent(t *testing.T) {
	f := notifiertest.StartSlack(t)
	f.Answer = func(n int, w http.ResponseWriter) bool {
		switch n {
		case 1:
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
			return true
		case 2:
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"ok":false,"error":"user_not_found"}`))
			return true
		case 3:
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"ok":false,"error":"internal_error"}`))
			return true
		}
		return false
	}
	ch := start(t, f)
	_, err := ch.Send(context.Background(), message())
	if after, ok := notify.RetryAfter(err); !ok || after != 7*time.Second {
		t.Errorf("429: err = %v, want retry after 7s", err)
	}
	if _, err := ch.Send(context.Background(), message()); !notify.IsPermanent(err) {
		t.Errorf("user_not_found: err = %v, want permanent", err)
	}
	if _, err := ch.Send(context.Background(), message()); err == nil || notify.IsPermanent(err) {
		t.Errorf("internal_error: err = %v, want a retryable error", err)
	}
	if _, err := ch.Send(context.Background(), message()); err != nil {
		t.Errorf("fourth send: %v", err)
	}
}

func TestCanReach(t *testing.T) {
	ch := slack.New(slack.Options{Token: "x"})
	if ch.CanReach(notify.Recipient{PersonID: "carol"}) {
		t.Error("a person without a Slack id is reachable")
	}
	if !ch.CanReach(notify.Recipient{SlackChannel: "support"}) || !ch.CanReach(notify.Recipient{SlackID: "U1"}) {
		t.Error("Slack id or channel not reachable")
	}
}
