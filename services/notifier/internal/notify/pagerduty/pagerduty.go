// Package pagerduty pages through PagerDuty's Events API v2: a trigger
// event per delivery (POST https://events.pagerduty.com/v2/enqueue), and
// acknowledge or resolve events for the same dedup key when the
// notification is acknowledged or the conversation answered or closed.
//
// The dedup key is stable per conversation and person
// ("sidekick-conv-<id>-<person>"), so a retried or duplicate trigger is
// absorbed by PagerDuty into the open incident instead of paging twice.
// PagerDuty's own escalation policy on the service behind the routing key
// decides whom it pages; the person Sidekick meant is in custom_details.
//
// Answers: 202 is success; 429 and 5xx (and network errors) are retried,
// honouring Retry-After when present; 400 and other 4xx are permanent.
package pagerduty

import (
	"bytes"
	"context"
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
	"unicode/utf8"

	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
)

// Name is the channel name recorded in the delivery log.
const Name = "pagerduty"

// DefaultURL is the Events API v2 endpoint.
const DefaultURL = "https://events.pagerduty.com/v2/enqueue"

// Event actions.
const (
	ActionTrigger     = "trigger"
	ActionAcknowledge = "acknowledge"
	ActionResolve     = "resolve"
)

// Limits from the Events API v2 documentation.
const (
	maxSummary  = 1024
	maxDedupKey = 255
)

// Event is an Events API v2 alert event.
type Event struct {
	RoutingKey  string `json:"routing_key"`
	EventAction string `json:"event_action"`
	DedupKey    string `json:"dedup_key,omitempty"`
	// Payload is required for trigger events and absent otherwise.
	Payload   *Payload `json:"payload,omitempty"`
	Client    string   `json:"client,omitempty"`
	ClientURL string   `json:"client_url,omitempty"`
	Links     []Link   `json:"links,omitempty"`
}

// Payload describes a triggered alert.
type Payload struct {
	Summary string `json:"summary"`
	Source  string `json:"source"`
	// Severity is critical, error, warning or info.
	Severity string `json:"severity"`
	// Timestamp is ISO 8601.
	Timestamp     string         `json:"timestamp,omitempty"`
	Component     string         `json:"component,omitempty"`
	Group         string         `json:"group,omitempty"`
	Class         string         `json:"class,omitempty"`
	CustomDetails map[string]any `json:"custom_details,omitempty"`
}

// Link is a link shown with the alert.
type Link struct {
	Href string `json:"href"`
	Text string `json:"text,omitempty"`
}

// Response is the Events API's answer.
type Response struct {
	Status   string   `json:"status"`
	Message  string   `json:"message"`
	DedupKey string   `json:"dedup_key"`
	Errors   []string `json:"errors"`
}

// Options configure the channel.
type Options struct {
	// RoutingKey is the integration key of an Events API v2 integration.
	RoutingKey string
	// URL overrides DefaultURL (EU accounts, tests).
	URL string
	// Source is payload.source; default "sidekick".
	Source string
	// ClientURL links the alert back to Sidekick's console.
	ClientURL  string
	HTTPClient *http.Client
	// Now is the clock (event timestamps, Retry-After dates).
	Now func() time.Time
}

// Channel sends events to one PagerDuty service.
type Channel struct {
	o Options
}

var (
	_ notify.Channel = (*Channel)(nil)
	_ notify.Updater = (*Channel)(nil)
)

