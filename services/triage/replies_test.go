package triage

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/outbound"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/coverage"
	"github.com/sidekickhq/sidekick/services/triage/internal/triagetest"
)

// receipt publishes a channel's receipt as the sending service does and
// waits until triage has handled it.
func (h *harness) receipt(t *testing.T, rc *supportv1.OutboundReceipt) {
	t.Helper()
	ctx := context.Background()
	ch := channelToken(rc.GetChannel())
	ack, err := bus.NewPublisher(h.js, "test/ingest-"+ch).Publish(ctx, bus.Event{
		Subject: bus.OutboundReceiptSubject(ch), ID: outbound.ReceiptID(rc.GetOutboundId(), rc.GetRetry()), Message: rc,
	})
	if err != nil {
		t.Fatal(err)
	}
	triagetest.Eventually(t, "receipt handled", func() bool {
		c, err := h.js.Consumer(ctx, bus.StreamOutbound, DurableReceipts)
		if err != nil {
			return false
		}
		ci, err := c.Info(ctx)
		return err == nil && ci.AckFloor.Stream >= ack.Sequence && ci.NumAckPending == 0
	})
	h.settled(t)
}

// startReplies starts triage, always within working hours, and serves
// its ConversationService.
func startReplies(t *testing.T) (*harness, triagev1.ConversationServiceClient) {
	t.Helper()
	h := newHarness(t)
	h.deps.Coverage = coverage.Always{}
	s, _ := h.start(t, h.deps)
	convs, _ := serve(t, s)
	return h, convs
}

func channelToken(ch supportv1.Channel) string {
	return strings.ToLower(strings.TrimPrefix(ch.String(), "CHANNEL_"))
}

// outboundMsgs are the OutboundMessages triage published so far.
func (h *harness) outboundMsgs(t *testing.T) []*supportv1.OutboundMessage {
	t.Helper()
	h.settled(t)
	msgs, _, _ := triagetest.Outbound(t, h.js)
	return msgs
}

func delivery(t *testing.T, got *triagev1.GetConversationResponse, id string) *triagev1.OutboundDelivery {
	t.Helper()
	for _, d := range got.GetDeliveries() {
		if d.GetOutboundId() == id {
			return d
		}
	}
	t.Fatalf("no delivery %s in %v", id, got.GetDeliveries())
	return nil
}

