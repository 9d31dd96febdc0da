package consume

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/notifier/internal/escalate"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notifiertest"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
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

// TestDeadlineTrigger: the level a DEADLINE event reports picks the
// policy level, the key and the storm group; other levels start nothing.
func TestDeadlineTrigger(t *testing.T) {
	at := time.Date(2026, 3, 2, 11, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		level  supportv1.DeadlineLevel
		onConv bool // the level only on the conversation, not the event
		want   policy.Level
		title  string
	}{
		{supportv1.DeadlineLevel_DEADLINE_LEVEL_OKAY, false, policy.Okay, "(past the great deadline)"},
		{supportv1.DeadlineLevel_DEADLINE_LEVEL_LATE, false, policy.Late, "(past the okay deadline)"},
		{supportv1.DeadlineLevel_DEADLINE_LEVEL_BREACHED, false, policy.Breached, "(past the too-late deadline: breached)"},
		{supportv1.DeadlineLevel_DEADLINE_LEVEL_BREACHED, true, policy.Breached, "(past the too-late deadline: breached)"},
		{supportv1.DeadlineLevel_DEADLINE_LEVEL_GREAT, false, "", ""},
		{supportv1.DeadlineLevel_DEADLINE_LEVEL_UNSPECIFIED, false, "", ""},
	} {
		ev := notifiertest.Opened("ev-d", "conv-d", at)
		ev.Type, ev.Reason = supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_DEADLINE, "no staff reply"
		if tc.onConv {
			ev.Conversation.DeadlineLevel = tc.level
		} else {
			ev.DeadlineLevel = tc.level
		}
		got, ok := DeadlineTrigger(ev, at)
		if ok != (tc.want != "") {
			t.Errorf("%s: ok = %v", tc.level, ok)
			continue
		}
		if !ok {
			continue
		}
		if got.Key != "conversation.deadline/ev-d" || got.Group != "deadline/conv-d/"+string(tc.want) || got.Event.Kind != policy.Deadline ||
			got.Event.Level != tc.want || got.Event.Tier != policy.Priority || !got.At.Equal(at) || got.ConversationID != "conv-d" ||
			!strings.HasSuffix(got.Title, tc.title) || got.Text != "Checkout fails since the upgrade\nno staff reply" {
			t.Errorf("%s: %+v", tc.level, got)
		}
	}
}

// TestEscalatedTrigger: an escalation made from the Escalate button has
// the button's key, so the click and triage's event escalate once; one
// made in triage without it has its own.
func TestEscalatedTrigger(t *testing.T) {
	at := time.Date(2026, 3, 2, 11, 0, 0, 0, time.UTC)
	ev := notifiertest.Opened("ev-x", "conv-x", at)
	ev.Type, ev.Actor, ev.Reason = supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_ESCALATED, "alice", "needs deployment knowledge"
	ev.Conversation.Team = "platform"
	got := EscalatedTrigger(ev, at)
	if got.Key != "conversation.escalated/ev-x" || got.Group != ExplicitGroup("conv-x") || got.Event.Kind != policy.ExplicitEscalation ||
		got.Event.Team != "platform" || got.Title != "alice escalated a Priority conversation from Jane Doe (Acme Inc)" ||
		got.Text != "Reason: needs deployment knowledge\nCheckout fails since the upgrade" {
		t.Errorf("from triage: %+v", got)
	}
	ev.ActionId = "slack:action/1"
	click := ActionTrigger(&supportv1.Action{Id: "slack:action/1", ConversationId: "conv-x", Actor: "alice"}, store.Escalation{}, at)
	if got := EscalatedTrigger(ev, at); got.Key != click.Key || got.Key != ActionKey("escalate", "slack:action/1") || got.Group != click.Group {
		t.Errorf("from the button: key %q group %q, the click's %q %q", got.Key, got.Group, click.Key, click.Group)
	}
}

