package triage

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/engine"
	"github.com/sidekickhq/sidekick/services/triage/internal/people"
	"github.com/sidekickhq/sidekick/services/triage/internal/tier"
	"github.com/sidekickhq/sidekick/services/triage/internal/triagetest"
)

// TestBatchMatchesOneByOne applies the same inbound messages to two
// databases, as one batch and as batches of one, and compares every
// row triage wrote (conversations with their state, messages, audit,
// outbox events, timers, inbox): a batch must have exactly the outcome of
// its messages handled in turn. The deadline timers fired afterwards and
// people's commands must then agree as well.
func TestBatchMatchesOneByOne(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Postgres")
	}
	ctx := context.Background()
	clock := triagetest.NewClock()
	type side struct {
		pool *pgxpool.Pool
		eng  *engine.Engine
	}
	var sides [2]side
	for i := range sides {
		pool := triagetest.Database(t, Schema, Migrations())
		eng, err := engine.New(pool, engine.Config{ConsoleURL: "https://sidekick.example.com/console",
			Rules: tier.Rules{PriorityRevenueCents: 200000}, People: people.Static{D: people.FromProto(testPeople())}}, clock, prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := eng.UpsertCustomers(ctx, []*triagev1.Customer{
			{Id: "acme", Name: "Acme", Plan: "enterprise", SlackUserIds: []string{"U0ACME"}},
		}, false); err != nil {
			t.Fatal(err)
		}
		sides[i] = side{pool, eng}
	}
	batched, single := sides[0], sides[1]

	a, b, c := triagetest.Slack("eq-a"), triagetest.Slack("eq-b"), triagetest.Slack("eq-c")
	spam := email("eq-spam@seo.example").Customer("seller@seo.example",
		"Dear Sir/Madam, I came across your website and would like to offer a guest post with do-follow backlinks.")
	spam.Subject, spam.Attributes = "Guest post opportunity", map[string]string{"auth_failed": "true"}
	pitch := email("eq-hello@agency.example").Customer("dana@agency.example",
		"Hi! We'd love to explore a co marketing partnership and a joint webinar with your team. Who is the right person to talk to?")
	// Handled one by one on both sides first: a conversation the batch
	// then finds in the database.
	before := []*supportv1.InboundMessage{
		c.Customer("U0ACME", "Our dashboards time out since the upgrade"),
		c.Staff("U0HERO", "Looking into it"),
	}
	bot := a.Bot("Reminder: include your project id")
	question := a.Customer("U0CUST", "Can I export events to S3?")
	batch := []*supportv1.InboundMessage{
		bot,
		question,
		triagetest.Clone(question),
		b.Staff("U0HERO", "A staff note in a thread nobody opened"),
		a.Staff("U0HERO", "Yes, with the batch exports app"),
		a.Kind(supportv1.MessageKind_MESSAGE_KIND_EDITED, "U0CUST", question.GetSourceId(), "Can I export events to S3 daily?"),
		a.Customer("U0CUST", "And to GCS?"),
		a.Kind(supportv1.MessageKind_MESSAGE_KIND_DELETED, "B0BOT", bot.GetSourceId(), ""),
		c.Customer("U0ACME", "Still slow, and now the API returns 500s"),
		spam,
		a.Kind(supportv1.MessageKind_MESSAGE_KIND_THREAD_CLOSED, "U0HERO", "", ""),
		pitch,
		a.Kind(supportv1.MessageKind_MESSAGE_KIND_THREAD_REOPENED, "U0CUST", "", ""),
		a.Kind(supportv1.MessageKind_MESSAGE_KIND_UPDATED, "U0CUST", "", ""),
		c.Staff("U0HERO", "Fixed, a bad index"),
		b.Customer("U0LATE", "Following up on the note above"),
	}
	// Enough conversations from before that the batch updates them with
	// one statement rather than one each.
	for i := range 6 {
		th := triagetest.Slack(fmt.Sprintf("eq-old-%d", i))
		before = append(before, th.Customer("U0OLD", fmt.Sprintf("Old question %d about billing", i)))
		batch = append(batch, th.Customer("U0OLD", "Any news? The invoice is due"))
	}
	// Enough openings that the batch writes its conversations, timers,
	// audit lines and events with COPY (the handful above go with
	// statements).
	for i := range 40 {
		batch = append(batch, triagetest.Slack(fmt.Sprintf("eq-more-%d", i)).Customer("U0MANY", fmt.Sprintf("Question %d: the export to S3 is slow", i)))
	}
	for _, s := range sides {
		for _, m := range before {
			if _, err := s.eng.HandleInbound(ctx, []engine.Inbound{{Message: m, Subject: "support.inbound.slack"}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	clock.Advance(time.Minute)
	in := make([]engine.Inbound, len(batch))
	for i, m := range batch {
		in[i] = engine.Inbound{Message: m, Subject: "support.inbound.slack"}
	}
	got, err := batched.eng.HandleInbound(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	var want []engine.Result
	for i := range in {
		r, err := single.eng.HandleInbound(ctx, in[i:i+1])
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, r...)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("batch results %v, one by one %v", got, want)
	}
	same := func(step string, byThread bool) {
		t.Helper()
		x, y := dumpRows(t, batched.pool, byThread), dumpRows(t, single.pool, byThread)
		for i := range max(len(x), len(y)) {
			var l, r string
			if i < len(x) {
				l = x[i]
			}
			if i < len(y) {
				r = y[i]
			}
			if l != r {
				t.Fatalf("%s: row %d differs:\nbatched:    %s\none by one: %s", step, i, l, r)
			}
		}
	}
	same("inbound", false)
	// Both sides write through the same code: check a few rows outright.
	for _, s := range sides {
		if n := triagetest.Count(t, s.pool, `SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id
			WHERE c.thread_key = $1`, a.ThreadKey); n != 7 {
			t.Fatalf("thread a has %d messages attached, want 7 (the bot's before the opening too)", n)
		}
		if n := triagetest.Count(t, s.pool, `SELECT count(*) FROM messages WHERE conversation_id IS NULL`); n != 0 {
			t.Fatalf("%d messages without a conversation, want 0", n)
		}
		if n := triagetest.Count(t, s.pool, `SELECT count(*) FROM audit`); n != 23+2*40+2*6 {
			t.Fatalf("%d audit lines, want %d", n, 23+2*40+2*6)
		}
		if n := triagetest.Count(t, s.pool, `SELECT count(*) FROM outbox`); n != 24+2*40+3*6 {
			t.Fatalf("%d events, want %d", n, 24+2*40+3*6)
		}
		if n := triagetest.Count(t, s.pool, `SELECT count(*) FROM timers WHERE status = 1`); n != 41+6 {
			t.Fatalf("%d armed timers, want %d", n, 41+6)
		}
	}

	// Deadlines pass; the timers fire alike (in conversation id order, so
	// compared thread by thread).
	clock.Advance(2 * time.Hour)
	for _, s := range sides {
		if _, err := s.eng.FireDue(ctx, 100); err != nil {
			t.Fatal(err)
		}
	}
	same("timers fired", true)

	// People's commands on the conversations.
	for _, s := range sides {
		id := conversationOf(t, s.pool, c.ThreadKey)
		if _, err := s.eng.Assign(ctx, id, "U0BOB", "alice"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.eng.Tag(ctx, id, []string{"upgrade"}, nil, []string{"performance", "api"}, "alice"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.eng.AddNote(ctx, id, "index rebuilt", true, "alice"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.eng.Close(ctx, conversationOf(t, s.pool, pitch.GetThreadKey()), supportv1.CloseReason_CLOSE_REASON_SPAM, "alice"); err != nil {
			t.Fatal(err)
		}
	}
	same("commands", true)
}

func conversationOf(t *testing.T, pool *pgxpool.Pool, threadKey string) string {
	t.Helper()
	var id string
	if err := pool.QueryRow(context.Background(), `SELECT id FROM conversations WHERE thread_key = $1`, threadKey).Scan(&id); err != nil {
		t.Fatalf("conversation of %s: %v", threadKey, err)
	}
	return id
}

// dumpRows lists what triage stored, one line per row, with conversation
// ids replaced by thread keys and event ids left out, in an order that
// does not depend on generated ids. Audit lines and events are in the
// order they were written, or by thread and then that order.
func dumpRows(t *testing.T, pool *pgxpool.Pool, byThread bool) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	query := func(table, sql string) {
		rows, err := pool.Query(ctx, sql)
		if err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		var line string
		if _, err := pgx.ForEachRow(rows, []any{&line}, func() error {
			out = append(out, table+" "+line)
			return nil
		}); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
	}
	query("conversation", `SELECT (to_jsonb(c) - 'id')::text FROM conversations c ORDER BY channel, thread_key`)
	query("message", `SELECT (to_jsonb(m) - 'seq' - 'conversation_id' || jsonb_build_object('conversation', c.thread_key))::text
		FROM messages m LEFT JOIN conversations c ON c.id = m.conversation_id ORDER BY m.seq`)
	order := ""
	if byThread {
		order = "c.thread_key, "
	}
	query("audit", `SELECT (to_jsonb(a) - 'seq' - 'conversation_id' || jsonb_build_object('conversation', c.thread_key))::text
		FROM audit a JOIN conversations c ON c.id = a.conversation_id ORDER BY `+order+`a.seq`)
	query("timer", `SELECT (to_jsonb(tm) - 'conversation_id' || jsonb_build_object('conversation', c.thread_key))::text
		FROM timers tm JOIN conversations c ON c.id = tm.conversation_id ORDER BY c.channel, c.thread_key`)
	query("inbox", `SELECT to_jsonb(i)::text FROM inbox i ORDER BY message_id`)
	query("note", `SELECT (to_jsonb(n) - 'id' - 'conversation_id' || jsonb_build_object('conversation', c.thread_key))::text
		FROM notes n JOIN conversations c ON c.id = n.conversation_id ORDER BY n.created_at, c.thread_key`)
	// An event's conversation is in its payload: sort by thread here.
	rows, err := pool.Query(ctx, `SELECT subject, type, payload, created_at FROM outbox ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	var (
		subject, typ string
		payload      []byte
		created      time.Time
		events       []string
		threads      []string
	)
	if _, err := pgx.ForEachRow(rows, []any{&subject, &typ, &payload, &created}, func() error {
		var ev supportv1.ConversationEvent
		if err := proto.Unmarshal(payload, &ev); err != nil {
			return err
		}
		ev.Id = ""
		if c := ev.GetConversation(); c != nil {
			c.Id, c.ShareUrl = "", ""
		}
		text := strings.Join(strings.Fields(prototext.Format(&ev)), " ")
		events = append(events, fmt.Sprintf("event %s %s %s %s", subject, typ, created.UTC().Format(time.RFC3339Nano), text))
		threads = append(threads, ev.GetConversation().GetThreadKey())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	idx := make([]int, len(events))
	for i := range idx {
		idx[i] = i
	}
	if byThread {
		slices.SortStableFunc(idx, func(i, j int) int { return strings.Compare(threads[i], threads[j]) })
	}
	for _, i := range idx {
		out = append(out, events[i])
	}
	return out
}
