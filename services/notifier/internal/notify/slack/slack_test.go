package slack_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

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

// A message past Slack's limits is refused by Slack (invalid_blocks, and
// so are the fakes); the channel keeps every message within them: a long
// customer text is cut with the link to the whole of it, a long subject is
// cut, and at most ten links are shown.
func TestLongMessagesStayWithinSlacksLimits(t *testing.T) {
	f := notifiertest.StartSlack(t)
	ch := start(t, f)
	m := message()
	m.Title = "new Priority conversation: " + strings.Repeat("subject ", 200)
	m.Text = strings.Repeat("Every checkout returns a 500 & the <logs> say nothing.\n", 400)
	for i := range 15 {
		m.Links = append(m.Links, notify.Link{Title: fmt.Sprintf("link %d", i), URL: fmt.Sprintf("https://example.com/%d", i)})
	}
	r, err := ch.Send(context.Background(), m)
	if err != nil {
		t.Fatalf("Send: %v (refused: %d)", err, len(f.Rejected()))
	}
	posts := f.Calls("chat.postMessage")
	if len(posts) != 1 {
		t.Fatalf("%d posts", len(posts))
	}
	head := blocks(t, posts[0].Form)[0].Text.Text
	if n := utf8.RuneCountInString(head); n > notifiertest.SlackMaxSectionText || n < notifiertest.SlackMaxSectionText-500 {
		t.Errorf("section text of %d characters, want up to %d and most of it", n, notifiertest.SlackMaxSectionText)
	}
	if !strings.HasSuffix(head, "… (cut: the whole text is at https://acme.slack.com/archives/C1/p1)") {
		t.Errorf("the cut text does not end with where the whole text is: …%s", head[len(head)-200:])
	}
	if !strings.Contains(head, "Every checkout returns a 500 &amp; the &lt;logs&gt; say nothing.\nEvery") {
		t.Errorf("the text lost its escaping: %.300s", head)
	}
	if err := ch.Refresh(context.Background(), r, m); err != nil {
		t.Errorf("Refresh: %v", err)
	}
	if err := ch.Update(context.Background(), r, m, "acknowledged by Alice"); err != nil {
		t.Errorf("Update: %v", err)
	}
}

// The fake refuses what Slack refuses, as Slack answers it; the channel
// takes invalid_blocks and msg_too_long as permanent.
func TestFakeSlackRefusesWhatSlackRefuses(t *testing.T) {
	section := func(n int) string {
		return `[{"type":"section","text":{"type":"mrkdwn","text":"` + strings.Repeat("x", n) + `"}}]`
	}
	many := "[" + strings.TrimSuffix(strings.Repeat(`{"type":"divider"},`, 51), ",") + "]"
	for _, c := range []struct {
		form url.Values
		want string
	}{
		{url.Values{"text": {"hi"}, "blocks": {section(3000)}}, ""},
		{url.Values{"text": {"hi"}, "blocks": {section(3001)}}, "invalid_blocks"},
		{url.Values{"text": {"hi"}, "blocks": {many}}, "invalid_blocks"},
		{url.Values{"text": {"hi"}, "blocks": {`[{"block_id":"untyped"}]`}}, "invalid_blocks"},
		{url.Values{"text": {"hi"}, "blocks": {`{"type":"section"}`}}, "invalid_blocks_format"},
		{url.Values{"text": {strings.Repeat("x", 40001)}}, "msg_too_long"},
	} {
		if got := notifiertest.SlackLimits(c.form); got != c.want {
			t.Errorf("%.80v: %q, want %q", c.form, got, c.want)
		}
	}
	f := notifiertest.StartSlack(t)
	f.Answer = func(n int, w http.ResponseWriter) bool { return false }
	res, err := http.PostForm(f.URL()+"chat.postMessage", url.Values{"channel": {"U0ALICE"}, "text": {"hi"}, "blocks": {section(3001)}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var answer struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err := json.NewDecoder(res.Body).Decode(&answer); err != nil || answer.OK || answer.Error != "invalid_blocks" {
		t.Errorf("answer %+v %v, want invalid_blocks", answer, err)
	}
	if len(f.Calls("")) != 0 || len(f.Rejected()) != 1 {
		t.Errorf("%d calls recorded, %d refused; want the refused one apart", len(f.Calls("")), len(f.Rejected()))
	}
}

// A burst of hundreds of conversations with long titles, texts and links
// stays within Slack's limits: it counts them all and lists the latest
// fifteen, each with its own Acknowledge button; rewriting it works too.
func TestBigBurstStaysWithinSlacksLimits(t *testing.T) {
	f := notifiertest.StartSlack(t)
	ch := start(t, f)
	b := notify.Burst{ID: "burst-1", Recipient: notify.Recipient{PersonID: "alice", SlackID: "U0ALICE", Role: "Support Hero"}, Total: 500, Done: 3}
	for i := range ch.BurstLines() {
		m := message()
		m.Title = fmt.Sprintf("new Priority conversation %d: %s", i, strings.Repeat("subject & <more> ", 40))
		m.Text = strings.Repeat("Every checkout returns a 500. ", 100)
		for j := range 5 {
			m.Links = append(m.Links, notify.Link{Title: strings.Repeat("link ", 30), URL: fmt.Sprintf("https://example.com/%d/%d/%s", i, j, strings.Repeat("x", 200))})
		}
		b.Latest = append(b.Latest, notify.BurstItem{Message: m})
	}
	b.Latest[4].Status = "acknowledged by alice"
	r, err := ch.SendBurst(context.Background(), b)
	if err != nil {
		t.Fatalf("SendBurst: %v (refused: %d)", err, len(f.Rejected()))
	}
	if err := ch.UpdateBurst(context.Background(), r, b); err != nil {
		t.Fatalf("UpdateBurst: %v", err)
	}
	post := f.Calls("chat.postMessage")[0]
	got := blocks(t, post.Form)
	if len(got) != 1+ch.BurstLines() || !strings.Contains(got[0].Text.Text, "*500 new conversations*") ||
		!strings.Contains(got[0].Text.Text, "The latest 15 are below") {
		t.Errorf("%d blocks, heading %q", len(got), got[0].Text.Text)
	}
	if n := strings.Count(post.Form.Get("blocks"), slack.ActionAck); n != ch.BurstLines()-1 {
		t.Errorf("%d Acknowledge buttons, want one per open conversation listed", n)
	}
	text := 0
	for _, b := range got {
		text += utf8.RuneCountInString(b.Text.Text)
	}
	if text > 9000 {
		t.Errorf("blocks with %d characters of text, want at most about 8,000", text)
	}
	if !strings.Contains(post.Form.Get("metadata"), `"delivery_id":"burst-1"`) {
		t.Errorf("the post is not marked with the burst: %s", post.Form.Get("metadata"))
	}
}