// TestRetieredTrigger: a conversation re-tiered to Priority starts
// Priority's new-conversation policy; other TRIAGED events (categories,
// a reason that changed alone) and Sentry alerts start nothing.
func TestRetieredTrigger(t *testing.T) {
	at := time.Date(2026, 3, 2, 11, 0, 0, 0, time.UTC)
	ev := notifiertest.Opened("ev-t", "conv-t", at)
	ev.Type, ev.Reason = supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_TRIAGED, "tier community -> priority: plan enterprise"
	if _, ok := RetieredTrigger(ev, at); ok {
		t.Errorf("a TRIAGED event without a previous tier starts a policy")
	}
	ev.PreviousTier = supportv1.Tier_TIER_COMMUNITY
	got, ok := RetieredTrigger(ev, at)
	if !ok || got.Key != "conversation.retiered/ev-t" || got.Event.Kind != policy.NewConversation || got.Event.Tier != policy.Priority ||
		got.Title != "now Priority (was Community): conversation from Jane Doe (Acme Inc)" ||
		got.Text != "Checkout fails since the upgrade\ntier community -> priority: plan enterprise" {
		t.Errorf("re-tiered to Priority: ok %v, %+v", ok, got)
	}
	ev.PreviousTier = supportv1.Tier_TIER_PRIORITY
	if _, ok := RetieredTrigger(ev, at); ok {
		t.Errorf("the same tier starts a policy")
	}
	ev.PreviousTier = supportv1.Tier_TIER_COMMUNITY
	ev.Conversation.Channel = supportv1.Channel_CHANNEL_SENTRY
	if _, ok := RetieredTrigger(ev, at); ok {
		t.Errorf("a Sentry alert's tier starts a policy")
	}
}

// TestActionTrigger: the Escalate button escalates what the clicked
// notification's escalation was about.
func TestActionTrigger(t *testing.T) {
	at := time.Date(2026, 3, 2, 11, 0, 0, 0, time.UTC)
	base := store.Escalation{NewEscalation: store.NewEscalation{ConversationID: "conv-b", Tier: "priority", Team: "platform",
		Category: "Deployments", Title: "new Priority conversation from Jane", Body: "Checkout fails",
		Links: []notify.Link{{URL: "https://slack/1"}}}}
	a := &supportv1.Action{Id: "act-1", NotificationId: "n-1", Actor: "alice", Reason: "stuck"}
	got := ActionTrigger(a, base, at)
	want := policy.Event{Kind: policy.ExplicitEscalation, Tier: policy.Priority, Team: "platform", Category: "Deployments"}
	if got.Key != "action.escalate/act-1" || got.Group != "explicit/conv-b" || got.Event != want || got.ConversationID != "conv-b" ||
		got.Title != "alice escalated: new Priority conversation from Jane" || got.Text != "Reason: stuck\nCheckout fails" ||
		len(got.Links) != 1 || !got.At.Equal(at) {
		t.Errorf("trigger = %+v", got)
	}
	// Nothing known about the conversation but its id.
	got = ActionTrigger(&supportv1.Action{Id: "act-2", ConversationId: "conv-c"}, store.Escalation{}, at)
	if got.ConversationID != "conv-c" || got.Title != "someone escalated: conversation conv-c" || got.Text != "" {
		t.Errorf("bare trigger = %+v", got)
	}
	if got := ActionTrigger(&supportv1.Action{Id: "act-3"}, store.Escalation{}, at); got.ConversationID != "" {
		t.Errorf("a trigger without a conversation names %q", got.ConversationID)
	}
}

