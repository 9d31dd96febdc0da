package triage

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/triagetest"
)

// search returns the ids of the conversations query finds under filter,
// best first, with the hits.
func search(t *testing.T, convs triagev1.ConversationServiceClient, query string, filter *triagev1.ListConversationsRequest) ([]string, []*triagev1.SearchHit) {
	t.Helper()
	resp, err := convs.SearchConversations(context.Background(), &triagev1.SearchConversationsRequest{Query: query, Filter: filter})
	if err != nil {
		t.Fatalf("search %q: %v", query, err)
	}
	var ids []string
	for _, h := range resp.GetHits() {
		ids = append(ids, h.GetConversation().GetId())
	}
	return ids, resp.GetHits()
}

// matched is the snippet's matched words, in order.
func matched(h *triagev1.SearchHit) []string {
	var out []string
	for _, p := range h.GetSnippet() {
		if p.GetMatch() {
			out = append(out, p.GetText())
		}
	}
	return out
}

// threadConversation is the id of the conversation of a thread.
func threadConversation(t *testing.T, convs triagev1.ConversationServiceClient, thread *triagetest.Message) string {
	t.Helper()
	list, err := convs.ListConversations(context.Background(), &triagev1.ListConversationsRequest{
		PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range list.GetConversations() {
		if c.GetThreadKey() == thread.ThreadKey {
			return c.GetId()
		}
	}
	t.Fatalf("no conversation for thread %s", thread.ThreadKey)
	return ""
}

// TestSearchFindsMessagesNotesSubjectsAndCustomers: a word in a message
// (stemmed), a private note, or the customer's name finds the
// conversation, with a snippet marking the words; edits and deletes change
// what is found; filters narrow; a query of no words is refused.
func TestSearchFindsMessagesNotesSubjectsAndCustomers(t *testing.T) {
	h := newHarness(t)
	s, stop := h.start(t, h.deps)
	convs, customers := serve(t, s)
	ctx := context.Background()
	if _, err := customers.UpsertCustomers(ctx, &triagev1.UpsertCustomersRequest{Customers: directory()}); err != nil {
		t.Fatal(err)
	}

	exporter, webhooks, acme := triagetest.Slack("exporter"), triagetest.Slack("webhooks"), triagetest.Slack("acme")
	h.send(t,
		exporter.Customer("U0CUST", "The nightly exporter crashes with an out-of-memory error"),
		webhooks.Customer("U0OTHER", "Our webhook stopped firing. Is the webhook endpoint down? Webhook deliveries fail."),
		exporter.Staff("U0ALICE", "Looking into it"),
		acme.Customer("U0ACME", "Dashboards load slowly since Tuesday"),
	)
	exporterID, webhooksID, acmeID := threadConversation(t, convs, exporter), threadConversation(t, convs, webhooks), threadConversation(t, convs, acme)

	// A stemmed word of a customer's message.
	ids, hits := search(t, convs, "crash", nil)
	if !slices.Equal(ids, []string{exporterID}) {
		t.Fatalf("crash found %v, want the exporter conversation %s", ids, exporterID)
	}
	if h := hits[0]; h.GetSource() != triagev1.SearchSource_SEARCH_SOURCE_MESSAGE || h.GetMessageId() != exporter.ThreadKey+"#1" ||
		!slices.Equal(matched(h), []string{"crashes"}) || h.GetConversation().GetShareUrl() == "" {
		t.Fatalf("crash hit %v", h)
	}
	// Both words, in any message of the conversation; a phrase; an exclusion.
	if ids, _ := search(t, convs, "exporter memory", nil); !slices.Equal(ids, []string{exporterID}) {
		t.Fatalf("exporter memory found %v", ids)
	}
	if ids, _ := search(t, convs, `"memory error"`, nil); !slices.Equal(ids, []string{exporterID}) {
		t.Fatalf("a phrase found %v", ids)
	}
	if ids, _ := search(t, convs, `"error memory"`, nil); len(ids) != 0 {
		t.Fatalf("the phrase in the wrong order found %v", ids)
	}
	if ids, _ := search(t, convs, "webhook or exporter -crash", nil); !slices.Equal(ids, []string{webhooksID}) {
		t.Fatalf("webhook or exporter -crash found %v", ids)
	}
	// The better match first: three webhooks beat one.
	h.send(t, exporter.Customer("U0CUST", "Maybe a webhook is involved?"))
	if ids, _ := search(t, convs, "webhook", nil); !slices.Equal(ids, []string{webhooksID, exporterID}) {
		t.Fatalf("webhook found %v, want %s first", ids, webhooksID)
	}

	// The customer's name finds their conversations.
	ids, hits = search(t, convs, "acme", nil)
	if !slices.Equal(ids, []string{acmeID}) || hits[0].GetSource() != triagev1.SearchSource_SEARCH_SOURCE_CUSTOMER {
		t.Fatalf("acme found %v %v", ids, hits)
	}

	// A private note.
	note, err := convs.AddNote(ctx, &triagev1.AddNoteRequest{Id: acmeID, Text: "Suspect the Grafana proxy cache", Actor: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	ids, hits = search(t, convs, "grafana", nil)
	if !slices.Equal(ids, []string{acmeID}) || hits[0].GetSource() != triagev1.SearchSource_SEARCH_SOURCE_NOTE ||
		hits[0].GetNoteId() != note.GetNote().GetId() || !slices.Equal(matched(hits[0]), []string{"Grafana"}) {
		t.Fatalf("grafana found %v %v", ids, hits)
	}

	// Filters narrow: channel, unassigned (the exporter has the hero's
	// reply, so it is assigned), assignee.
	if ids, _ := search(t, convs, "webhook", &triagev1.ListConversationsRequest{Unassigned: true}); !slices.Equal(ids, []string{webhooksID}) {
		t.Fatalf("unassigned webhook found %v", ids)
	}
	if ids, _ := search(t, convs, "webhook", &triagev1.ListConversationsRequest{Assignee: "alice"}); !slices.Equal(ids, []string{exporterID}) {
		t.Fatalf("alice's webhook found %v", ids)
	}
	if ids, _ := search(t, convs, "webhook", &triagev1.ListConversationsRequest{Channel: supportv1.Channel_CHANNEL_EMAIL}); len(ids) != 0 {
		t.Fatalf("webhook by email found %v", ids)
	}
	// Paging: one a page.
	first, err := convs.SearchConversations(ctx, &triagev1.SearchConversationsRequest{Query: "webhook", Filter: &triagev1.ListConversationsRequest{PageSize: 1}})
	if err != nil || len(first.GetHits()) != 1 || first.GetNextPageToken() == "" {
		t.Fatalf("first page %v %v", first, err)
	}
	second, err := convs.SearchConversations(ctx, &triagev1.SearchConversationsRequest{Query: "webhook",
		Filter: &triagev1.ListConversationsRequest{PageSize: 1, PageToken: first.GetNextPageToken()}})
	if err != nil || len(second.GetHits()) != 1 || second.GetNextPageToken() != "" || second.GetHits()[0].GetConversation().GetId() != exporterID {
		t.Fatalf("second page %v %v", second, err)
	}

	// An edit changes what is found; a delete removes the words. (The
	// subject, taken from the first message, stays as it was.)
	h.send(t, acme.Kind(supportv1.MessageKind_MESSAGE_KIND_EDITED, "U0ACME", acme.ThreadKey+".000001", "Charts load slowly since Tuesday"))
	if _, hits := search(t, convs, "dashboards", nil); len(hits) != 1 || hits[0].GetSource() != triagev1.SearchSource_SEARCH_SOURCE_CONVERSATION {
		t.Fatalf("the word edited away still found in a message: %v", hits)
	}
	if ids, hits := search(t, convs, "charts", nil); !slices.Equal(ids, []string{acmeID}) || hits[0].GetSource() != triagev1.SearchSource_SEARCH_SOURCE_MESSAGE {
		t.Fatalf("the edited-in word found %v", hits)
	}
	h.send(t, acme.Kind(supportv1.MessageKind_MESSAGE_KIND_DELETED, "U0ACME", acme.ThreadKey+".000001", ""))
	if ids, _ := search(t, convs, "charts", nil); len(ids) != 0 {
		t.Fatalf("a deleted message's word still found %v", ids)
	}

	// A customer cannot forge a match with the snippet's markers.
	forged := triagetest.Slack("forged")
	h.send(t, forged.Customer("U0CUST", "plain \ue000forged\ue001 words about billing"))
	_, hits = search(t, convs, "billing", nil)
	if len(hits) != 1 || !slices.Equal(matched(hits[0]), []string{"billing"}) {
		t.Fatalf("billing hit %v", hits)
	}

	for _, q := range []string{"", "  ", "the", "!!"} {
		_, err := convs.SearchConversations(ctx, &triagev1.SearchConversationsRequest{Query: q})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "no words") {
			t.Errorf("query %q: %v, want InvalidArgument", q, err)
		}
	}

	// Messages stored before search existed are indexed when triage starts.
	stop()
	if n := triagetest.Count(t, h.pool, `WITH u AS (UPDATE messages SET search_text = NULL RETURNING 1) SELECT count(*) FROM u`); n == 0 {
		t.Fatal("no messages to unindex")
	}
	// (A word of a later message: the first one's are in the subject too.)
	if ids, _ := search(t, convs, "involved", nil); len(ids) != 0 {
		t.Fatalf("unindexed, involved still found %v", ids)
	}
	s, _ = h.start(t, h.deps)
	convs, _ = serve(t, s)
	triagetest.Eventually(t, "earlier messages indexed", func() bool {
		return triagetest.Count(t, h.pool, `SELECT count(*) FROM messages WHERE search_text IS NULL`) == 0
	})
	if ids, _ := search(t, convs, "involved", nil); !slices.Equal(ids, []string{exporterID}) {
		t.Fatalf("after indexing, involved found %v", ids)
	}
}

// TestListUnassignedCustomerAndDates: the queue's Unassigned view, one
// customer's conversations and a date range.
func TestListUnassignedCustomerAndDates(t *testing.T) {
	h := newHarness(t)
	s, _ := h.start(t, h.deps)
	convs, customers := serve(t, s)
	ctx := context.Background()
	if _, err := customers.UpsertCustomers(ctx, &triagev1.UpsertCustomersRequest{Customers: directory()}); err != nil {
		t.Fatal(err)
	}
	answered, waiting := triagetest.Slack("answered"), triagetest.Slack("waiting")
	h.send(t, answered.Customer("U0ACME", "Question"), answered.Staff("U0ALICE", "Answer"), waiting.Customer("U0CUST", "Hello?"))
	answeredID, waitingID := threadConversation(t, convs, answered), threadConversation(t, convs, waiting)
	ids := func(req *triagev1.ListConversationsRequest) []string {
		t.Helper()
		list, err := convs.ListConversations(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range list.GetConversations() {
			out = append(out, c.GetId())
		}
		slices.Sort(out)
		return out
	}
	if got := ids(&triagev1.ListConversationsRequest{Unassigned: true}); !slices.Equal(got, []string{waitingID}) {
		t.Fatalf("unassigned: %v, want %s", got, waitingID)
	}
	if got := ids(&triagev1.ListConversationsRequest{Unassigned: true, Assignee: "alice"}); !slices.Equal(got, []string{waitingID}) {
		t.Fatalf("unassigned wins over assignee: %v", got)
	}
	if got := ids(&triagev1.ListConversationsRequest{CustomerId: "acme"}); !slices.Equal(got, []string{answeredID}) {
		t.Fatalf("acme's: %v, want %s", got, answeredID)
	}
	opened := h.clock.Now()
	if got := ids(&triagev1.ListConversationsRequest{OpenedFrom: timestamppb.New(opened.Add(time.Minute))}); len(got) != 0 {
		t.Fatalf("opened from a minute later: %v", got)
	}
	if got := ids(&triagev1.ListConversationsRequest{OpenedFrom: timestamppb.New(opened.Add(-time.Minute)), OpenedTo: timestamppb.New(opened.Add(time.Minute))}); len(got) != 2 {
		t.Fatalf("opened within the minute around: %v", got)
	}
}
