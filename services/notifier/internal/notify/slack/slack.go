// Package slack delivers notifications as Slack messages: a DM to the
// person's Slack id (or a post in a channel) with Block Kit buttons to
// acknowledge, escalate or close, and later edits of the same message
// through chat.update when it is acknowledged or the conversation is dealt
// with. Posts to one Slack conversation keep Slack's pace (about one a
// second, with short bursts), in wall-clock time: it is Slack's pace, not
// the service clock's, so a fake clock standing still does not hold posts
// back. A 429 answer becomes notify.RetryAfterError
// with Slack's Retry-After; errors no retry can fix (unknown user, bad
// token) are permanent.
package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	slackapi "github.com/slack-go/slack"
	"golang.org/x/time/rate"

	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
)

// Name is the channel name recorded in the delivery log.
const Name = "slack"

// Action ids of the buttons; ingest-slack turns clicks into support.action.*.
const (
	ActionAck      = "sidekick_ack"
	ActionEscalate = "sidekick_escalate"
	ActionClose    = "sidekick_close"
)

// ButtonValue is the value carried by every button of a notification:
// "conv:<conversation id>|notif:<notification id>".
func ButtonValue(conversationID, notificationID string) string {
	return "conv:" + conversationID + "|notif:" + notificationID
}

// Options configure the channel.
type Options struct {
	// Token is the bot token (xoxb-…), with chat:write.
	Token string
	// APIURL overrides https://slack.com/api/ (tests); must end with '/'.
	APIURL     string
	HTTPClient *http.Client
	Logger     *slog.Logger
	// Pace is how many messages a second go to one Slack conversation (a
	// DM or a channel); Slack allows about one, with short bursts. Zero
	// means 1, with a burst of 3. Messages over the pace wait.
	Pace  rate.Limit
	Burst int
}

// Channel sends through Slack's Web API.
type Channel struct {
	api    *slackapi.Client
	logger *slog.Logger
	pace   *pacer
}

// pacer keeps one rate limiter per Slack conversation.
type pacer struct {
	mu     sync.Mutex
	limit  rate.Limit
	burst  int
	byConv map[string]*rate.Limiter
}

func newPacer(limit rate.Limit, burst int) *pacer {
	if limit <= 0 {
		limit = 1
	}
	if burst <= 0 {
		burst = 3
	}
	return &pacer{limit: limit, burst: burst, byConv: map[string]*rate.Limiter{}}
}

func (p *pacer) limiter(conv string) *rate.Limiter {
	p.mu.Lock()
	defer p.mu.Unlock()
	l, ok := p.byConv[conv]
	if !ok {
		l = rate.NewLimiter(p.limit, p.burst)
		p.byConv[conv] = l
	}
	return l
}

// wait blocks until a message to conv is within Slack's pace, or ctx ends.
func (p *pacer) wait(ctx context.Context, conv string) error {
	return p.limiter(conv).Wait(ctx)
}

var (
	_ notify.Channel   = (*Channel)(nil)
	_ notify.Updater   = (*Channel)(nil)
	_ notify.Refresher = (*Channel)(nil)
)

