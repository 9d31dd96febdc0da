// Package console is the delivery channel of `sidekick dev`: it writes a
// readable block per message to a writer instead of calling Slack or email.
package console

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
)

// Name is the channel name recorded in the delivery log.
const Name = "console"

// Channel writes messages to W.
type Channel struct {
	mu sync.Mutex
	w  io.Writer
}

var (
	_ notify.Channel   = (*Channel)(nil)
	_ notify.Updater   = (*Channel)(nil)
	_ notify.Refresher = (*Channel)(nil)
)

// New returns a console channel writing to w.
func New(w io.Writer) *Channel { return &Channel{w: w} }

// Name returns "console".
func (c *Channel) Name() string { return Name }

// Send writes one block such as
//
//	[notify] ping alice (Support Hero): New Priority conversation from Acme — https://…
//	    Checkout fails since the upgrade
func (c *Channel) Send(ctx context.Context, m notify.Message) (notify.Receipt, error) {
	if err := ctx.Err(); err != nil {
		return notify.Receipt{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := io.WriteString(c.w, Format(m)); err != nil {
		return notify.Receipt{}, fmt.Errorf("console write: %w", err)
	}
	return notify.Receipt{Ref: m.DeliveryID}, nil
}

// Update writes a one-line status change for a message sent before.
func (c *Channel) Update(ctx context.Context, r notify.Receipt, m notify.Message, status string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := fmt.Fprintf(c.w, "[notify] %s for %s: %s\n", status, m.Recipient.Display(), m.Title)
	if err != nil {
		return fmt.Errorf("console write: %w", err)
	}
	return nil
}

// Refresh writes the new content of a message sent before.
func (c *Channel) Refresh(ctx context.Context, r notify.Receipt, m notify.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	text := strings.TrimSpace(m.Text)
	if i := strings.LastIndex(text, "\n"); i >= 0 {
		text = strings.TrimSpace(text[i+1:])
	}
	if _, err := fmt.Fprintf(c.w, "[notify] updated for %s: %s — %s\n", m.Recipient.Display(), m.Title, text); err != nil {
		return fmt.Errorf("console write: %w", err)
	}
	return nil
}

// Format renders m as the console shows it.
func Format(m notify.Message) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[notify] %s %s", m.Urgency, m.Recipient.Display())
	if m.Recipient.Role != "" {
		fmt.Fprintf(&b, " (%s)", m.Recipient.Role)
	}
	fmt.Fprintf(&b, ": %s", m.Title)
	if len(m.Links) > 0 {
		fmt.Fprintf(&b, " — %s", m.Links[0].URL)
	}
	b.WriteString("\n")
	for _, line := range strings.Split(strings.TrimSpace(m.Text), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			fmt.Fprintf(&b, "    %s\n", line)
		}
	}
	for _, l := range m.Links[min(1, len(m.Links)):] {
		fmt.Fprintf(&b, "    %s: %s\n", l.Title, l.URL)
	}
	if m.ConversationID != "" {
		fmt.Fprintf(&b, "    conversation %s · notification %s\n", m.ConversationID, m.NotificationID)
	}
	return b.String()
}
