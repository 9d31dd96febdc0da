package triage

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/engine"
	"github.com/sidekickhq/sidekick/services/triage/internal/triagetest"
)

// send publishes messages and waits until they are handled and their
// events published.
func (h *harness) send(t *testing.T, msgs ...*supportv1.InboundMessage) {
	t.Helper()
	for _, m := range msgs {
		triagetest.PublishInbound(t, h.js, m, "")
	}
	h.settled(t)
}

func get(t *testing.T, convs triagev1.ConversationServiceClient, id string) *triagev1.GetConversationResponse {
	t.Helper()
	resp, err := convs.GetConversation(context.Background(), &triagev1.GetConversationRequest{Id: id})
	if err != nil {
		t.Fatalf("GetConversation %s: %v", id, err)
	}
	return resp
}

func only(t *testing.T, convs triagev1.ConversationServiceClient) *supportv1.Conversation {
	t.Helper()
	list, err := convs.ListConversations(context.Background(), &triagev1.ListConversationsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetConversations()) != 1 {
		t.Fatalf("want 1 conversation, have %d", len(list.GetConversations()))
	}
	return list.GetConversations()[0]
}

func actions(audit []*triagev1.AuditEntry) []string {
	var out []string
	for _, a := range audit {
		out = append(out, a.GetActor()+" "+a.GetAction())
	}
	return out
}

func TestFirstStaffReplyAssignsAndRecordsFirstResponse(t *testing.T) {
	h := newHarness(t)
	s, _ := h.start(t, h.deps)
	convs, _ := serve(t, s)

	th := triagetest.Slack("1")
	question := th.Customer("U0CUST", "Ingestion is lagging by an hour")
	reply := th.Staff("U0HERO", "On it")
	h.send(t, question)
	h.clock.Advance(12 * time.Minute)
	h.send(t, reply, th.Staff("U0OTHER", "I can help too"))

	c := only(t, convs)
	if c.GetAssignee() != "U0HERO" || c.GetStatus() != supportv1.ConversationStatus_CONVERSATION_STATUS_AWAITING_CUSTOMER ||
		!c.GetFirstResponseAt().AsTime().Equal(reply.GetSentAt().AsTime()) || c.GetMessageCount() != 3 {
		t.Fatalf("after the first staff reply: %v", c)
	}
	events, _ := triagetest.ConversationEvents(t, h.js)
	want := []supportv1.ConversationEventType{
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_OPENED,
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_TRIAGED,
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_RESPONDED,
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_ASSIGNED,
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_MESSAGE,
	}
	if got := triagetest.Types(events); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	responded := events[2]
	if responded.GetActor() != "U0HERO" || responded.GetMessage().GetId() != reply.GetId() ||
		responded.GetConversation().GetAssignee() != "U0HERO" || responded.GetConversation().GetFirstResponseAt() == nil {
		t.Fatalf("responded event %v", responded)
	}
	full := get(t, convs, c.GetId())
	if got, want := actions(full.GetAudit()), []string{"U0CUST opened", "system categorised", "U0HERO responded", "U0HERO assigned"}; !slices.Equal(got, want) {
		t.Fatalf("audit %v, want %v", got, want)
	}
}