// TestReplyOnSlack: a reply is a staff message by the person (first
// response, assigned to them, awaiting the customer) and an OutboundMessage
// on support.outbound.slack into the customer's thread; receipts move its
// delivery to sent or failed, the same receipt twice and a stale one
// change nothing, and a failed reply is sent again with the next retry.
func TestReplyOnSlack(t *testing.T) {
	h, convs := startReplies(t)
	ctx := context.Background()

	th := triagetest.Slack("R1")
	h.send(t, at(h.clock, th.Customer("U0CUST", "Exports are stuck")))
	c := byThread(t, convs, th.ThreadKey)

	resp, err := convs.Reply(ctx, &triagev1.ReplyRequest{ConversationId: c.GetId(), Actor: "Farah Faruqi", Text: "  Looking into it now.  "})
	if err != nil {
		t.Fatalf("Reply: %v", err)
	}
	m, d, after := resp.GetMessage(), resp.GetDelivery(), resp.GetConversation()
	if a := m.GetAuthor(); a.GetPersonId() != "farah" || a.GetRole() != supportv1.AuthorRole_AUTHOR_ROLE_STAFF || a.GetName() != "Farah Faruqi" {
		t.Errorf("reply author %v, want the person farah as staff", a)
	}
	if m.GetText() != "Looking into it now." || m.GetAttributes()["outbound_id"] != d.GetOutboundId() {
		t.Errorf("stored reply %v", m)
	}
	if d.GetState() != triagev1.DeliveryState_DELIVERY_STATE_SENDING || d.GetMessageId() != m.GetId() {
		t.Errorf("delivery %v, want sending for %s", d, m.GetId())
	}
	if after.GetAssignee() != "farah" || after.GetStatus() != supportv1.ConversationStatus_CONVERSATION_STATUS_AWAITING_CUSTOMER || after.GetFirstResponseAt() == nil {
		t.Errorf("after the first reply: assignee %q status %s first response %v", after.GetAssignee(), after.GetStatus(), after.GetFirstResponseAt())
	}

	out := h.outboundMsgs(t)
	if len(out) != 1 {
		t.Fatalf("%d outbound messages, want 1", len(out))
	}
	om := out[0]
	if om.GetId() != d.GetOutboundId() || om.GetChannel() != supportv1.Channel_CHANNEL_SLACK || om.GetText() != "Looking into it now." ||
		om.GetAuthor().GetPersonId() != "farah" || om.GetAuthor().GetDisplayName() != "Farah Faruqi" {
		t.Errorf("outbound message %v", om)
	}
	if tg := om.GetSlack(); tg.GetTeamId() != "T0WORK" || tg.GetChannel() != "C0SUPPORT" || tg.GetThreadTs() != "R1" {
		t.Errorf("slack target %v, want the customer's thread", tg)
	}

	// Sent: the provider's id and link.
	sent := &supportv1.OutboundReceipt{OutboundId: om.GetId(), ConversationId: c.GetId(), Channel: supportv1.Channel_CHANNEL_SLACK,
		Status: supportv1.OutboundStatus_OUTBOUND_STATUS_SENT, ProviderId: "1700000000.000200", Permalink: "https://acme.slack.com/archives/C0SUPPORT/p1700000000000200"}
	h.receipt(t, sent)
	got := get(t, convs, c.GetId())
	ds := delivery(t, got, om.GetId())
	if ds.GetState() != triagev1.DeliveryState_DELIVERY_STATE_SENT || ds.GetProviderId() != sent.GetProviderId() || ds.GetPermalink() != sent.GetPermalink() {
		t.Errorf("after the receipt: %v", ds)
	}
	if last := got.GetMessages()[len(got.GetMessages())-1]; last.GetSourceId() != sent.GetProviderId() || last.GetPermalink() != sent.GetPermalink() {
		t.Errorf("the staff message does not carry the provider's id and link: %v", last)
	}
	// The same receipt again changes nothing.
	h.clock.Advance(1)
	h.receipt(t, sent)
	if again := delivery(t, get(t, convs, c.GetId()), om.GetId()); !again.GetUpdatedAt().AsTime().Equal(ds.GetUpdatedAt().AsTime()) {
		t.Errorf("a repeated receipt changed the delivery: %v", again)
	}

	// A second reply fails, is retried, and a stale receipt of the first
	// attempt changes nothing.
	r2, err := convs.Reply(ctx, &triagev1.ReplyRequest{ConversationId: c.GetId(), Actor: "farah", Text: "Could you send the export id?"})
	if err != nil {
		t.Fatal(err)
	}
	id2 := r2.GetDelivery().GetOutboundId()
	failed := &supportv1.OutboundReceipt{OutboundId: id2, Channel: supportv1.Channel_CHANNEL_SLACK,
		Status: supportv1.OutboundStatus_OUTBOUND_STATUS_FAILED, Reason: "not_in_channel", Permanent: true}
	h.receipt(t, failed)
	got = get(t, convs, c.GetId())
	if d2 := delivery(t, got, id2); d2.GetState() != triagev1.DeliveryState_DELIVERY_STATE_FAILED || d2.GetReason() != "not_in_channel" || !d2.GetPermanent() {
		t.Errorf("failed delivery %v", d2)
	}
	if !slices.ContainsFunc(got.GetAudit(), func(a *triagev1.AuditEntry) bool {
		return a.GetAction() == "reply failed" && strings.Contains(a.GetDetail(), "not_in_channel")
	}) {
		t.Errorf("audit trail without the failure: %v", got.GetAudit())
	}
	if _, err := convs.RetryOutbound(ctx, &triagev1.RetryOutboundRequest{OutboundId: om.GetId(), Actor: "farah"}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("retry of a sent reply: %v, want FailedPrecondition", err)
	}
	rr, err := convs.RetryOutbound(ctx, &triagev1.RetryOutboundRequest{OutboundId: id2, Actor: "U0FARAH"})
	if err != nil {
		t.Fatalf("RetryOutbound: %v", err)
	}
	if rr.GetDelivery().GetState() != triagev1.DeliveryState_DELIVERY_STATE_SENDING || rr.GetDelivery().GetRetry() != 1 {
		t.Errorf("retried delivery %v", rr.GetDelivery())
	}
	h.settled(t)
	msgs, _, ids := triagetest.Outbound(t, h.js)
	if len(msgs) != 3 || msgs[2].GetId() != id2 || msgs[2].GetRetry() != 1 || ids[2] != id2+"/retry-1" {
		t.Fatalf("the retry on the stream: %v (ids %v)", msgs, ids)
	}
	h.receipt(t, failed) // the failed attempt's receipt, late
	if d2 := delivery(t, get(t, convs, c.GetId()), id2); d2.GetState() != triagev1.DeliveryState_DELIVERY_STATE_SENDING {
		t.Errorf("a stale receipt moved the retried delivery: %v", d2)
	}
	h.receipt(t, &supportv1.OutboundReceipt{OutboundId: id2, Channel: supportv1.Channel_CHANNEL_SLACK, Retry: 1,
		Status: supportv1.OutboundStatus_OUTBOUND_STATUS_SENT, ProviderId: "1700000000.000300"})
	if d2 := delivery(t, get(t, convs, c.GetId()), id2); d2.GetState() != triagev1.DeliveryState_DELIVERY_STATE_SENT || d2.GetRetry() != 1 {
		t.Errorf("the retry's receipt: %v", d2)
	}
	// The audit trail names the person, whichever identity acted.
	for _, a := range get(t, convs, c.GetId()).GetAudit() {
		if a.GetActor() == "U0FARAH" || a.GetActor() == "Farah Faruqi" {
			t.Errorf("audit line by %q, want the person id: %v", a.GetActor(), a)
		}
	}
}

