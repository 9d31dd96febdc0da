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
	"time"
)

// Sentry delivers integration-platform webhooks the way Sentry does: a
// JSON POST with Request-ID, Sentry-Hook-Resource, Sentry-Hook-Timestamp
// and Sentry-Hook-Signature (hex HMAC-SHA256 of the body keyed by the
// integration's client secret).
type Sentry struct {
	// URL is the webhook URL, e.g. http://127.0.0.1:8080/sentry/webhook.
	URL    string
	Secret string
	// Client defaults to http.DefaultClient.
	Client *http.Client
	// Now stamps Sentry-Hook-Timestamp; default time.Now.
	Now func() time.Time
}

// SignSentry returns the Sentry-Hook-Signature of body.
func SignSentry(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// Send delivers one webhook of resource ("error", "event_alert", "issue",
// …) with the Request-ID Sentry would have assigned, and returns the
// status code.
func (s Sentry) Send(ctx context.Context, resource, requestID string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("fakes: sentry request: %w", err)
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sentry-app")
	req.Header.Set("Request-ID", requestID)
	req.Header.Set("Sentry-Hook-Resource", resource)
	req.Header.Set("Sentry-Hook-Timestamp", strconv.FormatInt(now().Unix(), 10))
	req.Header.Set("Sentry-Hook-Signature", SignSentry(s.Secret, body))
	return do(s.Client, req)
}

// SentryEvent describes one error event for the payload builders.
type SentryEvent struct {
	// Org and Project are slugs; the project becomes part of the event's
	// API URL, from which Sidekick reads it.
	Org     string
	Project string
	IssueID string
	// EventID is 32 hex digits in Sentry; any unique string will do.
	EventID string
	Title   string
	Culprit string
	// Level defaults to "error".
	Level string
	Time  time.Time
	// UserEmail, when set, names the affected user.
	UserEmail string
	Release   string
}

// SentryErrorCreated is the payload of an "error" webhook with action
// "created", shaped as Sentry documents it.
func SentryErrorCreated(e SentryEvent) []byte {
	return mustJSON(map[string]any{
		"action":       "created",
		"actor":        map[string]any{"id": "sentry", "name": "Sentry", "type": "application"},
		"data":         map[string]any{"error": sentryEventJSON(e)},
		"installation": map[string]any{"uuid": "7a485448-a9e2-4c85-8a3c-4f44175783c9"},
	})
}

// SentryEventAlertTriggered is the payload of an "event_alert" webhook
// (an issue alert rule fired) with action "triggered".
func SentryEventAlertTriggered(e SentryEvent, rule string) []byte {
	return mustJSON(map[string]any{
		"action":       "triggered",
		"actor":        map[string]any{"id": "sentry", "name": "Sentry", "type": "application"},
		"data":         map[string]any{"event": sentryEventJSON(e), "triggered_rule": rule},
		"installation": map[string]any{"uuid": "7a485448-a9e2-4c85-8a3c-4f44175783c9"},
	})
}

func sentryEventJSON(e SentryEvent) map[string]any {
	level := e.Level
	if level == "" {
		level = "error"
	}
	at := e.Time
	if at.IsZero() {
		at = time.Now()
	}
	at = at.UTC()
	ev := map[string]any{
		"event_id":  e.EventID,
		"issue_id":  e.IssueID,
		"issue_url": "https://sentry.io/api/0/issues/" + e.IssueID + "/",
		"title":     e.Title,
		"culprit":   e.Culprit,
		"level":     level,
		"logger":    "",
		"message":   "",
		"platform":  "python",
		"datetime":  at.Format("2006-01-02T15:04:05.000000Z"),
		"timestamp": float64(at.UnixMilli()) / 1000,
		"received":  float64(at.UnixMilli()) / 1000,
		"type":      "error",
		"version":   "7",
		"tags": [][]string{
			{"environment", "production"},
			{"level", level},
			{"handled", "no"},
		},
		"metadata": map[string]any{"title": e.Title},
		"url":      "https://sentry.io/api/0/projects/" + e.Org + "/" + e.Project + "/events/" + e.EventID + "/",
		"web_url":  "https://sentry.io/organizations/" + e.Org + "/issues/" + e.IssueID + "/events/" + e.EventID + "/",
	}
	if e.Release != "" {
		ev["release"] = e.Release
	} else {
		ev["release"] = nil
	}
	if e.UserEmail != "" {
		ev["user"] = map[string]any{"email": e.UserEmail, "id": e.UserEmail}
	} else {
		ev["user"] = nil
	}
	return ev
}
