// Package slackreply sends replies to customers into their Slack thread
// (and the posts of the support-channel mirror, mirror.go):
// chat.postMessage with thread_ts, the replying person's name and avatar
// (username and icon_url, which need chat:write.customize), the text
// encoded as Slack mrkdwn, and message metadata carrying the outbound id
// (event_type sidekick_reply). That metadata is how an earlier attempt is
// found again (conversations.replies with include_all_metadata) before a
// reply is sent a second time, and how ingest-slack recognises the
// message event of our own reply.
package slackreply

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/slack-go/slack"

	"github.com/sidekickhq/sidekick/platform/outbound"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/ingest-slack/internal/slackevent"
	"github.com/sidekickhq/sidekick/services/ingest-slack/internal/slacktext"
)

// API is the part of the Slack Web API client the sender uses.
type API interface {
	PostMessageContext(ctx context.Context, channelID string, options ...slack.MsgOption) (string, string, error)
	GetConversationRepliesContext(ctx context.Context, params *slack.GetConversationRepliesParameters) ([]slack.Message, bool, string, error)
	GetPermalinkContext(ctx context.Context, params *slack.PermalinkParameters) (string, error)
	UpdateMessageContext(ctx context.Context, channelID, timestamp string, options ...slack.MsgOption) (string, string, string, error)
	GetConversationHistoryContext(ctx context.Context, params *slack.GetConversationHistoryParameters) (*slack.GetConversationHistoryResponse, error)
}

var _ API = (*slack.Client)(nil)

// Channel is the Slack side of outbound.Runner.
type Channel struct {
	API API
	// WorkspaceURL builds a permalink when chat.getPermalink fails.
	WorkspaceURL string
}

var _ outbound.Channel = (*Channel)(nil)

// retryable are the chat.postMessage errors that may pass later; every
// other error code is a refusal (not_in_channel, channel_not_found,
// msg_too_long, invalid_blocks, is_archived, invalid_auth, …).
var retryable = map[string]bool{
	"internal_error": true, "fatal_error": true, "service_unavailable": true,
	"request_timeout": true, "team_added_to_org": true, "accesslimited": true,
}

// Send posts m in its thread (or, for the support-channel mirror, posts
// or rewrites the mirror's message).
func (c *Channel) Send(ctx context.Context, m *supportv1.OutboundMessage, reached func(context.Context) error) (outbound.Sent, error) {
	if isMirror(m) {
		return c.sendMirror(ctx, m, reached)
	}
	t := m.GetSlack()
	opts := []slack.MsgOption{
		slack.MsgOptionText(slacktext.Encode(m.GetText()), false),
		slack.MsgOptionTS(t.GetThreadTs()),
		metadata(slackevent.ReplyEventType, m),
	}
	if name := m.GetAuthor().GetDisplayName(); name != "" {
		opts = append(opts, slack.MsgOptionUsername(name))
	}
	if icon := m.GetAuthor().GetAvatarUrl(); icon != "" {
		opts = append(opts, slack.MsgOptionIconURL(icon))
	}
	return c.post(ctx, t, opts, reached)
}

// metadata is the message metadata of our posts: the event type and the
// outbound id, by which an interrupted attempt is found again.
func metadata(eventType string, m *supportv1.OutboundMessage) slack.MsgOption {
	return slack.MsgOptionMetadata(slack.SlackMetadata{
		EventType:    eventType,
		EventPayload: map[string]any{"outbound_id": m.GetId(), "conversation_id": m.GetConversationId()},
	})
}

// post marks the point of no return (reached) and posts a message in
// t's channel.
func (c *Channel) post(ctx context.Context, t *supportv1.SlackTarget, opts []slack.MsgOption, reached func(context.Context) error) (outbound.Sent, error) {
	if err := reached(ctx); err != nil {
		return outbound.Sent{}, err
	}
	channel, ts, err := c.API.PostMessageContext(ctx, t.GetChannel(), opts...)
	if err != nil {
		return outbound.Sent{}, classify("chat.postMessage", err)
	}
	return outbound.Sent{ProviderID: ts, Permalink: c.permalink(ctx, t.GetTeamId(), channel, ts)}, nil
}

