package fakes

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Slack is a fake of the Slack Web API at https://slack.com/api/. It
// answers the methods Sidekick calls as Slack documents them and records
// every message posted or updated:
//
//   - chat.postMessage: posting to a user id (U…) opens the DM channel
//     (D…) the answer names, as Slack does; the message gets a fresh ts
//     and keeps thread_ts, username, icon_url and metadata; a message past
//     Slack's documented limits is refused as Slack refuses it
//     (SlackRefusal: text over 40,000 characters msg_too_long, blocks
//     invalid_blocks_format or invalid_blocks) and kept apart (Refused),
//     metadata that is not an event_type and event_payload object is
//     invalid_metadata_format, a channel the bot was removed from
//     (RemoveFromChannel) not_in_channel, and with LimitPostRate a channel
//     past its rate gets HTTP 429 with Retry-After;
//   - conversations.open: a user id's DM channel (D…);
//   - conversations.history: the channel's top-level messages posted
//     here, newest first, with limit and cursor, and their metadata only
//     with include_all_metadata;
//   - conversations.replies: the thread's messages posted here (its root
//     and every reply with that thread_ts), oldest first, with oldest,
//     latest, inclusive, limit and cursor, and their metadata only with
//     include_all_metadata;
//   - chat.update: rewrites a message posted before (message_not_found
//     otherwise), refusing what is past Slack's limits as a post does;
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
	refused []SlackMessage
	// ts is the last ts handed out, in microseconds.
	ts int64
	// removed are channels the bot is not in.
	removed map[string]bool
	// rate limits chat.postMessage per channel when set: a bucket of
	// burst posts refilled at one a second.
	burst   int
	buckets map[string]*postBucket
	// faults are error codes to answer instead of the next calls of a
	// method.
	faults map[string][]string
	// onPost runs after a post is stored, before it is answered; onUpdate
	// the same for a rewrite.
	onPost, onUpdate func(SlackMessage)
}

// postBucket is one channel's allowance of posts.
type postBucket struct {
	tokens float64
	at     time.Time
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
	// ThreadTS is the thread the message was posted in; empty for a
	// top-level message.
	ThreadTS string
	// Username and IconURL are the name and avatar it was posted under
	// (chat:write.customize).
	Username string
	IconURL  string
	// Metadata is the message metadata as posted, nil without.
	Metadata *SlackMetadata
	// Error is the code Slack answered a refused message with (Refused).
	Error string
}

// SlackMetadata is message metadata: an event type and its payload.
type SlackMetadata struct {
	EventType    string         `json:"event_type"`
	EventPayload map[string]any `json:"event_payload"`
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
		removed: map[string]bool{}, buckets: map[string]*postBucket{},
		faults: map[string][]string{},
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

// Refused returns the chat.postMessage and chat.update calls refused for
// being past Slack's limits, oldest first, with the error code answered.
func (s *Slack) Refused() []SlackMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SlackMessage(nil), s.refused...)
}

// refuse answers code to a call past Slack's limits and keeps it.
func (s *Slack) refuse(w http.ResponseWriter, method, code string, p map[string]string) {
	s.mu.Lock()
	s.refused = append(s.refused, SlackMessage{Method: method, Target: p["channel"], Channel: p["channel"], TS: p["ts"],
		Text: p["text"], Blocks: json.RawMessage(p["blocks"]), Error: code})
	s.mu.Unlock()
	writeJSON(w, map[string]any{"ok": false, "error": code})
}

// RemoveFromChannel takes the bot out of channel: posting there answers
// not_in_channel, as Slack does.
func (s *Slack) RemoveFromChannel(channel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removed[channel] = true
}

// ReturnToChannel puts the bot back in a channel RemoveFromChannel took
// it out of.
func (s *Slack) ReturnToChannel(channel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.removed, channel)
}

// LimitPostRate makes chat.postMessage keep Slack's rate of one message a
// second per channel, allowing bursts of burst messages; a post over it
// answers HTTP 429 with Retry-After and is not stored. Off by default.
func (s *Slack) LimitPostRate(burst int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.burst = max(burst, 1)
}

// OnUpdate runs f after each chat.update is stored and before Slack
// answers it, as OnPost does for posts.
func (s *Slack) OnUpdate(f func(SlackMessage)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onUpdate = f
}

// OnPost runs f after each chat.postMessage is stored and before Slack
// answers it: a test can make the client vanish at the worst moment.
func (s *Slack) OnPost(f func(SlackMessage)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onPost = f
}

