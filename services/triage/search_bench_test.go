package triage

import (
	"context"
	"fmt"
	"testing"

	"github.com/sidekickhq/sidekick/services/triage/internal/store"
	"github.com/sidekickhq/sidekick/services/triage/internal/triagetest"
)

// BenchmarkSearch searches a database of 10,000 conversations and
// 200,000 messages (20 a conversation, texts drawn from a vocabulary of a
// few hundred words): a word in about one message in ten, a word in one
// conversation, a two-word query, each returning the first page of 50
// with snippets, as the console's search box asks.
func BenchmarkSearch(b *testing.B) {
	if testing.Short() {
		b.Skip("needs Postgres")
	}
	pool := triagetest.Database(b, Schema, Migrations())
	ctx := context.Background()
	const convs, per = 10000, 20
	// Words w0..w299 fill the texts; "exporter" is in every tenth message;
	// "zanzibar" in one conversation's message only.
	seed := fmt.Sprintf(`
		INSERT INTO conversations (id, channel, thread_key, status, tier, subject, opened_at, updated_at)
		SELECT 'c' || i, 1 + i %% 4, 't' || i, 1, 1 + i %% 3, 'Question ' || i || ' about w' || (i %% 300), now() - i * interval '1 minute', now()
		FROM generate_series(1, %[1]d) i;
		INSERT INTO messages (id, conversation_id, channel, thread_key, kind, author_role, body, received_at, search_text)
		SELECT 'm' || i, 'c' || (1 + i %% %[1]d), 1, 't' || (1 + i %% %[1]d), 1, 1, '\x'::bytea, now(),
			'w' || (i %% 300) || ' w' || (i * 7 %% 300) || ' w' || (i * 13 %% 300) || ' the customer writes about w' || (i * 31 %% 300) ||
			CASE WHEN i %% 10 = 0 THEN ' and the exporter crashes' ELSE '' END ||
			CASE WHEN i = 4242 THEN ' from zanzibar' ELSE '' END
		FROM generate_series(1, %[2]d) i;
		ANALYZE;`, convs, convs*per)
	if _, err := pool.Exec(ctx, seed); err != nil {
		b.Fatal(err)
	}
	for _, q := range []struct{ name, query string }{
		{"common_word", "exporter"},
		{"rare_word", "zanzibar"},
		{"two_words", "exporter crash"},
	} {
		b.Run(q.name, func(b *testing.B) {
			for b.Loop() {
				hits, err := store.Search(ctx, pool, q.query, store.Filter{Limit: 51})
				if err != nil || len(hits) == 0 {
					b.Fatalf("%s: %d hits, %v", q.query, len(hits), err)
				}
			}
		})
	}
}
