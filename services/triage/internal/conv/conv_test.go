package conv

import (
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

const (
	opened     = supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_OPENED
	message    = supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_MESSAGE
	triaged    = supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_TRIAGED
	assigned   = supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_ASSIGNED
	responded  = supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_RESPONDED
	escalated  = supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_ESCALATED
	closed     = supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_CLOSED
	reopened   = supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_REOPENED
	statusOpen = supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN
	awaiting   = supportv1.ConversationStatus_CONVERSATION_STATUS_AWAITING_CUSTOMER
	statusShut = supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED
)

var now = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func msg(kind supportv1.MessageKind, role supportv1.AuthorRole, author string, minute int) *supportv1.InboundMessage {
	return &supportv1.InboundMessage{
		Id: "m" + author, Channel: supportv1.Channel_CHANNEL_SLACK, ThreadKey: "T/C/1", SourceId: "1.0",
		Author: &supportv1.Author{Id: author, Role: role}, Kind: kind, Text: "Line one\nline two",
		SentAt: timestamppb.New(now.Add(time.Duration(minute) * time.Minute)),
	}
}

func customer(minute int) *supportv1.InboundMessage {
	return msg(supportv1.MessageKind_MESSAGE_KIND_POSTED, supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER, "U0CUST", minute)
}

func staff(who string, minute int) *supportv1.InboundMessage {
	return msg(supportv1.MessageKind_MESSAGE_KIND_POSTED, supportv1.AuthorRole_AUTHOR_ROLE_STAFF, who, minute)
}

func types(o Outcome) []supportv1.ConversationEventType {
	var out []supportv1.ConversationEventType
	for _, e := range o.Events {
		out = append(out, e.Type)
	}
	return out
}

func expect(t *testing.T, o Outcome, want ...supportv1.ConversationEventType) {
	t.Helper()
	if got := types(o); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

func openConversation(t *testing.T) *supportv1.Conversation {
	t.Helper()
	m := customer(0)
	c := Open("c1", m, now)
	o := Apply(c, m, true, now)
	expect(t, o, opened)
	if c.GetStatus() != statusOpen || c.GetMessageCount() != 1 || c.GetSubject() != "Line one" ||
		!c.GetLastCustomerMessageAt().AsTime().Equal(now) || c.GetOpenedAt().AsTime() != now {
		t.Fatalf("opened conversation %v", c)
	}
	return c
}

func TestOpens(t *testing.T) {
	for _, tt := range []struct {
		m    *supportv1.InboundMessage
		want bool
	}{
		{customer(0), true},
		{msg(supportv1.MessageKind_MESSAGE_KIND_UNSPECIFIED, supportv1.AuthorRole_AUTHOR_ROLE_UNSPECIFIED, "x", 0), true},
		{staff("U0HERO", 0), false},
		{msg(supportv1.MessageKind_MESSAGE_KIND_POSTED, supportv1.AuthorRole_AUTHOR_ROLE_BOT, "B0", 0), false},
		{msg(supportv1.MessageKind_MESSAGE_KIND_AUTOMATED, supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER, "x", 0), false},
		{msg(supportv1.MessageKind_MESSAGE_KIND_EDITED, supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER, "x", 0), false},
		{msg(supportv1.MessageKind_MESSAGE_KIND_UPDATED, supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER, "x", 0), false},
		{msg(supportv1.MessageKind_MESSAGE_KIND_THREAD_CLOSED, supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER, "x", 0), false},
	} {
		if got := Opens(tt.m); got != tt.want {
			t.Errorf("Opens(%v %v) = %v", tt.m.GetKind(), tt.m.GetAuthor().GetRole(), got)
		}
	}
}

func TestFirstStaffReplyAssignsAndResponds(t *testing.T) {
	c := openConversation(t)
	o := Apply(c, staff("U0HERO", 7), false, now)
	expect(t, o, responded, assigned)
	if c.GetAssignee() != "U0HERO" || c.GetStatus() != awaiting || !c.GetFirstResponseAt().AsTime().Equal(now.Add(7*time.Minute)) || c.GetMessageCount() != 2 {
		t.Fatalf("after the first reply: %v", c)
	}
	// Another staff member follows up: recorded, nothing reassigned.
	o = Apply(c, staff("U0OTHER", 9), false, now)
	expect(t, o, message)
	if c.GetAssignee() != "U0HERO" || !c.GetFirstResponseAt().AsTime().Equal(now.Add(7*time.Minute)) {
		t.Fatalf("after a second reply: %v", c)
	}
}

func TestReplyKeepsManualAssignee(t *testing.T) {
	c := openConversation(t)
	expect(t, Assign(c, "alice", "bob", now), assigned)
	expect(t, Apply(c, staff("U0HERO", 3), false, now), responded)
	if c.GetAssignee() != "alice" || c.GetFirstResponseAt() == nil {
		t.Fatalf("%v", c)
	}
}

func TestCustomerMessageReopens(t *testing.T) {
	c := openConversation(t)
	Apply(c, staff("U0HERO", 1), false, now)
	o := Apply(c, customer(5), false, now)
	expect(t, o, reopened, message)
	if c.GetStatus() != statusOpen || !c.GetLastCustomerMessageAt().AsTime().Equal(now.Add(5*time.Minute)) {
		t.Fatalf("%v", c)
	}
	expect(t, Close(c, supportv1.CloseReason_CLOSE_REASON_DUPLICATE, "alice", now), closed)
	o = Apply(c, customer(9), false, now)
	expect(t, o, reopened, message)
	if c.GetStatus() != statusOpen || c.GetCloseReason() != supportv1.CloseReason_CLOSE_REASON_UNSPECIFIED {
		t.Fatalf("%v", c)
	}
	// Customer writes again while open: just a message.
	expect(t, Apply(c, customer(10), false, now), message)
}

func TestThreadClosedAndReopenedAtSource(t *testing.T) {
	c := openConversation(t)
	m := msg(supportv1.MessageKind_MESSAGE_KIND_THREAD_CLOSED, supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER, "octocat", 2)
	m.Attributes = map[string]string{"state_reason": "completed"}
	o := Apply(c, m, false, now)
	expect(t, o, closed)
	if c.GetStatus() != statusShut || c.GetCloseReason() != supportv1.CloseReason_CLOSE_REASON_RESOLVED || o.Events[0].Reason != "closed at the source (completed)" {
		t.Fatalf("%v %v", c, o.Events)
	}
	expect(t, Apply(c, m, false, now)) // closed twice: nothing
	re := msg(supportv1.MessageKind_MESSAGE_KIND_THREAD_REOPENED, supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER, "octocat", 3)
	expect(t, Apply(c, re, false, now), reopened)
	expect(t, Apply(c, re, false, now))
	if c.GetStatus() != statusOpen {
		t.Fatalf("%v", c)
	}
}

func TestRecordedOnly(t *testing.T) {
	c := openConversation(t)
	for _, m := range []*supportv1.InboundMessage{
		msg(supportv1.MessageKind_MESSAGE_KIND_POSTED, supportv1.AuthorRole_AUTHOR_ROLE_BOT, "B0", 1),
		msg(supportv1.MessageKind_MESSAGE_KIND_AUTOMATED, supportv1.AuthorRole_AUTHOR_ROLE_BOT, "mailer-daemon", 1),
	} {
		o := Apply(c, m, false, now)
		if o.Changed || len(o.Events) > 0 || o.Store != StoreInsert {
			t.Errorf("%v by %v: %+v", m.GetKind(), m.GetAuthor().GetRole(), o)
		}
	}
	if c.GetMessageCount() != 1 {
		t.Fatalf("message count %d", c.GetMessageCount())
	}
	edit := Apply(c, msg(supportv1.MessageKind_MESSAGE_KIND_EDITED, supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER, "U0CUST", 1), false, now)
	del := Apply(nil, msg(supportv1.MessageKind_MESSAGE_KIND_DELETED, supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER, "U0CUST", 1), false, now)
	if edit.Store != StoreEdit || edit.Changed || del.Store != StoreDelete || del.Changed {
		t.Fatalf("edit %+v delete %+v", edit, del)
	}
	// Without a conversation, a staff message is only recorded.
	if o := Apply(nil, staff("U0HERO", 1), false, now); o.Changed || len(o.Events) > 0 {
		t.Fatalf("%+v", o)
	}
}

// TestUpdatedAtTheSource: a Sentry issue's new occurrence count (kind
// UPDATED) is a message event for subscribers, so the page can be updated,
// and changes neither status nor the response clock.
func TestUpdatedAtTheSource(t *testing.T) {
	c := openConversation(t)
	status, last := c.GetStatus(), c.GetLastCustomerMessageAt()
	o := Apply(c, msg(supportv1.MessageKind_MESSAGE_KIND_UPDATED, supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER, "x", 1), false, now)
	if !o.Changed || len(o.Events) != 1 || o.Events[0].Type != supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_MESSAGE {
		t.Fatalf("want one MESSAGE event, got %+v", o)
	}
	if c.GetStatus() != status || c.GetLastCustomerMessageAt() != last || c.GetMessageCount() != 2 {
		t.Fatalf("an update changed the conversation's state: %v", c)
	}
	// Without a conversation it is only recorded.
	if o := Apply(nil, msg(supportv1.MessageKind_MESSAGE_KIND_UPDATED, supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER, "x", 1), false, now); o.Changed || len(o.Events) > 0 {
		t.Fatalf("%+v", o)
	}
}

func TestCommands(t *testing.T) {
	c := openConversation(t)
	expect(t, Assign(c, "alice", "bob", now), assigned)
	expect(t, Assign(c, "alice", "bob", now))
	o := Assign(c, "carol", "bob", now)
	if o.Audit[0].Detail != "from alice to carol" {
		t.Fatalf("%+v", o.Audit)
	}
	expect(t, Close(c, supportv1.CloseReason_CLOSE_REASON_UNSPECIFIED, "bob", now), closed)
	if c.GetCloseReason() != supportv1.CloseReason_CLOSE_REASON_RESOLVED {
		t.Fatalf("%v", c)
	}
	expect(t, Close(c, supportv1.CloseReason_CLOSE_REASON_RESOLVED, "bob", now))
	o = Close(c, supportv1.CloseReason_CLOSE_REASON_SPAM, "bob", now)
	expect(t, o, closed)
	if o.Events[0].Reason != "spam" {
		t.Fatalf("%+v", o.Events)
	}
	expect(t, Reopen(c, "bob", now), reopened)
	expect(t, Reopen(c, "bob", now))
	o = Escalate(c, "needs deployment knowledge", "platform", "bob", now)
	expect(t, o, escalated)
	if c.GetTeam() != "platform" || o.Events[0].Reason != "needs deployment knowledge" || o.Audit[0].Detail != "needs deployment knowledge (to team platform)" {
		t.Fatalf("%v %+v", c, o)
	}
	expect(t, Escalate(c, "", "", "bob", now), escalated)
}

func TestTag(t *testing.T) {
	c := openConversation(t)
	o := Tag(c, []string{" Bug ", "bug", "helm"}, nil, []string{"Deployments", "deployments", "Performance"}, "bob", now)
	expect(t, o, triaged)
	if !slices.Equal(c.GetTags(), []string{"bug", "helm"}) || !slices.Equal(c.GetCategories(), []string{"Deployments", "Performance"}) {
		t.Fatalf("%v", c)
	}
	if o.Events[0].Reason != "+bug +helm; categories: Deployments, Performance" {
		t.Fatalf("%q", o.Events[0].Reason)
	}
	expect(t, Tag(c, []string{"bug"}, []string{"nope"}, nil, "bob", now))
	o = Tag(c, nil, []string{"HELM"}, nil, "bob", now)
	expect(t, o, triaged)
	if !slices.Equal(c.GetTags(), []string{"bug"}) || o.Events[0].Reason != "-helm" {
		t.Fatalf("%v %q", c, o.Events[0].Reason)
	}
}

func TestSetTier(t *testing.T) {
	c := openConversation(t)
	c.Tier, c.TierReason = supportv1.Tier_TIER_COMMUNITY, "unknown customer"
	ref := &supportv1.CustomerRef{Id: "acme", Name: "Acme"}
	o := SetTier(c, supportv1.Tier_TIER_PRIORITY, "plan enterprise", ref, now)
	expect(t, o, triaged)
	if o.Events[0].Reason != "tier community -> priority: plan enterprise" || c.GetCustomer().GetId() != "acme" ||
		o.Events[0].PreviousTier != supportv1.Tier_TIER_COMMUNITY {
		t.Fatalf("%+v %v", o.Events, c)
	}
	expect(t, SetTier(c, supportv1.Tier_TIER_PRIORITY, "plan enterprise", ref, now))
	// Another reason, the same tier: no previous tier, nobody re-told.
	o = SetTier(c, supportv1.Tier_TIER_PRIORITY, "plan scale", ref, now)
	expect(t, o, triaged)
	if o.Events[0].PreviousTier != supportv1.Tier_TIER_UNSPECIFIED {
		t.Fatalf("same tier: previous tier %s", o.Events[0].PreviousTier)
	}
}

func TestSubject(t *testing.T) {
	for _, tt := range []struct{ subject, text, want string }{
		{"Billing question", "body", "Billing question"},
		{"", "\n  First line  \nsecond", "First line"},
	} {
		if got := Subject(&supportv1.InboundMessage{Subject: tt.subject, Text: tt.text}); got != tt.want {
			t.Errorf("Subject(%q, %q) = %q, want %q", tt.subject, tt.text, got, tt.want)
		}
	}
	long := strings.Repeat("wörd ", 40)
	got := []rune(Subject(&supportv1.InboundMessage{Text: long}))
	if len(got) > maxSubject || got[len(got)-1] != '…' {
		t.Errorf("long subject %q", string(got))
	}
}