// Fail makes the next n calls of method answer the error code instead.
func (s *Slack) Fail(method, code string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults[method] = append(s.faults[method], code)
	}
}

// MetadataPosts counts the messages posted with metadata whose
// event_payload has key equal to value: how many times one outbound
// message arrived.
func (s *Slack) MetadataPosts(key, value string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.posted {
		if m.Metadata != nil && fmt.Sprint(m.Metadata.EventPayload[key]) == value {
			n++
		}
	}
	return n
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
	s.mu.Lock()
	var fault string
	if f := s.faults[method]; len(f) > 0 {
		fault, s.faults[method] = f[0], f[1:]
	}
	s.mu.Unlock()
	if fault != "" {
		writeJSON(w, map[string]any{"ok": false, "error": fault})
		return
	}
	switch method {
	case "chat.postMessage":
		s.postMessage(w, params)
	case "conversations.replies":
		s.replies(w, params)
	case "conversations.history":
		s.history(w, params)
	case "conversations.open":
		if params["users"] == "" || strings.Contains(params["users"], ",") {
			writeJSON(w, map[string]any{"ok": false, "error": "users_list_not_supplied"})
			return
		}
		writeJSON(w, map[string]any{"ok": true, "channel": map[string]any{"id": DMChannel(params["users"])}})
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
	if code := SlackRefusal(p["text"], p["blocks"]); code != "" {
		s.refuse(w, "chat.postMessage", code, p)
		return
	}
	blocks := blockJSON(p["blocks"])
	var meta *SlackMetadata
	if raw := p["metadata"]; raw != "" {
		meta = new(SlackMetadata)
		if err := json.Unmarshal([]byte(raw), meta); err != nil || meta.EventType == "" || meta.EventPayload == nil {
			writeJSON(w, map[string]any{"ok": false, "error": "invalid_metadata_format"})
			return
		}
	}
	channel := target
	if strings.HasPrefix(target, "U") || strings.HasPrefix(target, "W") {
		channel = DMChannel(target)
	}
	s.mu.Lock()
	if s.removed[channel] {
		s.mu.Unlock()
		writeJSON(w, map[string]any{"ok": false, "error": "not_in_channel"})
		return
	}
	if wait := s.takePost(channel, time.Now()); wait > 0 {
		s.mu.Unlock()
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		w.WriteHeader(http.StatusTooManyRequests)
		writeJSON(w, map[string]any{"ok": false, "error": "ratelimited"})
		return
	}
	// A ts is the post's time in microseconds, unique, as Slack's are.
	s.ts = max(time.Now().UnixMicro(), s.ts+1)
	m := SlackMessage{Method: "chat.postMessage", Target: target, Channel: channel,
		TS: fmt.Sprintf("%d.%06d", s.ts/1e6, s.ts%1e6), Text: p["text"], Blocks: blocks,
		ThreadTS: p["thread_ts"], Username: p["username"], IconURL: p["icon_url"], Metadata: meta}
	s.posted = append(s.posted, m)
	hook := s.onPost
	s.mu.Unlock()
	if hook != nil {
		hook(m)
	}
	writeJSON(w, map[string]any{
		"ok": true, "channel": m.Channel, "ts": m.TS,
		"message": messageJSON(m, true),
	})
}

// Slack's documented limits on a message
// (https://docs.slack.dev/reference/methods/chat.postMessage,
// https://docs.slack.dev/reference/block-kit/blocks and
// .../block-kit/block-elements).
const (
	// SlackMaxText is the most characters of a message's text; longer is
	// msg_too_long.
	SlackMaxText = 40000
	// SlackMaxBlocks is the most blocks of a message.
	SlackMaxBlocks = 50
	// SlackMaxSectionText is the most characters of a section's text, and
	// of a context element's.
	SlackMaxSectionText = 3000
	// A section has at most SlackMaxFields fields of SlackMaxFieldText.
	SlackMaxFields    = 10
	SlackMaxFieldText = 2000
	// SlackMaxContextElements is the most elements of a context block.
	SlackMaxContextElements = 10
	// SlackMaxHeaderText is the most characters of a header's text.
	SlackMaxHeaderText = 150
	// A button's text has at most SlackMaxButtonText characters and its
	// value SlackMaxButtonValue.
	SlackMaxButtonText  = 75
	SlackMaxButtonValue = 2000
	// SlackMaxID is the most characters of a block_id or action_id.
	SlackMaxID = 255
)

// SlackRefusal returns the error code real Slack answers a
// chat.postMessage or chat.update with this text and blocks (JSON), or ""
// when it takes them: msg_too_long for text over SlackMaxText characters,
// invalid_blocks_format for blocks that are not a JSON array,
// invalid_blocks for more than SlackMaxBlocks blocks, a block without a
// type, or a block or element past its limit.
func SlackRefusal(text, blocks string) string {
	if utf8.RuneCountInString(text) > SlackMaxText {
		return "msg_too_long"
	}
	if blocks == "" {
		return ""
	}
	var arr []slackBlock
	if err := json.Unmarshal([]byte(blocks), &arr); err != nil {
		return "invalid_blocks_format"
	}
	if len(arr) > SlackMaxBlocks {
		return "invalid_blocks"
	}
	for _, b := range arr {
		if !b.fits() {
			return "invalid_blocks"
		}
	}
	return ""
}

// slackText is a text object.
type slackText struct {
	Text string `json:"text"`
}

// slackElement is a block element or a context element: a button's text
// is an object, a context element's a string.
type slackElement struct {
	Type     string          `json:"type"`
	Text     json.RawMessage `json:"text"`
	Value    string          `json:"value"`
	ActionID string          `json:"action_id"`
}

type slackBlock struct {
	Type      string         `json:"type"`
	BlockID   string         `json:"block_id"`
	Text      *slackText     `json:"text"`
	Fields    []slackText    `json:"fields"`
	Elements  []slackElement `json:"elements"`
	Accessory *slackElement  `json:"accessory"`
}

func longer(s string, n int) bool { return utf8.RuneCountInString(s) > n }

// fits reports whether the block is within Slack's limits.
func (b slackBlock) fits() bool {
	if b.Type == "" || longer(b.BlockID, SlackMaxID) {
		return false
	}
	switch b.Type {
	case "section":
		if b.Text != nil && longer(b.Text.Text, SlackMaxSectionText) || len(b.Fields) > SlackMaxFields {
			return false
		}
		for _, f := range b.Fields {
			if longer(f.Text, SlackMaxFieldText) {
				return false
			}
		}
		if b.Accessory != nil && !b.Accessory.fits() {
			return false
		}
	case "header":
		if b.Text == nil || longer(b.Text.Text, SlackMaxHeaderText) {
			return false
		}
	case "context":
		if len(b.Elements) > SlackMaxContextElements {
			return false
		}
		for _, e := range b.Elements {
			var t slackText
			if json.Unmarshal(e.Text, &t) == nil && longer(t.Text, SlackMaxSectionText) {
				return false
			}
		}
	case "actions":
		for _, e := range b.Elements {
			if !e.fits() {
				return false
			}
		}
	}
	return true
}

// fits reports whether an interactive element is within Slack's limits.
func (e slackElement) fits() bool {
	if longer(e.ActionID, SlackMaxID) {
		return false
	}
	if e.Type != "button" {
		return true
	}
	var t slackText
	if err := json.Unmarshal(e.Text, &t); err != nil {
		return false
	}
	return !longer(t.Text, SlackMaxButtonText) && !longer(e.Value, SlackMaxButtonValue)
}

// takePost spends one post of channel's allowance, or says how long until
// there is one. The caller holds s.mu.
func (s *Slack) takePost(channel string, now time.Time) time.Duration {
	if s.burst == 0 {
		return 0
	}
	b := s.buckets[channel]
	if b == nil {
		b = &postBucket{tokens: float64(s.burst), at: now}
		s.buckets[channel] = b
	}
	b.tokens = min(float64(s.burst), b.tokens+now.Sub(b.at).Seconds())
	b.at = now
	if b.tokens < 1 {
		return time.Duration((1 - b.tokens) * float64(time.Second))
	}
	b.tokens--
	return 0
}

// messageJSON is a message as the Web API shows it.
func messageJSON(m SlackMessage, withMetadata bool) map[string]any {
	out := map[string]any{"type": "message", "text": m.Text, "ts": m.TS, "bot_id": "B0SIDEKICK", "app_id": "A0SIDEKICK"}
	if m.Blocks != nil {
		out["blocks"] = m.Blocks
	}
	if m.ThreadTS != "" {
		out["thread_ts"] = m.ThreadTS
	}
	if m.Username != "" {
		out["username"] = m.Username
		out["subtype"] = "bot_message"
	}
	if m.IconURL != "" {
		out["icons"] = map[string]any{"image_48": m.IconURL}
	}
	if withMetadata && m.Metadata != nil {
		out["metadata"] = m.Metadata
	}
	return out
}

// replies answers conversations.replies from the messages posted here.
func (s *Slack) replies(w http.ResponseWriter, p map[string]string) {
	channel, ts := p["channel"], p["ts"]
	if channel == "" || ts == "" {
		writeJSON(w, map[string]any{"ok": false, "error": "invalid_arguments"})
		return
	}
	withMeta := p["include_all_metadata"] == "1" || p["include_all_metadata"] == "true"
	inclusive := p["inclusive"] == "1" || p["inclusive"] == "true"
	oldest, latest := p["oldest"], p["latest"]
	limit, _ := strconv.Atoi(p["limit"])
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	offset, _ := strconv.Atoi(p["cursor"])
	s.mu.Lock()
	if s.removed[channel] {
		s.mu.Unlock()
		writeJSON(w, map[string]any{"ok": false, "error": "not_in_channel"})
		return
	}
	var thread []SlackMessage
	for _, m := range s.posted {
		if m.Channel != channel || (m.TS != ts && m.ThreadTS != ts) {
			continue
		}
		if oldest != "" && (tsLess(m.TS, oldest) || (!inclusive && m.TS == oldest)) {
			continue
		}
		if latest != "" && (tsLess(latest, m.TS) || (!inclusive && m.TS == latest)) {
			continue
		}
		thread = append(thread, m)
	}
	s.mu.Unlock()
	sort.SliceStable(thread, func(i, j int) bool { return tsLess(thread[i].TS, thread[j].TS) })
	writePage(w, thread, offset, limit, withMeta)
}

// writePage answers with the limit messages from offset, a cursor to the
// rest when there are more.
func writePage(w http.ResponseWriter, msgs []SlackMessage, offset, limit int, withMeta bool) {
	page := []map[string]any{}
	for i := offset; i < len(msgs) && i < offset+limit; i++ {
		page = append(page, messageJSON(msgs[i], withMeta))
	}
	more := offset+limit < len(msgs)
	next := ""
	if more {
		next = strconv.Itoa(offset + limit)
	}
	writeJSON(w, map[string]any{"ok": true, "messages": page, "has_more": more, "response_metadata": map[string]any{"next_cursor": next}})
}

// history answers conversations.history: the channel's top-level
// messages posted here, newest first, with limit and cursor, and their
// metadata only with include_all_metadata.
func (s *Slack) history(w http.ResponseWriter, p map[string]string) {
	channel := p["channel"]
	if channel == "" {
		writeJSON(w, map[string]any{"ok": false, "error": "channel_not_found"})
		return
	}
	withMeta := p["include_all_metadata"] == "1" || p["include_all_metadata"] == "true"
	limit, _ := strconv.Atoi(p["limit"])
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	offset, _ := strconv.Atoi(p["cursor"])
	s.mu.Lock()
	var top []SlackMessage
	for i := len(s.posted) - 1; i >= 0; i-- {
		if m := s.posted[i]; m.Channel == channel && (m.ThreadTS == "" || m.ThreadTS == m.TS) {
			top = append(top, m)
		}
	}
	s.mu.Unlock()
	writePage(w, top, offset, limit, withMeta)
}

// tsLess orders Slack timestamps ("seconds.micros").
func tsLess(a, b string) bool {
	x, _ := strconv.ParseFloat(a, 64)
	y, _ := strconv.ParseFloat(b, 64)
	return x < y
}

func (s *Slack) update(w http.ResponseWriter, p map[string]string) {
	channel, ts := p["channel"], p["ts"]
	if code := SlackRefusal(p["text"], p["blocks"]); code != "" {
		s.refuse(w, "chat.update", code, p)
		return
	}
	blocks := blockJSON(p["blocks"])
	s.mu.Lock()
	found := false
	for _, m := range s.posted {
		if m.Channel == channel && m.TS == ts {
			found = true
			break
		}
	}
	m := SlackMessage{Method: "chat.update", Target: channel, Channel: channel, TS: ts, Text: p["text"], Blocks: blocks}
	if found {
		s.updated = append(s.updated, m)
	}
	hook := s.onUpdate
	s.mu.Unlock()
	if !found {
		writeJSON(w, map[string]any{"ok": false, "error": "message_not_found"})
		return
	}
	if hook != nil {
		hook(m)
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

// blockJSON is blocks as JSON, nil when none were given.
func blockJSON(blocks string) json.RawMessage {
	if blocks == "" {
		return nil
	}
	return json.RawMessage(blocks)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}
