package console_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/protobuf/types/known/timestamppb"

	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/sidekick/console"
)

// showcase is a triage with a plausible week in it, for the screenshots.
func showcase() *fakeTriage {
	ago := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(t0.Add(-d)) }
	in := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(t0.Add(d)) }
	open := supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN
	queue := []*supportv1.Conversation{
		{Id: "c-42", Subject: "Pods OOM after upgrade", Tier: supportv1.Tier_TIER_PRIORITY, Status: open, Channel: supportv1.Channel_CHANNEL_SLACK,
			Categories: []string{"deployments/scaling"}, Tags: []string{"k8s"}, Customer: &supportv1.CustomerRef{Id: "hedge", Name: "Hedgebank", Organisation: "Hedgebank Ltd"},
			Assignee: "alice", DeadlineLevel: supportv1.DeadlineLevel_DEADLINE_LEVEL_OKAY, NextDeadlineAt: in(30 * time.Minute), OpenedAt: ago(30 * time.Minute)},
		{Id: "c-43", Subject: "Billing export shows last month twice", Tier: supportv1.Tier_TIER_PRIORITY, Status: open, Channel: supportv1.Channel_CHANNEL_EMAIL,
			Categories: []string{"billing"}, Customer: &supportv1.CustomerRef{Id: "acme", Name: "Acme"},
			DeadlineLevel: supportv1.DeadlineLevel_DEADLINE_LEVEL_BREACHED, NextDeadlineAt: ago(2 * time.Hour), OpenedAt: ago(26 * time.Hour)},
		{Id: "c-44", Subject: "KeyError: 'user' in billing.views", Tier: supportv1.Tier_TIER_SUBSCRIBER, Status: open, Channel: supportv1.Channel_CHANNEL_SENTRY,
			Team: "platform", DeadlineLevel: supportv1.DeadlineLevel_DEADLINE_LEVEL_GREAT, NextDeadlineAt: in(12 * time.Minute), OpenedAt: ago(3 * time.Minute)},
		{Id: "c-45", Subject: "Feature flag rollout stuck at 50%", Tier: supportv1.Tier_TIER_COMMUNITY, Status: open, Channel: supportv1.Channel_CHANNEL_GITHUB,
			Categories: []string{"feature-flags"}, Assignee: "bob", DeadlineLevel: supportv1.DeadlineLevel_DEADLINE_LEVEL_GREAT, NextDeadlineAt: in(40 * time.Minute), OpenedAt: ago(20 * time.Minute)},
	}
	conv := sampleConversation()
	conv.Conversation.Customer.Id = "hedge"
	conv.Messages = append(conv.Messages,
		&supportv1.InboundMessage{Id: "m2", Author: &supportv1.Author{Name: "Alice Hero", Role: supportv1.AuthorRole_AUTHOR_ROLE_STAFF}, Text: "Looking now: which chart version are you on?", SentAt: ago(20 * time.Minute)},
		&supportv1.InboundMessage{Id: "m3", Author: &supportv1.Author{Name: "Dana Customer", Role: supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER}, Text: "30.2, upgraded from 29.8 this morning.", SentAt: ago(12 * time.Minute)})
	conv.Deliveries = []*triagev1.OutboundDelivery{{OutboundId: "o1", MessageId: "m2", State: triagev1.DeliveryState_DELIVERY_STATE_SENT, Permalink: "https://example.slack.com/archives/C1/p101"}}
	related := []*triagev1.SearchHit{
		{Conversation: &supportv1.Conversation{Id: "c-12", Subject: "OOM-killed pods on 29.x", Status: supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED,
			CloseReason: supportv1.CloseReason_CLOSE_REASON_RESOLVED, Channel: supportv1.Channel_CHANNEL_SLACK, OpenedAt: ago(40 * 24 * time.Hour)},
			Snippet: []*triagev1.SnippetPart{{Text: "raised the worker memory limit; the "}, {Text: "pods", Match: true}, {Text: " stopped being "}, {Text: "OOM", Match: true}, {Text: "-killed"}}},
	}
	return &fakeTriage{
		list: func(*triagev1.ListConversationsRequest) (*triagev1.ListConversationsResponse, error) {
			return &triagev1.ListConversationsResponse{Conversations: queue}, nil
		},
		get: func(*triagev1.GetConversationRequest) (*triagev1.GetConversationResponse, error) { return conv, nil },
		search: func(req *triagev1.SearchConversationsRequest) (*triagev1.SearchConversationsResponse, error) {
			if req.GetQuery() != "oom" {
				return &triagev1.SearchConversationsResponse{Hits: related}, nil
			}
			return &triagev1.SearchConversationsResponse{Hits: append([]*triagev1.SearchHit{{Conversation: queue[0], Source: triagev1.SearchSource_SEARCH_SOURCE_MESSAGE,
				Snippet: []*triagev1.SnippetPart{{Text: "Our pods are "}, {Text: "OOM", Match: true}, {Text: "-killed since 1.40."}}}}, related...)}, nil
		},
		customer: func(req *triagev1.GetCustomerRequest) (*triagev1.GetCustomerResponse, error) {
			return &triagev1.GetCustomerResponse{Customer: &triagev1.Customer{Id: "hedge", Name: "Hedgebank", Organisation: "Hedgebank Ltd", Plan: "enterprise",
				MonthlyRevenueCents: 450000, Tier: supportv1.Tier_TIER_PRIORITY, TierReason: "plan enterprise", EmailDomains: []string{"hedgebank.example"},
				SlackUserIds: []string{"U0HEDGE"}}}, nil
		},
		summary: func(*triagev1.SummaryRequest) (*triagev1.SummaryResponse, error) {
			return &triagev1.SummaryResponse{
				ByChannel:  []*triagev1.Count{{Key: "slack", Count: 31}, {Key: "email", Count: 14}, {Key: "github", Count: 9}, {Key: "sentry", Count: 6}},
				ByTier:     []*triagev1.Count{{Key: "priority", Count: 12}, {Key: "subscriber", Count: 21}, {Key: "community", Count: 27}},
				ByCategory: []*triagev1.Count{{Key: "performance", Count: 11}, {Key: "deployments", Count: 9}, {Key: "billing", Count: 7}, {Key: "feature-flags", Count: 5}},
				Response: []*triagev1.TierResponseStats{
					{Tier: supportv1.Tier_TIER_PRIORITY, Conversations: 12, Responded: 12, MedianSeconds: 540, P90Seconds: 2400, Great: 8, Okay: 3, Late: 1, Decided: 12, GreatShare: .67, OkayShare: .25, LateShare: .08, Resolution: &triagev1.Resolution{Closed: 10, MedianSeconds: 14400}},
					{Tier: supportv1.Tier_TIER_SUBSCRIBER, Conversations: 21, Responded: 19, MedianSeconds: 1500, P90Seconds: 7200, Great: 9, Okay: 7, Late: 3, Breached: 2, Decided: 21, GreatShare: .43, OkayShare: .33, LateShare: .14, BreachedShare: .1, Resolution: &triagev1.Resolution{Closed: 15, MedianSeconds: 30000}},
				},
				ByDay:    showcaseDays(),
				ByPerson: []*triagev1.GroupResponseStats{{Key: "alice", Conversations: 18, Responded: 18, MedianSeconds: 600, P90Seconds: 2000, Great: 12, Okay: 5, Late: 1}, {Key: "bob", Conversations: 13, Responded: 13, MedianSeconds: 900, P90Seconds: 3600, Great: 6, Okay: 5, Late: 2}},
			}, nil
		},
	}
}

