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

// TestCustomerPage: the customer's tier and why, plan, revenue and
// identities, and every one of their conversations across channels with
// the open count; hostile names stay text; an unknown customer is 404.
func TestCustomerPage(t *testing.T) {
	tr := &fakeTriage{
		customer: func(req *triagev1.GetCustomerRequest) (*triagev1.GetCustomerResponse, error) {
			if req.GetId() != "hedge" {
				return nil, status.Error(codes.NotFound, "no customer "+req.GetId())
			}
			return &triagev1.GetCustomerResponse{Customer: &triagev1.Customer{Id: req.GetId(), Name: `Hedge<script>alert(1)</script>bank`, Organisation: "Hedgebank Ltd",
				Plan: "enterprise", MonthlyRevenueCents: 125000050, Tier: supportv1.Tier_TIER_PRIORITY, TierReason: "plan enterprise",
				EmailDomains: []string{"hedgebank.example"}, SlackUserIds: []string{"U0HEDGE"}, GithubLogins: []string{"hedge-dev"}}}, nil
		},
		list: func(req *triagev1.ListConversationsRequest) (*triagev1.ListConversationsResponse, error) {
			return &triagev1.ListConversationsResponse{Conversations: []*supportv1.Conversation{
				{Id: "c-1", Subject: "Slack question", Channel: supportv1.Channel_CHANNEL_SLACK, Status: supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN,
					Author: &supportv1.Author{Id: "U0HEDGE", Name: "Dana", Handle: "dana"}},
				{Id: "c-2", Subject: "Emailed bug", Channel: supportv1.Channel_CHANNEL_EMAIL, Status: supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED},
				{Id: "c-3", Subject: "GitHub issue", Channel: supportv1.Channel_CHANNEL_GITHUB, Status: supportv1.ConversationStatus_CONVERSATION_STATUS_AWAITING_CUSTOMER},
			}}, nil
		},
	}
	h := start(t, console.Config{Dev: true}, tr, nil)
	r := h.get("/console/customers/hedge")
	if r.code != http.StatusOK {
		t.Fatalf("customer page: %d\n%s", r.code, r.body)
	}
	sameProto(t, "customer's conversations", &triagev1.ListConversationsRequest{CustomerId: "hedge", PageSize: console.CustomerPageSize}, callsOf[*triagev1.ListConversationsRequest](h.triage)[0])
	mustContain(t, r.body, "Hedge&lt;script&gt;alert(1)&lt;/script&gt;bank", "Priority", "plan enterprise", "$1,250,000.50 a month",
		"hedgebank.example", "U0HEDGE", "hedge-dev", `<dd id="open-count">2 of 3 conversations</dd>`,
		`href="/console/conversations/c-1"`, `href="/console/conversations/c-2"`, `href="/console/conversations/c-3"`, "Dana @dana", "Slack", "email", "GitHub")
	if strings.Contains(r.body, "<script>alert") {
		t.Fatal("a customer's name reached the page as markup")
	}
	if r := h.get("/console/customers/nobody"); r.code != http.StatusNotFound {
		t.Errorf("unknown customer: %d, want 404", r.code)
	}
}

