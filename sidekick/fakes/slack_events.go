package fakes

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SignSlack returns the X-Slack-Signature of body sent at ts (Unix
// seconds): "v0=" and the hex HMAC-SHA256 of "v0:<ts>:<body>" keyed by the
// app's signing secret, as Slack signs every request.
func SignSlack(secret string, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%d:", ts)
	mac.Write(body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// SlackEvents delivers Events API requests (POST /slack/events) the way
// Slack does: JSON, signed with the signing secret and a fresh
// X-Slack-Request-Timestamp on every attempt, and a retry carries
// X-Slack-Retry-Num and X-Slack-Retry-Reason. Slack retries a delivery
// that got no 2xx within 3 seconds, up to three times; the caller decides
// when, and Send makes one attempt.
type SlackEvents struct {
	// URL is the events URL, e.g. http://127.0.0.1:8080/slack/events.
	URL    string
	Secret string
	// Client defaults to http.DefaultClient; give it Slack's 3 s timeout.
	Client *http.Client
	// Now stamps X-Slack-Request-Timestamp; default time.Now.
	Now func() time.Time
}

// Slack's X-Slack-Retry-Reason values for the failures a sender sees.
const (
	SlackRetryTimeout   = "http_timeout"
	SlackRetryHTTPError = "http_error"
	SlackRetryConnect   = "connection_failed"
)

// Send makes delivery attempt retry (0 for the first) of body and returns
// the status code; reason is why the attempt before failed (ignored for
// the first).
func (s SlackEvents) Send(ctx context.Context, body []byte, retry int, reason string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("fakes: slack events request: %w", err)
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	ts := now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Slackbot 1.0 (+https://api.slack.com/robots)")
	req.Header.Set("X-Slack-Request-Timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("X-Slack-Signature", SignSlack(s.Secret, ts, body))
	if retry > 0 {
		req.Header.Set("X-Slack-Retry-Num", strconv.Itoa(retry))
		req.Header.Set("X-Slack-Retry-Reason", reason)
	}
	return do(s.Client, req)
}

// SlackSharedMessage describes a customer's top-level message in a Slack
// Connect channel, for SlackSharedMessageEvent.
type SlackSharedMessage struct {
	// EventID is Slack's event_id (Ev…), kept by every retry.
	EventID string
	// TeamID is the workspace the app is installed in (ours).
	TeamID string
	// UserTeam is the customer's workspace, UserID the customer (U…).
	UserTeam string
	UserID   string
	Name     string
	Channel  string
	// TS is the message's ts, "1700000000.000100".
	TS   string
	Text string
	// AppID and BotUserID are our app and its bot user (authorizations).
	AppID     string
	BotUserID string
}

// SlackSharedMessageEvent is the event_callback Slack sends for m, shaped
// as Slack documents a message in an externally shared channel.
func SlackSharedMessageEvent(m SlackSharedMessage) []byte {
	sec, _, _ := strings.Cut(m.TS, ".")
	eventTime, _ := strconv.ParseInt(sec, 10, 64)
	return mustJSON(map[string]any{
		"token":           "XXYYZZ",
		"team_id":         m.TeamID,
		"context_team_id": m.TeamID,
		"api_app_id":      m.AppID,
		"event": map[string]any{
			"client_msg_id": m.EventID + "-client",
			"type":          "message",
			"text":          m.Text,
			"user":          m.UserID,
			"ts":            m.TS,
			"team":          m.UserTeam,
			"user_team":     m.UserTeam,
			"source_team":   m.UserTeam,
			"user_profile": map[string]any{
				"real_name": m.Name, "display_name": m.Name, "name": m.Name, "team": m.UserTeam,
				"is_restricted": false, "is_ultra_restricted": false,
			},
			"channel":      m.Channel,
			"event_ts":     m.TS,
			"channel_type": "channel",
		},
		"type":       "event_callback",
		"event_id":   m.EventID,
		"event_time": eventTime,
		"authorizations": []map[string]any{
			{"enterprise_id": nil, "team_id": m.TeamID, "user_id": m.BotUserID, "is_bot": true, "is_enterprise_install": false},
		},
		"is_ext_shared_channel": true,
	})
}
