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

func directory() []*triagev1.Customer {
	return []*triagev1.Customer{
		{Id: "acme", Name: "Acme", Organisation: "Acme Inc", Plan: "Enterprise", EmailDomains: []string{"@Acme.com"}, SlackUserIds: []string{"U0ACME"}},
		{Id: "globex", Name: "Globex", Plan: "cloud", MonthlyRevenueCents: 45000, GithubLogins: []string{"globex-dev"}},
		{Id: "initech", Name: "Initech", Plan: "cloud", MonthlyRevenueCents: 250000, SentryUsers: []string{"ops@initech.io"}},
	}
}

func TestCustomersAndTiers(t *testing.T) {
	h := newHarness(t)
	s, _ := h.start(t, h.deps)
	convs, customers := serve(t, s)
	ctx := context.Background()

	// A dry run lists the changes and writes nothing.
	dry, err := customers.UpsertCustomers(ctx, &triagev1.UpsertCustomersRequest{Customers: directory(), DryRun: true})
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if dry.GetApplied() || len(dry.GetChanges()) != 3 || !strings.HasPrefix(dry.GetChanges()[0], "create customer acme:") ||
		!strings.HasSuffix(dry.GetChanges()[0], "tier priority (plan enterprise)") {
		t.Fatalf("dry run: %v", dry)
	}
	if n := triagetest.Count(t, h.pool, `SELECT count(*) FROM customers`); n != 0 {
		t.Fatalf("dry run wrote %d customers", n)
	}
	if _, err := customers.UpsertCustomers(ctx, &triagev1.UpsertCustomersRequest{Customers: directory()}); err != nil {
		t.Fatal(err)
	}
	again, err := customers.UpsertCustomers(ctx, &triagev1.UpsertCustomersRequest{Customers: directory()})
	if err != nil || len(again.GetChanges()) != 0 || !again.GetApplied() {
		t.Fatalf("upserting the same directory again: %v %v", again, err)
	}
	got, err := customers.GetCustomer(ctx, &triagev1.GetCustomerRequest{Id: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if c := got.GetCustomer(); c.GetTier() != supportv1.Tier_TIER_PRIORITY || c.GetPlan() != "enterprise" ||
		!slices.Equal(c.GetEmailDomains(), []string{"acme.com"}) || !slices.Equal(c.GetSlackUserIds(), []string{"U0ACME"}) {
		t.Fatalf("GetCustomer: %v", c)
	}
	if _, err := customers.GetCustomer(ctx, &triagev1.GetCustomerRequest{Id: "nobody"}); status.Code(err) != codes.NotFound {
		t.Fatalf("unknown customer: %v", err)
	}

	// Authors are matched by Slack id, email domain, GitHub login, Sentry user.
	bySlack := triagetest.Slack("s1").Customer("U0ACME", "Slow queries")
	byEmail := triagetest.Slack("s2").Customer("U0NEWHIRE", "Cannot log in")
	byEmail.Author.Email = "new.hire@eu.acme.com"
	byGitHub := &triagetest.Message{Channel: supportv1.Channel_CHANNEL_GITHUB, ThreadKey: "globex/app#12"}
	gh := byGitHub.Customer("12345", "Plugin crashes")
	gh.Author.Handle = "Globex-Dev"
	bySentry := &triagetest.Message{Channel: supportv1.Channel_CHANNEL_SENTRY, ThreadKey: "sentry/initech/991"}
	sn := bySentry.Customer("77", "TypeError in capture")
	sn.Author.Email = "ops@initech.io"
	stranger := triagetest.Slack("s3").Customer("U0STRANGER", "Is there a free tier?")
	h.send(t, bySlack, byEmail, gh, sn, stranger)

	list, err := convs.ListConversations(ctx, &triagev1.ListConversationsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	tiers := map[string]string{}
	for _, c := range list.GetConversations() {
		tiers[c.GetThreadKey()] = c.GetTier().String() + " " + c.GetCustomer().GetId() + " " + c.GetTierReason()
	}
	want := map[string]string{
		bySlack.GetThreadKey():  "TIER_PRIORITY acme plan enterprise",
		byEmail.GetThreadKey():  "TIER_PRIORITY acme plan enterprise",
		gh.GetThreadKey():       "TIER_SUBSCRIBER globex paying $450/month",
		stranger.GetThreadKey(): "TIER_COMMUNITY  unknown customer",
	}
	// A Sentry issue is an alert: out of the customer queue, no tier,
	// whoever the affected user is.
	if _, ok := tiers[sn.GetThreadKey()]; ok {
		t.Errorf("the Sentry alert %s is in the customer queue", sn.GetThreadKey())
	}
	if a := byThread(t, convs, sn.GetThreadKey()); a.GetKind() != supportv1.ConversationKind_CONVERSATION_KIND_ALERT ||
		a.GetTier() != supportv1.Tier_TIER_UNSPECIFIED || a.GetCustomer() != nil || a.GetTierReason() != "alert" {
		t.Errorf("Sentry alert: kind %s tier %s customer %v reason %q", a.GetKind(), a.GetTier(), a.GetCustomer(), a.GetTierReason())
	}
	for k, v := range want {
		if tiers[k] != v {
			t.Errorf("%s: tier %q, want %q", k, tiers[k], v)
		}
	}
	// Queue order: tier first.
	var order []supportv1.Tier
	for _, c := range list.GetConversations() {
		order = append(order, c.GetTier())
	}
	if !slices.IsSorted(order) {
		t.Errorf("not ordered by tier: %v", order)
	}

	// The directory changes: Globex upgrades, the stranger turns out to be
	// a new Scale customer. Open conversations are re-tiered (TRIAGED).
	before, _ := triagetest.ConversationEvents(t, h.js)
	dir := directory()
	dir[1].Plan = "scale"
	dir = append(dir, &triagev1.Customer{Id: "hooli", Name: "Hooli", Plan: "scale", SlackUserIds: []string{"U0STRANGER"}})
	res, err := customers.UpsertCustomers(ctx, &triagev1.UpsertCustomersRequest{Customers: dir})
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(res.GetChanges(), "\n")
	for _, part := range []string{`update customer globex: plan "cloud" -> "scale"; tier subscriber -> priority (plan scale)`, "create customer hooli", "tier community -> priority (plan scale)", "tier subscriber -> priority (plan scale)"} {
		if !strings.Contains(joined, part) {
			t.Errorf("changes lack %q:\n%s", part, joined)
		}
	}
	h.settled(t)
	after, _ := triagetest.ConversationEvents(t, h.js)
	newEvents := after[len(before):]
	if len(newEvents) != 2 {
		t.Fatalf("want 2 TRIAGED events, got %v", triagetest.Types(newEvents))
	}
	for _, e := range newEvents {
		if e.GetType() != supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_TRIAGED || e.GetConversation().GetTier() != supportv1.Tier_TIER_PRIORITY {
			t.Errorf("unexpected %v", e)
		}
	}

	// One identity, one customer.
	_, err = customers.UpsertCustomers(ctx, &triagev1.UpsertCustomersRequest{Customers: []*triagev1.Customer{{Id: "copycat", EmailDomains: []string{"acme.com"}}}})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "acme") {
		t.Fatalf("identity taken: %v", err)
	}
	if _, err := customers.UpsertCustomers(ctx, &triagev1.UpsertCustomersRequest{Customers: []*triagev1.Customer{{Name: "no id"}}}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("no id: %v", err)
	}
}

func TestListFiltersAndPages(t *testing.T) {
	h := newHarness(t)
	s, _ := h.start(t, h.deps)
	convs, customers := serve(t, s)
	ctx := context.Background()
	if _, err := customers.UpsertCustomers(ctx, &triagev1.UpsertCustomersRequest{Customers: directory()}); err != nil {
		t.Fatal(err)
	}
	community := triagetest.Slack("c1").Customer("U0STRANGER", "Question")
	priority := triagetest.Slack("p1").Customer("U0ACME", "Outage")
	email := &triagetest.Message{Channel: supportv1.Channel_CHANNEL_EMAIL, ThreadKey: "<root@mail.example>"}
	mail := email.Customer("someone@example.org", "Invoice")
	mail.SentAt = timestamppb.New(mail.GetSentAt().AsTime().Add(time.Minute)) // after the Slack question
	h.send(t, community, priority, mail)

	list := func(req *triagev1.ListConversationsRequest) []string {
		t.Helper()
		resp, err := convs.ListConversations(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, c := range resp.GetConversations() {
			keys = append(keys, c.GetThreadKey())
		}
		return keys
	}
	all := list(&triagev1.ListConversationsRequest{})
	if len(all) != 3 || all[0] != priority.GetThreadKey() {
		t.Fatalf("queue %v: priority first", all)
	}
	pc := only1(t, convs, priority.GetThreadKey())
	if _, err := convs.Tag(ctx, &triagev1.TagRequest{Id: pc, Add: []string{"Outage"}, Categories: []string{"Performance"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := convs.Assign(ctx, &triagev1.AssignRequest{Id: pc, Assignee: "alice"}); err != nil {
		t.Fatal(err)
	}
	cc := only1(t, convs, community.GetThreadKey())
	if _, err := convs.Close(ctx, &triagev1.CloseRequest{Id: cc}); err != nil {
		t.Fatal(err)
	}
	for name, tt := range map[string]struct {
		req  *triagev1.ListConversationsRequest
		want []string
	}{
		"tag":      {&triagev1.ListConversationsRequest{Tag: "outage"}, []string{priority.GetThreadKey()}},
		"category": {&triagev1.ListConversationsRequest{Category: "performance"}, []string{priority.GetThreadKey()}},
		"assignee": {&triagev1.ListConversationsRequest{Assignee: "alice"}, []string{priority.GetThreadKey()}},
		"tier":     {&triagev1.ListConversationsRequest{Tier: supportv1.Tier_TIER_COMMUNITY}, []string{community.GetThreadKey(), mail.GetThreadKey()}},
		"channel":  {&triagev1.ListConversationsRequest{Channel: supportv1.Channel_CHANNEL_EMAIL}, []string{mail.GetThreadKey()}},
		"status": {&triagev1.ListConversationsRequest{Statuses: []supportv1.ConversationStatus{supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN}},
			[]string{priority.GetThreadKey(), mail.GetThreadKey()}},
		"breached": {&triagev1.ListConversationsRequest{BreachedOnly: true}, nil},
	} {
		if got := list(tt.req); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", name, got, tt.want)
		}
	}

	// Pages.
	first, err := convs.ListConversations(ctx, &triagev1.ListConversationsRequest{PageSize: 2})
	if err != nil || len(first.GetConversations()) != 2 || first.GetNextPageToken() == "" {
		t.Fatalf("first page: %v %v", first, err)
	}
	second, err := convs.ListConversations(ctx, &triagev1.ListConversationsRequest{PageSize: 2, PageToken: first.GetNextPageToken()})
	if err != nil || len(second.GetConversations()) != 1 || second.GetNextPageToken() != "" || second.GetConversations()[0].GetThreadKey() != all[2] {
		t.Fatalf("second page: %v %v", second, err)
	}
	if _, err := convs.ListConversations(ctx, &triagev1.ListConversationsRequest{PageToken: "%%"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("bad token: %v", err)
	}
}

func only1(t *testing.T, convs triagev1.ConversationServiceClient, threadKey string) string {
	t.Helper()
	resp, err := convs.ListConversations(context.Background(), &triagev1.ListConversationsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range resp.GetConversations() {
		if c.GetThreadKey() == threadKey {
			return c.GetId()
		}
	}
	t.Fatalf("no conversation for %s", threadKey)
	return ""
}