// TestConversationRelatedAndDetails: a conversation page lists earlier
// conversations found by its subject's words (itself left out), and a
// Sentry conversation shows the newest of what Sentry reported.
func TestConversationRelatedAndDetails(t *testing.T) {
	conv := sampleConversation()
	conv.Conversation.Channel = supportv1.Channel_CHANNEL_SENTRY
	conv.Conversation.Subject = "KeyError: 'user' in billing.views"
	conv.Messages[0].Attributes = map[string]string{"occurrences": "3", "culprit": "billing.views in charge_card", "level": "error"}
	conv.Messages = append(conv.Messages, &supportv1.InboundMessage{Id: "m2", Attributes: map[string]string{"occurrences": "41", "last_seen": "2026-03-02T09:58:00Z", "edited": "true"}})
	tr := &fakeTriage{
		get: func(*triagev1.GetConversationRequest) (*triagev1.GetConversationResponse, error) { return conv, nil },
		search: func(req *triagev1.SearchConversationsRequest) (*triagev1.SearchConversationsResponse, error) {
			return &triagev1.SearchConversationsResponse{Hits: []*triagev1.SearchHit{
				{Conversation: conv.Conversation},
				{Conversation: &supportv1.Conversation{Id: "c-7", Subject: "KeyError in billing", Status: supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED,
					CloseReason: supportv1.CloseReason_CLOSE_REASON_RESOLVED}, Snippet: []*triagev1.SnippetPart{{Text: "the "}, {Text: "billing", Match: true}, {Text: " <b>fix</b>"}}},
			}}, nil
		},
	}
	h := start(t, console.Config{Dev: true}, tr, nil)
	r := h.get("/console/conversations/c-42")
	if r.code != http.StatusOK {
		t.Fatalf("conversation: %d\n%s", r.code, r.body)
	}
	sameProto(t, "related search", &triagev1.SearchConversationsRequest{Query: "keyerror or user or billing or views",
		Filter: &triagev1.ListConversationsRequest{PageSize: console.RelatedSize + 1}}, callsOf[*triagev1.SearchConversationsRequest](h.triage)[0])
	mustContain(t, r.body, `<ul class="related" id="related">`, `href="/console/conversations/c-7"`, "closed (resolved)", "the <mark>billing</mark> &lt;b&gt;fix&lt;/b&gt;",
		"<h2>From Sentry</h2>", "<dt>culprit</dt><dd>billing.views in charge_card</dd>", "<dt>occurrences</dt><dd>41</dd>", "<dt>last seen</dt><dd>2026-03-02T09:58:00Z</dd>",
		`<a href="/console/customers/cust-1">Hedgebank</a>`)
	if related := r.body[strings.Index(r.body, `id="related"`):]; strings.Contains(related[:strings.Index(related, "</ul>")], `conversations/c-42"`) {
		t.Error("the conversation is listed as related to itself")
	}
	if strings.Contains(r.body, "<dt>edited</dt>") {
		t.Error("the console's own edited mark listed as a detail")
	}
}

