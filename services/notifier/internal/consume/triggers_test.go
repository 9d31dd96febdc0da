package consume

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notifiertest"
	"github.com/sidekickhq/sidekick/services/notifier/internal/policy"
	"github.com/sidekickhq/sidekick/services/notifier/internal/store"
)

func TestOpenedTrigger(t *testing.T) {
	ev := notifiertest.Opened("ev-1", "conv-1", time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC))
	ev.Conversation.ShareUrl = "https://sidekick.example.com/c/conv-1"
	ev.Conversation.Categories = []string{"Deployments", "Billing"}
	ev.Conversation.Team = "platform"
	r := OpenedTrigger(ev)
	if r.Key != "conversation.opened/ev-1" || r.ConversationID != "conv-1" || r.Group != "" {
		t.Errorf("key %q conversation %q group %q", r.Key, r.ConversationID, r.Group)
	}
	want := policy.Event{Kind: policy.NewConversation, Tier: policy.Priority, Team: "platform", Category: "Deployments"}
	if r.Event != want {
		t.Errorf("event = %+v, want %+v", r.Event, want)
	}
	if r.Title != "new Priority conversation from Jane Doe (Acme Inc)" {
		t.Errorf("title = %q", r.Title)
	}
	if r.Text != "Checkout fails since the upgrade\nSince this morning every checkout returns a 500." {
		t.Errorf("text = %q", r.Text)
	}
	if len(r.Links) != 2 || r.Links[0].Title != "Open in Slack" || r.Links[1].URL != ev.Conversation.ShareUrl {
		t.Errorf("links = %+v", r.Links)
	}
}

// TestOpenedTriggerSaysTheFirstLineOnce: a Slack message's subject is its
// own first line; the ping must not repeat it.
func TestOpenedTriggerSaysTheFirstLineOnce(t *testing.T) {
	ev := notifiertest.Opened("ev-2", "conv-2", time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC))
	ev.Conversation.Subject = "Our dashboards stopped loading"
	ev.Message.Subject = ""
	ev.Message.Text = "Our dashboards stopped loading after the upgrade"
	if r := OpenedTrigger(ev); r.Text != "Our dashboards stopped loading after the upgrade" {
		t.Errorf("text = %q", r.Text)
	}
}

func TestWho(t *testing.T) {
	for _, tc := range []struct {
		conv *supportv1.Conversation
		want string
	}{
		{&supportv1.Conversation{}, "an unknown sender"},
		{&supportv1.Conversation{Author: &supportv1.Author{Email: "jane@acme.com"}}, "jane@acme.com"},
		{&supportv1.Conversation{Author: &supportv1.Author{Name: "Jane"}, Customer: &supportv1.CustomerRef{Name: "Acme"}}, "Jane (Acme)"},
		{&supportv1.Conversation{Customer: &supportv1.CustomerRef{Name: "Acme"}}, "Acme"},
	} {
		if got := who(tc.conv); got != tc.want {
			t.Errorf("who(%v) = %q, want %q", tc.conv, got, tc.want)
		}
	}
}

func TestOpenedTriggerOfASentryIssueIsGrouped(t *testing.T) {
	ev := notifiertest.Opened("ev-s", "conv-s", time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC))
	ev.Conversation.Channel = supportv1.Channel_CHANNEL_SENTRY
	ev.Conversation.Team = "platform"
	r := OpenedTrigger(ev)
	if r.Event.Kind != policy.SentryAlert || r.Group != SentryGroup("conv-s") || r.Title != "Sentry alert: Checkout fails since the upgrade (platform)" {
		t.Errorf("trigger = %+v", r)
	}
}

func TestDeadlines(t *testing.T) {
	at := time.Date(2026, 3, 2, 10, 15, 0, 0, time.UTC)
	next := at.Add(45 * time.Minute)
	ev := func(typ supportv1.ConversationEventType, level, evLevel supportv1.DeadlineLevel, status supportv1.ConversationStatus) *supportv1.ConversationEvent {
		return &supportv1.ConversationEvent{Type: typ, DeadlineLevel: evLevel, Conversation: &supportv1.Conversation{
			Status: status, DeadlineLevel: level, NextDeadlineAt: timestamppb.New(next)}}
	}
	open := supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN
	for _, tc := range []struct {
		name string
		ev   *supportv1.ConversationEvent
		want store.Deadlines
	}{
		{"opened: next is great", ev(supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_OPENED, supportv1.DeadlineLevel_DEADLINE_LEVEL_GREAT, 0, open),
			store.Deadlines{Great: next}},
		{"unset level: great", ev(supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_MESSAGE, 0, 0, open), store.Deadlines{Great: next}},
		{"great passed: event at great, next is okay",
			ev(supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_DEADLINE, supportv1.DeadlineLevel_DEADLINE_LEVEL_OKAY, supportv1.DeadlineLevel_DEADLINE_LEVEL_OKAY, open),
			store.Deadlines{Great: at, Okay: next}},
		{"okay passed: next is too late",
			ev(supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_DEADLINE, supportv1.DeadlineLevel_DEADLINE_LEVEL_LATE, supportv1.DeadlineLevel_DEADLINE_LEVEL_LATE, open),
			store.Deadlines{Okay: at, TooLate: next}},
		{"breached", ev(supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_DEADLINE, supportv1.DeadlineLevel_DEADLINE_LEVEL_BREACHED, supportv1.DeadlineLevel_DEADLINE_LEVEL_BREACHED, open),
			store.Deadlines{TooLate: at}},
		{"awaiting the customer: the clock is stopped",
			ev(supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_MESSAGE, supportv1.DeadlineLevel_DEADLINE_LEVEL_GREAT, 0, supportv1.ConversationStatus_CONVERSATION_STATUS_AWAITING_CUSTOMER),
			store.Deadlines{}},
	} {
		if got := Deadlines(tc.ev, at); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestGapTrigger(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	ev := &supportv1.RotationEvent{Id: "g1", RotationId: "hero", Hero: true, OccurredAt: timestamppb.New(now),
		Start: timestamppb.New(now.Add(30 * time.Hour)), End: timestamppb.New(now.Add(33 * time.Hour)), Detail: "nobody scheduled"}
	if got := GapTrigger(ev, 24*time.Hour); !got.At.Equal(now.Add(6*time.Hour)) || got.Event.Kind != policy.CoverageGap ||
		got.Title != "coverage gap ahead: no Support Hero from Tue 3 Mar 16:00 UTC to Tue 3 Mar 19:00 UTC" || got.Text != "nobody scheduled" {
		t.Errorf("trigger = %+v", got)
	}
	if got := GapTrigger(ev, 48*time.Hour); !got.At.Equal(now) {
		t.Errorf("reported late: announced at %v, want at once", got.At)
	}
}
