// Package notify holds what every delivery channel shares: the message to
// send, the receipt a channel gives back, the Channel interface and the
// errors a channel uses to say whether a failed send may be retried. One
// subpackage per channel implements Channel (console, slack).
package notify

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Urgency says how hard to get someone's attention.
type Urgency int

const (
	// Ping is a chat message or an email.
	Ping Urgency = iota + 1
	// Page also goes to the paging service when one is configured.
	Page
)

// String returns "ping" or "page".
func (u Urgency) String() string {
	if u == Page {
		return "page"
	}
	return "ping"
}

// Recipient is who a message goes to, as resolved when the delivery was
// recorded.
type Recipient struct {
	PersonID string
	Name     string
	Email    string
	SlackID  string
	// SlackChannel is set instead of a person for channel posts.
	SlackChannel string
	// Role says why this recipient, e.g. "Support Hero"; may be empty.
	Role string
}

// Display is the recipient's name for humans.
func (r Recipient) Display() string {
	switch {
	case r.Name != "":
		return r.Name
	case r.PersonID != "":
		return r.PersonID
	case r.SlackChannel != "":
		return "#" + r.SlackChannel
	}
	return "(nobody)"
}

// Link is a titled URL shown with a message.
type Link struct {
	Title string `json:"title"`
	URL   string `json:"url"`
}

// Message is one delivery of a notification to one recipient.
type Message struct {
	NotificationID string
	DeliveryID     string
	Recipient      Recipient
	Urgency        Urgency
	Title          string
	Text           string
	Links          []Link
	ConversationID string
	// DedupKey identifies this delivery across retries; channels that
	// support idempotency keys pass it on.
	DedupKey string
	// Attempt counts from 1.
	Attempt int
}

// Receipt is what a channel reports after a successful send.
type Receipt struct {
	// Ref lets the channel find the sent message again (Slack "channel/ts").
	Ref string
}

// Channel delivers messages through one medium.
type Channel interface {
	Name() string
	Send(ctx context.Context, m Message) (Receipt, error)
}

// Updater is implemented by channels that can change a message already
// sent, for instance to show it was acknowledged.
type Updater interface {
	Update(ctx context.Context, r Receipt, m Message, status string) error
}

// Refresher is implemented by channels that can replace the content of a
// message already sent while it is still open, keeping its buttons: a
// storm of updates about one Sentry issue edits the one message instead
// of sending many.
type Refresher interface {
	Refresh(ctx context.Context, r Receipt, m Message) error
}

// Finder is implemented by channels that can tell whether the message of
// a delivery already reached the provider. A delivery whose previous
// attempt was cut short (its sender died during the call) is looked for
// before it is sent again, so a crash does not send it twice.
type Finder interface {
	Find(ctx context.Context, m Message) (r Receipt, found bool, err error)
}

// Burst is one message listing the pings of several conversations to one
// recipient: the first ping posts it, the ones that follow soon after are
// added to it by rewriting it, instead of a message each.
type Burst struct {
	// ID names the burst; the channel marks its message with it, so a
	// post cut short by a crash can be looked for (Finder, with
	// Message.DeliveryID set to ID).
	ID        string
	Recipient Recipient
	// Total is how many conversations the burst lists, Done how many of
	// them were acknowledged, answered or closed since.
	Total, Done int
	// Latest are the newest members, newest first: at most the channel's
	// BurstLines. With one member the message is that member's own.
	Latest []BurstItem
}

// BurstItem is one member of a burst: its message, and its status once
// acknowledged, answered or closed (empty while open).
type BurstItem struct {
	Message
	Status string
}

// Coalescer is implemented by channels that can list many notifications
// in one message and rewrite it as the list grows (Slack: chat.postMessage
// then chat.update).
type Coalescer interface {
	// SendBurst posts the burst's message.
	SendBurst(ctx context.Context, b Burst) (Receipt, error)
	// UpdateBurst rewrites the posted message with the burst as it is
	// now. Rewriting twice with one burst changes nothing.
	UpdateBurst(ctx context.Context, r Receipt, b Burst) error
	// BurstLines is how many members one message shows in full.
	BurstLines() int
}

// permanentError marks a failure that retrying cannot fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying (unknown user, bad token).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// RetryAfterError asks for the next attempt no earlier than After, as a
// rate-limited API says (Slack's 429 Retry-After).
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.After)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter returns the delay err asks for, if any.
func RetryAfter(err error) (time.Duration, bool) {
	var r *RetryAfterError
	if errors.As(err, &r) {
		return r.After, true
	}
	return 0, false
}

// LaterError says a message was not sent because the channel's own pace
// has no room for it now (Slack's message a second per conversation):
// the sender reschedules it After from now, without counting an attempt,
// instead of waiting.
type LaterError struct {
	After time.Duration
	Err   error
}

func (e *LaterError) Error() string {
	return fmt.Sprintf("%v (send again in %s)", e.Err, e.After)
}

func (e *LaterError) Unwrap() error { return e.Err }

// Later returns the delay err asks a message to be rescheduled by, if it
// is a LaterError.
func Later(err error) (time.Duration, bool) {
	var l *LaterError
	if errors.As(err, &l) {
		return l.After, true
	}
	return 0, false
}

// ContactRule is one of a person's own notification rules: tell them
// through Channel After the notification was made, unless it was
// acknowledged (or the conversation answered or closed) by then. Urgency
// 0 applies to pings and pages; Ping or Page to that urgency only.
type ContactRule struct {
	Channel string
	After   time.Duration
	Urgency Urgency
}

// Applies reports whether the rule is for notifications of urgency u.
func (r ContactRule) Applies(u Urgency) bool { return r.Urgency == 0 || r.Urgency == u }

// String is the configuration spelling: "email after 5m (pages)".
func (r ContactRule) String() string {
	s := r.Channel
	if r.After > 0 {
		s += " after " + r.After.String()
	} else {
		s += " at once"
	}
	switch r.Urgency {
	case Ping:
		s += " (pings)"
	case Page:
		s += " (pages)"
	}
	return s
}
