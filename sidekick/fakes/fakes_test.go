package fakes_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/sidekickhq/sidekick/sidekick/fakes"
)

// TestSlackWithSlackGo drives the Slack fake with slack-go, the client
// Sidekick uses, so the answers are what that client can read.
func TestSlackWithSlackGo(t *testing.T) {
	f := fakes.NewSlack("acme", "T0DEMO")
	t.Cleanup(f.Close)
	if err := f.AddUser(`{"id":"U0BOB","team_id":"T0DEMO","name":"bob","real_name":"Bob Brown","profile":{"email":"bob@example.com"}}`); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	api := slack.New("xoxb-test", slack.OptionAPIURL(f.APIURL()))

	if _, err := slack.New("wrong", slack.OptionAPIURL(f.APIURL())).AuthTestContext(ctx); err == nil || !strings.Contains(err.Error(), "not_authed") {
		t.Fatalf("a call without a bot token: want not_authed, got %v", err)
	}
	who, err := api.AuthTestContext(ctx)
	if err != nil || who.TeamID != "T0DEMO" {
		t.Fatalf("auth.test: %+v %v", who, err)
	}
	u, err := api.GetUserInfoContext(ctx, "U0BOB")
	if err != nil || u.RealName != "Bob Brown" || u.TeamID != "T0DEMO" || u.Profile.Email != "bob@example.com" {
		t.Fatalf("users.info: %+v %v", u, err)
	}
	if _, err := api.GetUserInfoContext(ctx, "U0NOBODY"); err == nil || !strings.Contains(err.Error(), "user_not_found") {
		t.Fatalf("users.info of an unknown user: want user_not_found, got %v", err)
	}
	link, err := api.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: "C0SUPPORT", Ts: "1700000000.000100"})
	if err != nil || link != "https://acme.slack.com/archives/C0SUPPORT/p1700000000000100" {
		t.Fatalf("chat.getPermalink: %q %v", link, err)
	}

	button := slack.NewButtonBlockElement("sidekick_ack", "conv:c1|notif:n1", slack.NewTextBlockObject(slack.PlainTextType, "Acknowledge", false, false))
	channel, ts, err := api.PostMessageContext(ctx, "U0BOB",
		slack.MsgOptionText("ping: new conversation", false),
		slack.MsgOptionBlocks(
			slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "*New conversation*", false, false), nil, nil),
			slack.NewContextBlock("links", slack.NewTextBlockObject(slack.MarkdownType, "<https://example.com|Sidekick>", false, false)),
			slack.NewActionBlock("sidekick_actions", button),
		))
	if err != nil || channel != fakes.DMChannel("U0BOB") || ts == "" {
		t.Fatalf("chat.postMessage to a user: channel %q ts %q err %v", channel, ts, err)
	}
	posted := f.Posted()
	if len(posted) != 1 || posted[0].Target != "U0BOB" || posted[0].Text != "ping: new conversation" {
		t.Fatalf("posted: %+v", posted)
	}
	b, ok := posted[0].Button("sidekick_ack")
	if !ok || b.Value != "conv:c1|notif:n1" || b.Text != "Acknowledge" || b.BlockID != "sidekick_actions" {
		t.Fatalf("button: %+v %v (buttons %+v)", b, ok, posted[0].Buttons())
	}

	if _, _, _, err := api.UpdateMessageContext(ctx, channel, ts, slack.MsgOptionText("ping: new conversation (acknowledged)", false)); err != nil {
		t.Fatalf("chat.update: %v", err)
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, channel, "1.000000", slack.MsgOptionText("x", false)); err == nil || !strings.Contains(err.Error(), "message_not_found") {
		t.Fatalf("chat.update of an unknown message: want message_not_found, got %v", err)
	}
	if up := f.Updated(); len(up) != 1 || up[0].TS != ts || !strings.HasSuffix(up[0].Text, "(acknowledged)") || len(up[0].Buttons()) != 0 {
		t.Fatalf("updated: %+v", up)
	}
	if n := f.Calls("chat.update"); n != 2 {
		t.Fatalf("chat.update calls: %d", n)
	}
}