// New returns a PagerDuty channel.
func New(o Options) (*Channel, error) {
	if strings.TrimSpace(o.RoutingKey) == "" {
		return nil, errors.New("pagerduty: no routing key")
	}
	if o.URL == "" {
		o.URL = DefaultURL
	}
	if o.Source == "" {
		o.Source = "sidekick"
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Channel{o: o}, nil
}

// Name returns "pagerduty".
func (c *Channel) Name() string { return Name }

// CanReach reports whether the recipient is a person: PagerDuty pages
// people through its own escalation policy, it does not post to channels.
func (c *Channel) CanReach(r notify.Recipient) bool { return r.SlackChannel == "" }

// DedupKey is the PagerDuty dedup key of a message: one per conversation
// and person ("sidekick-conv-<conversation>-<person>"), else one per
// notification and person. Retries and duplicate sends about the same
// conversation land in the person's open incident instead of paging
// again, while an escalation to somebody else (the team's secondary after
// the hero acknowledged) opens its own incident rather than disappearing
// into an acknowledged one.
func DedupKey(m notify.Message) string {
	var k string
	switch {
	case m.ConversationID != "":
		k = "sidekick-conv-" + m.ConversationID
	case m.NotificationID != "":
		k = "sidekick-notif-" + m.NotificationID
	default:
		k = "sidekick-" + m.DedupKey
	}
	if m.Recipient.PersonID != "" {
		k += "-" + m.Recipient.PersonID
	}
	if len(k) > maxDedupKey {
		sum := sha256.Sum256([]byte(k))
		k = "sidekick-" + hex.EncodeToString(sum[:])
	}
	return k
}

// Severity maps urgency to payload.severity: a page is critical, a ping a
// warning (the PagerDuty service's urgency rules decide what that rings).
func Severity(u notify.Urgency) string {
	if u == notify.Page {
		return "critical"
	}
	return "warning"
}

// Send triggers an alert. The receipt is the dedup key PagerDuty answered.
func (c *Channel) Send(ctx context.Context, m notify.Message) (notify.Receipt, error) {
	details := map[string]any{"urgency": m.Urgency.String()}
	add := func(k, v string) {
		if v != "" {
			details[k] = v
		}
	}
	add("text", m.Text)
	add("recipient", m.Recipient.Display())
	add("recipient_role", m.Recipient.Role)
	add("conversation_id", m.ConversationID)
	add("notification_id", m.NotificationID)
	ev := Event{
		RoutingKey: c.o.RoutingKey, EventAction: ActionTrigger, DedupKey: DedupKey(m),
		Payload: &Payload{
			Summary: summary(m), Source: c.o.Source, Severity: Severity(m.Urgency),
			Timestamp: c.o.Now().UTC().Format(time.RFC3339), Component: "support", Class: "conversation",
			CustomDetails: details,
		},
		Client: "Sidekick", ClientURL: c.o.ClientURL,
	}
	for _, l := range m.Links {
		ev.Links = append(ev.Links, Link{Href: l.URL, Text: l.Title})
	}
	resp, err := c.Enqueue(ctx, ev)
	if err != nil {
		return notify.Receipt{}, err
	}
	key := resp.DedupKey
	if key == "" {
		key = ev.DedupKey
	}
	return notify.Receipt{Ref: key}, nil
}

// Update acknowledges the alert when status starts with "acknowledged",
// and resolves it otherwise ("answered", "closed by bob").
func (c *Channel) Update(ctx context.Context, r notify.Receipt, m notify.Message, status string) error {
	key := r.Ref
	if key == "" {
		key = DedupKey(m)
	}
	_, err := c.Enqueue(ctx, Event{RoutingKey: c.o.RoutingKey, EventAction: ActionFor(status), DedupKey: key})
	return err
}

// ActionFor maps a delivery status change to an event action.
func ActionFor(status string) string {
	if strings.HasPrefix(strings.ToLower(status), "acknowledged") {
		return ActionAcknowledge
	}
	return ActionResolve
}

// Enqueue sends one event and classifies the answer.
func (c *Channel) Enqueue(ctx context.Context, ev Event) (Response, error) {
	body, err := json.Marshal(ev)
	if err != nil {
		return Response{}, notify.Permanent(fmt.Errorf("pagerduty: encode %s: %w", ev.EventAction, err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.o.URL, bytes.NewReader(body))
	if err != nil {
		return Response{}, notify.Permanent(fmt.Errorf("pagerduty: build %s request: %w", ev.EventAction, err))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.o.HTTPClient.Do(req)
	if err != nil {
		return Response{}, fmt.Errorf("pagerduty %s: %w", ev.EventAction, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var out Response
	_ = json.Unmarshal(raw, &out) // 429 and 5xx bodies may not be JSON
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return out, nil
	}
	err = fmt.Errorf("pagerduty %s: %s: %s", ev.EventAction, resp.Status, describe(out, raw))
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		if after, ok := retryAfter(resp.Header.Get("Retry-After"), c.o.Now()); ok {
			return Response{}, &notify.RetryAfterError{After: after, Err: err}
		}
		return Response{}, err
	default:
		return Response{}, notify.Permanent(err)
	}
}

func describe(r Response, raw []byte) string {
	if r.Message != "" || len(r.Errors) > 0 {
		return strings.TrimSpace(r.Message + " " + strings.Join(r.Errors, "; "))
	}
	s := strings.TrimSpace(string(raw))
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// summary is the title with the role, cut to PagerDuty's 1024 characters.
func summary(m notify.Message) string {
	s := m.Title
	if s == "" {
		s = "Sidekick notification"
	}
	if m.Recipient.Role != "" {
		s += " (for the " + m.Recipient.Role + ")"
	}
	if utf8.RuneCountInString(s) > maxSummary {
		s = string([]rune(s)[:maxSummary-1]) + "…"
	}
	return s
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
