package triage

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"iter"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/bus/bustest"
	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/platform/pg"
	"github.com/sidekickhq/sidekick/platform/pg/pgtest"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/people"
	"github.com/sidekickhq/sidekick/services/triage/internal/store"
)

// The scale of BenchmarkHistory. The defaults are small so that an
// ordinary `go test -bench .` finishes in seconds; the reported run sets
// -history.conversations 1000000 (docs/performance.md).
var (
	historyConversations  = flag.Int("history.conversations", 2000, "BenchmarkHistory: conversations to seed (the reported run: 1000000)")
	historyMessages       = flag.Int("history.messages-per-conversation", 5, "BenchmarkHistory: messages per conversation on average")
	historyCustomers      = flag.Int("history.customers", 0, "BenchmarkHistory: customers to seed (0: one per 20 conversations)")
	historyCalls          = flag.Int("history.calls", 100, "BenchmarkHistory: calls measured per page (the report: a tenth)")
	historyBudget         = flag.Duration("history.budget", 15*time.Second, "BenchmarkHistory: stop calling a page after this long (at least 3 calls)")
	historyRetentionBatch = flag.Int("history.retention-batch", 10000, "BenchmarkHistory: rows the retention round deletes per transaction (the service's default: 1000)")
	historyPlans          = flag.String("history.plans", "", "BenchmarkHistory: write EXPLAIN (ANALYZE, BUFFERS) of every query of every page to this file")
	historyDatabase       = flag.String("history.database", "", "BenchmarkHistory: use (and keep) this database; seeded by the first run, measured as it is by later ones")
)

// historySpan is how far back the seeded history goes.
const historySpan = 3 * 365 * 24 * time.Hour