func TestCustomerMessageReopens(t *testing.T) {
	h := newHarness(t)
	s, _ := h.start(t, h.deps)
	convs, _ := serve(t, s)

	th := triagetest.Slack("2")
	h.send(t, th.Customer("U0CUST", "Can you delete my project?"), th.Staff("U0HERO", "Done"))
	c := only(t, convs)
	if _, err := convs.Close(context.Background(), &triagev1.CloseRequest{Id: c.GetId(), Reason: supportv1.CloseReason_CLOSE_REASON_RESOLVED, Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	h.settled(t)
	h.send(t, th.Customer("U0CUST", "Actually, the other one too"))
	c = only(t, convs)
	if c.GetStatus() != supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN || c.GetCloseReason() != supportv1.CloseReason_CLOSE_REASON_UNSPECIFIED {
		t.Fatalf("after the customer wrote again: %v", c)
	}
	events, _ := triagetest.ConversationEvents(t, h.js)
	got := triagetest.Types(events)
	want := []supportv1.ConversationEventType{
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_OPENED,
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_TRIAGED,
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_RESPONDED,
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_ASSIGNED,
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_CLOSED,
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_REOPENED,
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_MESSAGE,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	if r := events[5]; r.GetActor() != "U0CUST" || r.GetReason() != "the customer wrote again" || r.GetConversation().GetStatus() != supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN {
		t.Fatalf("reopened event %v", r)
	}
}

func TestMessageKinds(t *testing.T) {
	h := newHarness(t)
	s, _ := h.start(t, h.deps)
	convs, _ := serve(t, s)
	ctx := context.Background()

	// Bots, automated mail and staff open nothing.
	quiet := triagetest.Slack("quiet")
	h.send(t,
		quiet.Bot("Deploy finished"),
		quiet.Kind(supportv1.MessageKind_MESSAGE_KIND_AUTOMATED, "mailer-daemon", "", "Out of office"),
		quiet.Staff("U0HERO", "Heads up: maintenance tonight"),
	)
	list, err := convs.ListConversations(ctx, &triagev1.ListConversationsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetConversations()) != 0 {
		t.Fatalf("bot, automated and staff messages opened %v", list.GetConversations())
	}
	if n := triagetest.Count(t, h.pool, `SELECT count(*) FROM messages WHERE conversation_id IS NULL`); n != 3 {
		t.Fatalf("want the 3 messages recorded, have %d", n)
	}

	// The customer's question opens it; earlier messages of the thread join.
	question := quiet.Customer("U0CUST", "Will maintenance affect ingestion?")
	h.send(t, question)
	c := only(t, convs)
	if n := len(get(t, convs, c.GetId()).GetMessages()); n != 4 {
		t.Fatalf("conversation has %d messages, want 4", n)
	}

	// Edits and deletes change the stored message, not the conversation.
	h.send(t, quiet.Kind(supportv1.MessageKind_MESSAGE_KIND_EDITED, "U0CUST", question.GetSourceId(), "Will maintenance affect ingestion or exports?"))
	msgs := get(t, convs, c.GetId()).GetMessages()
	last := msgs[len(msgs)-1]
	if last.GetText() != "Will maintenance affect ingestion or exports?" || last.GetAttributes()["edited"] != "true" || len(msgs) != 4 {
		t.Fatalf("after the edit: %v", msgs)
	}
	h.send(t, quiet.Kind(supportv1.MessageKind_MESSAGE_KIND_DELETED, "U0CUST", question.GetSourceId(), ""))
	msgs = get(t, convs, c.GetId()).GetMessages()
	last = msgs[len(msgs)-1]
	if last.GetText() != "" || last.GetAttributes()["deleted"] != "true" {
		t.Fatalf("after the delete: %v", last)
	}

	// Closed and reopened at the source (a GitHub issue, say).
	h.send(t, quiet.Kind(supportv1.MessageKind_MESSAGE_KIND_THREAD_CLOSED, "octocat", "", ""))
	if c := only(t, convs); c.GetStatus() != supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED || c.GetCloseReason() != supportv1.CloseReason_CLOSE_REASON_RESOLVED {
		t.Fatalf("after THREAD_CLOSED: %v", c)
	}
	h.send(t, quiet.Kind(supportv1.MessageKind_MESSAGE_KIND_THREAD_REOPENED, "octocat", "", ""))
	if c := only(t, convs); c.GetStatus() != supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN {
		t.Fatalf("after THREAD_REOPENED: %v", c)
	}
	events, _ := triagetest.ConversationEvents(t, h.js)
	want := []supportv1.ConversationEventType{
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_OPENED,
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_TRIAGED,
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_CLOSED,
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_REOPENED,
	}
	if got := triagetest.Types(events); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

func TestInvalidInboundIsDeadLettered(t *testing.T) {
	h := newHarness(t)
	s, _ := h.start(t, h.deps)
	convs, _ := serve(t, s)
	// In one burst (one batch, most likely): a valid question, the invalid
	// message, the same question again under another Nats-Msg-Id, and a
	// reply. The batch fails on the invalid one; each is then handled on
	// its own.
	th := triagetest.Slack("y")
	question := th.Customer("U0CUST", "Can I change my plan?")
	m := triagetest.Slack("x").Customer("U0CUST", "no thread")
	m.ThreadKey = ""
	triagetest.PublishInbound(t, h.js, question, "")
	triagetest.PublishInbound(t, h.js, m, "")
	triagetest.PublishInbound(t, h.js, question, "again")
	triagetest.PublishInbound(t, h.js, th.Staff("U0HERO", "Yes, in settings"), "")
	h.settled(t)
	if n := triagetest.Count(t, h.pool, `SELECT count(*) FROM inbox`); n != 2 {
		t.Fatalf("%d messages claimed in the inbox, want the question and the reply", n)
	}
	if c := only(t, convs); c.GetMessageCount() != 2 || c.GetStatus() != supportv1.ConversationStatus_CONVERSATION_STATUS_AWAITING_CUSTOMER {
		t.Fatalf("conversation %v", c)
	}
	if n := h.deadLetters(t); n != 1 {
		t.Fatalf("dead letters: %d, want 1", n)
	}
}

func TestConversationCommands(t *testing.T) {
	h := newHarness(t)
	s, _ := h.start(t, h.deps)
	convs, _ := serve(t, s)
	ctx := context.Background()

	h.send(t, triagetest.Slack("3").Customer("U0CUST", "Helm chart fails on upgrade"))
	c := only(t, convs)

	a, err := convs.Assign(ctx, &triagev1.AssignRequest{Id: c.GetId(), Assignee: "alice", Actor: "bob"})
	if err != nil || a.GetConversation().GetAssignee() != "alice" {
		t.Fatalf("Assign: %v %v", a, err)
	}
	tg, err := convs.Tag(ctx, &triagev1.TagRequest{Id: c.GetId(), Add: []string{"helm", "upgrade"}, Categories: []string{"Deployments", "Data Integrity"}, Actor: "alice"})
	if err != nil || !slices.Equal(tg.GetConversation().GetTags(), []string{"helm", "upgrade"}) || !slices.Equal(tg.GetConversation().GetCategories(), []string{"deployments", "data-integrity"}) {
		t.Fatalf("Tag: %v %v", tg, err)
	}
	if _, err := convs.Tag(ctx, &triagev1.TagRequest{Id: c.GetId(), Remove: []string{"upgrade"}, Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	note, err := convs.AddNote(ctx, &triagev1.AddNoteRequest{Id: c.GetId(), Text: "Customer runs chart 30.x", Actor: "alice"})
	if err != nil || note.GetNote().GetAuthor() != "alice" || note.GetNote().GetId() == "" {
		t.Fatalf("AddNote: %v %v", note, err)
	}
	esc, err := convs.Escalate(ctx, &triagev1.EscalateRequest{Id: c.GetId(), Reason: "deployment knowledge", Team: "platform", Actor: "alice"})
	if err != nil || esc.GetConversation().GetTeam() != "platform" {
		t.Fatalf("Escalate: %v %v", esc, err)
	}
	cl, err := convs.Close(ctx, &triagev1.CloseRequest{Id: c.GetId(), Reason: supportv1.CloseReason_CLOSE_REASON_SPAM, Actor: "alice"})
	if err != nil || cl.GetConversation().GetStatus() != supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED {
		t.Fatalf("Close: %v %v", cl, err)
	}
	if _, err := convs.Escalate(ctx, &triagev1.EscalateRequest{Id: c.GetId(), Actor: "alice"}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("Escalate of a closed conversation: %v, want FailedPrecondition", err)
	}
	re, err := convs.Reopen(ctx, &triagev1.ReopenRequest{Id: c.GetId(), Actor: "bob"})
	if err != nil || re.GetConversation().GetStatus() != supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN {
		t.Fatalf("Reopen: %v %v", re, err)
	}
	h.settled(t)

	full := get(t, convs, c.GetId())
	if len(full.GetNotes()) != 1 || full.GetNotes()[0].GetText() != "Customer runs chart 30.x" {
		t.Fatalf("notes %v", full.GetNotes())
	}
	want := []string{"U0CUST opened", "system categorised", "bob assigned", "alice tagged", "alice tagged", "alice noted", "alice escalated", "alice closed", "bob reopened"}
	if got := actions(full.GetAudit()); !slices.Equal(got, want) {
		t.Fatalf("audit %v, want %v", got, want)
	}
	if !strings.HasSuffix(full.GetConversation().GetShareUrl(), "/console/conversations/"+c.GetId()) {
		t.Fatalf("share url %q", full.GetConversation().GetShareUrl())
	}

	events, _ := triagetest.ConversationEvents(t, h.js)
	wantTypes := []supportv1.ConversationEventType{
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_OPENED,
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_TRIAGED,
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_ASSIGNED,
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_TRIAGED,
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_TRIAGED,
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_ESCALATED,
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_CLOSED,
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_REOPENED,
	}
	if got := triagetest.Types(events); !slices.Equal(got, wantTypes) {
		t.Fatalf("events %v, want %v", got, wantTypes)
	}
	if e := events[5]; e.GetReason() != "deployment knowledge" || e.GetConversation().GetTeam() != "platform" || e.GetActor() != "alice" {
		t.Fatalf("escalated event %v", e)
	}

	// Errors map to codes.
	if _, err := convs.GetConversation(ctx, &triagev1.GetConversationRequest{Id: "nope"}); status.Code(err) != codes.NotFound {
		t.Fatalf("unknown id: %v", err)
	}
	if _, err := convs.AddNote(ctx, &triagev1.AddNoteRequest{Id: c.GetId(), Text: "  "}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("empty note: %v", err)
	}
	if _, err := convs.Assign(ctx, &triagev1.AssignRequest{Assignee: "x"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("no id: %v", err)
	}
}

// TestBatchAppliesInOrder applies a batch directly: messages of one thread
// in order, a duplicate inside the batch, an edit of a message of the same
// batch, and another thread.
func TestBatchAppliesInOrder(t *testing.T) {
	h := newHarness(t)
	s, _ := h.start(t, h.deps)
	convs, _ := serve(t, s)
	th, other := triagetest.Slack("batch"), triagetest.Slack("batch-other")
	question := th.Customer("U0CUST", "Can I export to S3?")
	batch := []*supportv1.InboundMessage{
		question,
		triagetest.Clone(question),
		th.Staff("U0HERO", "Yes, with the batch exports app"),
		th.Kind(supportv1.MessageKind_MESSAGE_KIND_EDITED, "U0CUST", question.GetSourceId(), "Can I export to S3 daily?"),
		other.Customer("U0OTHER", "Billing question about my invoice"),
	}
	in := make([]engine.Inbound, len(batch))
	for i, m := range batch {
		in[i] = engine.Inbound{Message: m, Subject: "support.inbound.slack"}
	}
	res, err := s.engine.HandleInbound(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	want := []engine.Result{engine.Applied, engine.Duplicate, engine.Applied, engine.Recorded, engine.Applied}
	if !slices.Equal(res, want) {
		t.Fatalf("results %v, want %v", res, want)
	}
	h.settled(t)
	c := byThread(t, convs, th.ThreadKey)
	if c.GetStatus() != supportv1.ConversationStatus_CONVERSATION_STATUS_AWAITING_CUSTOMER || c.GetMessageCount() != 2 ||
		c.GetAssignee() != "U0HERO" || c.GetFirstResponseAt() == nil || c.GetNextDeadlineAt() != nil {
		t.Fatalf("conversation %v", c)
	}
	msgs := get(t, convs, c.GetId()).GetMessages()
	if len(msgs) != 2 || msgs[0].GetText() != "Can I export to S3 daily?" {
		t.Fatalf("messages %v", msgs)
	}
	if o := byThread(t, convs, other.ThreadKey); o.GetCategories()[0] != "billing" || o.GetNextDeadlineAt() == nil {
		t.Fatalf("other thread %v", o)
	}
	// The same batch again changes nothing.
	res, err = s.engine.HandleInbound(context.Background(), in)
	if err != nil || !slices.Equal(res, []engine.Result{engine.Duplicate, engine.Duplicate, engine.Duplicate, engine.Duplicate, engine.Duplicate}) {
		t.Fatalf("replayed batch: %v %v", res, err)
	}
}

// TestConversationOpenedMeanwhileByAnotherReplica: while a message is
// applied, another replica creates the conversation of its thread first.
// The transaction that lost the race is tried again and applies the
// message to that conversation (a single message is a batch of one, with
// no path of its own that would tolerate the race).
func TestConversationOpenedMeanwhileByAnotherReplica(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Postgres")
	}
	ctx := context.Background()
	pool := triagetest.Database(t, Schema, Migrations())
	clock := triagetest.NewClock()
	eng, err := engine.New(pool, engine.Config{}, clock, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	th := triagetest.Slack("raced")
	other, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback(ctx) //nolint:errcheck // committed below
	if _, err := other.Exec(ctx, `INSERT INTO conversations (id, channel, thread_key, status, tier, opened_at, updated_at)
		VALUES ('opened-elsewhere', $1, $2, $3, $4, $5, $5)`, int16(supportv1.Channel_CHANNEL_SLACK), th.ThreadKey,
		int16(supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN), int16(supportv1.Tier_TIER_COMMUNITY), clock.Now()); err != nil {
		t.Fatal(err)
	}
	type outcome struct {
		res []engine.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := eng.HandleInbound(ctx, []engine.Inbound{{Message: th.Customer("U0CUST", "Is ingestion delayed?"), Subject: "support.inbound.slack"}})
		done <- outcome{res, err}
	}()
	// The message's transaction waits on the other replica's new row.
	triagetest.Eventually(t, "the insert waiting for the other replica", func() bool {
		return triagetest.Count(t, pool, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`) > 0
	})
	if err := other.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got := <-done
	if got.err != nil || !slices.Equal(got.res, []engine.Result{engine.Applied}) {
		t.Fatalf("HandleInbound: %v, %v; want applied", got.res, got.err)
	}
	if n := triagetest.Count(t, pool, `SELECT count(*) FROM messages WHERE conversation_id = 'opened-elsewhere'`); n != 1 {
		t.Fatalf("%d messages on the conversation opened elsewhere, want 1", n)
	}
	if n := triagetest.Count(t, pool, `SELECT count(*) FROM conversations`); n != 1 {
		t.Fatalf("%d conversations, want the one opened elsewhere", n)
	}
}