// TestEventsReachTheHandbooksPolicies: which default policy each event the
// notifier consumes starts.
func TestEventsReachTheHandbooksPolicies(t *testing.T) {
	at := time.Date(2026, 3, 2, 11, 0, 0, 0, time.UTC)
	conv := func(tier supportv1.Tier, channel supportv1.Channel, categories ...string) *supportv1.ConversationEvent {
		ev := notifiertest.Opened("ev", "conv", at)
		ev.Conversation.Tier, ev.Conversation.Channel, ev.Conversation.Categories, ev.Conversation.Team = tier, channel, categories, "platform"
		return ev
	}
	deadline := func(tier supportv1.Tier, level supportv1.DeadlineLevel) escalate.Trigger {
		ev := conv(tier, supportv1.Channel_CHANNEL_EMAIL)
		ev.Type, ev.DeadlineLevel = supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_DEADLINE, level
		tr, _ := DeadlineTrigger(ev, at)
		return tr
	}
	escalated := conv(supportv1.Tier_TIER_SUBSCRIBER, supportv1.Channel_CHANNEL_SLACK)
	escalated.Type = supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_ESCALATED
	handoff := &supportv1.ConversationEvent{Id: "h", Handoff: &supportv1.HandoffSummary{ToPerson: "alice"}}
	gap := &supportv1.RotationEvent{Id: "g", RotationId: "hero", Hero: true}
	slack, sentry := supportv1.Channel_CHANNEL_SLACK, supportv1.Channel_CHANNEL_SENTRY
	for _, tc := range []struct {
		name string
		t    escalate.Trigger
		want string
	}{
		{"a Priority conversation", OpenedTrigger(conv(supportv1.Tier_TIER_PRIORITY, slack)), "priority-new"},
		{"a Subscriber conversation", OpenedTrigger(conv(supportv1.Tier_TIER_SUBSCRIBER, slack)), "subscriber-new"},
		{"a Community conversation: the digest", OpenedTrigger(conv(supportv1.Tier_TIER_COMMUNITY, slack)), "community-new"},
		{"an untriaged conversation", OpenedTrigger(conv(supportv1.Tier_TIER_UNSPECIFIED, slack)), "new-conversation"},
		{"a partnership proposal", OpenedTrigger(conv(supportv1.Tier_TIER_PRIORITY, slack, "Partnership", "Billing")), "business-proposals"},
		{"partnership second: the predominant category decides", OpenedTrigger(conv(supportv1.Tier_TIER_PRIORITY, slack, "Billing", "Partnership")), "priority-new"},
		{"a Sentry issue, whatever its tier", OpenedTrigger(conv(supportv1.Tier_TIER_COMMUNITY, sentry)), "sentry-alert"},
		{"past great: no policy (priority-new pages at okay)", deadline(supportv1.Tier_TIER_PRIORITY, supportv1.DeadlineLevel_DEADLINE_LEVEL_OKAY), ""},
		{"a Priority breach", deadline(supportv1.Tier_TIER_PRIORITY, supportv1.DeadlineLevel_DEADLINE_LEVEL_BREACHED), "deadline-breached"},
		{"a Community breach", deadline(supportv1.Tier_TIER_COMMUNITY, supportv1.DeadlineLevel_DEADLINE_LEVEL_BREACHED), "community-breached"},
		{"an escalation in triage", EscalatedTrigger(escalated, at), "explicit-escalation"},
		{"the Escalate button", ActionTrigger(&supportv1.Action{Id: "a", ConversationId: "conv"}, store.Escalation{}, at), "explicit-escalation"},
		{"a handoff", HandoffTrigger(handoff, nil), "handoff"},
		{"a coverage gap", GapTrigger(gap, time.Hour), "coverage-gap"},
	} {
		got := ""
		if p := policy.Default().Match(tc.t.Event); p != nil {
			got = p.ID
		}
		if got != tc.want {
			t.Errorf("%s: policy %q, want %q (event %+v)", tc.name, got, tc.want, tc.t.Event)
		}
	}
}

// The incoming hero reads each deadline of the handoff summary in their
// own zone; without one, in UTC.
func TestHandoffSummaryDeadlinesInTheHerosZone(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	ev := &supportv1.ConversationEvent{Id: "h", Handoff: &supportv1.HandoffSummary{ToPerson: "alice", Open: []*supportv1.Conversation{
		{Id: "c1", Subject: "Checkout fails", NextDeadlineAt: timestamppb.New(time.Date(2026, 3, 9, 23, 30, 0, 0, time.UTC))},
	}}}
	for _, tc := range []struct {
		loc  *time.Location
		want string
	}{
		{berlin, "(next deadline Tue 00:30 CET)"},
		{nil, "(next deadline Mon 23:30 UTC)"},
	} {
		if text := HandoffTrigger(ev, tc.loc).Text; !strings.Contains(text, tc.want) {
			t.Errorf("in %v: %q lacks %q", tc.loc, text, tc.want)
		}
	}
}
