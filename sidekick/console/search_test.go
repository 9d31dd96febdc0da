package console_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/sidekick/console"
)

// TestSearchBox: words in the box ask triage's SearchConversations (all
// statuses unless one is chosen) with the filters; hits show where they
// matched with the words marked, hostile text inert; triage's refusal of
// a query shows on the page with the box; bad filters never reach triage.
func TestSearchBox(t *testing.T) {
	tr := &fakeTriage{search: func(req *triagev1.SearchConversationsRequest) (*triagev1.SearchConversationsResponse, error) {
		if req.GetQuery() == "the" {
			return nil, status.Error(codes.InvalidArgument, "invalid request: the query has no words to search for")
		}
		return &triagev1.SearchConversationsResponse{Hits: []*triagev1.SearchHit{
			{Conversation: &supportv1.Conversation{Id: "c-7", Subject: "Exporter down", Tier: supportv1.Tier_TIER_SUBSCRIBER},
				Source: triagev1.SearchSource_SEARCH_SOURCE_MESSAGE, MessageId: "m-3",
				Snippet: []*triagev1.SnippetPart{{Text: "the nightly exporter "}, {Text: "crashes", Match: true}, {Text: " <script>alert(1)</script>"}}},
			{Conversation: &supportv1.Conversation{Id: "c-8", Subject: "Old one", Status: supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED},
				Source:  triagev1.SearchSource_SEARCH_SOURCE_NOTE,
				Snippet: []*triagev1.SnippetPart{{Text: `<img src=x onerror="alert(2)">`, Match: true}}},
		}, NextPageToken: "p2"}, nil
	}}
	h := start(t, console.Config{Dev: true}, tr, nil)

	r := h.get("/console/?q=crash")
	if r.code != http.StatusOK {
		t.Fatalf("search: %d\n%s", r.code, r.body)
	}
	sameProto(t, "search request", &triagev1.SearchConversationsRequest{Query: "crash",
		Filter: &triagev1.ListConversationsRequest{PageSize: console.QueuePageSize}}, h.triage.Calls()[0])
	mustContain(t, r.body, "<h1>Search</h1>", `value="crash"`, `<option value="all" selected>`,
		`href="/console/conversations/c-7"`, `<span class="found">in a message:</span> the nightly exporter <mark>crashes</mark> &lt;script&gt;alert(1)&lt;/script&gt;`,
		`<span class="found">in a note:</span> <mark>&lt;img src=x onerror=&#34;alert(2)&#34;&gt;</mark>`,
		`href="/console/?page=p2&amp;q=crash&amp;status=all" rel="next"`)
	if strings.Index(r.body, "Exporter down") > strings.Index(r.body, "Old one") {
		t.Error("the page changed triage's order (best match first)")
	}
	if strings.Contains(r.body, "<script>alert") || strings.Contains(r.body, "<img src=x") {
		t.Fatal("hostile snippet text reached the page as markup")
	}

	// Every filter, in the console's zone for days (to is included).
	r = h.get("/console/?q=crash&status=open&tier=priority&channel=slack&assignee=alice&category=billing&tag=k8s&unassigned=1&breached=on&from=2026-03-01&to=2026-03-02")
	if r.code != http.StatusOK {
		t.Fatalf("filtered search: %d\n%s", r.code, r.body)
	}
	sameProto(t, "filtered search request", &triagev1.SearchConversationsRequest{Query: "crash", Filter: &triagev1.ListConversationsRequest{
		Statuses: []supportv1.ConversationStatus{supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN},
		Tier:     supportv1.Tier_TIER_PRIORITY, Channel: supportv1.Channel_CHANNEL_SLACK, Assignee: "alice", Unassigned: true,
		Category: "billing", Tag: "k8s", BreachedOnly: true,
		OpenedFrom: timestamppb.New(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)),
		OpenedTo:   timestamppb.New(time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)),
		PageSize:   console.QueuePageSize,
	}}, h.triage.Calls()[1])
	mustContain(t, r.body, `name="unassigned" value="1" checked`, `name="breached" value="1" checked`, `value="2026-03-01"`, `value="billing"`)

	r = h.get("/console/?q=the")
	if r.code != http.StatusBadRequest {
		t.Fatalf("a query of no words: %d, want 400", r.code)
	}
	mustContain(t, r.body, "Search: invalid request: the query has no words to search for.", `id="q" value="the"`)

	calls := len(h.triage.Calls())
	for _, q := range []string{"q=" + strings.Repeat("x", 257), "from=yesterday", "to=2026-13-01", "tag=" + strings.Repeat("t", 129)} {
		if r := h.get("/console/?" + q); r.code != http.StatusBadRequest {
			t.Errorf("?%s: %d, want 400", q[:min(len(q), 20)], r.code)
		}
	}
	if n := len(h.triage.Calls()); n != calls {
		t.Errorf("bad filters reached triage: %d calls", n-calls)
	}
}

// TestViews: the ready-made views are links to filtered queues; the one
// shown is marked, and asks triage for what it says.
func TestViews(t *testing.T) {
	h := start(t, console.Config{Dev: true}, nil, nil)
	for _, tc := range []struct {
		name, query string
		want        *triagev1.ListConversationsRequest
	}{
		{"Unassigned", "status=open&unassigned=1", &triagev1.ListConversationsRequest{
			Statuses: []supportv1.ConversationStatus{supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN}, Unassigned: true}},
		{"Breached", "breached=1&status=open", &triagev1.ListConversationsRequest{
			Statuses: []supportv1.ConversationStatus{supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN}, BreachedOnly: true}},
		{"Priority", "status=open&tier=priority", &triagev1.ListConversationsRequest{
			Statuses: []supportv1.ConversationStatus{supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN}, Tier: supportv1.Tier_TIER_PRIORITY}},
		{"Sentry", "channel=sentry&status=open", &triagev1.ListConversationsRequest{
			Statuses: []supportv1.ConversationStatus{supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN}, Channel: supportv1.Channel_CHANNEL_SENTRY}},
		{"Mine", "assignee=dev&status=all", &triagev1.ListConversationsRequest{Assignee: "dev"}},
	} {
		before := len(h.triage.Calls())
		r := h.get("/console/?" + tc.query)
		if r.code != http.StatusOK {
			t.Fatalf("%s: %d", tc.name, r.code)
		}
		tc.want.PageSize = console.QueuePageSize
		sameProto(t, tc.name, tc.want, h.triage.Calls()[before])
		mustContain(t, r.body, `href="/console/?`+strings.ReplaceAll(tc.query, "&", "&amp;")+`" aria-current="page"`)
		if n := strings.Count(r.body, `aria-current="page"`); n != 2 { // the view and "Queue" in the menu
			t.Errorf("%s: %d links marked current, want the view's and the menu's", tc.name, n)
		}
	}
}
