package triage

import (
	"context"
	"io/fs"
	"math"
	"testing"
	"testing/fstest"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/pg"
	"github.com/sidekickhq/sidekick/platform/pg/pgtest"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/coverage"
	"github.com/sidekickhq/sidekick/services/triage/internal/triagetest"
)

// TestAlertsAreMeasuredApart: a Sentry issue is an alert without a tier
// or a deadline; its occurrences add up; the first person to act on it
// acknowledges it (Assign 10 minutes in, not the later Close); the report
// measures it by time to acknowledge and to resolve and leaves it out of
// every customer figure.
func TestAlertsAreMeasuredApart(t *testing.T) {
	h := newHarness(t)
	h.deps.Coverage = coverage.Always{}
	s, _ := h.start(t, h.deps)
	cc := serveConn(t, s)
	convs, reports := triagev1.NewConversationServiceClient(cc), triagev1.NewReportServiceClient(cc)
	ctx := context.Background()

	start := utc("2026-03-02 09:00")
	triagetest.SetClock(h.clock, start)
	issue := &triagetest.Message{Channel: supportv1.Channel_CHANNEL_SENTRY, ThreadKey: "sentry:4242"}
	first := at(h.clock, issue.Customer("sentry:api", "TypeError in checkout"))
	first.Attributes = map[string]string{"occurrences": "1", "project": "api", "level": "error"}
	update := at(h.clock, issue.Customer("sentry:api", "TypeError in checkout"))
	update.Kind = supportv1.MessageKind_MESSAGE_KIND_UPDATED
	update.Attributes = map[string]string{"occurrences": "41"}
	h.send(t, first, update)

	a := byThread(t, convs, issue.ThreadKey)
	if a.GetKind() != supportv1.ConversationKind_CONVERSATION_KIND_ALERT || a.GetTier() != supportv1.Tier_TIER_UNSPECIFIED ||
		a.GetNextDeadlineAt() != nil || a.GetAlert().GetOccurrences() != 42 || a.GetAlert().GetProject() != "api" {
		t.Fatalf("alert %v", a)
	}
	triagetest.SetClock(h.clock, start.Add(10*time.Minute))
	if _, err := convs.Assign(ctx, &triagev1.AssignRequest{Id: a.GetId(), Assignee: "alice", Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	triagetest.SetClock(h.clock, start.Add(70*time.Minute))
	if _, err := convs.Close(ctx, &triagev1.CloseRequest{Id: a.GetId(), Actor: "bob"}); err != nil {
		t.Fatal(err)
	}
	got, err := convs.GetConversation(ctx, &triagev1.GetConversationRequest{Id: a.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if al := got.GetConversation().GetAlert(); al.GetAcknowledgedBy() != "alice" || !al.GetAcknowledgedAt().AsTime().Equal(start.Add(10*time.Minute)) {
		t.Fatalf("acknowledged %s by %q, want alice at +10m", al.GetAcknowledgedAt().AsTime(), al.GetAcknowledgedBy())
	}

	sum, err := reports.Summary(ctx, &triagev1.SummaryRequest{From: timestamppb.New(start.Add(-time.Hour)), To: timestamppb.New(start.Add(2 * time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	al := sum.GetAlerts()
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-6 }
	if al.GetOpened() != 1 || al.GetOccurrences() != 42 || al.GetAcknowledged() != 1 || !near(al.GetAcknowledgeMeanSeconds(), 600) ||
		al.GetResolution().GetClosed() != 1 || !near(al.GetResolution().GetMeanSeconds(), 4200) {
		t.Fatalf("alert figures %v", al)
	}
	for _, tr := range sum.GetResponse() {
		if tr.GetConversations() != 0 || tr.GetResolution().GetClosed() != 0 {
			t.Errorf("customer figures count the alert: %v", tr)
		}
	}
	if len(sum.GetByChannel()) != 0 || len(sum.GetByTier()) != 0 {
		t.Errorf("customer counts include the alert: %v %v", sum.GetByChannel(), sum.GetByTier())
	}
}

// TestDeletedConversationTakesItsAlertLinks: a customer conversation that
// pastes a Sentry issue link is linked to the alert; deleting the
// conversation (an operator's erasure, retention) deletes its references
// too, instead of leaving rows that point at nothing.
func TestDeletedConversationTakesItsAlertLinks(t *testing.T) {
	h := newHarness(t)
	s, _ := h.start(t, h.deps)
	convs, _ := serve(t, s)
	ctx := context.Background()

	triagetest.SetClock(h.clock, utc("2026-03-02 09:00"))
	issue := &triagetest.Message{Channel: supportv1.Channel_CHANNEL_SENTRY, ThreadKey: "sentry:4242"}
	customer := &triagetest.Message{Channel: supportv1.Channel_CHANNEL_SLACK, ThreadKey: "slack:C1:100"}
	h.send(t, at(h.clock, issue.Customer("sentry:api", "TypeError in checkout")),
		at(h.clock, customer.Customer("U1", "checkout fails: https://acme.sentry.io/issues/4242/")))
	a, c := byThread(t, convs, issue.ThreadKey), byThread(t, convs, customer.ThreadKey)
	if got := get(t, convs, a.GetId()).GetConversation().GetLinkedConversationIds(); len(got) != 1 || got[0] != c.GetId() {
		t.Fatalf("alert linked to %v, want [%s]", got, c.GetId())
	}

	if _, err := h.pool.Exec(ctx, `DELETE FROM conversations WHERE id = $1`, c.GetId()); err != nil {
		t.Fatal(err)
	}
	if n := triagetest.Count(t, h.pool, `SELECT count(*) FROM alert_references WHERE conversation_id = $1`, c.GetId()); n != 0 {
		t.Errorf("%d alert references of the deleted conversation left", n)
	}
	if got := get(t, convs, a.GetId()).GetConversation().GetLinkedConversationIds(); len(got) != 0 {
		t.Errorf("alert still linked to %v", got)
	}
}

// TestAlertReferenceMigrationDropsOrphans: migration 00008 deletes the
// references a deleted conversation left before it adds the foreign key
// (which would otherwise refuse them), and keeps the others.
func TestAlertReferenceMigrationDropsOrphans(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Postgres")
	}
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	all := Migrations()
	upTo7 := fstest.MapFS{}
	files, err := fs.Glob(all, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f < "00008" {
			b, err := fs.ReadFile(all, f)
			if err != nil {
				t.Fatal(err)
			}
			upTo7[f] = &fstest.MapFile{Data: b}
		}
	}
	if err := pg.Migrate(ctx, url, Schema, upTo7, nil); err != nil {
		t.Fatal(err)
	}
	pool, err := pg.Connect(ctx, url, Schema)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	now := utc("2026-03-02 09:00")
	if _, err := pool.Exec(ctx, `INSERT INTO conversations (id, channel, thread_key, status, tier, opened_at, updated_at)
		VALUES ('c-kept', 1, 'slack:C1:1', 1, 3, $1, $1)`, now); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO alert_references (thread_key, conversation_id, created_at)
		VALUES ('sentry:1', 'c-kept', $1), ('sentry:1', 'c-deleted', $1)`, now); err != nil {
		t.Fatal(err)
	}
	if err := pg.Migrate(ctx, url, Schema, all, nil); err != nil {
		t.Fatalf("migrate over an orphaned reference: %v", err)
	}
	var left string
	if err := pool.QueryRow(ctx, `SELECT string_agg(conversation_id, ' ') FROM alert_references`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != "c-kept" {
		t.Errorf("references left: %q, want c-kept", left)
	}
}
