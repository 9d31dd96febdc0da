package console_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/clock"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/sidekick/console"
)

// largeTriage answers with full pages: a queue page of 50, a conversation
// of 200 messages and 20 notes, 50 search hits, a customer of 200
// conversations, and showcase's report.
func largeTriage() *fakeTriage {
	convs := make([]*supportv1.Conversation, 200)
	for i := range convs {
		convs[i] = &supportv1.Conversation{Id: fmt.Sprintf("c-%d", i), Subject: fmt.Sprintf("Question number %d about the exporter", i),
			Tier: supportv1.Tier(1 + i%3), Status: supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN, Channel: supportv1.Channel(1 + i%4),
			Categories: []string{"performance"}, Tags: []string{"k8s"}, Customer: &supportv1.CustomerRef{Id: "hedge", Name: "Hedgebank"},
			Assignee: "alice", DeadlineLevel: supportv1.DeadlineLevel_DEADLINE_LEVEL_OKAY,
			NextDeadlineAt: timestamppb.New(t0.Add(time.Duration(i) * time.Minute)), OpenedAt: timestamppb.New(t0.Add(-time.Duration(i) * time.Hour))}
	}
	conv := sampleConversation()
	for i := range 200 {
		conv.Messages = append(conv.Messages, &supportv1.InboundMessage{Id: fmt.Sprintf("m%d", i), Text: fmt.Sprintf("Message %d: the exporter still crashes on the nightly run, here is the trace …", i),
			Author: &supportv1.Author{Name: "Dana Customer", Role: supportv1.AuthorRole(1 + i%2)}, SentAt: timestamppb.New(t0)})
	}
	for i := range 20 {
		conv.Notes = append(conv.Notes, &triagev1.Note{Id: fmt.Sprintf("n%d", i), Author: "alice", Text: "Checked the heap profile", CreatedAt: timestamppb.New(t0)})
		conv.Audit = append(conv.Audit, &triagev1.AuditEntry{Actor: "alice", Action: "note", At: timestamppb.New(t0)})
	}
	hits := make([]*triagev1.SearchHit, 50)
	for i := range hits {
		hits[i] = &triagev1.SearchHit{Conversation: convs[i], Source: triagev1.SearchSource_SEARCH_SOURCE_MESSAGE,
			Snippet: []*triagev1.SnippetPart{{Text: "the nightly exporter "}, {Text: "crashes", Match: true}, {Text: " with an out-of-memory error"}}}
	}
	f := showcase()
	f.list = func(req *triagev1.ListConversationsRequest) (*triagev1.ListConversationsResponse, error) {
		return &triagev1.ListConversationsResponse{Conversations: convs[:min(len(convs), int(req.GetPageSize()))]}, nil
	}
	f.get = func(*triagev1.GetConversationRequest) (*triagev1.GetConversationResponse, error) { return conv, nil }
	f.search = func(*triagev1.SearchConversationsRequest) (*triagev1.SearchConversationsResponse, error) {
		return &triagev1.SearchConversationsResponse{Hits: hits}, nil
	}
	return f
}

// BenchmarkPages is the console's own share of a page's time: rendering
// it from triage's and rotation's answers, with the gRPC calls to fakes on
// loopback (triage's own time is in its benchmarks). One sub-benchmark
// per page; ns/op is one page served.
func BenchmarkPages(b *testing.B) {
	for _, p := range []struct{ name, path string }{
		{"queue", "/console/"},
		{"conversation", "/console/conversations/c-42"},
		{"search", "/console/?q=crash"},
		{"customer", "/console/customers/hedge"},
		{"reports", "/console/reports"},
	} {
		b.Run(p.name, func(b *testing.B) {
			h := benchConsole(b, largeTriage())
			req := httptest.NewRequest(http.MethodGet, p.path, nil)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("%s: %d\n%s", p.path, w.Code, w.Body)
			}
			cookies := w.Result().Cookies()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, p.path, nil)
				for _, c := range cookies {
					req.AddCookie(c)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("%s: %d", p.path, w.Code)
				}
			}
		})
	}
}

// benchConsole is the console in dev mode over loopback gRPC fakes.
func benchConsole(b *testing.B, tr *fakeTriage) http.Handler {
	b.Helper()
	return benchHandler(b, console.Config{Dev: true, Timezone: "UTC", SessionTTL: time.Hour, RPCTimeout: 10 * time.Second}, tr)
}

// benchHandler is the console with cfg over loopback gRPC fakes.
func benchHandler(b *testing.B, cfg console.Config, tr *fakeTriage) http.Handler {
	b.Helper()
	cc := dial(b, serveGRPC(b, tr, &fakeRotation{}))
	svc, err := console.New(cfg, console.Deps{
		Clock:         clock.NewFake(t0),
		Conversations: triagev1.NewConversationServiceClient(cc),
		Customers:     triagev1.NewCustomerServiceClient(cc),
		Reports:       triagev1.NewReportServiceClient(cc),
		Rotation:      rotationv1.NewRotationServiceClient(cc),
	})
	if err != nil {
		b.Fatal(err)
	}
	return svc.Handler()
}
