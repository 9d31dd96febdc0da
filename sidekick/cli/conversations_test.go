package cli

import (
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/grpcx"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
)

func ts(s string) *timestamppb.Timestamp {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return timestamppb.New(t)
}

func sampleConversation() *supportv1.Conversation {
	return &supportv1.Conversation{
		Id: "c-42", Channel: supportv1.Channel_CHANNEL_SLACK, Status: supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN,
		Tier: supportv1.Tier_TIER_PRIORITY, TierReason: "plan enterprise",
		Categories: []string{"Deployments/Setup", "Performance"}, Tags: []string{"helm"},
		Subject:  "Dashboards stopped loading after the upgrade",
		Customer: &supportv1.CustomerRef{Id: "acme", Name: "Acme", Organisation: "Acme Inc"},
		Author:   &supportv1.Author{Id: "U1", Name: "Dana Scully", Role: supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER},
		Assignee: "bob", Team: "platform",
		OpenedAt: ts("2026-03-02T09:00:00Z"), NextDeadlineAt: ts("2026-03-02T09:15:00Z"),
		DeadlineLevel: supportv1.DeadlineLevel_DEADLINE_LEVEL_GREAT, MessageCount: 2,
		Permalink: "https://acme.slack.com/archives/C1/p1",
	}
}

func TestConversationsShow(t *testing.T) {
	h := newHarness(t)
	resp := &triagev1.GetConversationResponse{
		Conversation: sampleConversation(),
		Messages: []*supportv1.InboundMessage{
			{Id: "m1", Author: &supportv1.Author{Name: "Dana Scully", Role: supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER}, SentAt: ts("2026-03-02T09:00:00Z"),
				Kind: supportv1.MessageKind_MESSAGE_KIND_POSTED, Text: "Our dashboards stopped loading.\n\nHelm 1.30, chart 32.1"},
			{Id: "m2", Author: &supportv1.Author{Name: "Bob", Email: "bob@sidekick.dev", Role: supportv1.AuthorRole_AUTHOR_ROLE_STAFF}, SentAt: ts("2026-03-02T09:05:00Z"),
				Kind: supportv1.MessageKind_MESSAGE_KIND_POSTED, Text: "Looking into it", Attributes: map[string]string{"edited": "true"},
				Attachments: []*supportv1.Attachment{{Name: "values.yaml"}}},
			{Id: "m3", Author: &supportv1.Author{Name: "Dana Scully", Role: supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER}, SentAt: ts("2026-03-02T09:06:00Z"),
				Kind: supportv1.MessageKind_MESSAGE_KIND_POSTED, Attributes: map[string]string{"deleted": "true", "edited": "true"}},
		},
		Notes:      []*triagev1.Note{{Id: "n1", Author: "bob", Text: "Customer retries tomorrow", CreatedAt: ts("2026-03-02T17:00:00Z"), Handoff: true}},
		Deliveries: []*triagev1.OutboundDelivery{{OutboundId: "o-1", MessageId: "m2", State: triagev1.DeliveryState_DELIVERY_STATE_FAILED, Reason: "not_in_channel"}},
		Audit: []*triagev1.AuditEntry{
			{Actor: "system", Action: "triaged", Detail: "tier priority", At: ts("2026-03-02T09:00:01Z")},
			{Actor: "alice", Action: "assigned", Detail: "bob", At: ts("2026-03-02T09:01:00Z")},
		},
	}
	h.respond("GetConversation", resp)

	out, err := h.run(t, "conversations", "show", "c-42")
	if err != nil {
		t.Fatal(err)
	}
	h.want(t, "GetConversation", &triagev1.GetConversationRequest{Id: "c-42"})
	want := `Conversation c-42: Dashboards stopped loading after the upgrade

Status          open
Channel         slack
Tier            priority (plan enterprise)
Categories      Deployments/Setup, Performance
Tags            helm
Customer        Acme (acme), Acme Inc
Author          Dana Scully (customer)
Assignee        bob
Team            platform
Opened          2026-03-02 09:00 UTC
First response  -
Deadline        great, next threshold 2026-03-02 09:15 UTC
Messages        2
Link            https://acme.slack.com/archives/C1/p1

Messages (3)
2026-03-02 09:00 UTC  Dana Scully (customer)
    Our dashboards stopped loading.

    Helm 1.30, chart 32.1
2026-03-02 09:05 UTC  Bob <bob@sidekick.dev> (staff)  [edited]
    Looking into it
    [attachment: values.yaml]
    [reply o-1: failed: not_in_channel]
2026-03-02 09:06 UTC  Dana Scully (customer)  [deleted]
    (deleted at the source)

Notes (1)
2026-03-02 17:00 UTC  bob  [handoff]
    Customer retries tomorrow

Audit trail (2)
TIME                  ACTOR   ACTION    DETAIL
2026-03-02 09:00 UTC  system  triaged   tier priority
2026-03-02 09:01 UTC  alice   assigned  bob
`
	if out != want {
		t.Fatalf("show:\n%s\nwant:\n%s", out, want)
	}

	out, err = h.run(t, "conversations", "show", "c-42", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got triagev1.GetConversationResponse
	if err := protojson.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("--json is not protobuf JSON: %v\n%s", err, out)
	}
	if !proto.Equal(&got, resp) {
		t.Fatalf("--json round trip differs:\n%s", out)
	}
	if !strings.Contains(out, `"tier_reason": "plan enterprise"`) {
		t.Fatalf("--json should use proto field names:\n%s", out)
	}
}