func TestSMTPCapturesWhatSendMailSends(t *testing.T) {
	s, err := fakes.NewSMTP()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	raw := "From: Jane <jane@customer.example>\r\nTo: support@sidekick.test\r\nSubject: Help\r\nMessage-ID: <m1@customer.example>\r\n\r\nOur dashboards are empty.\r\n"
	if err := fakes.SendMail(s.Addr(), "jane@customer.example", []string{"support@sidekick.test", "ops@sidekick.test"}, []byte(raw)); err != nil {
		t.Fatal(err)
	}
	got := s.Messages()
	if len(got) != 1 {
		t.Fatalf("want 1 message, got %d", len(got))
	}
	m := got[0]
	if m.From != "jane@customer.example" || len(m.To) != 2 || m.Header.Get("Subject") != "Help" || m.Header.Get("Message-Id") != "<m1@customer.example>" {
		t.Fatalf("captured %+v", m)
	}
	if !strings.Contains(string(m.Body), "dashboards are empty") {
		t.Fatalf("body %q", m.Body)
	}
	if u := s.URL("Sidekick <sidekick@example.com>"); !strings.HasPrefix(u, "smtp://"+s.Addr()+"?") || !strings.Contains(u, "starttls=off") {
		t.Fatalf("URL %q", u)
	}
}

