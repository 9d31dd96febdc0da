package notifiertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// Slack is a fake Slack Web API speaking the documented chat.postMessage,
// chat.update, conversations.open and conversations.history (newest
// first, metadata with include_all_metadata) payloads (form-encoded
// requests, JSON answers). It
// records every call it accepts; a message past Slack's documented limits
// (SlackLimits) is refused as Slack refuses it, with invalid_blocks or
// msg_too_long, and kept apart (Rejected).
type Slack struct {
	// Answer, when set, may write its own reply to the n-th call (from 1)
	// and return true.
	Answer func(n int, w http.ResponseWriter) bool
	// Reply, when set, may write its own reply to a call and return true;
	// it sees the call (method, form). Use SetReply while requests flow.
	Reply func(c SlackCall, w http.ResponseWriter) bool
	// Stall, when set and true for a request, holds it unrecorded until
	// the client gives up: a request that never reached Slack because the
	// process sending it died.
	Stall func(method string, form url.Values) bool

	mu       sync.Mutex
	calls    []SlackCall
	rejected []SlackCall
	stalled  int
	srv      *httptest.Server
}

// SlackCall is one request the fake received.
type SlackCall struct {
	Method string // e.g. "chat.postMessage"
	Form   url.Values
	Auth   string
	// At is when the request arrived (wall clock, for latency figures).
	At time.Time
	// Channel and TS are where a chat.postMessage landed and its ts.
	Channel, TS string
}

// StartSlack starts a fake Slack; its API URL (ending in '/') is s.URL().
func StartSlack(t testing.TB) *Slack {
	s := &Slack{}
	s.srv = httptest.NewServer(s)
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the base URL to pass as the Slack API URL.
func (s *Slack) URL() string { return s.srv.URL + "/" }

// ServeHTTP implements http.Handler.
func (s *Slack) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	method := strings.TrimPrefix(r.URL.Path, "/")
	s.mu.Lock()
	stall := s.Stall
	s.mu.Unlock()
	if stall != nil && stall(method, r.PostForm) {
		s.mu.Lock()
		s.stalled++
		s.mu.Unlock()
		<-r.Context().Done()
		return
	}
	call := SlackCall{Method: method, Form: r.PostForm, Auth: r.Header.Get("Authorization"), At: time.Now()}
	if code := SlackLimits(r.PostForm); code != "" && (method == "chat.postMessage" || method == "chat.update") {
		s.mu.Lock()
		s.rejected = append(s.rejected, call)
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": code})
		return
	}
	s.mu.Lock()
	n, answer, custom := len(s.calls)+1, s.Answer, s.Reply
	if method == "chat.postMessage" {
		// A DM posted to a user id lands in the bot's IM channel with them.
		call.Channel, call.TS = imChannel(r.PostForm.Get("channel")), fmt.Sprintf("1700000000.%06d", n)
	}
	s.calls = append(s.calls, call)
	s.mu.Unlock()
	if custom != nil && custom(call, w) {
		return
	}
	if answer != nil && answer(n, w) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	var reply map[string]any
	switch r.URL.Path {
	case "/chat.postMessage":
		reply = map[string]any{"ok": true, "channel": call.Channel, "ts": call.TS,
			"message": map[string]any{"type": "message", "text": r.PostForm.Get("text")}}
	case "/conversations.open":
		reply = map[string]any{"ok": true, "channel": map[string]any{"id": imChannel(r.PostForm.Get("users"))}}
	case "/conversations.history":
		reply = map[string]any{"ok": true, "has_more": false, "messages": s.history(r.PostForm.Get("channel"), r.PostForm.Get("include_all_metadata") == "1")}
	case "/chat.update":
		reply = map[string]any{"ok": true, "channel": r.PostForm.Get("channel"), "ts": r.PostForm.Get("ts"), "text": r.PostForm.Get("text")}
	default:
		reply = map[string]any{"ok": false, "error": "unknown_method"}
	}
	_ = json.NewEncoder(w).Encode(reply)
}

// Slack's documented limits on a message: chat.postMessage's text
// (https://api.slack.com/methods/chat.postMessage: "truncated" past 40,000,
// refused as msg_too_long) and Block Kit's
// (https://api.slack.com/reference/block-kit/blocks).
const (
	SlackMaxText            = 40000
	SlackMaxBlocks          = 50
	SlackMaxSectionText     = 3000
	SlackMaxFieldText       = 2000
	SlackMaxContextElements = 10
	SlackMaxButtonValue     = 2000
	SlackMaxButtonText      = 75
)