// showcaseDays is a week of conversations per day adding up to the
// showcase's totals.
func showcaseDays() []*triagev1.DayCounts {
	count := func(keys []string, ns ...int64) []*triagev1.Count {
		var out []*triagev1.Count
		for i, n := range ns {
			if n > 0 {
				out = append(out, &triagev1.Count{Key: keys[i], Count: n})
			}
		}
		return out
	}
	channels, tiers := []string{"slack", "email", "github", "sentry"}, []string{"priority", "subscriber", "community"}
	categories := []string{"performance", "deployments", "billing", "feature-flags", "uncategorised"}
	week := [][3][]int64{
		{{6, 2, 2, 1}, {2, 4, 5}, {2, 2, 1, 1, 5}}, {{7, 3, 1, 1}, {3, 4, 5}, {3, 2, 2, 1, 4}}, {{5, 3, 2, 1}, {2, 4, 5}, {2, 2, 1, 1, 5}},
		{{6, 2, 2, 2}, {3, 4, 5}, {2, 2, 2, 1, 5}}, {{4, 3, 1, 1}, {2, 3, 4}, {1, 1, 1, 1, 5}}, {{2, 1, 1, 0}, {0, 1, 3}, {1, 0, 0, 0, 3}}, {{1, 0, 0, 0}, {0, 1, 0}, {0, 0, 0, 0, 1}},
	}
	var out []*triagev1.DayCounts
	for i, d := range week {
		var n int64
		for _, c := range d[0] {
			n += c
		}
		out = append(out, &triagev1.DayCounts{Day: t0.AddDate(0, 0, i-6).Format(time.DateOnly), Conversations: n,
			ByChannel: count(channels, d[0]...), ByTier: count(tiers, d[1]...), ByCategory: count(categories, d[2]...)})
	}
	return out
}