func TestPagerDutyEnqueue(t *testing.T) {
	p := fakes.NewPagerDuty("R0UTINGKEY")
	t.Cleanup(p.Close)
	post := func(body string) (int, map[string]any) {
		t.Helper()
		resp, err := http.Post(p.URL(), "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	code, out := post(`{"routing_key":"R0UTINGKEY","event_action":"trigger","dedup_key":"sidekick-conv-1-bob",
		"payload":{"summary":"Sentry alert","source":"sidekick","severity":"critical","custom_details":{"conversation_id":"1"}}}`)
	if code != http.StatusAccepted || out["status"] != "success" || out["dedup_key"] != "sidekick-conv-1-bob" {
		t.Fatalf("trigger: %d %v", code, out)
	}
	code, out = post(`{"routing_key":"R0UTINGKEY","event_action":"trigger","payload":{"summary":"s","source":"x","severity":"info"}}`)
	if code != http.StatusAccepted || len(out["dedup_key"].(string)) != 32 {
		t.Fatalf("trigger without a dedup key: %d %v", code, out)
	}
	for _, bad := range []string{
		`{"routing_key":"other","event_action":"trigger","payload":{"summary":"s","source":"x","severity":"info"}}`,
		`{"routing_key":"R0UTINGKEY","event_action":"trigger","payload":{"summary":"s","source":"x","severity":"loud"}}`,
		`{"routing_key":"R0UTINGKEY","event_action":"resolve"}`,
		`{"routing_key":"R0UTINGKEY","event_action":"snooze","dedup_key":"k"}`,
		`not json`,
	} {
		if code, out := post(bad); code != http.StatusBadRequest || out["status"] != "invalid event" {
			t.Errorf("%s: want 400 invalid event, got %d %v", bad, code, out)
		}
	}
	if code, _ := post(`{"routing_key":"R0UTINGKEY","event_action":"acknowledge","dedup_key":"sidekick-conv-1-bob"}`); code != http.StatusAccepted {
		t.Fatalf("acknowledge: %d", code)
	}
	evs := p.Events()
	if len(evs) != 3 || evs[0].Payload.CustomDetails["conversation_id"] != "1" || evs[2].EventAction != "acknowledge" || p.Rejected() != 5 {
		t.Fatalf("events %+v, rejected %d", evs, p.Rejected())
	}
}

func TestWebhookChecksTheSignature(t *testing.T) {
	h := fakes.NewWebhook("s3cret")
	t.Cleanup(h.Close)
	body := []byte(`{"version":"1","type":"notification","notification_id":"n1","conversation_id":"c1","urgency":"page","recipient":{"person_id":"bob"}}`)
	send := func(sig string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, h.URL(), bytes.NewReader(body))
		req.Header.Set("X-Sidekick-Timestamp", "1700000000")
		req.Header.Set("X-Sidekick-Signature", sig)
		req.Header.Set("X-Sidekick-Event", "notification")
		req.Header.Set("Idempotency-Key", "k1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	mac := hmac.New(sha256.New, []byte("s3cret"))
	mac.Write([]byte("1700000000." + string(body)))
	if code := send("sha256=" + hex.EncodeToString(mac.Sum(nil))); code != http.StatusNoContent {
		t.Fatalf("good signature: %d", code)
	}
	if code := send("sha256=" + strings.Repeat("0", 64)); code != http.StatusUnauthorized {
		t.Fatalf("bad signature: %d", code)
	}
	got := h.Deliveries()
	if len(got) != 1 || h.Rejected() != 1 || got[0].Payload.NotificationID != "n1" || got[0].Payload.Recipient.PersonID != "bob" || got[0].IdempotencyKey != "k1" {
		t.Fatalf("deliveries %+v rejected %d", got, h.Rejected())
	}
}

// recorder is an HTTP server keeping the last request.
func recorder(t *testing.T) (*httptest.Server, func() (*http.Request, []byte)) {
	t.Helper()
	var (
		last *http.Request
		body []byte
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ = io.ReadAll(r.Body)
		last = r
	}))
	t.Cleanup(srv.Close)
	return srv, func() (*http.Request, []byte) { return last, body }
}

func TestGitHubSenderSignsLikeGitHub(t *testing.T) {
	srv, last := recorder(t)
	is := fakes.GitHubIssue{Repo: "acme/main", Number: 7, Title: "Crash", Body: "It crashes", Login: "jane-doe", Association: "NONE", CreatedAt: time.Unix(1700000000, 0)}
	body := fakes.GitHubIssueCommentCreated(is, fakes.GitHubComment{ID: 99, Login: "bob-acme", Association: "MEMBER", Body: "Looking"})
	code, err := fakes.GitHub{URL: srv.URL, Secret: "gh"}.Send(context.Background(), "issue_comment", "d-1", body)
	if err != nil || code != http.StatusOK {
		t.Fatalf("send: %d %v", code, err)
	}
	r, got := last()
	mac := hmac.New(sha256.New, []byte("gh"))
	mac.Write(got)
	if r.Header.Get("X-Hub-Signature-256") != "sha256="+hex.EncodeToString(mac.Sum(nil)) ||
		r.Header.Get("X-GitHub-Event") != "issue_comment" || r.Header.Get("X-GitHub-Delivery") != "d-1" ||
		!strings.HasPrefix(r.Header.Get("User-Agent"), "GitHub-Hookshot/") {
		t.Fatalf("headers %v", r.Header)
	}
	var p struct {
		Action string `json:"action"`
		Issue  struct {
			Number int `json:"number"`
			User   struct {
				Login string `json:"login"`
			} `json:"user"`
			AuthorAssociation string `json:"author_association"`
		} `json:"issue"`
		Comment struct {
			ID                int64  `json:"id"`
			AuthorAssociation string `json:"author_association"`
			HTMLURL           string `json:"html_url"`
		} `json:"comment"`
		Repository struct {
			FullName string `json:"full_name"`
		} `json:"repository"`
	}
	if err := json.Unmarshal(got, &p); err != nil {
		t.Fatal(err)
	}
	if p.Action != "created" || p.Issue.Number != 7 || p.Issue.User.Login != "jane-doe" || p.Comment.ID != 99 ||
		p.Comment.AuthorAssociation != "MEMBER" || p.Repository.FullName != "acme/main" ||
		p.Comment.HTMLURL != "https://github.com/acme/main/issues/7#issuecomment-99" {
		t.Fatalf("payload %+v", p)
	}
}

func TestSentrySenderSignsLikeSentry(t *testing.T) {
	srv, last := recorder(t)
	at := time.Date(2026, 11, 20, 9, 58, 37, 391000000, time.UTC)
	body := fakes.SentryEventAlertTriggered(fakes.SentryEvent{Org: "acme", Project: "api", IssueID: "42", EventID: "e1", Title: "Boom", Time: at}, "Page on errors")
	s := fakes.Sentry{URL: srv.URL, Secret: "sn", Now: func() time.Time { return at }}
	if code, err := s.Send(context.Background(), "event_alert", "r-1", body); err != nil || code != http.StatusOK {
		t.Fatalf("send: %d %v", code, err)
	}
	r, got := last()
	mac := hmac.New(sha256.New, []byte("sn"))
	mac.Write(got)
	if r.Header.Get("Sentry-Hook-Signature") != hex.EncodeToString(mac.Sum(nil)) || r.Header.Get("Sentry-Hook-Resource") != "event_alert" ||
		r.Header.Get("Request-ID") != "r-1" || r.Header.Get("Sentry-Hook-Timestamp") != strconv.FormatInt(at.Unix(), 10) {
		t.Fatalf("headers %v", r.Header)
	}
	var p struct {
		Action string `json:"action"`
		Data   struct {
			Event struct {
				EventID  string    `json:"event_id"`
				IssueID  string    `json:"issue_id"`
				URL      string    `json:"url"`
				Datetime time.Time `json:"datetime"`
			} `json:"event"`
			TriggeredRule string `json:"triggered_rule"`
		} `json:"data"`
	}
	if err := json.Unmarshal(got, &p); err != nil {
		t.Fatal(err)
	}
	if p.Action != "triggered" || p.Data.Event.IssueID != "42" || p.Data.TriggeredRule != "Page on errors" ||
		!p.Data.Event.Datetime.Equal(at) || p.Data.Event.URL != "https://sentry.io/api/0/projects/acme/api/events/e1/" {
		t.Fatalf("payload %+v", p)
	}
}

// TestSlackHistoryFindsAPostByItsMetadata: conversations.open gives a
// user's DM channel, and conversations.history lists its top-level
// messages newest first, with their metadata when asked: how the notifier
// looks for a post a crashed sender may have made.
func TestSlackHistoryFindsAPostByItsMetadata(t *testing.T) {
	f := fakes.NewSlack("acme", "T0DEMO")
	t.Cleanup(f.Close)
	ctx := context.Background()
	api := slack.New("xoxb-test", slack.OptionAPIURL(f.APIURL()))
	for _, id := range []string{"d-1", "d-2"} {
		if _, _, err := api.PostMessageContext(ctx, "U0BOB", slack.MsgOptionText("ping "+id, false),
			slack.MsgOptionMetadata(slack.SlackMetadata{EventType: "sidekick_delivery", EventPayload: map[string]any{"delivery_id": id}})); err != nil {
			t.Fatal(err)
		}
	}
	ch, _, _, err := api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{"U0BOB"}, ReturnIM: true})
	if err != nil || ch.ID != fakes.DMChannel("U0BOB") {
		t.Fatalf("conversations.open: %+v %v", ch, err)
	}
	h, err := api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{ChannelID: ch.ID, Limit: 1, IncludeAllMetadata: true})
	if err != nil || len(h.Messages) != 1 || !h.HasMore || h.Messages[0].Metadata.EventPayload["delivery_id"] != "d-2" {
		t.Fatalf("first page: %+v %v", h, err)
	}
	h, err = api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{ChannelID: ch.ID, Cursor: h.ResponseMetaData.NextCursor})
	if err != nil || len(h.Messages) != 1 || h.HasMore || h.Messages[0].Text != "ping d-1" || h.Messages[0].Metadata.EventType != "" {
		t.Fatalf("second page, without metadata: %+v %v", h, err)
	}
}

// The Slack fake refuses what Slack documents it refuses, for posts and
// rewrites alike, answers the error code slack-go reads, and keeps the
// refused calls apart from the messages it took.
func TestSlackRefusesWhatSlackRefuses(t *testing.T) {
	f := fakes.NewSlack("acme", "T0DEMO")
	t.Cleanup(f.Close)
	ctx := context.Background()
	api := slack.New("xoxb-test", slack.OptionAPIURL(f.APIURL()))
	section := func(n int) slack.Block {
		return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, strings.Repeat("é", n), false, false), nil, nil)
	}
	channel, ts, err := api.PostMessageContext(ctx, "U0BOB", slack.MsgOptionText(strings.Repeat("x", fakes.SlackMaxText), false),
		slack.MsgOptionBlocks(section(fakes.SlackMaxSectionText)))
	if err != nil {
		t.Fatalf("a message at the limits: %v", err)
	}
	many := make([]slack.Block, fakes.SlackMaxBlocks+1)
	for i := range many {
		many[i] = slack.NewDividerBlock()
	}
	longButton := slack.NewButtonBlockElement("sidekick_ack", "v", slack.NewTextBlockObject(slack.PlainTextType, strings.Repeat("b", fakes.SlackMaxButtonText+1), false, false))
	for _, c := range []struct {
		name string
		opts []slack.MsgOption
		code string
	}{
		{"text over 40,000 characters", []slack.MsgOption{slack.MsgOptionText(strings.Repeat("x", fakes.SlackMaxText+1), false)}, "msg_too_long"},
		{"a section over 3,000 characters", []slack.MsgOption{slack.MsgOptionBlocks(section(1), section(fakes.SlackMaxSectionText+1))}, "invalid_blocks"},
		{"51 blocks", []slack.MsgOption{slack.MsgOptionBlocks(many...)}, "invalid_blocks"},
		{"a button's text over 75 characters", []slack.MsgOption{slack.MsgOptionBlocks(slack.NewActionBlock("a", longButton))}, "invalid_blocks"},
		{"an accessory button's", []slack.MsgOption{slack.MsgOptionBlocks(slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "x", false, false), nil, slack.NewAccessory(longButton)))}, "invalid_blocks"},
	} {
		if _, _, err := api.PostMessageContext(ctx, "U0BOB", c.opts...); err == nil || err.Error() != c.code {
			t.Errorf("post, %s: %v, want %s", c.name, err, c.code)
		}
		if _, _, _, err := api.UpdateMessageContext(ctx, channel, ts, c.opts...); err == nil || err.Error() != c.code {
			t.Errorf("update, %s: %v, want %s", c.name, err, c.code)
		}
	}
	if got := len(f.Posted()); got != 1 || len(f.Updated()) != 0 {
		t.Errorf("%d posted, %d updated; want only the message at the limits", got, len(f.Updated()))
	}
	refused := f.Refused()
	if len(refused) != 10 || refused[0].Error != "msg_too_long" || refused[1].Method != "chat.update" || refused[3].Error != "invalid_blocks" {
		t.Errorf("refused %d calls: %+v", len(refused), refused)
	}
}

func TestSlackRefusal(t *testing.T) {
	block := func(b map[string]any) string {
		raw, _ := json.Marshal([]map[string]any{b})
		return string(raw)
	}
	text := func(n int) map[string]any { return map[string]any{"type": "mrkdwn", "text": strings.Repeat("é", n)} }
	fields := func(n, size int) []any {
		out := []any{}
		for range n {
			out = append(out, text(size))
		}
		return out
	}
	elements := func(n int) []any {
		out := []any{}
		for range n {
			out = append(out, text(1))
		}
		return out
	}
	for _, c := range []struct {
		name, blocks, code string
	}{
		{"none", "", ""},
		{"not an array", `{"type":"section"}`, "invalid_blocks_format"},
		{"without a type", `[{"text":{"type":"mrkdwn","text":"x"}}]`, "invalid_blocks"},
		{"ten fields at the limit", block(map[string]any{"type": "section", "fields": fields(10, fakes.SlackMaxFieldText)}), ""},
		{"eleven fields", block(map[string]any{"type": "section", "fields": fields(11, 1)}), "invalid_blocks"},
		{"a field over 2,000", block(map[string]any{"type": "section", "fields": fields(1, fakes.SlackMaxFieldText+1)}), "invalid_blocks"},
		{"a header at 150", block(map[string]any{"type": "header", "text": text(fakes.SlackMaxHeaderText)}), ""},
		{"a header over 150", block(map[string]any{"type": "header", "text": text(fakes.SlackMaxHeaderText + 1)}), "invalid_blocks"},
		{"a context of ten", block(map[string]any{"type": "context", "elements": elements(10)}), ""},
		{"a context of eleven", block(map[string]any{"type": "context", "elements": elements(11)}), "invalid_blocks"},
		{"a block_id over 255", block(map[string]any{"type": "divider", "block_id": strings.Repeat("b", 256)}), "invalid_blocks"},
	} {
		if got := fakes.SlackRefusal("x", c.blocks); got != c.code {
			t.Errorf("%s: %q, want %q", c.name, got, c.code)
		}
	}
}