// TestSlackEchoIsTheSameMessage: Slack's message event of our own reply is
// the staff message already stored, not a second one (and tells its ts
// when no receipt has yet); a message naming an outbound id triage never
// issued is an ordinary message.
func TestSlackEchoIsTheSameMessage(t *testing.T) {
	h, convs := startReplies(t)
	ctx := context.Background()

	th := triagetest.Slack("ECHO")
	h.send(t, at(h.clock, th.Customer("U0CUST", "Is the API down?")))
	c := byThread(t, convs, th.ThreadKey)
	r, err := convs.Reply(ctx, &triagev1.ReplyRequest{ConversationId: c.GetId(), Actor: "alice", Text: "Not here; which endpoint?"})
	if err != nil {
		t.Fatal(err)
	}
	id := r.GetDelivery().GetOutboundId()

	echo := th.Bot("Not here; which endpoint?")
	echo.SourceId, echo.Permalink = "1700000001.000100", "https://acme.slack.com/archives/C0SUPPORT/p1700000001000100"
	echo.Attributes = map[string]string{"outbound_id": id}
	forged := th.Customer("U0CUST", "ha")
	forged.Attributes = map[string]string{"outbound_id": "not-ours"}
	h.send(t, echo, triagetest.Clone(echo), forged)

	got := get(t, convs, c.GetId())
	if n := len(got.GetMessages()); n != 3 {
		t.Fatalf("%d messages, want 3: the question, the reply (once) and the forged one", n)
	}
	if m := got.GetMessages()[1]; m.GetId() != r.GetMessage().GetId() || m.GetSourceId() != echo.GetSourceId() {
		t.Errorf("the reply did not learn its ts from the echo: %v", m)
	}
	if d := delivery(t, got, id); d.GetState() != triagev1.DeliveryState_DELIVERY_STATE_SENT || d.GetProviderId() != echo.GetSourceId() {
		t.Errorf("delivery after the echo %v", d)
	}
	if got.GetConversation().GetStatus() != supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN {
		t.Errorf("the forged message is the customer's: status %s, want open", got.GetConversation().GetStatus())
	}
}

