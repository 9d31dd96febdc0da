package slackreply

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/sidekickhq/sidekick/platform/outbound"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/ingest-slack/internal/slackevent"
	"github.com/sidekickhq/sidekick/services/ingest-slack/internal/slacktext"
)

// The support-channel mirror (triage decides what is posted; see
// docs/replies.md): a header per conversation, a top-level message with
// close and assign buttons rewritten when the conversation changes, and
// copies of the conversation's messages in its thread. Each post carries
// metadata of event_type slackevent.MirrorEventType with the outbound id,
// by which an interrupted attempt is found again and by which ingest-slack
// drops the post's message event (it is not a message of any thread).

// Action ids of the header's buttons (ingest-slack's interactions turn a
// click into a support.action).
const (
	ActionAssign = "sidekick_assign"
	ActionClose  = "sidekick_close"
)

// sendMirror posts or rewrites a mirror message.
func (c *Channel) sendMirror(ctx context.Context, m *supportv1.OutboundMessage, reached func(context.Context) error) (outbound.Sent, error) {
	t := m.GetSlack()
	switch m.GetKind() {
	case supportv1.OutboundKind_OUTBOUND_KIND_MIRROR_HEADER:
		return c.post(ctx, t, headerOptions(m), reached)
	case supportv1.OutboundKind_OUTBOUND_KIND_MIRROR_UPDATE:
		if err := reached(ctx); err != nil {
			return outbound.Sent{}, err
		}
		channel, ts, _, err := c.API.UpdateMessageContext(ctx, t.GetChannel(), t.GetTs(), headerOptions(m)...)
		if err != nil {
			return outbound.Sent{}, classify("chat.update", err)
		}
		return outbound.Sent{ProviderID: ts, Permalink: c.permalink(ctx, t.GetTeamId(), channel, ts)}, nil
	default: // a copy in the thread
		opts := []slack.MsgOption{slack.MsgOptionText(slacktext.Encode(m.GetText()), false), slack.MsgOptionTS(t.GetThreadTs()),
			metadata(slackevent.MirrorEventType, m)}
		return c.post(ctx, t, opts, reached)
	}
}

// headerOptions are a header's text, blocks and metadata.
func headerOptions(m *supportv1.OutboundMessage) []slack.MsgOption {
	return []slack.MsgOption{slack.MsgOptionText(m.GetText(), false), slack.MsgOptionBlocks(HeaderBlocks(m.GetConversation())...),
		metadata(slackevent.MirrorEventType, m)}
}

// findMirror looks for an interrupted mirror post: a header in the
// channel's history, a copy in its thread. An update is never looked for:
// rewriting the header again is harmless.
func (c *Channel) findMirror(ctx context.Context, m *supportv1.OutboundMessage, since time.Time) (outbound.Sent, bool, error) {
	t := m.GetSlack()
	switch m.GetKind() {
	case supportv1.OutboundKind_OUTBOUND_KIND_MIRROR_UPDATE:
		return outbound.Sent{}, false, nil
	case supportv1.OutboundKind_OUTBOUND_KIND_MIRROR_HEADER:
		p := &slack.GetConversationHistoryParameters{ChannelID: t.GetChannel(), IncludeAllMetadata: true, Limit: 200,
			Oldest: strconv.FormatInt(since.Unix(), 10) + ".000000"}
		for {
			resp, err := c.API.GetConversationHistoryContext(ctx, p)
			if err != nil {
				return outbound.Sent{}, false, classify("conversations.history", err)
			}
			if s, ok := c.match(ctx, t, resp.Messages, slackevent.MirrorEventType, m.GetId()); ok {
				return s, true, nil
			}
			if !resp.HasMore || resp.ResponseMetaData.NextCursor == "" {
				return outbound.Sent{}, false, nil
			}
			p.Cursor = resp.ResponseMetaData.NextCursor
		}
	default:
		return c.findInThread(ctx, t, slackevent.MirrorEventType, m.GetId(), since)
	}
}

// HeaderBlocks renders a conversation's mirror header: its subject linked
// to the console, the customer, tier, channel and categories, where it
// stands (status, assignee, deadline), and the assign and close buttons
// (no close button once it is closed).
func HeaderBlocks(c *supportv1.Conversation) []slack.Block {
	subject := slacktext.Escape(orDash(c.GetSubject()))
	if u := c.GetShareUrl(); u != "" {
		subject = "<" + u + "|" + subject + ">"
	}
	customer := c.GetCustomer().GetName()
	if customer == "" {
		customer = firstNonEmpty(c.GetAuthor().GetName(), c.GetAuthor().GetId(), "unknown customer")
	}
	facts := []string{
		"*" + slacktext.Escape(customer) + "*",
		lower(c.GetTier().String(), "TIER_"),
		"on " + lower(c.GetChannel().String(), "CHANNEL_"),
	}
	if cats := c.GetCategories(); len(cats) > 0 {
		facts = append(facts, slacktext.Escape(strings.Join(cats, ", ")))
	}
	status := lower(c.GetStatus().String(), "CONVERSATION_STATUS_")
	state := []string{"*Status:* " + strings.ReplaceAll(status, "_", " ")}
	assignee := "nobody yet"
	if a := c.GetAssignee(); a != "" {
		assignee = slacktext.Escape(a)
	}
	state = append(state, "*Assignee:* "+assignee)
	deadline := "*Deadline:* " + lower(c.GetDeadlineLevel().String(), "DEADLINE_LEVEL_")
	if d := c.GetNextDeadlineAt(); d != nil && c.GetStatus() != supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED {
		deadline += fmt.Sprintf(", next threshold <!date^%d^{date_short_pretty} {time}|%s>", d.AsTime().Unix(), d.AsTime().UTC().Format("2006-01-02 15:04 UTC"))
	}
	state = append(state, deadline)
	blocks := []slack.Block{
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, subject+"\n"+strings.Join(facts, " · "), false, false), nil, nil),
		slack.NewContextBlock("sidekick_state", slack.NewTextBlockObject(slack.MarkdownType, strings.Join(state, "   "), false, false)),
	}
	value := "conv:" + c.GetId()
	buttons := []slack.BlockElement{
		slack.NewButtonBlockElement(ActionAssign, value, slack.NewTextBlockObject(slack.PlainTextType, "Assign to me", false, false)),
	}
	if c.GetStatus() != supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED {
		buttons = append(buttons, slack.NewButtonBlockElement(ActionClose, value, slack.NewTextBlockObject(slack.PlainTextType, "Close", false, false)))
	}
	return append(blocks, slack.NewActionBlock("sidekick_mirror_actions", buttons...))
}

func lower(s, prefix string) string {
	s = strings.ToLower(strings.TrimPrefix(s, prefix))
	if s == "unspecified" {
		return "none"
	}
	return s
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "(no subject)"
	}
	return s
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