// TestReportsPage: the range in the console's zone (the last seven days
// by default) asks triage's Summary; the page shows its numbers, charts
// drawn on the server, and a CSV of the same.
func TestReportsPage(t *testing.T) {
	sum := &triagev1.SummaryResponse{
		ByChannel:  []*triagev1.Count{{Key: "slack", Count: 12}, {Key: "email", Count: 3}},
		ByTier:     []*triagev1.Count{{Key: "priority", Count: 5}},
		ByCategory: []*triagev1.Count{{Key: "performance", Count: 4}, {Key: `<script>x</script>`, Count: 1}},
		Response: []*triagev1.TierResponseStats{{Tier: supportv1.Tier_TIER_PRIORITY, Conversations: 5, Responded: 4, MedianSeconds: 720, P90Seconds: 3900,
			Great: 2, Okay: 1, Late: 1, Breached: 1, Decided: 5, GreatShare: .4, OkayShare: .2, LateShare: .2, BreachedShare: .2,
			Resolution: &triagev1.Resolution{Closed: 3, MedianSeconds: 7200}}},
		ByPerson: []*triagev1.GroupResponseStats{{Key: "alice", Conversations: 4, Responded: 4, MedianSeconds: 600, Great: 2}, {Key: "", Conversations: 1}},
		ByDay: []*triagev1.DayCounts{
			{Day: "2026-02-24", Conversations: 10, ByChannel: []*triagev1.Count{{Key: "email", Count: 2}, {Key: "slack", Count: 8}},
				ByTier: []*triagev1.Count{{Key: "priority", Count: 5}}, ByCategory: []*triagev1.Count{{Key: "performance", Count: 4}}},
			{Day: "2026-02-25"},
			{Day: "2026-02-26", Conversations: 5, ByChannel: []*triagev1.Count{{Key: "slack", Count: 4}, {Key: "email", Count: 1}},
				ByCategory: []*triagev1.Count{{Key: `<script>x</script>`, Count: 1}}},
		},
	}
	tr := &fakeTriage{summary: func(*triagev1.SummaryRequest) (*triagev1.SummaryResponse, error) { return sum, nil }}
	h := start(t, console.Config{Dev: true, Timezone: "Europe/London"}, tr, &fakeRotation{})
	r := h.get("/console/reports")
	if r.code != http.StatusOK {
		t.Fatalf("reports: %d\n%s", r.code, r.body)
	}
	// t0 is Monday 2 March 2026 10:00 UTC: the last seven days are 24 Feb to 2 Mar.
	sameProto(t, "default range", &triagev1.SummaryRequest{From: timestamppb.New(time.Date(2026, 2, 24, 0, 0, 0, 0, time.UTC)),
		To: timestamppb.New(time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)), TimeZone: "Europe/London"}, callsOf[*triagev1.SummaryRequest](h.triage)[0])
	mustContain(t, r.body, `value="2026-02-24"`, `value="2026-03-02"`, `<figure class="chart" id="by-channel">`,
		`<rect x="0" y="0" width="100" height="5" class="bar"><title>slack: 12</title></rect>`,
		`<rect x="0" y="7" width="25" height="5" class="bar"><title>email: 3</title></rect>`,
		"<td>Priority</td><td>5</td><td>4</td><td>12m</td><td>1h 5m</td>", "1 <small class=\"muted\">20%</small>", "<td>2h</td>",
		"<td>alice</td><td>4</td>", `<span class="muted">nobody</span>`, "&lt;script&gt;x&lt;/script&gt;",
		`href="/console/reports?format=csv&amp;from=2026-02-24&amp;to=2026-03-02"`)
	// Per day: a column a day, stacked in the order of the range's totals
	// (slack, then email), scaled to the busiest day; a table of the same
	// numbers with a column per key, empty days included.
	mustContain(t, r.body, `<figure class="chart perday" id="per-day-channel">`, `viewBox="0 0 30 100"`,
		`<rect x="1" y="20" width="8" height="80" class="s0"><title>2026-02-24 slack: 8</title></rect>`,
		`<rect x="1" y="0" width="8" height="20" class="s1"><title>2026-02-24 email: 2</title></rect>`,
		`<rect x="21" y="60" width="8" height="40" class="s0"><title>2026-02-26 slack: 4</title></rect>`,
		`<th><span class="swatch s0"></span>slack</th><th><span class="swatch s1"></span>email</th>`,
		"<tr><td>2026-02-24</td><td>10</td><td>8</td><td>2</td></tr>", "<tr><td>2026-02-25</td><td>0</td><td>0</td><td>0</td></tr>",
		`<th><span class="swatch s1"></span>&lt;script&gt;x&lt;/script&gt;</th>`, "<title>2026-02-26 &lt;script&gt;x&lt;/script&gt;: 1</title>")

	// A summer range: days start at midnight London time.
	h.get("/console/reports?from=2026-07-01&to=2026-07-31")
	sameProto(t, "summer range", &triagev1.SummaryRequest{From: timestamppb.New(time.Date(2026, 6, 30, 23, 0, 0, 0, time.UTC)),
		To: timestamppb.New(time.Date(2026, 7, 31, 23, 0, 0, 0, time.UTC)), TimeZone: "Europe/London"}, callsOf[*triagev1.SummaryRequest](h.triage)[1])

	r = h.get("/console/reports?format=csv&from=2026-02-24&to=2026-03-02")
	if r.code != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") ||
		!strings.Contains(r.header.Get("Content-Disposition"), "sidekick-report-2026-02-24-2026-03-02.csv") {
		t.Fatalf("csv: %d %v", r.code, r.header)
	}
	for _, line := range []string{"channel,slack,12,", "response_by_tier,Priority,5,4,720,3900,2,1,1,1,3,7200,\n", "response_by_person,alice,4,4,600,0,2,0,0,0,0,0,\n",
		"channel_by_day,slack,8,,,,,,,,,,2026-02-24\n", "tier_by_day,priority,5,,,,,,,,,,2026-02-24\n", "channel_by_day,email,1,,,,,,,,,,2026-02-26\n"} {
		if !strings.Contains(r.body, line) {
			t.Errorf("csv lacks %q:\n%s", line, r.body)
		}
	}

	calls := len(h.triage.Calls())
	for _, q := range []string{"from=yesterday", "from=2026-03-05&to=2026-03-01"} {
		if r := h.get("/console/reports?" + q); r.code != http.StatusBadRequest {
			t.Errorf("?%s: %d, want 400", q, r.code)
		}
	}
	if n := len(h.triage.Calls()); n != calls {
		t.Errorf("a bad range reached triage")
	}
}
