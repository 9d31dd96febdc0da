package notifier

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sidekickhq/sidekick/platform/bus"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/notifier/internal/deliver"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
	"github.com/sidekickhq/sidekick/services/notifier/internal/store"
)

// OpenedKey is the idempotency key of the notification made for an OPENED
// event: one per event id, whatever Nats-Msg-Id it was published with.
func OpenedKey(eventID string) string { return "conversation.opened/" + eventID }

// handleConversation reacts to one support.conversation.* event.
func (s *Service) handleConversation(ctx context.Context, msg jetstream.Msg) error {
	var ev supportv1.ConversationEvent
	if err := bus.Decode(msg, &ev); err != nil {
		return bus.Permanent(fmt.Errorf("decode conversation event: %w", err))
	}
	if ev.GetId() == "" {
		ev.Id = msg.Headers().Get(bus.HeaderID)
	}
	conv := ev.GetConversation()
	if conv.GetId() == "" {
		return bus.Permanent(errors.New("conversation event without a conversation id"))
	}
	at := ev.GetOccurredAt().AsTime()
	if ev.GetOccurredAt() == nil {
		at = s.deps.Now()
	}
	switch ev.GetType() {
	case supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_OPENED:
		return s.opened(ctx, &ev, at)
	case supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_RESPONDED:
		return s.stop(ctx, conv.GetId(), "answered", ev.GetActor(), at)
	case supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_CLOSED:
		return s.stop(ctx, conv.GetId(), "closed", ev.GetActor(), at)
	case supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_REOPENED:
		if err := s.engine.ResumeConversation(ctx, conv.GetId(), at); err != nil {
			return bus.AtLocation("reopened", err)
		}
	}
	return nil
}

func (s *Service) stop(ctx context.Context, conversationID, what, actor string, at time.Time) error {
	reason := what
	if actor != "" && actor != "system" {
		reason += " by " + actor
	}
	if err := s.engine.StopConversation(ctx, conversationID, reason, at); err != nil {
		return bus.AtLocation(what, err)
	}
	return nil
}

// opened tells the Support Hero on duty about a new conversation.
func (s *Service) opened(ctx context.Context, ev *supportv1.ConversationEvent, at time.Time) error {
	if ev.GetId() == "" {
		return bus.Permanent(errors.New("opened event without an id"))
	}
	conv := ev.GetConversation()
	if conv.GetStatus() == supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED {
		return nil // closed at once (spam): nobody needs to hear about it
	}
	stopped, err := s.engine.ConversationStopped(ctx, conv.GetId(), at)
	if err != nil {
		return bus.AtLocation("opened", err)
	}
	if stopped {
		s.deps.Logger.Info("conversation answered or closed before its opening was handled; not notifying",
			"conversation", conv.GetId(), "event", ev.GetId())
		return nil
	}
	req := OpenedRequest(ev)
	if _, _, err := s.engine.Notify(ctx, req); err != nil {
		return bus.AtLocation("opened", err)
	}
	return nil
}

// OpenedRequest is the notification an OPENED event asks for: a ping to
// the Support Hero.
func OpenedRequest(ev *supportv1.ConversationEvent) deliver.Request {
	conv := ev.GetConversation()
	m := ev.GetMessage()
	var text strings.Builder
	if subj := firstNonEmpty(conv.GetSubject(), m.GetSubject()); subj != "" {
		text.WriteString(subj)
		text.WriteString("\n")
	}
	text.WriteString(excerpt(m.GetText(), 400))
	var links []notify.Link
	if p := firstNonEmpty(conv.GetPermalink(), m.GetPermalink()); p != "" {
		links = append(links, notify.Link{Title: "Open in " + channelName(conv.GetChannel()), URL: p})
	}
	if u := conv.GetShareUrl(); u != "" {
		links = append(links, notify.Link{Title: "Sidekick", URL: u})
	}
	return deliver.Request{
		IdempotencyKey: OpenedKey(ev.GetId()),
		Origin:         "conversation",
		Targets:        []deliver.Target{{Role: rotationv1.Role_ROLE_HERO}},
		Urgency:        notify.Ping,
		Title:          fmt.Sprintf("new %s conversation from %s", tierName(conv.GetTier()), who(conv)),
		Text:           strings.TrimSpace(text.String()),
		Links:          links,
		ConversationID: conv.GetId(),
	}
}

// handleAction reacts to support.action.ack.
func (s *Service) handleAction(ctx context.Context, msg jetstream.Msg) error {
	var a supportv1.Action
	if err := bus.Decode(msg, &a); err != nil {
		return bus.Permanent(fmt.Errorf("decode action: %w", err))
	}
	if a.GetType() != supportv1.ActionType_ACTION_TYPE_ACK {
		return nil
	}
	if a.GetNotificationId() == "" && a.GetConversationId() == "" {
		return bus.Permanent(errors.New("ack action names neither a notification nor a conversation"))
	}
	ack := deliver.Ack{NotificationID: a.GetNotificationId(), ConversationID: a.GetConversationId(), Actor: a.GetActor(), Source: a.GetSource()}
	if a.GetOccurredAt() != nil {
		ack.At = a.GetOccurredAt().AsTime()
	}
	if _, err := s.engine.Acknowledge(ctx, ack); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return bus.Permanent(err)
		}
		return bus.AtLocation("ack", err)
	}
	return nil
}

func tierName(t supportv1.Tier) string {
	switch t {
	case supportv1.Tier_TIER_PRIORITY:
		return "Priority"
	case supportv1.Tier_TIER_SUBSCRIBER:
		return "Subscriber"
	case supportv1.Tier_TIER_COMMUNITY:
		return "Community"
	}
	return "untriaged"
}

func channelName(c supportv1.Channel) string {
	switch c {
	case supportv1.Channel_CHANNEL_SLACK:
		return "Slack"
	case supportv1.Channel_CHANNEL_EMAIL:
		return "email"
	case supportv1.Channel_CHANNEL_GITHUB:
		return "GitHub"
	case supportv1.Channel_CHANNEL_SENTRY:
		return "Sentry"
	}
	return "source"
}

// who names the customer behind a conversation: "Jane Doe (Acme)".
func who(c *supportv1.Conversation) string {
	a := c.GetAuthor()
	person := firstNonEmpty(a.GetName(), a.GetHandle(), a.GetEmail(), c.GetCustomer().GetName(), a.GetId())
	org := firstNonEmpty(c.GetCustomer().GetOrganisation(), a.GetOrganisation())
	if c.GetCustomer().GetName() != "" && c.GetCustomer().GetName() != person {
		org = firstNonEmpty(org, c.GetCustomer().GetName())
	}
	switch {
	case person == "" && org == "":
		return "an unknown sender"
	case org == "" || org == person:
		return person
	case person == "":
		return org
	}
	return person + " (" + org + ")"
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			return s
		}
	}
	return ""
}

func excerpt(s string, n int) string {
	s = strings.TrimSpace(s)
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return strings.TrimSpace(string(r[:n])) + "…"
}
