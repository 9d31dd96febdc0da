package triage

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/classify"
	"github.com/sidekickhq/sidekick/services/triage/internal/triagetest"
)

// email returns a builder for an email thread.
func email(root string) *triagetest.Message {
	return &triagetest.Message{Channel: supportv1.Channel_CHANNEL_EMAIL, ThreadKey: "email:<" + root + ">"}
}

func byThread(t *testing.T, convs triagev1.ConversationServiceClient, threadKey string) *supportv1.Conversation {
	t.Helper()
	// Alerts are listed apart from the customer queue.
	for _, kind := range []supportv1.ConversationKind{supportv1.ConversationKind_CONVERSATION_KIND_CUSTOMER, supportv1.ConversationKind_CONVERSATION_KIND_ALERT} {
		list, err := convs.ListConversations(context.Background(), &triagev1.ListConversationsRequest{Kind: kind})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range list.GetConversations() {
			if c.GetThreadKey() == threadKey {
				return c
			}
		}
	}
	t.Fatalf("no conversation for %s", threadKey)
	return nil
}

func TestSpamIsClosedAutomatically(t *testing.T) {
	h := newHarness(t)
	s, _ := h.start(t, h.deps)
	convs, customers := serve(t, s)
	ctx := context.Background()
	if _, err := customers.UpsertCustomers(ctx, &triagev1.UpsertCustomersRequest{Customers: []*triagev1.Customer{
		{Id: "acme", Name: "Acme", Plan: "scale", EmailDomains: []string{"acme.example"}},
	}}); err != nil {
		t.Fatal(err)
	}
	const pitch = "Dear Sir/Madam, I came across your website and would like to offer a guest post with do-follow backlinks."
	spam := email("offer-1@seo.example").Customer("seller@seo.example", pitch)
	spam.Subject, spam.Attributes = "Guest post opportunity", map[string]string{"auth_failed": "true"}
	// The same words from a known customer's forwarded mail are not spam.
	fwd := email("fwd-1@acme.example").Customer("ops@acme.example", pitch)
	fwd.Subject, fwd.Attributes = "Fwd: Guest post opportunity", map[string]string{"auth_failed": "true"}
	fwd.Author.Email = "ops@acme.example"
	h.send(t, spam, fwd)

	c := byThread(t, convs, spam.GetThreadKey())
	if c.GetStatus() != supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED || c.GetCloseReason() != supportv1.CloseReason_CLOSE_REASON_SPAM ||
		!slices.Equal(c.GetCategories(), []string{"spam"}) || c.GetNextDeadlineAt() != nil {
		t.Fatalf("spam conversation %v", c)
	}
	if n := triagetest.Count(t, h.pool, `SELECT count(*) FROM timers WHERE status = 1 AND conversation_id = $1`, c.GetId()); n != 0 {
		t.Fatal("a deadline is armed for spam")
	}
	full := get(t, convs, c.GetId())
	if got := actions(full.GetAudit()); !slices.Equal(got, []string{"seller@seo.example opened", "system categorised", "system spam", "system closed"}) {
		t.Fatalf("audit %v", got)
	}
	if detail := full.GetAudit()[2].GetDetail(); !strings.Contains(detail, "email authentication failed") {
		t.Fatalf("spam reasons %q", detail)
	}
	events, _ := triagetest.ConversationEvents(t, h.js)
	var mine []*supportv1.ConversationEvent
	for _, e := range events {
		if e.GetConversation().GetId() == c.GetId() {
			mine = append(mine, e)
		}
	}
	want := []supportv1.ConversationEventType{
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_OPENED,
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_TRIAGED,
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_CLOSED,
	}
	if got := triagetest.Types(mine); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	// Subscribers see it closed from the opening on (notifier tells nobody).
	if mine[0].GetConversation().GetStatus() != supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED || mine[2].GetReason() != "spam" {
		t.Fatalf("opened %v, closed %v", mine[0], mine[2])
	}

	k := byThread(t, convs, fwd.GetThreadKey())
	if k.GetStatus() != supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN || k.GetCustomer().GetId() != "acme" || k.GetNextDeadlineAt() == nil {
		t.Fatalf("known customer's mail %v", k)
	}
}

func TestBusinessProposalsGoToTheBusinessTeam(t *testing.T) {
	h := newHarness(t)
	s, _ := h.start(t, h.deps)
	convs, _ := serve(t, s)
	m := email("hello@agency.example").Customer("dana@agency.example", "Hi! We'd love to explore a co marketing partnership and a joint webinar with your team. Who is the right person to talk to?")
	m.Subject = "Partnership proposal"
	h.send(t, m)
	// Out of the engineers' queue: listed only when asked for.
	if list, err := convs.ListConversations(context.Background(), &triagev1.ListConversationsRequest{}); err != nil || len(list.GetConversations()) != 0 {
		t.Fatalf("the queue lists the business proposal: %v %v", list, err)
	}
	list, err := convs.ListConversations(context.Background(), &triagev1.ListConversationsRequest{Category: "business"})
	if err != nil || len(list.GetConversations()) != 1 {
		t.Fatalf("business proposals by category: %v %v", list, err)
	}
	c := list.GetConversations()[0]
	if c.GetStatus() != supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN || !slices.Equal(c.GetCategories(), []string{"business"}) ||
		c.GetTeam() != "business" || c.GetNextDeadlineAt() != nil || c.GetDeadlineLevel() != supportv1.DeadlineLevel_DEADLINE_LEVEL_UNSPECIFIED {
		t.Fatalf("business proposal %v", c)
	}
	if n := triagetest.Count(t, h.pool, `SELECT count(*) FROM timers WHERE status = 1`); n != 0 {
		t.Fatal("engineers' deadline armed for a business proposal")
	}
	events, _ := triagetest.ConversationEvents(t, h.js)
	if opened := events[0]; opened.GetConversation().GetTeam() != "business" || opened.GetConversation().GetCategories()[0] != "business" {
		t.Fatalf("opened event %v", opened)
	}
}