// TestReplyRefusals: bad input is refused with the contract's codes and
// sends nothing; a reply to a closed conversation is allowed and keeps it
// closed; an assignee nobody is is refused naming them.
func TestReplyRefusals(t *testing.T) {
	h, convs := startReplies(t)
	ctx := context.Background()

	th := triagetest.Slack("BAD")
	alert := &triagetest.Message{Channel: supportv1.Channel_CHANNEL_SENTRY, ThreadKey: "sentry:4242"}
	h.send(t, at(h.clock, th.Customer("U0CUST", "Hello?")), at(h.clock, alert.Customer("sentry", "TypeError in checkout")))
	c, a := byThread(t, convs, th.ThreadKey), byThread(t, convs, alert.ThreadKey)

	for _, tc := range []struct {
		name string
		req  *triagev1.ReplyRequest
		want codes.Code
		says string
	}{
		{"empty text", &triagev1.ReplyRequest{ConversationId: c.GetId(), Actor: "alice", Text: " \n "}, codes.InvalidArgument, "text is required"},
		{"no actor", &triagev1.ReplyRequest{ConversationId: c.GetId(), Text: "hi"}, codes.InvalidArgument, "actor"},
		{"unknown conversation", &triagev1.ReplyRequest{ConversationId: "nope", Actor: "alice", Text: "hi"}, codes.NotFound, "nope"},
		{"sentry", &triagev1.ReplyRequest{ConversationId: a.GetId(), Actor: "alice", Text: "hi"}, codes.FailedPrecondition, "sentry, which has no customer"},
		{"too long", &triagev1.ReplyRequest{ConversationId: c.GetId(), Actor: "alice", Text: strings.Repeat("a", 40001)}, codes.InvalidArgument, "at most 40000"},
	} {
		_, err := convs.Reply(ctx, tc.req)
		if status.Code(err) != tc.want || !strings.Contains(status.Convert(err).Message(), tc.says) {
			t.Errorf("%s: %v, want %s saying %q", tc.name, err, tc.want, tc.says)
		}
	}
	_, err := convs.Assign(ctx, &triagev1.AssignRequest{Id: c.GetId(), Assignee: "zed", Actor: "alice"})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), `"zed"`) {
		t.Errorf("assign to nobody: %v, want InvalidArgument naming zed", err)
	}
	if out := h.outboundMsgs(t); len(out) != 0 {
		t.Fatalf("refused replies sent %d messages", len(out))
	}
	if got := get(t, convs, c.GetId()); len(got.GetMessages()) != 1 || got.GetConversation().GetAssignee() != "" {
		t.Fatalf("refused calls changed the conversation: %v", got)
	}

	// Closed: the reply goes out, the conversation stays closed.
	if _, err := convs.Close(ctx, &triagev1.CloseRequest{Id: c.GetId(), Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	r, err := convs.Reply(ctx, &triagev1.ReplyRequest{ConversationId: c.GetId(), Actor: "alice", Text: "One more thing: it is fixed."})
	if err != nil {
		t.Fatalf("reply to a closed conversation: %v", err)
	}
	if r.GetConversation().GetStatus() != supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED || len(h.outboundMsgs(t)) != 1 {
		t.Errorf("after replying to a closed conversation: %s, %d sent", r.GetConversation().GetStatus(), len(h.outboundMsgs(t)))
	}
	// Assigning by any identity of a person stores the person.
	as, err := convs.Assign(ctx, &triagev1.AssignRequest{Id: c.GetId(), Assignee: "U0CAROL", Actor: "alice"})
	if err != nil || as.GetConversation().GetAssignee() != "carol" {
		t.Errorf("assign U0CAROL: %v, %v; want carol", as.GetConversation().GetAssignee(), err)
	}
	list, err := convs.ListConversations(ctx, &triagev1.ListConversationsRequest{Assignee: "carol@example.com"})
	if err != nil || len(list.GetConversations()) != 1 {
		t.Errorf("list by the assignee's address: %v, %v", list.GetConversations(), err)
	}
}

// emailFrom is an email a customer (or anyone) sent to support.
func emailFrom(id, thread, from string, attrs map[string]string, refs ...string) *supportv1.InboundMessage {
	a := map[string]string{"recipients": "support@acme.example"}
	for k, v := range attrs {
		a[k] = v
	}
	return &supportv1.InboundMessage{
		Id: "email:" + id, Channel: supportv1.Channel_CHANNEL_EMAIL, SourceId: id, ThreadKey: "email:" + thread,
		Author:  &supportv1.Author{Id: from, Email: from, Name: strings.Split(from, "@")[0], Role: supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER},
		Subject: "Exports stuck", Text: "Our exports are stuck.", Kind: supportv1.MessageKind_MESSAGE_KIND_POSTED,
		Attributes: a, References: refs,
	}
}

// TestEmailReplyThreads: an email reply answers the customer's last email
// (Reply-To, the others in Cc, In-Reply-To and References) under a
// Message-ID triage chose at the support address's domain; the customer's
// answer naming only that Message-ID lands in the same conversation; the
// copy of our reply coming back is not a second message, and an email
// claiming to be it under another Message-ID is.
func TestEmailReplyThreads(t *testing.T) {
	h := newHarness(t)
	h.deps.Coverage = coverage.Always{}
	cfg := testConfig()
	cfg.EmailFrom = "Acme Support <support@acme.example>"
	s, _ := h.startConfig(t, cfg, h.deps)
	convs, _ := serve(t, s)
	ctx := context.Background()

	q := emailFrom("q1@globex.example", "q1@globex.example", "jane@globex.example",
		map[string]string{"to": "support@acme.example, ops@globex.example", "cc": "cfo@globex.example, support@acme.example", "reply_to": "tickets@globex.example"})
	h.send(t, at(h.clock, q))
	c := byThread(t, convs, q.GetThreadKey())
	r, err := convs.Reply(ctx, &triagev1.ReplyRequest{ConversationId: c.GetId(), Actor: "farah@example.com", Text: "They run again."})
	if err != nil {
		t.Fatal(err)
	}
	id := r.GetDelivery().GetOutboundId()
	out := h.outboundMsgs(t)
	if len(out) != 1 || out[0].GetEmail() == nil {
		t.Fatalf("outbound: %v", out)
	}
	et := out[0].GetEmail()
	wantID := "<" + id + "@acme.example>"
	if !slices.Equal(et.GetTo(), []string{"tickets@globex.example"}) || !slices.Equal(et.GetCc(), []string{"ops@globex.example", "cfo@globex.example"}) ||
		et.GetSubject() != "Exports stuck" || et.GetInReplyTo() != "q1@globex.example" ||
		!slices.Equal(et.GetReferences(), []string{"q1@globex.example"}) || et.GetMessageId() != wantID {
		t.Errorf("email target %v", et)
	}
	if src := r.GetMessage().GetSourceId(); src != id+"@acme.example" {
		t.Errorf("the staff message's source id %q, want our Message-ID", src)
	}

	// The customer's client sends In-Reply-To alone: its thread key is our
	// Message-ID, which leads to the conversation.
	ourID := id + "@acme.example"
	answer := emailFrom("a1@globex.example", ourID, "jane@globex.example", map[string]string{"in_reply_to": ourID})
	// Our own copy, back through the support address: same Message-ID.
	copyBack := emailFrom(ourID, "q1@globex.example", "support@acme.example", map[string]string{"outbound_id": id}, "q1@globex.example")
	// A message claiming to be our reply under its own Message-ID.
	claim := emailFrom("x1@globex.example", "q1@globex.example", "jane@globex.example", map[string]string{"outbound_id": id}, "q1@globex.example")
	h.send(t, at(h.clock, answer), at(h.clock, copyBack), at(h.clock, claim))

	got := get(t, convs, c.GetId())
	var sources []string
	for _, m := range got.GetMessages() {
		sources = append(sources, m.GetSourceId())
	}
	want := []string{"q1@globex.example", ourID, "a1@globex.example", "x1@globex.example"}
	if !slices.Equal(sources, want) {
		t.Fatalf("messages %v, want %v", sources, want)
	}
	if n := triagetest.Count(t, h.pool, `SELECT count(*) FROM conversations`); n != 1 {
		t.Errorf("%d conversations, want the one", n)
	}
	if got.GetConversation().GetStatus() != supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN {
		t.Errorf("the customer's answer reopens: status %s", got.GetConversation().GetStatus())
	}
}

// TestStaffArePeople: a person's email from their own address is a staff
// reply (not the customer's message), a person's first reply in Slack
// assigns the conversation to the person (not their Slack id), an email
// under a person's address that failed authentication stays the
// customer's, and a staff author nobody knows stays staff under their
// channel identity and is counted.
func TestStaffArePeople(t *testing.T) {
	h := newHarness(t)
	h.deps.Coverage = coverage.Always{}
	reg := prometheus.NewRegistry()
	h.deps.Registry = reg
	s, _ := h.start(t, h.deps)
	convs, _ := serve(t, s)

	q := emailFrom("q2@initech.example", "q2@initech.example", "bill@initech.example", nil)
	farah := emailFrom("f1@acme.example", "q2@initech.example", "farah@acme.example", nil, "q2@initech.example")
	farah.SentAt = timestamppb.New(h.clock.Now())
	spoof := emailFrom("s1@initech.example", "q3@initech.example", "farah@example.com", map[string]string{"auth_failed": "true"})
	h.send(t, at(h.clock, q), at(h.clock, spoof))
	h.send(t, farah)
	c := byThread(t, convs, q.GetThreadKey())
	got := get(t, convs, c.GetId())
	if m := got.GetMessages()[1]; m.GetAuthor().GetRole() != supportv1.AuthorRole_AUTHOR_ROLE_STAFF || m.GetAuthor().GetPersonId() != "farah" {
		t.Errorf("farah's email stored as %v", m.GetAuthor())
	}
	if cv := got.GetConversation(); cv.GetAssignee() != "farah" || cv.GetFirstResponseAt() == nil ||
		cv.GetStatus() != supportv1.ConversationStatus_CONVERSATION_STATUS_AWAITING_CUSTOMER {
		t.Errorf("after farah's email: assignee %q, first response %v, status %s", cv.GetAssignee(), cv.GetFirstResponseAt(), cv.GetStatus())
	}
	if sp := byThread(t, convs, spoof.GetThreadKey()); sp.GetAuthor().GetPersonId() != "" {
		t.Errorf("an unauthenticated email under farah's address opened a conversation as %v", sp.GetAuthor())
	}

	th, other := triagetest.Slack("PEOPLE"), triagetest.Slack("STRANGER")
	h.send(t, at(h.clock, th.Customer("U0CUST", "Help")), at(h.clock, other.Customer("U0CUST", "Help again")))
	h.send(t, at(h.clock, th.Staff("U0FARAH", "On it")), at(h.clock, other.Staff("U0TEMP", "On it too")))
	if a := byThread(t, convs, th.ThreadKey).GetAssignee(); a != "farah" {
		t.Errorf("first staff reply by U0FARAH assigned %q, want farah", a)
	}
	if a := byThread(t, convs, other.ThreadKey).GetAssignee(); a != "U0TEMP" {
		t.Errorf("first staff reply by U0TEMP (not in the file) assigned %q, want U0TEMP", a)
	}
	if n := metricWithLabel(t, reg, "sidekick_triage_unknown_staff_total", "channel", "slack"); n != 1 {
		t.Errorf("unknown staff counted %v times, want 1", n)
	}
}

// TestSupportChannelMirror: a conversation from email gets a thread in the
// support channel: a header, then each message, copies waiting for the
// header's ts; a staff message in that thread is an email reply to the
// customer (and no copy of itself), a prefixed one a private note; the
// header is rewritten when status and assignee change; the support
// channel's own conversations get no mirror.
func TestSupportChannelMirror(t *testing.T) {
	h := newHarness(t)
	h.deps.Coverage = coverage.Always{}
	cfg := testConfig()
	cfg.SupportChannel, cfg.NotePrefix, cfg.EmailFrom = "C0MIRROR", "!note", "support@acme.example"
	s, _ := h.startConfig(t, cfg, h.deps)
	convs, _ := serve(t, s)

	q := emailFrom("q9@globex.example", "q9@globex.example", "jane@globex.example", nil)
	h.send(t, at(h.clock, q))
	c := byThread(t, convs, q.GetThreadKey())
	out := h.outboundMsgs(t)
	if len(out) != 1 || out[0].GetKind() != supportv1.OutboundKind_OUTBOUND_KIND_MIRROR_HEADER {
		t.Fatalf("after the opening email: %v, want the header alone (the copy waits)", out)
	}
	header := out[0]
	if tg := header.GetSlack(); tg.GetChannel() != "C0MIRROR" || tg.GetThreadTs() != "" || header.GetConversation().GetShareUrl() == "" ||
		header.GetConversation().GetId() != c.GetId() {
		t.Errorf("header %v", header)
	}
	h.receipt(t, &supportv1.OutboundReceipt{OutboundId: header.GetId(), Channel: supportv1.Channel_CHANNEL_SLACK,
		Status: supportv1.OutboundStatus_OUTBOUND_STATUS_SENT, ProviderId: "1800000000.000001"})
	out = h.outboundMsgs(t)
	if len(out) != 2 || out[1].GetKind() != supportv1.OutboundKind_OUTBOUND_KIND_MIRROR_COPY || out[1].GetSlack().GetThreadTs() != "1800000000.000001" ||
		!strings.Contains(out[1].GetText(), "Our exports are stuck.") {
		t.Fatalf("after the header's receipt: %v, want the waiting copy in its thread", out)
	}

	// farah answers in the thread; then writes a note there.
	mirror := &triagetest.Message{Channel: supportv1.Channel_CHANNEL_SLACK, ThreadKey: "slack:T0WORK/C0MIRROR/1800000000.000001"}
	reply := mirror.Staff("U0FARAH", "Restarted the exporter; try again?")
	reply.Attributes = map[string]string{"channel_id": "C0MIRROR", "thread_ts": "1800000000.000001", "ts": "1800000000.000002"}
	note := mirror.Staff("U0FARAH", "!note the exporter leaked memory again")
	note.Attributes = map[string]string{"channel_id": "C0MIRROR", "thread_ts": "1800000000.000001", "ts": "1800000000.000003"}
	h.send(t, at(h.clock, reply), at(h.clock, note))

	got := get(t, convs, c.GetId())
	if n := len(got.GetMessages()); n != 2 {
		t.Fatalf("%d messages, want the question and farah's reply", n)
	}
	if m := got.GetMessages()[1]; m.GetAuthor().GetPersonId() != "farah" || m.GetChannel() != supportv1.Channel_CHANNEL_EMAIL ||
		m.GetAttributes()["written_in"] != "mirror" {
		t.Errorf("reply from the thread stored as %v", m)
	}
	if len(got.GetNotes()) != 1 || got.GetNotes()[0].GetText() != "the exporter leaked memory again" || got.GetNotes()[0].GetAuthor() != "farah" {
		t.Errorf("notes %v", got.GetNotes())
	}
	if cv := got.GetConversation(); cv.GetAssignee() != "farah" || cv.GetStatus() != supportv1.ConversationStatus_CONVERSATION_STATUS_AWAITING_CUSTOMER {
		t.Errorf("after the reply from the thread: %v", cv)
	}
	out = h.outboundMsgs(t)
	kinds := make([]supportv1.OutboundKind, len(out))
	for i, m := range out {
		kinds[i] = m.GetKind()
	}
	wantKinds := []supportv1.OutboundKind{supportv1.OutboundKind_OUTBOUND_KIND_MIRROR_HEADER, supportv1.OutboundKind_OUTBOUND_KIND_MIRROR_COPY,
		supportv1.OutboundKind_OUTBOUND_KIND_REPLY, supportv1.OutboundKind_OUTBOUND_KIND_MIRROR_UPDATE}
	if !slices.Equal(kinds, wantKinds) {
		t.Fatalf("outbound kinds %v, want %v", kinds, wantKinds)
	}
	if r := out[2]; r.GetEmail().GetTo()[0] != "jane@globex.example" || r.GetText() != "Restarted the exporter; try again?" {
		t.Errorf("the reply to the customer %v", r)
	}
	if u := out[3]; u.GetSlack().GetTs() != "1800000000.000001" || u.GetConversation().GetAssignee() != "farah" {
		t.Errorf("header update %v", u)
	}

	// The support channel's own conversations are not mirrored.
	own := &triagetest.Message{Channel: supportv1.Channel_CHANNEL_SLACK, ThreadKey: "slack:T0WORK/C0MIRROR/1900000000.000001"}
	h.send(t, at(h.clock, own.Customer("U0CUST", "Asking right here")))
	if n := len(h.outboundMsgs(t)); n != 4 {
		t.Errorf("a conversation in the support channel posted %d mirror messages", n-4)
	}
}
