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
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

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
	// means 1, with a burst of 3.
	Pace  rate.Limit
	Burst int
	// MaxPaceWait is the longest a send waits for its conversation's pace
	// (default 1s); a message whose turn is further off is not sent but
	// returned as notify.LaterError, so the sender reschedules it instead
	// of holding a worker through a burst.
	MaxPaceWait time.Duration
}

// Channel sends through Slack's Web API.
type Channel struct {
	api     *slackapi.Client
	logger  *slog.Logger
	pace    *pacer
	maxWait time.Duration
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

// wait blocks until a message to conv is within Slack's pace, or ctx
// ends. A turn further off than max is not waited for: notify.LaterError
// says when to try again.
func (p *pacer) wait(ctx context.Context, conv string, max time.Duration) error {
	r := p.limiter(conv).Reserve()
	d := r.Delay()
	if d > max {
		r.Cancel()
		return &notify.LaterError{After: d, Err: fmt.Errorf("slack: %s's pace has no room for %s", conv, d)}
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return fmt.Errorf("slack: waiting for %s's pace: %w", conv, ctx.Err())
	}
}

var (
	_ notify.Channel   = (*Channel)(nil)
	_ notify.Updater   = (*Channel)(nil)
	_ notify.Refresher = (*Channel)(nil)
	_ notify.Finder    = (*Channel)(nil)
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
	if o.MaxPaceWait <= 0 {
		o.MaxPaceWait = time.Second
	}
	return &Channel{api: slackapi.New(o.Token, opts...), logger: o.Logger, pace: newPacer(o.Pace, o.Burst), maxWait: o.MaxPaceWait}
}

// Name returns "slack".
func (c *Channel) Name() string { return Name }

// CanReach reports whether the recipient has a Slack id or is a channel.
func (c *Channel) CanReach(r notify.Recipient) bool { return r.SlackID != "" || r.SlackChannel != "" }

// Send posts the message (chat.postMessage) and returns "channel/ts" as
// the receipt, for later updates.
func (c *Channel) Send(ctx context.Context, m notify.Message) (notify.Receipt, error) {
	target, err := c.turn(ctx, m.Recipient)
	if err != nil {
		return notify.Receipt{}, err
	}
	opts := []slackapi.MsgOption{
		slackapi.MsgOptionText(Fallback(m), false),
		slackapi.MsgOptionBlocks(Blocks(m, "")...),
		slackapi.MsgOptionDisableLinkUnfurl(),
	}
	if m.DeliveryID != "" {
		opts = append(opts, slackapi.MsgOptionMetadata(slackapi.SlackMetadata{
			EventType: MetadataEventType, EventPayload: map[string]any{"delivery_id": m.DeliveryID}}))
	}
	channel, ts, err := c.api.PostMessageContext(ctx, target, opts...)
	if err != nil {
		return notify.Receipt{}, classify("chat.postMessage", err)
	}
	return notify.Receipt{Ref: channel + "/" + ts}, nil
}

// turn returns where a post to r goes (their Slack id, or the channel)
// once it is that conversation's turn in Slack's pace.
func (c *Channel) turn(ctx context.Context, r notify.Recipient) (string, error) {
	target := r.SlackID
	if target == "" {
		target = r.SlackChannel
	}
	if target == "" {
		return "", notify.Permanent(fmt.Errorf("slack: %s has no Slack id", r.Display()))
	}
	return target, c.pace.wait(ctx, target, c.maxWait)
}

// MetadataEventType is the event type of the message metadata every post
// carries: {"delivery_id": <delivery id>}, which Find looks for.
const MetadataEventType = "sidekick_delivery"

// findPages bounds how far back Find looks: pages of 100 of the newest
// messages of the conversation. A cut-short attempt is at most a lease or
// so old.
const findPages = 3

// Find looks for a message posted for m's delivery (its metadata) among
// the newest messages of the conversation it goes to
// (conversations.open for a DM, then conversations.history with
// include_all_metadata; scopes im:write, im:history, channels:history).
func (c *Channel) Find(ctx context.Context, m notify.Message) (notify.Receipt, bool, error) {
	channel := m.Recipient.SlackChannel
	if m.Recipient.SlackID != "" {
		ch, _, _, err := c.api.OpenConversationContext(ctx, &slackapi.OpenConversationParameters{Users: []string{m.Recipient.SlackID}, ReturnIM: true})
		if err != nil {
			return notify.Receipt{}, false, classify("conversations.open", err)
		}
		channel = ch.ID
	}
	if channel == "" || m.DeliveryID == "" {
		return notify.Receipt{}, false, nil
	}
	cursor := ""
	for range findPages {
		page, err := c.api.GetConversationHistoryContext(ctx, &slackapi.GetConversationHistoryParameters{
			ChannelID: channel, Cursor: cursor, Limit: 100, IncludeAllMetadata: true})
		if err != nil {
			return notify.Receipt{}, false, classify("conversations.history", err)
		}
		for _, msg := range page.Messages {
			if msg.Metadata.EventType == MetadataEventType && msg.Metadata.EventPayload["delivery_id"] == m.DeliveryID {
				return notify.Receipt{Ref: channel + "/" + msg.Timestamp}, true, nil
			}
		}
		if cursor = page.ResponseMetaData.NextCursor; !page.HasMore || cursor == "" {
			break
		}
	}
	return notify.Receipt{}, false, nil
}

// Update rewrites a sent message with its new status and without buttons
// (chat.update).
func (c *Channel) Update(ctx context.Context, r notify.Receipt, m notify.Message, status string) error {
	return c.rewrite(ctx, r, Fallback(m)+" ("+status+")", Blocks(m, status))
}

// Refresh rewrites a sent message with new content, keeping its buttons
// (chat.update).
func (c *Channel) Refresh(ctx context.Context, r notify.Receipt, m notify.Message) error {
	return c.rewrite(ctx, r, Fallback(m), Blocks(m, ""))
}

// rewrite replaces the text and blocks of the message r names
// (chat.update).
func (c *Channel) rewrite(ctx context.Context, r notify.Receipt, text string, blocks []slackapi.Block) error {
	channel, ts, ok := strings.Cut(r.Ref, "/")
	if !ok || channel == "" || ts == "" {
		return notify.Permanent(fmt.Errorf("slack: receipt %q is not channel/ts", r.Ref))
	}
	if _, _, _, err := c.api.UpdateMessageContext(ctx, channel, ts, slackapi.MsgOptionText(text, false), slackapi.MsgOptionBlocks(blocks...)); err != nil {
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
// It is cut to maxTitle characters, far below chat.postMessage's 40,000.
func Fallback(m notify.Message) string {
	title, _ := cut(m.Title, maxTitle, func(s string) string { return s })
	return fmt.Sprintf("%s: %s", m.Urgency, title)
}

// Slack's documented limits that the rendering keeps to
// (https://api.slack.com/reference/block-kit/blocks): a section's text is
// at most 3,000 characters and a context block has at most 10 elements.
// A message past them is refused (invalid_blocks), so none is sent.
const (
	maxSectionText     = 3000
	maxContextElements = 10
	// maxTitle bounds a title (a customer's subject can be anything).
	maxTitle = 300
	// maxLinkURL bounds a URL shown in a context element or a cut note.
	maxLinkURL = 1000
)

// cut returns the longest prefix of s whose form(prefix) is at most n
// characters (form is how it is written out: escaped), and whether it cut.
// A cut ends at the last line break or space of the prefix when there is
// one in its last fifth, so a word or an item is not broken in two.
func cut(s string, n int, form func(string) string) (string, bool) {
	if utf8.RuneCountInString(form(s)) <= n {
		return s, false
	}
	size, end := 0, 0
	for i, r := range s {
		w := utf8.RuneCountInString(form(string(r)))
		if size+w > n {
			break
		}
		size += w
		end = i + utf8.RuneLen(r)
	}
	prefix := s[:end]
	if i := strings.LastIndexAny(prefix, "\n "); i > len(prefix)*4/5 {
		prefix = prefix[:i]
	}
	return strings.TrimRight(prefix, " \n"), true
}

// Blocks renders the message. With status empty it carries the buttons;
// otherwise the buttons are replaced by the status line.
func Blocks(m notify.Message, status string) []slackapi.Block {
	title, _ := cut(capitalise(m.Title), maxTitle, escape)
	head := "*" + escape(title) + "*"
	if m.Urgency == notify.Page {
		head = ":rotating_light: " + head
	}
	if m.Recipient.Role != "" {
		head += "\n_You are the " + escape(m.Recipient.Role) + "._"
	}
	if text := strings.TrimSpace(m.Text); text != "" {
		head += "\n" + escape(fitText(text, maxSectionText-utf8.RuneCountInString(head)-1, m.Links))
	}
	blocks := []slackapi.Block{
		slackapi.NewSectionBlock(slackapi.NewTextBlockObject(slackapi.MarkdownType, head, false, false), nil, nil),
	}
	var els []slackapi.MixedElement
	for _, l := range m.Links {
		if len(els) == maxContextElements || len(l.URL) > maxLinkURL {
			continue
		}
		title := l.Title
		if title == "" {
			title = l.URL
		}
		title, _ = cut(title, maxTitle, escape)
		els = append(els, slackapi.NewTextBlockObject(slackapi.MarkdownType, "<"+l.URL+"|"+escape(title)+">", false, false))
	}
	if len(els) > 0 {
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

// fitText returns text as it fits in n characters once escaped: whole, or
// cut with a note saying where the whole text is (the message's first
// link, the conversation).
func fitText(text string, n int, links []notify.Link) string {
	if utf8.RuneCountInString(escape(text)) <= n {
		return text
	}
	note := "\n… (cut: the whole text is in the conversation)"
	if len(links) > 0 && len(links[0].URL) <= maxLinkURL {
		note = "\n… (cut: the whole text is at " + links[0].URL + ")"
	}
	prefix, _ := cut(text, n-utf8.RuneCountInString(escape(note)), escape)
	return prefix + note
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

var _ notify.Coalescer = (*Channel)(nil)

// burstLines is how many members a burst's message shows in full, each a
// section with its own Acknowledge button: with the heading that is 16 of
// Slack's 50 blocks, and with the bounds of burstLine at most about 8,000
// characters of text, well under the 12,000 or so Slack takes of blocks in
// one message (beyond it Slack answers msg_blocks_too_long, a limit it
// does not document).
const burstLines = 15

// Bounds of one member's line in a burst's message.
const (
	burstTitle = 120
	burstText  = 150
	burstLink  = 200
	burstLinks = 1
)

// BurstLines is how many members a burst's message lists in full.
func (c *Channel) BurstLines() int { return burstLines }

// SendBurst posts a burst's message (chat.postMessage), marked with the
// burst's id in its metadata as a delivery's post is with the delivery's.
func (c *Channel) SendBurst(ctx context.Context, b notify.Burst) (notify.Receipt, error) {
	target, err := c.turn(ctx, b.Recipient)
	if err != nil {
		return notify.Receipt{}, err
	}
	channel, ts, err := c.api.PostMessageContext(ctx, target,
		slackapi.MsgOptionText(BurstFallback(b), false),
		slackapi.MsgOptionBlocks(BurstBlocks(b)...),
		slackapi.MsgOptionDisableLinkUnfurl(),
		slackapi.MsgOptionMetadata(slackapi.SlackMetadata{EventType: MetadataEventType, EventPayload: map[string]any{"delivery_id": b.ID}}),
	)
	if err != nil {
		return notify.Receipt{}, classify("chat.postMessage", err)
	}
	return notify.Receipt{Ref: channel + "/" + ts}, nil
}

// UpdateBurst rewrites a burst's message with the burst as it is now
// (chat.update).
func (c *Channel) UpdateBurst(ctx context.Context, r notify.Receipt, b notify.Burst) error {
	return c.rewrite(ctx, r, BurstFallback(b), BurstBlocks(b))
}

// single is the member of a burst of one, which reads as that member's
// own message.
func single(b notify.Burst) (notify.BurstItem, bool) {
	if b.Total == 1 && len(b.Latest) == 1 {
		return b.Latest[0], true
	}
	return notify.BurstItem{}, false
}

// BurstFallback is a burst's plain text: how many, and the newest.
func BurstFallback(b notify.Burst) string {
	if it, ok := single(b); ok {
		if it.Status != "" {
			return Fallback(it.Message) + " (" + it.Status + ")"
		}
		return Fallback(it.Message)
	}
	s := fmt.Sprintf("ping: %d new conversations", b.Total)
	if len(b.Latest) > 0 {
		title, _ := cut(b.Latest[0].Title, maxTitle, func(s string) string { return s })
		s += ", the latest: " + title
	}
	return s
}

// BurstBlocks renders a burst: a heading with the count, then its newest
// members, each with its own Acknowledge button until it is dealt with.
// A burst of one is that member's own message, buttons and all.
func BurstBlocks(b notify.Burst) []slackapi.Block {
	if it, ok := single(b); ok {
		return Blocks(it.Message, it.Status)
	}
	head := fmt.Sprintf("*%d new conversations*", b.Total)
	if b.Recipient.Role != "" {
		head += "\n_You are the " + escape(b.Recipient.Role) + "._"
	}
	if b.Done > 0 {
		head += fmt.Sprintf("\n%d of them acknowledged, answered or closed.", b.Done)
	}
	if b.Total > len(b.Latest) {
		head += fmt.Sprintf("\nThe latest %d are below; every one is in Sidekick's queue.", len(b.Latest))
	}
	blocks := []slackapi.Block{slackapi.NewSectionBlock(slackapi.NewTextBlockObject(slackapi.MarkdownType, head, false, false), nil, nil)}
	for _, it := range b.Latest[:min(len(b.Latest), burstLines)] {
		var acc *slackapi.Accessory
		if it.Status == "" {
			btn := slackapi.NewButtonBlockElement(ActionAck, ButtonValue(it.ConversationID, it.NotificationID),
				slackapi.NewTextBlockObject(slackapi.PlainTextType, "Acknowledge", false, false))
			acc = slackapi.NewAccessory(btn)
		}
		blocks = append(blocks, slackapi.NewSectionBlock(slackapi.NewTextBlockObject(slackapi.MarkdownType, burstLine(it), false, false), nil, acc))
	}
	return blocks
}

// burstLine is one member of a burst's message: its title, the first
// line of its text, its links, and its status once dealt with.
func burstLine(it notify.BurstItem) string {
	title, _ := cut(capitalise(it.Title), burstTitle, escape)
	line := "*" + escape(title) + "*"
	if it.Status != "" {
		line = "~" + escape(title) + "~"
	}
	if first, _, _ := strings.Cut(strings.TrimSpace(it.Text), "\n"); first != "" {
		text, cutShort := cut(first, burstText, escape)
		if cutShort {
			text += "…"
		}
		line += "\n" + escape(text)
	}
	var links []string
	for _, l := range it.Links {
		if len(links) == burstLinks || len(l.URL) > burstLink {
			continue
		}
		t, _ := cut(cmp.Or(l.Title, l.URL), 40, escape)
		links = append(links, "<"+l.URL+"|"+escape(t)+">")
	}
	if len(links) > 0 {
		line += "\n" + strings.Join(links, " · ")
	}
	if it.Status != "" {
		line += "\n:white_check_mark: " + escape(capitalise(it.Status))
	}
	return line
}