func TestCategoriesSuggestedAndLearned(t *testing.T) {
	h := newHarness(t)
	reg := prometheus.NewRegistry()
	h.deps.Registry = reg
	cfg := testConfig()
	rules := classify.DefaultRules()
	rules.ModelMinDocs = 3 // consult the model after three confirmed conversations
	cfg.Org.Rules = &rules
	s, _ := h.startConfig(t, cfg, h.deps)
	convs, _ := serve(t, s)
	ctx := context.Background()

	// Rules: a performance complaint.
	perf := triagetest.Slack("perf").Customer("U0A", "Dashboards are very slow, page load takes forever and then a timeout")
	h.send(t, perf)
	c := only(t, convs)
	if !slices.Equal(c.GetCategories()[:1], []string{"performance"}) {
		t.Fatalf("suggested %v, want performance first", c.GetCategories())
	}
	events, _ := triagetest.ConversationEvents(t, h.js)
	if tr := events[1]; tr.GetType() != supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_TRIAGED || !strings.Contains(tr.GetReason(), "performance (rules") {
		t.Fatalf("triaged event %v", tr)
	}

	// Words no rule knows: no suggestion, until people say what they are.
	var learned []*supportv1.Conversation
	for i := range 3 {
		th := triagetest.Slack(fmt.Sprint("quux-", i))
		h.send(t, th.Customer("U0B", fmt.Sprintf("The quux flange calibration wizard rejects frobnication profile %d", i)))
		c := byThread(t, convs, th.ThreadKey)
		if len(c.GetCategories()) != 0 {
			t.Fatalf("suggested %v before learning, want nothing", c.GetCategories())
		}
		if _, err := convs.Tag(ctx, &triagev1.TagRequest{Id: c.GetId(), Categories: []string{"Billing"}, Actor: "alice"}); err != nil {
			t.Fatal(err)
		}
		learned = append(learned, c)
	}
	th := triagetest.Slack("quux-new")
	h.send(t, th.Customer("U0C", "Our quux flange calibration wizard rejects the frobnication profile again"))
	fresh := byThread(t, convs, th.ThreadKey)
	if !slices.Equal(fresh.GetCategories(), []string{"billing"}) {
		t.Fatalf("after learning suggested %v, want billing", fresh.GetCategories())
	}
	var source string
	if err := h.pool.QueryRow(ctx, `SELECT suggestion_source FROM conversations WHERE id = $1`, fresh.GetId()).Scan(&source); err != nil || source != "model" {
		t.Fatalf("suggestion source %q %v, want model", source, err)
	}
	if _, err := convs.Tag(ctx, &triagev1.TagRequest{Id: fresh.GetId(), Categories: []string{"billing"}, Actor: "bob"}); err != nil {
		t.Fatal(err)
	}
	// Three suggestions were wrong, one right.
	for match, want := range map[string]float64{"exact": 1, "none": 3} {
		if got := metricWithLabel(t, reg, "sidekick_triage_category_confirmations_total", "match", match); got != want {
			t.Fatalf("confirmations %s = %v, want %v", match, got, want)
		}
	}

	// A correction unlearns the earlier lesson: still four documents.
	first := learned[0]
	if _, err := convs.Tag(ctx, &triagev1.TagRequest{Id: first.GetId(), Categories: []string{"API", "billing"}, Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	var docs, version int
	if err := h.pool.QueryRow(ctx, `SELECT docs, version FROM classifier_model`).Scan(&docs, &version); err != nil {
		t.Fatal(err)
	}
	if docs != 4 || version != 5 {
		t.Fatalf("model holds %d documents at version %d, want 4 at 5", docs, version)
	}
	// Confirmed categories stay when the customer writes again.
	h.send(t, triagetest.Slack("quux-0").Customer("U0B", "Also the dashboards are slow, page load takes forever, timeout"))
	if got := byThread(t, convs, first.GetThreadKey()).GetCategories(); !slices.Equal(got, []string{"api", "billing"}) {
		t.Fatalf("confirmed categories replaced: %v", got)
	}
	// Names outside the taxonomy are refused; the filter understands names.
	if _, err := convs.Tag(ctx, &triagev1.TagRequest{Id: first.GetId(), Categories: []string{"Astrology"}}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("unknown category: %v", err)
	}
	list, err := convs.ListConversations(ctx, &triagev1.ListConversationsRequest{Category: "Billing"})
	if err != nil || len(list.GetConversations()) != 4 {
		t.Fatalf("category filter: %d conversations, %v", len(list.GetConversations()), err)
	}
}

// metricWithLabel returns the value of the series of name whose label has
// value.
func metricWithLabel(t *testing.T, g prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return metricValue(m)
				}
			}
		}
	}
	return 0
}