// BenchmarkHistory seeds years of history into triage's real schema
// (migrations applied) with COPY and measures the console's calls over
// gRPC against it, before and after a retention round:
//
//   - queue pages as the console asks for them (ListConversations, 50 a
//     page): the open queue, its third page, one person's (Mine), Priority,
//     breached, closed and everything;
//   - a conversation page (GetConversation) of conversations picked at
//     random over the whole history;
//   - the console's search box (SearchConversations, 50 a page): an error
//     code quoted in about 15 messages, two words found together in a few
//     percent of them, and one word in about a quarter;
//   - the 90-day report (ReportService.Summary).
//
// Each call's p50 and p99 are reported as metrics (ms) and logged beside
// the targets (queue 100 ms, conversation 50 ms, search 200 ms, report 1 s). Each call is
// made one after another from one client, as one person using the
// console. Retention is triage's own pruner (the outbox's sent events
// after 24h, the inbox's ids after 37 days) over a history seeded as if it
// had never run (an upgrade from a version without it). -history.plans
// writes the plan of every statement each page runs, taken with the
// statement's own SQL and arguments as the service sent them.
func BenchmarkHistory(b *testing.B) {
	if testing.Short() {
		b.Skip("needs Postgres and NATS")
	}
	ctx := context.Background()
	// A kept database (-history.database) is seeded once: seeding a
	// million conversations takes a quarter of an hour, so later runs
	// measure what the first left (after its retention round), with the
	// migrations added since applied to it, their time logged.
	url := *historyDatabase
	if url == "" {
		url = pgtest.NewDatabase(b)
	}
	began := time.Now()
	if err := pg.Migrate(ctx, url, Schema, Migrations(), nil); err != nil {
		b.Fatalf("migrate: %v", err)
	}
	b.Logf("migrations applied in %s", time.Since(began).Round(time.Millisecond))
	rec := &statementRecorder{}
	pool := historyPool(b, url, rec)
	_, js := bustest.StartJetStream(b)

	h := newHistory(*historyConversations, *historyMessages, *historyCustomers)
	var seeded int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM conversations LIMIT 1) c`).Scan(&seeded); err != nil {
		b.Fatalf("look for a seeded history: %v", err)
	}
	if seeded == 0 {
		began = time.Now()
		if err := h.seed(ctx, b, pool); err != nil {
			b.Fatalf("seed: %v", err)
		}
		b.Logf("seeded %d conversations, %d messages, %d customers in %s", h.n, h.messages, h.customers, time.Since(began).Round(time.Second))
	} else {
		b.Logf("measuring the history already in %s (seeded with the same -history flags, as they must be)", *historyDatabase)
	}
	for _, t := range []string{"conversations", "messages", "audit", "inbox", "outbox"} {
		var size string
		if err := pool.QueryRow(ctx, `SELECT pg_size_pretty(pg_total_relation_size($1::regclass))`, t).Scan(&size); err != nil {
			b.Fatal(err)
		}
		b.Logf("  %s: %s with indexes", t, size)
	}

	cfg := testConfig()
	cfg.RetentionBatch = *historyRetentionBatch
	s, err := New(cfg, Deps{Logger: slog.New(slog.DiscardHandler), JS: js, Pool: pool, Clock: clock.Real(),
		Registry: prometheus.NewRegistry(), People: people.Static{D: people.FromProto(testPeople())}})
	if err != nil {
		b.Fatalf("New: %v", err)
	}
	cc := serveConn(b, s)
	convs, reports := triagev1.NewConversationServiceClient(cc), triagev1.NewReportServiceClient(cc)

	var plans *os.File
	if *historyPlans != "" {
		if plans, err = os.Create(*historyPlans); err != nil {
			b.Fatal(err)
		}
		defer plans.Close()
	}
	b.ResetTimer()
	for range b.N { // one pass whatever b.N: run with -benchtime 1x
		h.measure(ctx, b, "before", convs, reports, pool, rec, plans)

		pruned := time.Now()
		n, err := s.pruner.Prune(ctx)
		if err != nil {
			b.Fatalf("retention: %v", err)
		}
		b.Logf("retention: %v rows deleted in %s", n, time.Since(pruned).Round(time.Millisecond))

		h.measure(ctx, b, "after-retention", convs, reports, pool, rec, plans)
		break
	}
}

// historyPool connects as the service does (pg.ConnectWith with
// PostgresSettings), with rec tracing every statement.
func historyPool(b *testing.B, url string, rec *statementRecorder) *pgxpool.Pool {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		b.Fatal(err)
	}
	for k, v := range PostgresSettings() {
		cfg.ConnConfig.RuntimeParams[k] = v
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = Schema
	cfg.ConnConfig.Tracer = rec
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	return pool
}

// statementRecorder keeps the queries (SQL and arguments) run while on.
type statementRecorder struct {
	mu    sync.Mutex
	on    bool
	stmts []recorded
}

type recorded struct {
	sql  string
	args []any
}

func (r *statementRecorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.on {
		r.stmts = append(r.stmts, recorded{sql: d.SQL, args: d.Args})
	}
	return ctx
}

func (r *statementRecorder) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (r *statementRecorder) record(on bool) []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.on = on
	out := r.stmts
	r.stmts = nil
	return out
}

// page is one console call measured.
type page struct {
	name   string
	target time.Duration
	call   func(ctx context.Context, i int) error
}

func (h *history) pages(convs triagev1.ConversationServiceClient, reports triagev1.ReportServiceClient) []page {
	open := []supportv1.ConversationStatus{supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN}
	list := func(req *triagev1.ListConversationsRequest) func(ctx context.Context, i int) error {
		return func(ctx context.Context, _ int) error {
			req.PageSize = 50 // console.QueuePageSize
			resp, err := convs.ListConversations(ctx, req)
			if err == nil && len(resp.GetConversations()) == 0 && h.n >= 100_000 {
				err = fmt.Errorf("empty page for %v", req)
			}
			return err
		}
	}
	const queue, conversation, searchTarget, report = 100 * time.Millisecond, 50 * time.Millisecond, 200 * time.Millisecond, time.Second
	// search is the console's search box: SearchConversations with the
	// queue's page size and no filter.
	search := func(query string) func(ctx context.Context, i int) error {
		return func(ctx context.Context, _ int) error {
			resp, err := convs.SearchConversations(ctx, &triagev1.SearchConversationsRequest{Query: query,
				Filter: &triagev1.ListConversationsRequest{PageSize: 50}})
			if err == nil && len(resp.GetHits()) == 0 && h.n >= 100_000 {
				err = fmt.Errorf("search %q found nothing", query)
			}
			return err
		}
	}
	rng := rand.New(rand.NewPCG(7, 7))
	return []page{
		{"queue-open", queue, list(&triagev1.ListConversationsRequest{Statuses: open})},
		{"queue-open-page3", queue, list(&triagev1.ListConversationsRequest{Statuses: open, PageToken: pageTokenAt(100)})},
		{"queue-mine", queue, list(&triagev1.ListConversationsRequest{Statuses: open, Assignee: staff[0]})},
		{"queue-priority", queue, list(&triagev1.ListConversationsRequest{Statuses: open, Tier: supportv1.Tier_TIER_PRIORITY})},
		{"queue-breached", queue, list(&triagev1.ListConversationsRequest{Statuses: open, BreachedOnly: true})},
		{"queue-closed", queue, list(&triagev1.ListConversationsRequest{Statuses: []supportv1.ConversationStatus{supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED}})},
		{"queue-all", queue, list(&triagev1.ListConversationsRequest{})},
		{"conversation", conversation, func(ctx context.Context, _ int) error {
			i := rng.IntN(h.n)
			resp, err := convs.GetConversation(ctx, &triagev1.GetConversationRequest{Id: h.conversation(i).id})
			if err == nil && len(resp.GetMessages()) != int(h.counts[i]) {
				err = fmt.Errorf("conversation %d: %d messages, seeded %d", i, len(resp.GetMessages()), h.counts[i])
			}
			return err
		}},
		{"search-rare", searchTarget, search("E04242")},
		{"search-word", searchTarget, search("invoice refund")},
		{"search-common", searchTarget, search("timeout")},
		{"report-90d", report, func(ctx context.Context, _ int) error {
			to := time.Now()
			_, err := reports.Summary(ctx, &triagev1.SummaryRequest{From: timestamppb.New(to.Add(-90 * 24 * time.Hour)), To: timestamppb.New(to)})
			return err
		}},
	}
}

// pageTokenAt is grpcapi's page token of an offset.
func pageTokenAt(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprint(offset)))
}

// measure calls every page -history.calls times (the report a tenth as
// often) and reports p50 and p99 of each, then takes the plans.
func (h *history) measure(ctx context.Context, b *testing.B, phase string, convs triagev1.ConversationServiceClient,
	reports triagev1.ReportServiceClient, pool *pgxpool.Pool, rec *statementRecorder, plans *os.File) {
	for _, p := range h.pages(convs, reports) {
		calls := *historyCalls
		if p.target >= time.Second {
			calls = max(3, calls/10)
		}
		if err := p.call(ctx, -1); err != nil { // one warm-up call
			b.Fatalf("%s: %v", p.name, err)
		}
		lat := make([]time.Duration, 0, calls)
		began := time.Now()
		for i := range calls {
			if i >= 3 && time.Since(began) > *historyBudget {
				break // a slow page: fewer calls, said in the log
			}
			t0 := time.Now()
			if err := p.call(ctx, i); err != nil {
				b.Fatalf("%s: %v", p.name, err)
			}
			lat = append(lat, time.Since(t0))
		}
		slices.Sort(lat)
		pct := func(q float64) time.Duration { return lat[int(math.Ceil(q*float64(len(lat))))-1] }
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		verdict := "met"
		if pct(0.99) > p.target {
			verdict = "MISSED"
		}
		b.Logf("%s %-18s p50 %8.2f ms  p99 %8.2f ms  max %8.2f ms  (%d calls; target p99 %s: %s)",
			phase, p.name, ms(pct(0.5)), ms(pct(0.99)), ms(lat[len(lat)-1]), len(lat), p.target, verdict)
		b.ReportMetric(ms(pct(0.5)), phase+"/"+p.name+"-p50-ms")
		b.ReportMetric(ms(pct(0.99)), phase+"/"+p.name+"-p99-ms")

		if plans == nil {
			continue
		}
		rec.record(true)
		err := p.call(ctx, -1)
		stmts := rec.record(false)
		if err != nil {
			b.Fatalf("%s: %v", p.name, err)
		}
		fmt.Fprintf(plans, "\n## %s: %s\n", phase, p.name)
		if err := explain(ctx, pool, stmts, plans); err != nil {
			b.Fatalf("explain %s: %v", p.name, err)
		}
	}
}

// explain writes EXPLAIN (ANALYZE, BUFFERS) of each query of stmts, in
// one read-only transaction that also runs stmts' SET statements, and
// rolls it back. The pool's connections have triage's settings (JIT off).
func explain(ctx context.Context, pool *pgxpool.Pool, stmts []recorded, out *os.File) error {
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only
	for _, st := range stmts {
		q := strings.TrimSpace(st.sql)
		switch up := strings.ToUpper(q); {
		case strings.HasPrefix(up, "SET"):
			if _, err := tx.Exec(ctx, q, st.args...); err != nil {
				return err
			}
			fmt.Fprintf(out, "\n```sql\n%s\n```\n", q)
			continue
		case !strings.HasPrefix(up, "SELECT") && !strings.HasPrefix(up, "WITH"):
			continue
		}
		rows, err := tx.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+q, st.args...)
		if err != nil {
			return err
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "\n```sql\n%s\n```\n\n```\n%s\n```\n", q, strings.Join(lines, "\n"))
	}
	return nil
}

// history generates the seeded rows. Every conversation's facts follow
// from its index alone (its own random source), so each table is written
// by a stream of its own without keeping the history in memory.
type history struct {
	n, messages, customers int
	now                    time.Time
	// counts is each conversation's number of messages, adding up to
	// n × messages-per-conversation exactly.
	counts []uint16
}

// staff are the people conversations are assigned to.
var staff = func() []string {
	var s []string
	for i := range 40 {
		s = append(s, fmt.Sprintf("p%02d", i))
	}
	return s
}()

var (
	historyCategories = []string{"performance", "instrumentation", "ux-confusion", "data-integrity", "api", "plugins",
		"recordings", "toolbar", "feature-flags", "not-a-bug", "billing", "feature-request", "other"}
	historyTags  = []string{"enterprise", "regression", "docs", "follow-up", "sdk", "self-hosted"}
	historyTeams = []string{"platform", "product-analytics", "web", "infrastructure"}
	words        = strings.Fields(`the dashboard is slow since this morning and our events are missing from yesterday can you check
		why the export fails with a timeout we upgraded the SDK to the latest version but recordings stopped working feature
		flags return false for every user after deploy billing shows twice the events we sent please refund the invoice
		the API answers 502 on batch requests our insights do not load funnel breakdown by property is empty toolbar does not
		appear on the staging domain plugin crashed with out of memory error retention chart differs from the export
		thanks for the quick reply that fixed it I still see the problem on Safari could you share the query id here is a
		screenshot of the error we need this before the board meeting on Monday it works again after clearing the cache`)
)

func newHistory(n, perConversation, customers int) *history {
	if customers <= 0 {
		customers = max(1, n/20)
	}
	h := &history{n: n, customers: customers, now: time.Now().Truncate(time.Second), counts: make([]uint16, n)}
	// Messages per conversation: 1 + a geometric number of follow-ups
	// (most are short, some run long), then topped up or trimmed at random
	// to the exact total.
	rng := rand.New(rand.NewPCG(1, 1))
	total := 0
	p := 1 / float64(perConversation)
	for i := range h.counts {
		c := 1 + int(math.Log(1-rng.Float64())/math.Log(1-p))
		c = min(c, 400)
		h.counts[i] = uint16(c)
		total += c
	}
	for want := n * perConversation; total != want; {
		i := rng.IntN(n)
		switch {
		case total < want && h.counts[i] < 400:
			h.counts[i]++
			total++
		case total > want && h.counts[i] > 1:
			h.counts[i]--
			total--
		}
	}
	h.messages = total
	return h
}

// conv is one seeded conversation's facts.
type conv struct {
	i                   int
	rng                 *rand.Rand
	id, thread          string
	channel             supportv1.Channel
	status              supportv1.ConversationStatus
	closeReason         supportv1.CloseReason
	tier                supportv1.Tier
	customer            int // -1: not a known customer
	opened, lastMessage time.Time
	firstResponse       *time.Time
	responseWork        float64
	responseLevel       supportv1.DeadlineLevel
	deadline            *time.Time
	deadlineLevel       supportv1.DeadlineLevel
	assignee, responder string
	categories, tags    []string
	subject             string
	closed              time.Time
}

// tierThreshold is each tier's first-response deadline (working time,
// taken here as wall time).
var tierThreshold = map[supportv1.Tier]time.Duration{
	supportv1.Tier_TIER_PRIORITY:   time.Hour,
	supportv1.Tier_TIER_SUBSCRIBER: 4 * time.Hour,
	supportv1.Tier_TIER_COMMUNITY:  24 * time.Hour,
}

func (h *history) conversation(i int) conv {
	rng := rand.New(rand.NewPCG(uint64(i), 42))
	c := conv{i: i, rng: rng, customer: -1}
	// A stable UUID-shaped id from the index.
	c.id = fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", rng.Uint32(), rng.IntN(1<<16), rng.IntN(1<<12), rng.IntN(1<<12), uint64(i))
	// Volume grows over the years (twice as many a day at the end as at
	// the start): opened at the inverse of that distribution.
	u := (float64(i) + 0.5) / float64(h.n)
	frac := (math.Sqrt(1+3*u) - 1)
	c.opened = h.now.Add(-historySpan + time.Duration(frac*float64(historySpan))).Truncate(time.Millisecond)
	switch r := rng.Float64(); {
	case r < 0.40:
		c.channel = supportv1.Channel_CHANNEL_SLACK
	case r < 0.70:
		c.channel = supportv1.Channel_CHANNEL_EMAIL
	case r < 0.90:
		c.channel = supportv1.Channel_CHANNEL_GITHUB
	default:
		c.channel = supportv1.Channel_CHANNEL_SENTRY
	}
	c.thread = fmt.Sprintf("%s/%d.%06d", strings.ToLower(strings.TrimPrefix(c.channel.String(), "CHANNEL_")), c.opened.Unix(), i%1000000)
	c.tier = supportv1.Tier_TIER_COMMUNITY
	if c.channel == supportv1.Channel_CHANNEL_SENTRY {
		c.tier = supportv1.Tier_TIER_SUBSCRIBER
	} else if rng.Float64() < 0.75 {
		// A few customers write most: Zipf over the directory.
		c.customer = int(rand.NewZipf(rng, 1.1, 8, uint64(h.customers-1)).Uint64())
		c.tier = customerTier(c.customer, h.customers)
	}
	age := h.now.Sub(c.opened)
	recent := age < 14*24*time.Hour
	c.status = supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED
	switch r := rng.Float64(); {
	case recent && r < 0.35, !recent && r < 0.003:
		c.status = supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN
	case recent && r < 0.55, !recent && r < 0.005:
		c.status = supportv1.ConversationStatus_CONVERSATION_STATUS_AWAITING_CUSTOMER
	}
	spam := c.status == supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED && rng.Float64() < 0.02
	threshold := tierThreshold[c.tier]
	// First response: most within the tier's deadline, a tail past it.
	answered := !spam && (c.status != supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN || rng.Float64() < 0.5)
	if answered {
		rt := time.Duration(rng.ExpFloat64() * float64(threshold) / 3)
		if rt > age {
			rt = age / 2
		}
		at := c.opened.Add(rt)
		c.firstResponse = &at
		c.responseWork = rt.Seconds() * 0.6
		c.responseLevel = level(rt, threshold)
		c.deadlineLevel = c.responseLevel
		c.responder = staff[int(rand.NewZipf(rng, 1.2, 2, uint64(len(staff)-1)).Uint64())]
	} else if !spam {
		if age > threshold {
			c.deadlineLevel = supportv1.DeadlineLevel_DEADLINE_LEVEL_BREACHED
		} else {
			d := c.opened.Add(threshold)
			c.deadline = &d
			c.deadlineLevel = level(age, threshold)
		}
	}
	switch {
	case c.responder != "" && rng.Float64() < 0.9:
		c.assignee = c.responder
	case c.status != supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED && rng.Float64() < 0.6:
		c.assignee = staff[rng.IntN(len(staff))]
	}
	if spam {
		c.categories = []string{"spam"}
		c.closeReason = supportv1.CloseReason_CLOSE_REASON_SPAM
	} else if rng.Float64() < 0.005 {
		c.categories = []string{"business"}
	} else {
		c.categories = []string{historyCategories[int(rand.NewZipf(rng, 1.3, 1, uint64(len(historyCategories)-1)).Uint64())]}
		if rng.Float64() < 0.2 {
			c.categories = append(c.categories, historyCategories[rng.IntN(len(historyCategories))])
		}
	}
	if rng.Float64() < 0.1 {
		c.tags = []string{historyTags[rng.IntN(len(historyTags))]}
	}
	if c.status == supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED {
		if c.closeReason == 0 {
			c.closeReason = supportv1.CloseReason_CLOSE_REASON_RESOLVED
			if rng.Float64() < 0.01 {
				c.closeReason = supportv1.CloseReason_CLOSE_REASON_DUPLICATE
			}
		}
		c.closed = c.opened.Add(min(age, time.Duration(rng.ExpFloat64()*float64(3*24*time.Hour))))
	}
	c.subject = sentence(rng, 4, 10)
	c.lastMessage = c.opened
	return c
}

// level is the deadline level a first response after d reaches.
func level(d, threshold time.Duration) supportv1.DeadlineLevel {
	switch {
	case d <= threshold/2:
		return supportv1.DeadlineLevel_DEADLINE_LEVEL_GREAT
	case d <= threshold:
		return supportv1.DeadlineLevel_DEADLINE_LEVEL_OKAY
	case d <= 2*threshold:
		return supportv1.DeadlineLevel_DEADLINE_LEVEL_LATE
	}
	return supportv1.DeadlineLevel_DEADLINE_LEVEL_BREACHED
}

// customerTier: the top 5% of customers by revenue are Priority, the next
// 30% subscribers, the rest community.
func customerTier(c, customers int) supportv1.Tier {
	switch {
	case c < customers/20:
		return supportv1.Tier_TIER_PRIORITY
	case c < customers*35/100:
		return supportv1.Tier_TIER_SUBSCRIBER
	}
	return supportv1.Tier_TIER_COMMUNITY
}

func sentence(rng *rand.Rand, lo, hi int) string {
	n := lo + rng.IntN(hi-lo+1)
	var sb strings.Builder
	for j := range n {
		if j > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(words[rng.IntN(len(words))])
	}
	return sb.String()
}

// messageText is a message's words, a third of them quoting an error
// code (one of 100,000, so a code is in about 15 of 5 million messages),
// as customers paste them.
func messageText(rng *rand.Rand) string {
	t := sentence(rng, 8, 90)
	if rng.Float64() < 1.0/3 {
		t += fmt.Sprintf(" error E%05d", rng.IntN(100000))
	}
	return t
}

func (c conv) author(h *history) *supportv1.Author {
	if c.customer < 0 {
		return &supportv1.Author{Id: fmt.Sprintf("anon-%d", c.i%50000), Name: "Someone " + fmt.Sprint(c.i%50000), Role: supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER}
	}
	return &supportv1.Author{Id: fmt.Sprintf("U%07d", c.customer), Name: fmt.Sprintf("Customer %d", c.customer),
		Email: fmt.Sprintf("person@customer%d.example", c.customer), Organisation: fmt.Sprintf("Customer %d Ltd", c.customer),
		Role: supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER}
}

// message is the j-th message of c, with its received time.
func (c conv) message(h *history, j int, rng *rand.Rand) (*supportv1.InboundMessage, supportv1.AuthorRole) {
	role := supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER
	author := c.author(h)
	at := c.opened
	if j > 0 {
		role = supportv1.AuthorRole_AUTHOR_ROLE_STAFF
		if j%2 == 0 {
			role = supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER
		}
		end := c.closed
		if end.IsZero() {
			end = h.now
		}
		at = c.opened.Add(time.Duration(float64(end.Sub(c.opened)) * float64(j) / float64(j+1+rng.IntN(3))))
		if j == 1 && c.firstResponse != nil {
			at = *c.firstResponse
		}
	}
	if role == supportv1.AuthorRole_AUTHOR_ROLE_STAFF {
		p := c.responder
		if p == "" {
			p = staff[0]
		}
		author = &supportv1.Author{Id: "U0" + strings.ToUpper(p), Name: p, Role: role, PersonId: p}
	}
	m := &supportv1.InboundMessage{
		Id: fmt.Sprintf("%s-%08d-%03d", strings.ToLower(strings.TrimPrefix(c.channel.String(), "CHANNEL_")), c.i, j), Channel: c.channel,
		SourceId: fmt.Sprintf("%d.%06d", at.Unix(), j), ThreadKey: c.thread, Author: author,
		Text: messageText(rng), SentAt: timestamppb.New(at), ReceivedAt: timestamppb.New(at), Kind: supportv1.MessageKind_MESSAGE_KIND_POSTED,
	}
	if j == 0 {
		m.Subject = c.subject
	}
	if c.channel == supportv1.Channel_CHANNEL_SLACK {
		m.Permalink = "https://acme.slack.com/archives/C0SUPPORT/p" + strings.ReplaceAll(m.SourceId, ".", "")
	}
	return m, role
}

// seed writes the history with COPY, one stream per table, two at a
// time. The tables' own secondary indexes are dropped first and created
// again afterwards (what a restore does, many times faster than keeping
// them up to date row by row), and foreign keys are not checked while
// copying (session_replication_role = replica): the rows are consistent
// by construction. Then VACUUM ANALYZE, as autovacuum would have done over
// the years (ANALYZE alone for inbox and outbox).
func (h *history) seed(ctx context.Context, b *testing.B, pool *pgxpool.Pool) error {
	tables := []string{"customers", "customer_identities", "conversations", "messages", "notes", "audit", "timers", "inbox", "outbox"}
	rows, err := pool.Query(ctx, `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = ANY($2)
		AND indexname NOT IN (SELECT conname FROM pg_constraint)`, Schema, tables)
	if err != nil {
		return fmt.Errorf("list indexes: %w", err)
	}
	type index struct{ Name, Def string }
	indexes, err := pgx.CollectRows(rows, pgx.RowToStructByPos[index])
	if err != nil {
		return fmt.Errorf("list indexes: %w", err)
	}
	for _, ix := range indexes {
		if _, err := pool.Exec(ctx, `DROP INDEX `+pgx.Identifier{ix.Name}.Sanitize()); err != nil {
			return fmt.Errorf("drop index %s: %w", ix.Name, err)
		}
	}

	copies := []struct {
		table string
		cols  []string
		rows  func(emit func(...any) error) error
	}{
		{"customers", []string{"id", "name", "organisation", "plan", "monthly_revenue_cents", "created_at", "updated_at"}, h.customerRows},
		{"customer_identities", []string{"kind", "value", "customer_id", "position"}, h.identityRows},
		{"conversations", []string{"id", "channel", "thread_key", "status", "close_reason", "tier", "tier_reason", "categories", "tags",
			"subject", "customer_id", "author", "assignee", "team", "opened_at", "first_response_at", "last_customer_message_at",
			"next_deadline_at", "deadline_level", "message_count", "permalink", "updated_at", "clock", "first_response_work_seconds",
			"first_response_level", "suggested_categories", "suggestion_confidence", "suggestion_source", "classify_input"}, h.conversationRows},
		{"messages", []string{"id", "conversation_id", "channel", "thread_key", "source_id", "kind", "author_role", "body", "received_at", "search_text"}, h.messageRows},
		{"notes", []string{"id", "conversation_id", "author", "text", "handoff", "created_at"}, h.noteRows},
		{"audit", []string{"conversation_id", "actor", "action", "detail", "at"}, h.auditRows},
		{"timers", []string{"conversation_id", "status", "due_at", "armed_at", "fires"}, h.timerRows},
		{"inbox", []string{"message_id", "subject", "handled_at"}, h.inboxRows},
		{"outbox", []string{"id", "subject", "type", "payload", "created_at", "sent_at"}, h.outboxRows},
	}
	// messages alone on one connection, the rest on the other: the two
	// halves are about the same size.
	g, gctx := errgroup.WithContext(ctx)
	for _, part := range [][]int{{3}, {0, 1, 2, 4, 5, 6, 7, 8}} {
		g.Go(func() error {
			conn, err := pool.Acquire(gctx)
			if err != nil {
				return err
			}
			defer conn.Release()
			if _, err := conn.Exec(gctx, `SET session_replication_role = replica`); err != nil {
				return fmt.Errorf("bulk load settings: %w", err)
			}
			defer conn.Exec(context.Background(), `RESET session_replication_role`) //nolint:errcheck // best effort on a throwaway database
			for _, k := range part {
				c := copies[k]
				began := time.Now()
				src, stop := rowStream(c.rows)
				n, err := conn.CopyFrom(gctx, pgx.Identifier{c.table}, c.cols, src)
				stop()
				if err != nil {
					return fmt.Errorf("copy %s: %w", c.table, err)
				}
				b.Logf("  copy %s: %d rows in %s", c.table, n, time.Since(began).Round(time.Millisecond))
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}

	began := time.Now()
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(2)
	for _, ix := range indexes {
		g.Go(func() error {
			conn, err := pool.Acquire(gctx)
			if err != nil {
				return err
			}
			defer conn.Release()
			if _, err := conn.Exec(gctx, `SET maintenance_work_mem = '256MB'`); err != nil {
				return err
			}
			if _, err := conn.Exec(gctx, ix.Def); err != nil {
				return fmt.Errorf("create index %s: %w", ix.Name, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	b.Logf("  %d indexes created in %s", len(indexes), time.Since(began).Round(time.Millisecond))
	began = time.Now()
	for _, t := range tables {
		// What the pages read is vacuumed (visibility map, hint bits);
		// inbox and outbox, which only retention reads, are analysed.
		sql := `VACUUM (ANALYZE) `
		if t == "inbox" || t == "outbox" {
			sql = `ANALYZE `
		}
		if _, err := pool.Exec(ctx, sql+pgx.Identifier{t}.Sanitize()); err != nil {
			return fmt.Errorf("vacuum %s: %w", t, err)
		}
	}
	b.Logf("  vacuum analyze in %s", time.Since(began).Round(time.Millisecond))
	return nil
}

// rowStream turns a generator into a pgx.CopyFromSource, pulling one row
// at a time (iter.Pull), so no table is ever held in memory.
func rowStream(gen func(emit func(...any) error) error) (pgx.CopyFromSource, func()) {
	var genErr error
	next, stop := iter.Pull(func(yield func([]any) bool) {
		genErr = gen(func(v ...any) error {
			if !yield(v) {
				return errStopped
			}
			return nil
		})
	})
	return pgx.CopyFromFunc(func() ([]any, error) {
		row, ok := next()
		if !ok {
			return nil, genErr
		}
		return row, nil
	}), stop
}

var errStopped = errors.New("stopped")

func (h *history) customerRows(emit func(...any) error) error {
	created := h.now.Add(-historySpan - 30*24*time.Hour)
	for c := range h.customers {
		plan, revenue := "free", int64(0)
		switch customerTier(c, h.customers) {
		case supportv1.Tier_TIER_PRIORITY:
			plan, revenue = "enterprise", int64(250000+c%1000*100)
		case supportv1.Tier_TIER_SUBSCRIBER:
			plan, revenue = "scale", int64(5000+c%1000*10)
		}
		if err := emit(customerID(c), fmt.Sprintf("Customer %d", c), fmt.Sprintf("Customer %d Ltd", c), plan, revenue, created, created); err != nil {
			return err
		}
	}
	return nil
}

func customerID(c int) string { return fmt.Sprintf("cust-%06d", c) }

func (h *history) identityRows(emit func(...any) error) error {
	for c := range h.customers {
		if err := emit("email_domain", fmt.Sprintf("customer%d.example", c), customerID(c), int32(0)); err != nil {
			return err
		}
		if err := emit("slack", fmt.Sprintf("U%07d", c), customerID(c), int32(1)); err != nil {
			return err
		}
	}
	return nil
}

func (h *history) conversationRows(emit func(...any) error) error {
	for i := range h.n {
		c := h.conversation(i)
		author, err := json.Marshal(map[string]string{"id": c.author(h).GetId(), "name": c.author(h).GetName(),
			"email": c.author(h).GetEmail(), "organisation": c.author(h).GetOrganisation(), "role": "AUTHOR_ROLE_CUSTOMER"})
		if err != nil {
			return err
		}
		var customer *string
		reason := "unknown customer"
		if c.customer >= 0 {
			id := customerID(c.customer)
			customer, reason = &id, "customer plan"
		}
		clockJSON := fmt.Sprintf(`{"spans":[{"start":%q}]}`, c.opened.Format(time.RFC3339Nano))
		if c.firstResponse != nil {
			clockJSON = fmt.Sprintf(`{"spans":[{"start":%q,"end":%q}]}`, c.opened.Format(time.RFC3339Nano), c.firstResponse.Format(time.RFC3339Nano))
		}
		input, err := json.Marshal(map[string]string{"Channel": strings.ToLower(strings.TrimPrefix(c.channel.String(), "CHANNEL_")), "Subject": c.subject, "Text": c.subject})
		if err != nil {
			return err
		}
		var responseWork *float64
		if c.firstResponse != nil {
			responseWork = &c.responseWork
		}
		updated := c.opened
		if !c.closed.IsZero() {
			updated = c.closed
		}
		if err := emit(c.id, int16(c.channel), c.thread, int16(c.status), int16(c.closeReason), int16(c.tier), reason,
			c.categories, nonNilStrings(c.tags), c.subject, customer, author, c.assignee, historyTeams[i%len(historyTeams)],
			c.opened, c.firstResponse, c.opened, c.deadline, int16(c.deadlineLevel), int32(h.counts[i]), "", updated,
			clockJSON, responseWork, int16(c.responseLevel), c.categories, 0.8, "rules", input); err != nil {
			return err
		}
	}
	return nil
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (h *history) messageRows(emit func(...any) error) error {
	for i := range h.n {
		c := h.conversation(i)
		rng := rand.New(rand.NewPCG(uint64(i), 43))
		for j := range int(h.counts[i]) {
			m, role := c.message(h, j, rng)
			body, err := proto.Marshal(m)
			if err != nil {
				return err
			}
			if err := emit(m.GetId(), c.id, int16(c.channel), c.thread, m.GetSourceId(), int16(m.GetKind()), int16(role), body,
				m.GetReceivedAt().AsTime(), store.SearchText(m)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (h *history) noteRows(emit func(...any) error) error {
	for i := range h.n {
		c := h.conversation(i)
		if c.rng.Float64() >= 0.08 {
			continue
		}
		if err := emit(fmt.Sprintf("note-%08d", i), c.id, staff[c.rng.IntN(len(staff))], sentence(c.rng, 5, 40), c.rng.Float64() < 0.2,
			c.opened.Add(time.Hour)); err != nil {
			return err
		}
	}
	return nil
}

func (h *history) auditRows(emit func(...any) error) error {
	for i := range h.n {
		c := h.conversation(i)
		lines := [][]any{
			{c.id, c.author(h).GetId(), "opened", c.channel.String(), c.opened},
			{c.id, "system", "categorised", "suggested " + c.categories[0], c.opened},
		}
		if c.assignee != "" {
			lines = append(lines, []any{c.id, "system", "assigned", c.assignee, c.opened.Add(time.Minute)})
		}
		if c.firstResponse != nil {
			lines = append(lines, []any{c.id, c.responder, "responded", "first response", *c.firstResponse})
		}
		if !c.closed.IsZero() {
			lines = append(lines, []any{c.id, staff[c.rng.IntN(len(staff))], "closed", c.closeReason.String(), c.closed})
		}
		for _, l := range lines {
			if err := emit(l...); err != nil {
				return err
			}
		}
	}
	return nil
}

func (h *history) timerRows(emit func(...any) error) error {
	for i := range h.n {
		c := h.conversation(i)
		status, due := int16(2), c.opened
		if c.deadline != nil {
			status, due = 1, *c.deadline
		}
		if err := emit(c.id, status, due, c.opened, int32(0)); err != nil {
			return err
		}
	}
	return nil
}

func (h *history) inboxRows(emit func(...any) error) error {
	for i := range h.n {
		c := h.conversation(i)
		rng := rand.New(rand.NewPCG(uint64(i), 43))
		subject := "support.inbound." + strings.ToLower(strings.TrimPrefix(c.channel.String(), "CHANNEL_"))
		for j := range int(h.counts[i]) {
			m, _ := c.message(h, j, rng)
			if err := emit(m.GetId(), subject, m.GetReceivedAt().AsTime()); err != nil {
				return err
			}
		}
	}
	return nil
}

// outboxRows: the events of each conversation's life (opened, triaged,
// responded, closed), all sent, as the outbox holds them when nothing
// ever pruned it.
func (h *history) outboxRows(emit func(...any) error) error {
	for i := range h.n {
		c := h.conversation(i)
		snapshot := &supportv1.Conversation{Id: c.id, ThreadKey: c.thread, Channel: c.channel, Status: c.status, Tier: c.tier,
			Categories: c.categories, Subject: c.subject, Assignee: c.assignee, OpenedAt: timestamppb.New(c.opened), Author: c.author(h)}
		events := []struct {
			typ supportv1.ConversationEventType
			at  time.Time
		}{{supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_OPENED, c.opened}, {supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_TRIAGED, c.opened}}
		if c.firstResponse != nil {
			events = append(events, struct {
				typ supportv1.ConversationEventType
				at  time.Time
			}{supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_RESPONDED, *c.firstResponse})
		}
		if !c.closed.IsZero() {
			events = append(events, struct {
				typ supportv1.ConversationEventType
				at  time.Time
			}{supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_CLOSED, c.closed})
		}
		for k, e := range events {
			id := fmt.Sprintf("ev-%08d-%d", i, k)
			payload, err := proto.Marshal(&supportv1.ConversationEvent{Id: id, Type: e.typ, OccurredAt: timestamppb.New(e.at), Conversation: snapshot})
			if err != nil {
				return err
			}
			subject := "support.conversation." + strings.ToLower(strings.TrimPrefix(e.typ.String(), "CONVERSATION_EVENT_TYPE_"))
			if err := emit(id, subject, "sidekick.support.v1.ConversationEvent", payload, e.at, e.at.Add(50*time.Millisecond)); err != nil {
				return err
			}
		}
	}
	return nil
}