// TestScreenshots renders each page in Chromium and takes its picture:
// into SIDEKICK_CONSOLE_SCREENSHOTS (docs/console/ for docs/console.md)
// when set, else into a temporary directory. Each must be a PNG.
func TestScreenshots(t *testing.T) {
	b := startBrowser(t)
	dir := os.Getenv("SIDEKICK_CONSOLE_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	rot := calendarRotation()
	rot.people = []*rotationv1.Person{{Id: "alice", Name: "Alice Hero", Team: "platform"}, {Id: "bob", Name: "Bob Brown", Team: "core"}}
	at := func(day, hour int) *timestamppb.Timestamp {
		return timestamppb.New(time.Date(2026, 3, day, hour, 0, 0, 0, time.UTC))
	}
	rot.overrides = append(rot.overrides,
		&rotationv1.Override{Id: "sw-1-a", SwapId: "sw-1", RotationId: "hero", Kind: rotationv1.OverrideKind_OVERRIDE_KIND_REPLACE,
			PersonId: "alice", WithPersonId: "bob", Start: at(5, 9), End: at(6, 9), Note: "school play"},
		&rotationv1.Override{Id: "sw-1-b", SwapId: "sw-1", RotationId: "hero", Kind: rotationv1.OverrideKind_OVERRIDE_KIND_REPLACE,
			PersonId: "bob", WithPersonId: "alice", Start: at(19, 9), End: at(20, 9), Note: "school play"})
	h := start(t, console.Config{Dev: true}, showcase(), rot)
	type css = chromedp.CSS
	b.Step("viewport", chromedp.EmulateViewport(1280, 860))
	for _, p := range []struct{ name, path, wait string }{
		{"queue", "/console/", "#queue"},
		{"help", "/console/?status=open", "#queue"},
		{"search", "/console/?q=oom", "#queue"},
		{"conversation", "/console/conversations/c-42", "#related"},
		{"customer", "/console/customers/hedge", "#customer-conversations"},
		{"reports", "/console/reports", "#by-tier-response"},
		{"calendar", "/console/calendar", "#calendar"},
	} {
		b.Step(p.name, chromedp.Navigate(h.srv.URL+p.path), chromedp.WaitVisible(css(p.wait)))
		if p.name == "help" {
			b.Step("help overlay", chromedp.KeyEvent("j"), chromedp.KeyEvent("?"), chromedp.WaitVisible(css("#help")))
		}
		png, err := chromedp.Run(b.Ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", p.name, err)
		}
		if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
			t.Fatalf("screenshot %s is not a PNG", p.name)
		}
		if err := os.WriteFile(filepath.Join(dir, p.name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
