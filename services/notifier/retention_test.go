package notifier

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

func retentionConfig() Config {
	c := testConfig()
	c.Retention, c.OutboxRetention, c.RetentionBatch = 90*24*time.Hour, 24*time.Hour, 2
	return c
}

// seedRetention writes rows of every pruned table: old ones that may go,
// old ones still needed, and young ones. Ids say which is which.
func seedRetention(t *testing.T, h *harness) {
	t.Helper()
	now := h.clock.Now()
	old, young := now.Add(-100*24*time.Hour), now.Add(-10*24*time.Hour)
	stmts := []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO escalations (id, key, kind, policy_id, policy, title, started_at, status, conversation_id, created_at, updated_at) VALUES
			('esc-active-old', 'k1', 'opened', 'p', '{}', 't', $1, 'active', 'conv-open', $1, $1),
			('esc-done-old',   'k2', 'opened', 'p', '{}', 't', $1, 'done',   '',          $1, $1),
			('esc-acked-old',  'k3', 'opened', 'p', '{}', 't', $1, 'acked',  'conv-gone', $1, $1),
			('esc-stopped-old','k4', 'opened', 'p', '{}', 't', $1, 'stopped','',          $1, $1),
			('esc-acked-young','k5', 'opened', 'p', '{}', 't', $2, 'acked',  '',          $2, $2)`, []any{old, young}},
		{`INSERT INTO notifications (id, idempotency_key, origin, urgency, title, body, created_at, escalation_id) VALUES
			('n-delivered-old', 'i1', 'grpc', 1, 't', 'b', $1, NULL),
			('n-pending-old',   'i2', 'grpc', 1, 't', 'b', $1, NULL),
			('n-openesc-old',   'i3', 'escalation', 1, 't', 'b', $1, 'esc-active-old'),
			('n-closedesc-old', 'i4', 'escalation', 1, 't', 'b', $1, 'esc-acked-old'),
			('n-young',         'i5', 'grpc', 1, 't', 'b', $2, NULL)`, []any{old, young}},
		{`INSERT INTO deliveries (notification_id, dedup_key, channel, status, next_attempt_at, created_at, updated_at) VALUES
			('n-delivered-old', 'd1', 'slack', 'delivered', $1, $1, $1),
			('n-delivered-old', 'd2', 'email', 'failed',    $1, $1, $1),
			('n-pending-old',   'd3', 'slack', 'pending',   $1, $1, $1),
			('n-openesc-old',   'd4', 'slack', 'delivered', $1, $1, $1),
			('n-closedesc-old', 'd5', 'slack', 'delivered', $1, $1, $1),
			('n-young',         'd6', 'slack', 'delivered', $2, $2, $2)`, []any{old, young}},
		{`INSERT INTO digest_items (key, policy_id, target, due_at, conversation_id, title, added_at, notification_id, dropped) VALUES
			('dig-sent-old',    'p', 'x', $1, 'c', 't', $1, 'n-delivered-old', false),
			('dig-dropped-old', 'p', 'x', $1, 'c', 't', $1, NULL, true),
			('dig-pending-old', 'p', 'x', $1, 'c', 't', $1, NULL, false),
			('dig-sent-young',  'p', 'x', $2, 'c', 't', $2, 'n-young', false)`, []any{old, young}},
		{`INSERT INTO hero_shifts (event_id, person_id, start_at) VALUES ('shift-old', 'p', $1), ('shift-young', 'p', $2)`, []any{old, young}},
		{`INSERT INTO conversation_stops (conversation_id, reason, occurred_at) VALUES ('stop-old', 'closed', $1), ('stop-young', 'closed', $2)`, []any{old, young}},
		{`INSERT INTO conversation_deadlines (conversation_id, updated_at) VALUES ('conv-open', $1), ('conv-gone', $1), ('conv-young', $2)`, []any{old, young}},
		{`INSERT INTO outbox (id, subject, type, payload, created_at, sent_at) VALUES
			('ev-published-old', 's', 't', '', $1, $1),
			('ev-published-new', 's', 't', '', $2, $2),
			('ev-unpublished',   's', 't', '', $1, NULL)`, []any{now.Add(-48 * time.Hour), now.Add(-time.Hour)}},
	}
	for _, st := range stmts {
		if _, err := h.pool.Exec(context.Background(), st.sql, st.args...); err != nil {
			t.Fatalf("%s: %v", st.sql, err)
		}
	}
}

// ids returns a table's ids, sorted, as one string.
func ids(t *testing.T, h *harness, query string) string {
	t.Helper()
	rows, err := h.pool.Query(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

func checkRetained(t *testing.T, h *harness) {
	t.Helper()
	for _, c := range []struct{ query, want string }{
		{`SELECT id FROM notifications ORDER BY id`, "n-openesc-old n-pending-old n-young"},
		{`SELECT dedup_key FROM deliveries ORDER BY dedup_key`, "d3 d4 d6"},
		{`SELECT id FROM escalations ORDER BY id`, "esc-acked-young esc-active-old esc-done-old"},
		{`SELECT key FROM digest_items ORDER BY key`, "dig-pending-old dig-sent-young"},
		{`SELECT event_id FROM hero_shifts ORDER BY event_id`, "shift-young"},
		{`SELECT conversation_id FROM conversation_stops ORDER BY conversation_id`, "stop-young"},
		{`SELECT conversation_id FROM conversation_deadlines ORDER BY conversation_id`, "conv-open conv-young"},
		{`SELECT id FROM outbox ORDER BY id`, "ev-published-new ev-unpublished"},
	} {
		if got := ids(t, h, c.query); got != c.want {
			t.Errorf("%s: %q, want %q", c.query, got, c.want)
		}
	}
}

// Rows older than the retention go; young rows and old rows still needed
// (a pending delivery, an open escalation and what it is anchored on, an
// unsent digest item, an unpublished event) stay.
func TestPruneKeepsWhatIsStillNeeded(t *testing.T) {
	h := newHarness(t)
	seedRetention(t, h)
	s, err := New(retentionConfig(), h.deps)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Prune(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"notifications": 2, "escalations": 2, "digest_items": 2, "hero_shifts": 1,
		"conversation_stops": 1, "conversation_deadlines": 1, "outbox": 1}
	for table, n := range want {
		if got[table] != n {
			t.Errorf("pruned %d %s, want %d (all: %v)", got[table], table, n, got)
		}
	}
	checkRetained(t, h)
}

// Two replicas pruning at the same time both succeed and leave the same
// rows as one.
func TestPruneWithTwoReplicas(t *testing.T) {
	h := newHarness(t)
	seedRetention(t, h)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		s, err := New(retentionConfig(), h.deps)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for range 3 {
				if _, err := s.Prune(context.Background()); err != nil {
					errs[i] = err
				}
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	checkRetained(t, h)
}

// Nothing is pruned with Retention 0 but published events; a retention
// within the streams' max age is refused with the variable's name.
func TestRetentionSettings(t *testing.T) {
	h := newHarness(t)
	seedRetention(t, h)
	c := retentionConfig()
	c.Retention = 0
	s, err := New(c, h.deps)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Prune(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["outbox"] != 1 {
		t.Fatalf("pruned %v with Retention 0, want only the published event", got)
	}
	c.Retention = 7 * 24 * time.Hour
	if _, err := New(c, h.deps); err == nil || !strings.Contains(err.Error(), "SIDEKICK_NOTIFIER_RETENTION") {
		t.Fatalf("New with Retention 7d: %v, want an error naming SIDEKICK_NOTIFIER_RETENTION", err)
	}
}