// New returns a Slack channel.
func New(o Options) *Channel {
	opts := []slackapi.Option{}
	if o.APIURL != "" {
		u := o.APIURL
		if !strings.HasSuffix(u, "/") {
			u += "/"
		}
		opts = append(opts, slackapi.OptionAPIURL(u))
	}
	if o.HTTPClient != nil {
		opts = append(opts, slackapi.OptionHTTPClient(o.HTTPClient))
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Channel{api: slackapi.New(o.Token, opts...), logger: o.Logger, pace: newPacer(o.Pace, o.Burst)}
}

// Name returns "slack".
func (c *Channel) Name() string { return Name }

// CanReach reports whether the recipient has a Slack id or is a channel.
func (c *Channel) CanReach(r notify.Recipient) bool { return r.SlackID != "" || r.SlackChannel != "" }

// Send posts the message (chat.postMessage) and returns "channel/ts" as
// the receipt, for later updates.
func (c *Channel) Send(ctx context.Context, m notify.Message) (notify.Receipt, error) {
	target := m.Recipient.SlackID
	if target == "" {
		target = m.Recipient.SlackChannel
	}
	if target == "" {
		return notify.Receipt{}, notify.Permanent(fmt.Errorf("slack: %s has no Slack id", m.Recipient.Display()))
	}
	if err := c.pace.wait(ctx, target); err != nil {
		return notify.Receipt{}, fmt.Errorf("slack: waiting for %s's pace: %w", target, err)
	}
	channel, ts, err := c.api.PostMessageContext(ctx, target,
		slackapi.MsgOptionText(Fallback(m), false),
		slackapi.MsgOptionBlocks(Blocks(m, "")...),
		slackapi.MsgOptionDisableLinkUnfurl(),
	)
	if err != nil {
		return notify.Receipt{}, classify("chat.postMessage", err)
	}
	return notify.Receipt{Ref: channel + "/" + ts}, nil
}

// Update rewrites a sent message with its new status and without buttons
// (chat.update).
func (c *Channel) Update(ctx context.Context, r notify.Receipt, m notify.Message, status string) error {
	channel, ts, ok := strings.Cut(r.Ref, "/")
	if !ok || channel == "" || ts == "" {
		return notify.Permanent(fmt.Errorf("slack: receipt %q is not channel/ts", r.Ref))
	}
	_, _, _, err := c.api.UpdateMessageContext(ctx, channel, ts,
		slackapi.MsgOptionText(Fallback(m)+" ("+status+")", false),
		slackapi.MsgOptionBlocks(Blocks(m, status)...),
	)
	if err != nil {
		return classify("chat.update", err)
	}
	return nil
}

// Refresh rewrites a sent message with new content, keeping its buttons
// (chat.update).
func (c *Channel) Refresh(ctx context.Context, r notify.Receipt, m notify.Message) error {
	channel, ts, ok := strings.Cut(r.Ref, "/")
	if !ok || channel == "" || ts == "" {
		return notify.Permanent(fmt.Errorf("slack: receipt %q is not channel/ts", r.Ref))
	}
	_, _, _, err := c.api.UpdateMessageContext(ctx, channel, ts,
		slackapi.MsgOptionText(Fallback(m), false),
		slackapi.MsgOptionBlocks(Blocks(m, "")...),
	)
	if err != nil {
		return classify("chat.update", err)
	}
	return nil
}

// permanentErrors are Slack error codes no retry can fix.
var permanentErrors = map[string]bool{
	"channel_not_found": true, "not_in_channel": true, "is_archived": true, "user_not_found": true,
	"user_disabled": true, "account_inactive": true, "invalid_auth": true, "not_authed": true,
	"token_revoked": true, "token_expired": true, "missing_scope": true, "invalid_blocks": true,
	"invalid_blocks_format": true, "msg_too_long": true, "no_text": true, "cant_update_message": true,
	"message_not_found": true, "edit_window_closed": true, "restricted_action": true,
}

func classify(method string, err error) error {
	var rl *slackapi.RateLimitedError
	if errors.As(err, &rl) {
		return &notify.RetryAfterError{After: rl.RetryAfter, Err: fmt.Errorf("slack %s: %w", method, err)}
	}
	var se slackapi.SlackErrorResponse
	if errors.As(err, &se) && permanentErrors[se.Err] {
		return notify.Permanent(fmt.Errorf("slack %s: %w", method, err))
	}
	return fmt.Errorf("slack %s: %w", method, err)
}

// Fallback is the plain text shown in notifications and by clients that
// cannot render blocks.
func Fallback(m notify.Message) string {
	return fmt.Sprintf("%s: %s", m.Urgency, m.Title)
}

// Blocks renders the message. With status empty it carries the buttons;
// otherwise the buttons are replaced by the status line.
func Blocks(m notify.Message, status string) []slackapi.Block {
	head := "*" + escape(capitalise(m.Title)) + "*"
	if m.Urgency == notify.Page {
		head = ":rotating_light: " + head
	}
	if m.Recipient.Role != "" {
		head += "\n_You are the " + escape(m.Recipient.Role) + "._"
	}
	if text := strings.TrimSpace(m.Text); text != "" {
		head += "\n" + escape(text)
	}
	blocks := []slackapi.Block{
		slackapi.NewSectionBlock(slackapi.NewTextBlockObject(slackapi.MarkdownType, head, false, false), nil, nil),
	}
	if len(m.Links) > 0 {
		var els []slackapi.MixedElement
		for _, l := range m.Links {
			title := l.Title
			if title == "" {
				title = l.URL
			}
			els = append(els, slackapi.NewTextBlockObject(slackapi.MarkdownType, "<"+l.URL+"|"+escape(title)+">", false, false))
		}
		blocks = append(blocks, slackapi.NewContextBlock("links", els...))
	}
	if status != "" {
		return append(blocks, slackapi.NewContextBlock("status",
			slackapi.NewTextBlockObject(slackapi.MarkdownType, ":white_check_mark: "+escape(capitalise(status)), false, false)))
	}
	value := ButtonValue(m.ConversationID, m.NotificationID)
	ack := slackapi.NewButtonBlockElement(ActionAck, value, slackapi.NewTextBlockObject(slackapi.PlainTextType, "Acknowledge", false, false))
	ack.Style = slackapi.StylePrimary
	buttons := []slackapi.BlockElement{ack}
	if m.ConversationID != "" {
		buttons = append(buttons,
			slackapi.NewButtonBlockElement(ActionEscalate, value, slackapi.NewTextBlockObject(slackapi.PlainTextType, "Escalate", false, false)),
			slackapi.NewButtonBlockElement(ActionClose, value, slackapi.NewTextBlockObject(slackapi.PlainTextType, "Close", false, false)),
		)
	}
	return append(blocks, slackapi.NewActionBlock("sidekick_actions", buttons...))
}

// escape applies Slack's three mrkdwn escapes.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func capitalise(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
