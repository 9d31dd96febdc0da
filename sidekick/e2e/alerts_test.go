package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/grpcx"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/sidekick/fakes"
)

// TestSentryStormBecomesAlerts: a storm of signed webhooks about three
// Sentry issues of two teams' projects, through the whole stack, becomes
// three alert conversations, one per issue, whose occurrence counts equal
// the events sent for the issue exactly, with its first and last seen.
// Each is paged to its owning team's secondary, once; none is in the
// hero's customer queue or the customer figures of the report, which
// counts them apart. A customer who pastes one issue's link in Slack gets
// a conversation linked to that alert, and the alert to it.
func TestSentryStormBecomesAlerts(t *testing.T) {
	type issue struct {
		id, project, team, title string
		events                   int
	}
	issues := []issue{
		{"4510000001", "api", "platform", "StripeTimeout: Request to Stripe timed out after 30s", 180},
		{"4510000002", "api", "platform", "KafkaConsumerLag: partition 3 is 2h behind", 90},
		{"4510000003", "web", "core-experience", "TypeError: cannot read properties of undefined (reading 'cohort')", 130},
	}
	const senders = 8
	stack, console := startStack(t,
		"SIDEKICK_SENTRY_COALESCE_INTERVAL=250ms",
		"SIDEKICK_SENTRY_OWNERSHIP=api=platform,web=core-experience",
	)
	a := dialStack(t, stack)
	sentry := fakes.Sentry{URL: "http://" + stack.HTTPAddr + "/sentry/webhook", Secret: stack.Env["SIDEKICK_SENTRY_CLIENT_SECRET"]}

	// The storm: the issues' events interleaved, posted by several senders
	// at once as Sentry's workers do.
	type job struct {
		is  issue
		n   int
		at  time.Time
		req string
	}
	var jobs []job
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	first, last := map[string]time.Time{}, map[string]time.Time{}
	for n := 0; ; n++ {
		added := false
		for k, is := range issues {
			if n >= is.events {
				continue
			}
			at := start.Add(time.Duration(len(jobs)) * time.Second)
			jobs = append(jobs, job{is, n, at, fmt.Sprintf("storm-%d-%05d", k, n)})
			if _, ok := first[is.id]; !ok {
				first[is.id] = at
			}
			last[is.id] = at
			added = true
		}
		if !added {
			break
		}
	}
	errs := make([]error, len(jobs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			for i := range next {
				j := jobs[i]
				ev := fakes.SentryEvent{Org: "acme", Project: j.is.project, IssueID: j.is.id, EventID: fmt.Sprintf("%s%022d", j.is.id, j.n),
					Title: j.is.title, Time: j.at}
				code, err := sentry.Send(context.Background(), "error", j.req, fakes.SentryErrorCreated(ev))
				if err == nil && code != http.StatusOK {
					err = fmt.Errorf("status %d", code)
				}
				errs[i] = err
			}
		})
	}
	for i := range jobs {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("webhook %d (%s): %v", i, jobs[i].req, err)
		}
	}

	// One alert per issue, its occurrences exact.
	alertsReq := &triagev1.ListConversationsRequest{Kind: supportv1.ConversationKind_CONVERSATION_KIND_ALERT, PageSize: 100}
	var alerts []*supportv1.Conversation
	waitFor(t, time.Minute, fmt.Sprintf("%d alerts counting %d events", len(issues), len(jobs)), func() bool {
		resp, err := a.conv.ListConversations(rpcCtx(t), alertsReq)
		if err != nil {
			t.Fatalf("ListConversations(alerts): %v", err)
		}
		alerts = resp.GetConversations()
		sum := int64(0)
		for _, c := range alerts {
			sum += c.GetAlert().GetOccurrences()
		}
		if sum > int64(len(jobs)) {
			t.Fatalf("alerts count %d occurrences, more than the %d events sent", sum, len(jobs))
		}
		return len(alerts) == len(issues) && sum == int64(len(jobs))
	})
	byIssue := map[string]*supportv1.Conversation{}
	for _, c := range alerts {
		byIssue[strings.TrimPrefix(c.GetThreadKey(), "sentry:")] = c
	}
	for _, is := range issues {
		c := byIssue[is.id]
		al := c.GetAlert()
		switch {
		case c == nil:
			t.Fatalf("no alert for issue %s", is.id)
		case c.GetKind() != supportv1.ConversationKind_CONVERSATION_KIND_ALERT || c.GetTeam() != is.team:
			t.Errorf("issue %s: kind %s team %q, want an alert of %s", is.id, c.GetKind(), c.GetTeam(), is.team)
		case al.GetOccurrences() != int64(is.events):
			t.Errorf("issue %s: %d occurrences, want %d", is.id, al.GetOccurrences(), is.events)
		case !al.GetFirstSeen().AsTime().Equal(first[is.id]) || !al.GetLastSeen().AsTime().Equal(last[is.id]):
			t.Errorf("issue %s: seen %s..%s, want %s..%s", is.id, al.GetFirstSeen().AsTime(), al.GetLastSeen().AsTime(), first[is.id], last[is.id])
		case c.GetTier() != supportv1.Tier_TIER_UNSPECIFIED || c.GetNextDeadlineAt() != nil:
			t.Errorf("issue %s: tier %s, next deadline %v: an alert has neither", is.id, c.GetTier(), c.GetNextDeadlineAt())
		}
	}

	// Each alert paged to its team's secondary, once.
	secondary := map[string]string{}
	for _, is := range issues {
		resp, err := a.rotation.WhoIsOnCall(rpcCtx(t), &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_SECONDARY, Team: is.team, At: timestamppb.Now()})
		if err != nil {
			t.Fatalf("WhoIsOnCall(secondary, %s): %v", is.team, err)
		}
		secondary[is.team] = resp.GetOnCall().GetPerson().GetName()
	}
	waitFor(t, time.Minute, "a page about every alert", func() bool {
		for _, c := range alerts {
			if len(pingsAbout(console.String(), c.GetId())) == 0 {
				return false
			}
		}
		return true
	})
	for _, is := range issues {
		c := byIssue[is.id]
		pings := pingsAbout(console.String(), c.GetId())
		if len(pings) != 1 {
			t.Errorf("issue %s: %d pings or pages, want 1: %+v", is.id, len(pings), pings)
			continue
		}
		if want := "[notify] page " + secondary[is.team]; !strings.HasPrefix(pings[0].Line, want) {
			t.Errorf("issue %s: %q, want a page of %s's secondary (%q)", is.id, pings[0].Line, is.team, want)
		}
	}

	// Not the hero's customer queue, nor the customer report.
	queue, err := a.conv.ListConversations(rpcCtx(t), &triagev1.ListConversationsRequest{PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range queue.GetConversations() {
		if c.GetKind() == supportv1.ConversationKind_CONVERSATION_KIND_ALERT {
			t.Errorf("alert %s in the customer queue", c.GetId())
		}
	}
	cc, err := grpcx.Dial(stack.GRPCAddr, grpcx.DialOptions{Token: stack.Env["SIDEKICK_GRPC_TOKEN"]})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	report, err := triagev1.NewReportServiceClient(cc).Summary(rpcCtx(t), &triagev1.SummaryRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range report.GetByChannel() {
		if ch.GetKey() == "sentry" {
			t.Errorf("the customer report counts %d Sentry conversations", ch.GetCount())
		}
	}
	for _, tr := range report.GetResponse() {
		if tr.GetConversations() != 0 {
			t.Errorf("the customer report counts %d %s conversations; only alerts were opened", tr.GetConversations(), tr.GetTier())
		}
	}
	if al := report.GetAlerts(); al.GetOpened() != int64(len(issues)) || al.GetOccurrences() != int64(len(jobs)) {
		t.Errorf("report alerts: %d opened, %d occurrences; want %d, %d", al.GetOpened(), al.GetOccurrences(), len(issues), len(jobs))
	}

	// A customer pastes the first issue's link: linked both ways.
	text := "Checkout fails for us, looks like https://acme.sentry.io/issues/" + issues[0].id + "/?project=2 on your side"
	customer := slackConversation(t, stack, a, time.Now(), "Ev0ALERTLINK", "U0CUSTOMER9", text)
	alert := byIssue[issues[0].id]
	if got := a.get(t, customer.GetId()).GetConversation().GetLinkedConversationIds(); !slices.Equal(got, []string{alert.GetId()}) {
		t.Errorf("customer conversation linked to %v, want the alert %s", got, alert.GetId())
	}
	if got := a.get(t, alert.GetId()).GetConversation().GetLinkedConversationIds(); !slices.Equal(got, []string{customer.GetId()}) {
		t.Errorf("alert linked to %v, want the customer conversation %s", got, customer.GetId())
	}
	if got := a.get(t, byIssue[issues[1].id].GetId()).GetConversation().GetLinkedConversationIds(); len(got) != 0 {
		t.Errorf("another alert linked to %v", got)
	}
}