func TestConversationChanges(t *testing.T) {
	changed := sampleConversation()
	tests := []struct {
		name   string
		args   []string
		stdin  string
		method string
		resp   proto.Message
		want   proto.Message
		out    string
	}{
		{
			name: "assign", args: []string{"assign", "c-42", "bob"}, method: "Assign",
			resp: &triagev1.AssignResponse{Conversation: changed},
			want: &triagev1.AssignRequest{Id: "c-42", Assignee: "bob", Actor: "alice"},
			out:  "conversation c-42 assigned to bob\n",
		},
		{
			name: "unassign as someone else", args: []string{"assign", "c-42", "--unassign", "--actor", "carol"}, method: "Assign",
			resp: &triagev1.AssignResponse{Conversation: &supportv1.Conversation{Id: "c-42"}},
			want: &triagev1.AssignRequest{Id: "c-42", Actor: "carol"},
			out:  "conversation c-42 is unassigned\n",
		},
		{
			name: "tag", method: "Tag",
			args: []string{"tag", "c-42", "--add", "helm", "--add", "needs-repro,urgent", "--remove", "waiting", "--category", "Deployments/Setup", "--category", "Performance"},
			resp: &triagev1.TagResponse{Conversation: changed},
			want: &triagev1.TagRequest{Id: "c-42", Add: []string{"helm", "needs-repro", "urgent"}, Remove: []string{"waiting"},
				Categories: []string{"Deployments/Setup", "Performance"}, Actor: "alice"},
			out: "conversation c-42: tags helm; categories Deployments/Setup, Performance\n",
		},
		{
			name: "note", args: []string{"note", "c-42", "Asked for the helm values"}, method: "AddNote",
			resp: &triagev1.AddNoteResponse{Note: &triagev1.Note{Id: "n-7", Text: "Asked for the helm values"}},
			want: &triagev1.AddNoteRequest{Id: "c-42", Text: "Asked for the helm values", Actor: "alice"},
			out:  "note n-7 added to conversation c-42\n",
		},
		{
			name: "handoff note from stdin", args: []string{"note", "c-42", "-", "--handoff"}, stdin: "Retry tomorrow 10:00\n", method: "AddNote",
			resp: &triagev1.AddNoteResponse{Note: &triagev1.Note{Id: "n-8", Handoff: true}},
			want: &triagev1.AddNoteRequest{Id: "c-42", Text: "Retry tomorrow 10:00", Handoff: true, Actor: "alice"},
			out:  "handoff note n-8 added to conversation c-42\n",
		},
		{
			name: "reply", args: []string{"reply", "c-42", "--text", "Fixed in 1.2.3"}, method: "Reply",
			resp: &triagev1.ReplyResponse{Delivery: &triagev1.OutboundDelivery{OutboundId: "o-1", State: triagev1.DeliveryState_DELIVERY_STATE_SENDING}},
			want: &triagev1.ReplyRequest{ConversationId: "c-42", Text: "Fixed in 1.2.3", Actor: "alice"},
			out:  "reply o-1 to conversation c-42: sending\n",
		},
		{
			name: "reply from stdin", args: []string{"reply", "c-42", "--file", "-"}, stdin: "Thanks!\n\nFarah\n", method: "Reply",
			resp: &triagev1.ReplyResponse{Delivery: &triagev1.OutboundDelivery{OutboundId: "o-2", State: triagev1.DeliveryState_DELIVERY_STATE_SENT, Permalink: "https://github.com/acme/app/issues/7#issuecomment-1"}},
			want: &triagev1.ReplyRequest{ConversationId: "c-42", Text: "Thanks!\n\nFarah", Actor: "alice"},
			out:  "reply o-2 to conversation c-42: sent, https://github.com/acme/app/issues/7#issuecomment-1\n",
		},
		{
			name: "retry a failed reply", args: []string{"retry-reply", "o-1"}, method: "RetryOutbound",
			resp: &triagev1.RetryOutboundResponse{Delivery: &triagev1.OutboundDelivery{OutboundId: "o-1", State: triagev1.DeliveryState_DELIVERY_STATE_SENDING, Retry: 1}},
			want: &triagev1.RetryOutboundRequest{OutboundId: "o-1", Actor: "alice"},
			out:  "reply o-1: sending (retry 1)\n",
		},
		{
			name: "close", args: []string{"close", "c-42"}, method: "Close",
			resp: &triagev1.CloseResponse{Conversation: &supportv1.Conversation{Id: "c-42", CloseReason: supportv1.CloseReason_CLOSE_REASON_RESOLVED}},
			want: &triagev1.CloseRequest{Id: "c-42", Reason: supportv1.CloseReason_CLOSE_REASON_RESOLVED, Actor: "alice"},
			out:  "conversation c-42 closed (resolved)\n",
		},
		{
			name: "close as spam", args: []string{"close", "c-42", "--reason", "spam"}, method: "Close",
			resp: &triagev1.CloseResponse{Conversation: &supportv1.Conversation{Id: "c-42", CloseReason: supportv1.CloseReason_CLOSE_REASON_SPAM}},
			want: &triagev1.CloseRequest{Id: "c-42", Reason: supportv1.CloseReason_CLOSE_REASON_SPAM, Actor: "alice"},
			out:  "conversation c-42 closed (spam)\n",
		},
		{
			name: "reopen", args: []string{"reopen", "c-42"}, method: "Reopen",
			resp: &triagev1.ReopenResponse{Conversation: changed},
			want: &triagev1.ReopenRequest{Id: "c-42", Actor: "alice"},
			out:  "conversation c-42 reopened (open)\n",
		},
		{
			name: "escalate to a team", args: []string{"escalate", "c-42", "--reason", "helm fails on 1.30", "--team", "platform"}, method: "Escalate",
			resp: &triagev1.EscalateResponse{Conversation: changed},
			want: &triagev1.EscalateRequest{Id: "c-42", Reason: "helm fails on 1.30", Team: "platform", Actor: "alice"},
			out:  "conversation c-42 escalated to team platform: helm fails on 1.30\n",
		},
		{
			name: "escalate, notifier picks the team", args: []string{"escalate", "c-42", "--reason", "stuck"}, method: "Escalate",
			resp: &triagev1.EscalateResponse{Conversation: &supportv1.Conversation{Id: "c-42", Team: "core-analytics"}},
			want: &triagev1.EscalateRequest{Id: "c-42", Reason: "stuck", Actor: "alice"},
			out:  "conversation c-42 escalated to team core-analytics: stuck\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.respond(tc.method, tc.resp)
			out, err := runEnv(t, h.env, tc.stdin, append([]string{"conversations"}, tc.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			h.want(t, tc.method, tc.want)
			if out != tc.out {
				t.Fatalf("printed %q, want %q", out, tc.out)
			}
		})
	}
}

func TestConversationChangeJSON(t *testing.T) {
	h := newHarness(t)
	h.respond("Assign", &triagev1.AssignResponse{Conversation: sampleConversation()})
	out, err := h.run(t, "conversations", "assign", "c-42", "bob", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got supportv1.Conversation
	if err := protojson.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if !proto.Equal(&got, sampleConversation()) {
		t.Fatalf("--json printed %s", out)
	}
}

// Mistakes on the command line are caught before anything is sent.
func TestConversationArgumentErrors(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"tag without a change", nil, []string{"tag", "c-42"}, "nothing to change"},
		{"unknown close reason", nil, []string{"close", "c-42", "--reason", "fixed"}, `unknown close reason "fixed"`},
		{"escalate without a reason", nil, []string{"escalate", "c-42"}, "--reason is required"},
		{"assign without a person", nil, []string{"assign", "c-42"}, "give the conversation ID and the PERSON"},
		{"empty note", nil, []string{"note", "c-42", "  "}, "the note is empty"},
		{"no actor", []string{"USER"}, []string{"reopen", "c-42"}, "--actor is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			_, err := runEnv(t, without(h.env, tc.env...), "", append([]string{"conversations"}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
			if n := h.total(); n != 0 {
				t.Fatalf("%d request(s) sent for a bad command line", n)
			}
		})
	}
}

