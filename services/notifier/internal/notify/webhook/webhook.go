// Package webhook delivers notifications as signed JSON POSTs to a URL of
// your choosing, for services of your own that want to hear about pages
// and pings.
//
// Each request carries
//
//	Content-Type: application/json
//	Idempotency-Key: <the delivery's dedup key, the same on every retry>
//	X-Sidekick-Event: notification | notification.updated
//	X-Sidekick-Timestamp: <unix seconds>
//	X-Sidekick-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">
//
// The signature covers the timestamp, so a receiver that also rejects old
// timestamps (Verify does, with a tolerance) cannot be replayed. A 2xx
// answer is success; 408, 429 and 5xx answers and network errors are
// retried (honouring Retry-After); any other answer is permanent.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
)

// Name is the channel name recorded in the delivery log.
const Name = "webhook"

// Version is the payload schema version, sent in every payload.
const Version = "1"

// Header names.
const (
	HeaderSignature      = "X-Sidekick-Signature"
	HeaderTimestamp      = "X-Sidekick-Timestamp"
	HeaderEvent          = "X-Sidekick-Event"
	HeaderIdempotencyKey = "Idempotency-Key"
)

// Event types, in the payload's "type" and the X-Sidekick-Event header.
const (
	EventNotification = "notification"
	EventUpdated      = "notification.updated"
)

// Payload is the JSON body, schema version 1. Fields are only ever added
// within a version.
type Payload struct {
	// Version is "1".
	Version string `json:"version"`
	// Type is "notification" for a new delivery, "notification.updated"
	// when a delivered notification was acknowledged or its conversation
	// answered or closed.
	Type string `json:"type"`
	// DedupKey is the delivery's idempotency key (also the
	// Idempotency-Key header of a notification).
	DedupKey       string `json:"dedup_key"`
	NotificationID string `json:"notification_id"`
	DeliveryID     string `json:"delivery_id"`
	ConversationID string `json:"conversation_id,omitempty"`
	// Urgency is "ping" or "page".
	Urgency   string        `json:"urgency"`
	Title     string        `json:"title"`
	Text      string        `json:"text,omitempty"`
	Links     []notify.Link `json:"links,omitempty"`
	Recipient Recipient     `json:"recipient"`
	// Status is set on notification.updated: "acknowledged by alice",
	// "answered", "closed by bob".
	Status string `json:"status,omitempty"`
	// Attempt counts deliveries of this notification from 1.
	Attempt int `json:"attempt,omitempty"`
	// SentAt is when this request was made (RFC 3339).
	SentAt time.Time `json:"sent_at"`
}

// Recipient is who the notification is for.
type Recipient struct {
	PersonID     string `json:"person_id,omitempty"`
	Name         string `json:"name,omitempty"`
	Email        string `json:"email,omitempty"`
	SlackID      string `json:"slack_id,omitempty"`
	SlackChannel string `json:"slack_channel,omitempty"`
	Role         string `json:"role,omitempty"`
}

// Options configure the channel.
type Options struct {
	// URL receives the POSTs.
	URL string
	// Secret keys the HMAC signature; required.
	Secret []byte
	// HTTPClient defaults to a client with a 15s timeout that does not
	// follow redirects (a 3xx answer is a permanent failure: fix the URL).
	HTTPClient *http.Client
	// Now is the clock (timestamps, Retry-After dates); default time.Now.
	Now func() time.Time
}

// Channel posts to one webhook URL.
type Channel struct {
	url    string
	secret []byte
	client *http.Client
	now    func() time.Time
}

var (
	_ notify.Channel = (*Channel)(nil)
	_ notify.Updater = (*Channel)(nil)
)

