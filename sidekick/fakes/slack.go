package fakes

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
)

// Slack is a fake of the Slack Web API at https://slack.com/api/. It
// answers the methods Sidekick calls as Slack documents them and records
// every message posted or updated:
//
//   - chat.postMessage: posting to a user id (U…) opens the DM channel
//     (D…) the answer names, as Slack does; the message gets a fresh ts;
//   - chat.update: rewrites a message posted before (message_not_found
//     otherwise);
//   - users.info: the users added with AddUser (user_not_found otherwise);
//   - chat.getPermalink: https://<domain>.slack.com/archives/<channel>/p<ts>;
//   - auth.test: the bot user of the workspace.
//
// Every method wants a bot token (xoxb-…) in the Authorization header or
// the token field, else it answers not_authed. Bodies may be forms or
// JSON. Unknown methods answer unknown_method.
type Slack struct {
	srv    *httptest.Server
	domain string
	teamID string

	mu      sync.Mutex
	users   map[string]json.RawMessage
	calls   map[string]int
	posted  []SlackMessage
	updated []SlackMessage
	ts      int64
}

// SlackMessage is a message as Sidekick sent it through chat.postMessage
// or chat.update.
type SlackMessage struct {
	// Method is "chat.postMessage" or "chat.update".
	Method string
	// Target is the channel field as sent: a user id for a DM, a channel
	// id, or the DM channel for an update.
	Target string
	// Channel is the conversation the message lives in (the DM channel
	// for a message to a user id).
	Channel string
	// TS is the message's timestamp, its id within Channel.
	TS     string
	Text   string
	Blocks json.RawMessage
}

// SlackButton is one button of a message's actions blocks.
type SlackButton struct {
	ActionID string
	Value    string
	Text     string
	BlockID  string
}

// Buttons returns the buttons of the message's actions blocks, in order.
func (m SlackMessage) Buttons() []SlackButton {
	var blocks []struct {
		Type     string            `json:"type"`
		BlockID  string            `json:"block_id"`
		Elements []json.RawMessage `json:"elements"`
	}
	if err := json.Unmarshal(m.Blocks, &blocks); err != nil {
		return nil
	}
	var out []SlackButton
	for _, b := range blocks {
		if b.Type != "actions" {
			continue
		}
		for _, raw := range b.Elements {
			var e struct {
				Type     string `json:"type"`
				ActionID string `json:"action_id"`
				Value    string `json:"value"`
				Text     struct {
					Text string `json:"text"`
				} `json:"text"`
			}
			if json.Unmarshal(raw, &e) == nil && e.Type == "button" {
				out = append(out, SlackButton{ActionID: e.ActionID, Value: e.Value, Text: e.Text.Text, BlockID: b.BlockID})
			}
		}
	}
	return out
}

// Button returns the message's button with the given action id.
func (m SlackMessage) Button(actionID string) (SlackButton, bool) {
	for _, b := range m.Buttons() {
		if b.ActionID == actionID {
			return b, true
		}
	}
	return SlackButton{}, false
}

// NewSlack starts a fake Slack workspace. domain is its subdomain
// ("acme" for acme.slack.com) and teamID its id (T…).
func NewSlack(domain, teamID string) *Slack {
	s := &Slack{
		domain: domain, teamID: teamID,
		users: map[string]json.RawMessage{}, calls: map[string]int{},
		ts: 1700000000,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/{method}", s.serve)
	s.srv = httptest.NewServer(mux)
	return s
}

// APIURL is the Web API base URL, ending in '/'
// (SIDEKICK_SLACK_API_URL, slack.OptionAPIURL).
func (s *Slack) APIURL() string { return s.srv.URL + "/api/" }

// Close stops the server.
func (s *Slack) Close() { s.srv.Close() }

// AddUser makes users.info answer with user, the "user" object of Slack's
// users.info response as JSON; its "id" is the key.
func (s *Slack) AddUser(user string) error {
	var u struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(user), &u); err != nil {
		return fmt.Errorf("fakes: slack user: %w", err)
	}
	if u.ID == "" {
		return fmt.Errorf("fakes: slack user without an id: %s", user)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[u.ID] = json.RawMessage(user)
	return nil
}

// Calls returns how many times a method was called.
func (s *Slack) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// Posted returns the messages posted with chat.postMessage, oldest first.
func (s *Slack) Posted() []SlackMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SlackMessage(nil), s.posted...)
}

// Updated returns the chat.update calls that succeeded, oldest first.
func (s *Slack) Updated() []SlackMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SlackMessage(nil), s.updated...)
}

// DMChannel is the id of the DM channel the fake opens for a user id.
func DMChannel(userID string) string {
	return "D" + strings.TrimPrefix(userID, "U")
}