func TestCallErrorsAreReadable(t *testing.T) {
	h := newHarness(t)
	h.fail("GetConversation", status.Error(codes.NotFound, "conversation c-404 not found"))
	_, err := h.run(t, "conversations", "show", "c-404")
	if err == nil || err.Error() != "get conversation c-404: not found: conversation c-404 not found" {
		t.Fatalf("error %v", err)
	}
	if status.Code(err) != codes.NotFound {
		t.Fatalf("the status is lost: %v", status.Code(err))
	}

	_, err = runEnv(t, without(h.env, "SIDEKICK_GRPC_TOKEN"), "", "conversations", "show", "c-42")
	if err == nil || !strings.Contains(err.Error(), "unauthenticated") || !strings.Contains(err.Error(), "SIDEKICK_GRPC_TOKEN") {
		t.Fatalf("without a token: %v", err)
	}

	// A server without the service (rotation asked for a conversation).
	srv, err := grpcx.NewServer(grpcx.ServerOptions{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Server.Serve(lis) }()
	t.Cleanup(srv.Stop)
	_, err = h.run(t, "--addr", lis.Addr().String(), "conversations", "show", "c-42")
	if err == nil || !strings.Contains(err.Error(), "unknown service sidekick.triage.v1.ConversationService") ||
		!strings.Contains(err.Error(), "each have their own address") {
		t.Fatalf("wrong service: %v", err)
	}
}

func TestConversationsListSendsFilters(t *testing.T) {
	h := newHarness(t)
	h.respond("ListConversations", &triagev1.ListConversationsResponse{Conversations: []*supportv1.Conversation{sampleConversation()}})
	out, err := h.run(t, "conversations", "list", "--status", "open", "--tier", "priority", "--channel", "slack", "--assignee", "bob", "--limit", "5")
	if err != nil {
		t.Fatal(err)
	}
	h.want(t, "ListConversations", &triagev1.ListConversationsRequest{
		Statuses: []supportv1.ConversationStatus{supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN},
		Tier:     supportv1.Tier_TIER_PRIORITY, Channel: supportv1.Channel_CHANNEL_SLACK, Assignee: "bob", PageSize: 5,
	})
	if !strings.Contains(out, "c-42") || !strings.Contains(out, "2026-03-02 09:00 UTC") {
		t.Fatalf("list printed:\n%s", out)
	}
}

// TestEmptyReplySendsNothing: a reply without text, or with both --text
// and --file, is refused before any call.
func TestEmptyReplySendsNothing(t *testing.T) {
	h := newHarness(t)
	for _, args := range [][]string{
		{"conversations", "reply", "c-42"},
		{"conversations", "reply", "c-42", "--text", "  \n"},
		{"conversations", "reply", "c-42", "--text", "hi", "--file", "-"},
	} {
		if _, err := h.run(t, args...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	if n := h.total(); n != 0 {
		t.Errorf("%d calls, want none", n)
	}
}

// TestAlertsInTheCLI: --alerts asks for alerts and prints their counts;
// show prints an alert's occurrences, first and last seen, its
// acknowledgement and the conversations linked to it.
func TestAlertsInTheCLI(t *testing.T) {
	h := newHarness(t)
	alert := &supportv1.Conversation{
		Id: "a-7", Channel: supportv1.Channel_CHANNEL_SENTRY, Status: supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN,
		Kind: supportv1.ConversationKind_CONVERSATION_KIND_ALERT, Team: "platform", Subject: "StripeTimeout",
		OpenedAt: ts("2026-03-02T09:00:00Z"), TierReason: "alert",
		Alert: &supportv1.Alert{Occurrences: 180, FirstSeen: ts("2026-03-02T09:00:00Z"), LastSeen: ts("2026-03-02T09:08:00Z"),
			Level: "error", Project: "api", AcknowledgedAt: ts("2026-03-02T09:06:00Z"), AcknowledgedBy: "alice"},
		LinkedConversationIds: []string{"c-42"},
	}
	h.respond("ListConversations", &triagev1.ListConversationsResponse{Conversations: []*supportv1.Conversation{alert}})
	out, err := h.run(t, "conversations", "list", "--alerts")
	if err != nil {
		t.Fatal(err)
	}
	h.want(t, "ListConversations", &triagev1.ListConversationsRequest{Kind: supportv1.ConversationKind_CONVERSATION_KIND_ALERT, PageSize: 100})
	if !strings.Contains(out, "OCCURRENCES") || !strings.Contains(out, "a-7  open    platform  180          2026-03-02 09:00 UTC  2026-03-02 09:08 UTC") {
		t.Fatalf("list --alerts printed:\n%s", out)
	}
	h.respond("GetConversation", &triagev1.GetConversationResponse{Conversation: alert})
	out, err = h.run(t, "conversations", "show", "a-7")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Occurrences           180\n", "First seen            2026-03-02 09:00 UTC\n",
		"Last seen             2026-03-02 09:08 UTC\n", "Acknowledged          2026-03-02 09:06 UTC by alice\n",
		"Linked conversations  c-42\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Tier") {
		t.Errorf("an alert shows a tier:\n%s", out)
	}
}

// TestSearchSendsTheQuery: the words of every argument are one query, with
// --limit as the page size; a customer's escape sequences in an excerpt
// reach the terminal as spaces, and the words found are in bold.
func TestSearchSendsTheQuery(t *testing.T) {
	h := newHarness(t)
	h.respond("SearchConversations", &triagev1.SearchConversationsResponse{Hits: []*triagev1.SearchHit{{
		Conversation: sampleConversation(), Source: triagev1.SearchSource_SEARCH_SOURCE_NOTE,
		Snippet: []*triagev1.SnippetPart{{Text: "the \x1b[2Jexporter\n"}, {Text: "crashes", Match: true}, {Text: " nightly"}},
	}}})
	out, err := h.run(t, "conversations", "search", "exporter", "crash", "--limit", "5")
	if err != nil {
		t.Fatal(err)
	}
	h.want(t, "SearchConversations", &triagev1.SearchConversationsRequest{Query: "exporter crash", Filter: &triagev1.ListConversationsRequest{PageSize: 5}})
	if !strings.HasPrefix(out, "c-42  ") || !strings.Contains(out, "\n  note: the [2Jexporter **crashes** nightly\n") || strings.ContainsRune(out, '\x1b') {
		t.Fatalf("search printed %q", out)
	}
}