// New returns a webhook channel.
func New(o Options) (*Channel, error) {
	if o.URL == "" {
		return nil, errors.New("webhook: no URL")
	}
	if !strings.HasPrefix(o.URL, "https://") && !strings.HasPrefix(o.URL, "http://") {
		return nil, fmt.Errorf("webhook: URL %q is not http(s)", o.URL)
	}
	if len(o.Secret) == 0 {
		return nil, errors.New("webhook: no signing secret")
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{
			Timeout:       15 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Channel{url: o.URL, secret: o.Secret, client: o.HTTPClient, now: o.Now}, nil
}

// Name returns "webhook".
func (c *Channel) Name() string { return Name }

// Send posts the notification. The receipt is the dedup key.
func (c *Channel) Send(ctx context.Context, m notify.Message) (notify.Receipt, error) {
	p := c.payload(m, EventNotification, "")
	if err := c.post(ctx, p, m.DedupKey); err != nil {
		return notify.Receipt{}, err
	}
	return notify.Receipt{Ref: m.DedupKey}, nil
}

// Update posts a notification.updated event with the new status. Its
// idempotency key is the delivery's, followed by "|" and the status.
func (c *Channel) Update(ctx context.Context, _ notify.Receipt, m notify.Message, status string) error {
	return c.post(ctx, c.payload(m, EventUpdated, status), m.DedupKey+"|"+status)
}

func (c *Channel) payload(m notify.Message, typ, status string) Payload {
	r := m.Recipient
	return Payload{
		Version: Version, Type: typ, DedupKey: m.DedupKey,
		NotificationID: m.NotificationID, DeliveryID: m.DeliveryID, ConversationID: m.ConversationID,
		Urgency: m.Urgency.String(), Title: m.Title, Text: m.Text, Links: m.Links,
		Recipient: Recipient{
			PersonID: r.PersonID, Name: r.Name, Email: r.Email, SlackID: r.SlackID,
			SlackChannel: r.SlackChannel, Role: r.Role,
		},
		Status: status, Attempt: m.Attempt, SentAt: c.now().UTC(),
	}
}

func (c *Channel) post(ctx context.Context, p Payload, idempotencyKey string) error {
	body, err := json.Marshal(p)
	if err != nil {
		return notify.Permanent(fmt.Errorf("webhook: encode payload: %w", err))
	}
	ts := strconv.FormatInt(c.now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return notify.Permanent(fmt.Errorf("webhook: build request: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Sidekick-Webhook/"+Version)
	req.Header.Set(HeaderEvent, p.Type)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(c.secret, ts, body))
	if idempotencyKey != "" {
		req.Header.Set(HeaderIdempotencyKey, idempotencyKey)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: post %s: %w", p.Type, err) // network: retry
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	err = fmt.Errorf("webhook: post %s: %s: %s", p.Type, resp.Status, strings.TrimSpace(string(snippet)))
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout:
		if after, ok := retryAfter(resp.Header.Get("Retry-After"), c.now()); ok {
			return &notify.RetryAfterError{After: after, Err: err}
		}
		return err
	default:
		return notify.Permanent(err)
	}
}

// Sign returns the X-Sidekick-Signature value for a body sent at ts (unix
// seconds, as in X-Sidekick-Timestamp): "sha256=" and the hex HMAC-SHA256
// of ts + "." + body.
func Sign(secret []byte, ts string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Errors returned by Verify.
var (
	ErrBadSignature = errors.New("webhook: signature does not match")
	ErrStale        = errors.New("webhook: timestamp outside the tolerance")
)

// Verify checks a received request's X-Sidekick-Timestamp and
// X-Sidekick-Signature headers against its body: the signature must match
// and the timestamp must be within tolerance of now, so a captured request
// cannot be replayed later. Receivers written in Go can use it as is.
func Verify(secret []byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	ts := h.Get(HeaderTimestamp)
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook: bad %s %q: %w", HeaderTimestamp, ts, ErrStale)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("webhook: timestamp %s is %s away: %w", ts, d.Round(time.Second), ErrStale)
	}
	if !hmac.Equal([]byte(h.Get(HeaderSignature)), []byte(Sign(secret, ts, body))) {
		return ErrBadSignature
	}
	return nil
}

// retryAfter reads a Retry-After header: delay seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d, true
		}
		return 0, true
	}
	return 0, false
}