// Find looks in the thread for a message carrying m's outbound id in its
// metadata, posted at since or later.
func (c *Channel) Find(ctx context.Context, m *supportv1.OutboundMessage, since time.Time) (outbound.Sent, bool, error) {
	if isMirror(m) {
		return c.findMirror(ctx, m, since)
	}
	return c.findInThread(ctx, m.GetSlack(), slackevent.ReplyEventType, m.GetId(), since)
}

// findInThread looks in t's thread for a message posted at since or later
// whose metadata is of eventType and carries the outbound id.
func (c *Channel) findInThread(ctx context.Context, t *supportv1.SlackTarget, eventType, id string, since time.Time) (outbound.Sent, bool, error) {
	p := &slack.GetConversationRepliesParameters{
		ChannelID: t.GetChannel(), Timestamp: t.GetThreadTs(), IncludeAllMetadata: true, Limit: 200,
		Oldest: strconv.FormatInt(since.Unix(), 10) + ".000000",
	}
	for {
		msgs, more, cursor, err := c.API.GetConversationRepliesContext(ctx, p)
		if err != nil {
			return outbound.Sent{}, false, classify("conversations.replies", err)
		}
		if s, ok := c.match(ctx, t, msgs, eventType, id); ok {
			return s, true, nil
		}
		if !more || cursor == "" {
			return outbound.Sent{}, false, nil
		}
		p.Cursor = cursor
	}
}

// match finds among msgs the one whose metadata is of eventType and
// carries the outbound id.
func (c *Channel) match(ctx context.Context, t *supportv1.SlackTarget, msgs []slack.Message, eventType, id string) (outbound.Sent, bool) {
	for _, msg := range msgs {
		if msg.Metadata.EventType == eventType && msg.Metadata.EventPayload["outbound_id"] == id {
			return outbound.Sent{ProviderID: msg.Timestamp, Permalink: c.permalink(ctx, t.GetTeamId(), t.GetChannel(), msg.Timestamp)}, true
		}
	}
	return outbound.Sent{}, false
}

// isMirror reports whether m is a post of the support-channel mirror
// rather than a reply to a customer.
func isMirror(m *supportv1.OutboundMessage) bool {
	switch m.GetKind() {
	case supportv1.OutboundKind_OUTBOUND_KIND_UNSPECIFIED, supportv1.OutboundKind_OUTBOUND_KIND_REPLY:
		return false
	}
	return true
}

// permalink asks Slack for the message's link, or builds one.
func (c *Channel) permalink(ctx context.Context, team, channel, ts string) string {
	if l, err := c.API.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: channel, Ts: ts}); err == nil && l != "" {
		return l
	}
	return slackevent.Permalink(c.WorkspaceURL, team, channel, ts)
}

// classify turns a Web API error into an outbound failure.
func classify(method string, err error) error {
	var rl *slack.RateLimitedError
	var se slack.SlackErrorResponse
	var sc slack.StatusCodeError
	switch {
	case errors.As(err, &rl):
		return outbound.RateLimited(method+": ratelimited", rl.RetryAfter)
	case errors.As(err, &se):
		if se.Err == "ratelimited" {
			return outbound.RateLimited(method+": ratelimited", time.Second)
		}
		if retryable[se.Err] {
			return outbound.Retryable(se.Err, err)
		}
		reason := se.Err
		if se.Needed != "" {
			reason += " (needs " + se.Needed + ")"
		}
		return outbound.Permanent(reason, err)
	case errors.As(err, &sc):
		return outbound.Retryable(fmt.Sprintf("%s: HTTP %d", method, sc.Code), err)
	}
	return outbound.Retryable(method+": "+err.Error(), err)
}