func (s *Slack) serve(w http.ResponseWriter, r *http.Request) {
	method := r.PathValue("method")
	s.mu.Lock()
	s.calls[method]++
	s.mu.Unlock()
	params, err := slackParams(r)
	if err != nil {
		writeJSON(w, map[string]any{"ok": false, "error": "invalid_form_data"})
		return
	}
	token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if token == "" {
		token = params["token"]
	}
	if !strings.HasPrefix(token, "xoxb-") {
		writeJSON(w, map[string]any{"ok": false, "error": "not_authed"})
		return
	}
	switch method {
	case "chat.postMessage":
		s.postMessage(w, params)
	case "chat.update":
		s.update(w, params)
	case "users.info":
		s.usersInfo(w, params)
	case "chat.getPermalink":
		s.permalink(w, params)
	case "auth.test":
		writeJSON(w, map[string]any{
			"ok": true, "url": "https://" + s.domain + ".slack.com/", "team": s.domain, "user": "sidekick",
			"team_id": s.teamID, "user_id": "U0SIDEKICK", "bot_id": "B0SIDEKICK",
		})
	default:
		writeJSON(w, map[string]any{"ok": false, "error": "unknown_method"})
	}
}

func (s *Slack) postMessage(w http.ResponseWriter, p map[string]string) {
	target := p["channel"]
	if target == "" {
		writeJSON(w, map[string]any{"ok": false, "error": "channel_not_found"})
		return
	}
	if p["text"] == "" && p["blocks"] == "" && p["attachments"] == "" {
		writeJSON(w, map[string]any{"ok": false, "error": "no_text"})
		return
	}
	blocks, ok := blockJSON(p["blocks"])
	if !ok {
		writeJSON(w, map[string]any{"ok": false, "error": "invalid_blocks_format"})
		return
	}
	channel := target
	if strings.HasPrefix(target, "U") || strings.HasPrefix(target, "W") {
		channel = DMChannel(target)
	}
	s.mu.Lock()
	s.ts++
	m := SlackMessage{Method: "chat.postMessage", Target: target, Channel: channel,
		TS: fmt.Sprintf("%d.%06d", s.ts, len(s.posted)+1), Text: p["text"], Blocks: blocks}
	s.posted = append(s.posted, m)
	s.mu.Unlock()
	writeJSON(w, map[string]any{
		"ok": true, "channel": m.Channel, "ts": m.TS,
		"message": map[string]any{"type": "message", "text": m.Text, "ts": m.TS, "bot_id": "B0SIDEKICK", "blocks": m.Blocks},
	})
}

func (s *Slack) update(w http.ResponseWriter, p map[string]string) {
	channel, ts := p["channel"], p["ts"]
	blocks, ok := blockJSON(p["blocks"])
	if !ok {
		writeJSON(w, map[string]any{"ok": false, "error": "invalid_blocks_format"})
		return
	}
	s.mu.Lock()
	found := false
	for _, m := range s.posted {
		if m.Channel == channel && m.TS == ts {
			found = true
			break
		}
	}
	if found {
		s.updated = append(s.updated, SlackMessage{Method: "chat.update", Target: channel, Channel: channel, TS: ts, Text: p["text"], Blocks: blocks})
	}
	s.mu.Unlock()
	if !found {
		writeJSON(w, map[string]any{"ok": false, "error": "message_not_found"})
		return
	}
	writeJSON(w, map[string]any{"ok": true, "channel": channel, "ts": ts, "text": p["text"]})
}

func (s *Slack) usersInfo(w http.ResponseWriter, p map[string]string) {
	s.mu.Lock()
	u, ok := s.users[p["user"]]
	s.mu.Unlock()
	if !ok {
		writeJSON(w, map[string]any{"ok": false, "error": "user_not_found"})
		return
	}
	writeJSON(w, map[string]any{"ok": true, "user": u})
}

func (s *Slack) permalink(w http.ResponseWriter, p map[string]string) {
	channel, ts := p["channel"], p["message_ts"]
	if channel == "" || ts == "" {
		writeJSON(w, map[string]any{"ok": false, "error": "message_not_found"})
		return
	}
	writeJSON(w, map[string]any{
		"ok": true, "channel": channel,
		"permalink": "https://" + s.domain + ".slack.com/archives/" + channel + "/p" + strings.ReplaceAll(ts, ".", ""),
	})
}

// slackParams reads a Web API call's arguments from the query and a form
// or JSON body. JSON values that are not strings (blocks) are kept as
// their JSON text.
func slackParams(r *http.Request) (map[string]string, error) {
	out := map[string]string{}
	for k, v := range r.URL.Query() {
		out[k] = v[0]
	}
	if r.Body == nil {
		return out, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "application/json" {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(body, &obj); err != nil {
			return nil, err
		}
		for k, raw := range obj {
			var str string
			if json.Unmarshal(raw, &str) == nil {
				out[k] = str
			} else {
				out[k] = string(raw)
			}
		}
		return out, nil
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, err
	}
	for k, v := range form {
		out[k] = v[0]
	}
	return out, nil
}

// blockJSON checks that blocks, when given, is a JSON array.
func blockJSON(blocks string) (json.RawMessage, bool) {
	if blocks == "" {
		return nil, true
	}
	var arr []json.RawMessage
	if err := json.Unmarshal([]byte(blocks), &arr); err != nil {
		return nil, false
	}
	return json.RawMessage(blocks), true
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}