// SlackLimits returns the error real Slack answers a chat.postMessage or
// chat.update with form, or "" when Slack accepts it: msg_too_long for
// text over SlackMaxText characters, invalid_blocks_format for blocks
// that are not a JSON array, invalid_blocks for more than SlackMaxBlocks
// blocks, a block without a type, or a section (its fields and accessory
// button included), context or button past its limit.
func SlackLimits(form url.Values) string {
	if utf8.RuneCountInString(form.Get("text")) > SlackMaxText {
		return "msg_too_long"
	}
	raw := form.Get("blocks")
	if raw == "" {
		return ""
	}
	type text struct {
		Text string `json:"text"`
	}
	type element struct {
		Type  string `json:"type"`
		Text  any    `json:"text"`
		Value string `json:"value"`
	}
	var blocks []struct {
		Type      string    `json:"type"`
		Text      *text     `json:"text"`
		Fields    []text    `json:"fields"`
		Elements  []element `json:"elements"`
		Accessory *element  `json:"accessory"`
	}
	if err := json.Unmarshal([]byte(raw), &blocks); err != nil {
		return "invalid_blocks_format"
	}
	if len(blocks) > SlackMaxBlocks {
		return "invalid_blocks"
	}
	long := func(s string, n int) bool { return utf8.RuneCountInString(s) > n }
	for _, b := range blocks {
		switch b.Type {
		case "":
			return "invalid_blocks"
		case "section":
			if b.Text != nil && long(b.Text.Text, SlackMaxSectionText) || len(b.Fields) > 10 {
				return "invalid_blocks"
			}
			if a := b.Accessory; a != nil {
				if t, ok := a.Text.(map[string]any); ok && a.Type == "button" {
					if s, _ := t["text"].(string); long(s, SlackMaxButtonText) || long(a.Value, SlackMaxButtonValue) {
						return "invalid_blocks"
					}
				}
			}
			for _, f := range b.Fields {
				if long(f.Text, SlackMaxFieldText) {
					return "invalid_blocks"
				}
			}
		case "context":
			if len(b.Elements) > SlackMaxContextElements {
				return "invalid_blocks"
			}
			for _, e := range b.Elements {
				if t, ok := e.Text.(string); ok && long(t, SlackMaxSectionText) {
					return "invalid_blocks"
				}
			}
		case "actions":
			for _, e := range b.Elements {
				if long(e.Value, SlackMaxButtonValue) {
					return "invalid_blocks"
				}
				if t, ok := e.Text.(map[string]any); ok {
					if s, _ := t["text"].(string); long(s, SlackMaxButtonText) {
						return "invalid_blocks"
					}
				}
			}
		}
	}
	return ""
}

// Rejected returns the calls refused for being past Slack's limits.
func (s *Slack) Rejected() []SlackCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SlackCall(nil), s.rejected...)
}

// imChannel is the bot's IM channel with a user id (U…), or channel.
func imChannel(channel string) string {
	if strings.HasPrefix(channel, "U") {
		return "D" + channel[1:]
	}
	return channel
}

// history is conversations.history of channel: the messages posted to it,
// newest first, with their metadata when asked.
func (s *Slack) history(channel string, withMetadata bool) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []map[string]any{}
	for i := len(s.calls) - 1; i >= 0; i-- {
		c := s.calls[i]
		if c.Method != "chat.postMessage" || c.Channel != channel {
			continue
		}
		m := map[string]any{"type": "message", "ts": c.TS, "text": c.Form.Get("text")}
		var meta map[string]any
		if withMetadata && json.Unmarshal([]byte(c.Form.Get("metadata")), &meta) == nil {
			m["metadata"] = meta
		}
		out = append(out, m)
	}
	return out
}

// SetStall replaces Stall.
func (s *Slack) SetStall(f func(method string, form url.Values) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Stall = f
}

// SetReply replaces Reply.
func (s *Slack) SetReply(f func(c SlackCall, w http.ResponseWriter) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Reply = f
}

// Stalled counts requests held by Stall.
func (s *Slack) Stalled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stalled
}

// Calls returns the calls so far, optionally only those of one method.
func (s *Slack) Calls(method string) []SlackCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []SlackCall
	for _, c := range s.calls {
		if method == "" || c.Method == method {
			out = append(out, c)
		}
	}
	return out
}
