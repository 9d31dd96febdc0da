package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
)

// SearchText is what full-text search indexes of a message (the
// search_text column): its subject, text, and the author's name and
// handle, one a line.
func SearchText(m *supportv1.InboundMessage) string {
	var parts []string
	for _, s := range []string{m.GetSubject(), m.GetText(), m.GetAuthor().GetName(), m.GetAuthor().GetHandle()} {
		if s = strings.TrimSpace(s); s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, "\n")
}

// FillSearchText fills search_text for up to batch messages stored before
// search existed, returning how many it filled; 0 means none is left.
// Replicas filling at once skip each other's rows.
func FillSearchText(ctx context.Context, q Querier, batch int) (int, error) {
	found, err := storedBodies(ctx, q, `SELECT seq, body FROM messages WHERE search_text IS NULL
		ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`, batch)
	if err != nil {
		return 0, fmt.Errorf("fill search text: select: %w", err)
	}
	if len(found) == 0 {
		return 0, nil
	}
	seqs, texts := make([]int64, len(found)), make([]string, len(found))
	for i, s := range found {
		var m supportv1.InboundMessage
		if err := proto.Unmarshal(s.body, &m); err != nil {
			return 0, fmt.Errorf("fill search text: decode message %d: %w", s.seq, err)
		}
		seqs[i], texts[i] = s.seq, SearchText(&m)
	}
	if _, err := q.Exec(ctx, `UPDATE messages m SET search_text = t.text
		FROM unnest($1::bigint[], $2::text[]) AS t(seq, text) WHERE m.seq = t.seq`, seqs, texts); err != nil {
		return 0, fmt.Errorf("fill search text: update: %w", err)
	}
	return len(found), nil
}

// ErrEmptyQuery is returned by Search for a query with no words to search
// for (empty, punctuation, or only words too common to index).
var ErrEmptyQuery = errors.New("the query has no words to search for")

// Hit is one conversation a search found.
type Hit struct {
	Conversation *supportv1.Conversation
	Source       triagev1.SearchSource
	// MessageID or NoteID of the best match, by Source.
	MessageID, NoteID string
	Snippet           []*triagev1.SnippetPart
	Rank              float32
}

// Snippet markers: ts_headline wraps the words found in them. Characters
// of Unicode's private use area, removed from the text first, so that a
// customer cannot forge a match.
const (
	startMatch = "\ue000"
	stopMatch  = "\ue001"
)

// headlineOptions shape the snippet: one or two short fragments.
const headlineOptions = "StartSel=" + startMatch + ", StopSel=" + stopMatch +
	`, MaxWords=24, MinWords=8, ShortWord=2, MaxFragments=2, FragmentDelimiter=" … "`

// searchCandidates is how many of the newest matches of each kind (in
// messages, in notes, in subjects and authors, in customers) a search
// ranks before it picks a page: five pages of 50 at least. A word in a
// quarter of five million messages took 8–24 s to rank in full for a
// page of 50 (docs/performance.md); the newest matches are found by
// walking the newest rows until that many matched (or, for rare words,
// from the GIN index) and ranked in milliseconds. The walk costs about a
// row read for each match of a word found everywhere, so the bound is
// what a page costs: with 1,000, walking the subjects took 315 ms at a
// million conversations.
const searchCandidates = 250

// Search finds the conversations matching f whose messages, notes,
// subject or author, or customer contain query's words (websearch_to_tsquery
// syntax, English configuration).
//
// Order: the conversations of the newest searchCandidates matches of each
// kind come first, best match first (ts_rank of their best match among
// those), then newest, then by id; the conversations whose every match is
// older follow in the same order. A search whose matches are all among
// the newest (any rare word) is therefore ranked as a whole; a common
// word's first pages rank its recent matches, and paging on past them
// reaches every older one. The first part alone is read while it fills
// the page.
func Search(ctx context.Context, q Querier, query string, f Filter) ([]Hit, error) {
	return search(ctx, q, query, f, searchCandidates)
}

// search is Search with candidates newest matches of each kind ranked
// first.
func search(ctx context.Context, q Querier, query string, f Filter, candidates int) ([]Hit, error) {
	var nodes int
	if err := q.QueryRow(ctx, `SELECT numnode(websearch_to_tsquery('english', $1))`, query).Scan(&nodes); err != nil {
		return nil, fmt.Errorf("search: parse query: %w", err)
	}
	if nodes == 0 {
		return nil, ErrEmptyQuery
	}
	hits, ranked, err := searchPart(ctx, q, query, f, recentPart, candidates)
	if err != nil {
		return nil, err
	}
	if f.Limit > 0 && len(hits) == f.Limit {
		return hits, nil
	}
	if len(hits) == 0 && f.Offset > 0 {
		// The page starts past the recent part: how many it holds says
		// where in the older part the page starts.
		if ranked, err = searchCount(ctx, q, query, f, candidates); err != nil {
			return nil, err
		}
	}
	older := f
	older.Offset = max(0, f.Offset-ranked)
	if f.Limit > 0 {
		older.Limit = f.Limit - len(hits)
	}
	rest, _, err := searchPart(ctx, q, query, older, olderPart, candidates)
	if err != nil {
		return nil, err
	}
	return append(hits, rest...), nil
}

// A search's two parts (see Search).
const (
	recentPart = iota
	olderPart
)

// searchHits is the SQL of the matches of each kind, from $1's tsquery:
// (id, source, ref, doc) with the conversation's id, the kind (a
// triagev1.SearchSource), the message's or note's id and the tsvector
// that matched; limit is "" (every match) or a LIMIT on each kind's newest
// matches. A customer's conversations are looked up from the customers
// found (LATERAL): joined the other way, the planner walked every
// conversation newest first looking for a customer that matched none
// (28 s for an error code over a million conversations). The walks of
// the newest subjects and notes read indexes carrying the id and
// tsvector they return (migration 00010), not the rows.
func searchHits(limit string) string {
	return `
		(SELECT m.conversation_id AS id, 1 AS source, m.id AS ref, m.search AS doc
			FROM messages m WHERE m.search @@ websearch_to_tsquery('english', $1) AND m.conversation_id IS NOT NULL
			ORDER BY m.seq DESC` + limit + `)
		UNION ALL
		(SELECT n.conversation_id, 2, n.id, n.search FROM notes n WHERE n.search @@ websearch_to_tsquery('english', $1)
			ORDER BY n.created_at DESC` + limit + `)
		UNION ALL
		(SELECT c.id, 3, '', c.search FROM conversations c WHERE c.search @@ websearch_to_tsquery('english', $1)
			ORDER BY c.opened_at DESC` + limit + `)
		UNION ALL
		(SELECT c.id, 4, '', cu.search FROM customers cu CROSS JOIN LATERAL (
				SELECT c.id, c.opened_at FROM conversations c WHERE c.customer_id = cu.id ORDER BY c.opened_at DESC` + limit + `) c
			WHERE cu.search @@ websearch_to_tsquery('english', $1)
			ORDER BY c.opened_at DESC` + limit + `)`
}

// searchBest is the SQL of the CTEs up to best: each conversation's best
// match of part (id, source, ref, rank), the recent part being the
// candidates newest matches of each kind.
func searchBest(part, candidates int) string {
	recent := searchHits(` LIMIT ` + fmt.Sprint(candidates))
	sql := `WITH q AS (SELECT websearch_to_tsquery('english', $1) AS q),
	recent AS (` + recent + `),`
	switch part {
	case recentPart:
		sql += `
	hits AS (SELECT recent.*, ts_rank(recent.doc, q.q) AS rank FROM recent, q),`
	case olderPart:
		sql += `
	hits AS (SELECT every.*, ts_rank(every.doc, q.q) AS rank FROM (` + searchHits("") + `) every, q
		WHERE NOT EXISTS (SELECT 1 FROM recent WHERE recent.id = every.id)),`
	}
	return sql + `
	best AS (SELECT DISTINCT ON (id) id, source, ref, rank FROM hits ORDER BY id, rank DESC, source)`
}

// searchCount counts the conversations matching f in the recent part.
func searchCount(ctx context.Context, q Querier, query string, f Filter, candidates int) (int, error) {
	args := []any{query}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	filter := ""
	if where := f.conditions(arg); len(where) > 0 {
		filter = ` AND ` + strings.Join(where, " AND ")
	}
	var n int
	err := q.QueryRow(ctx, searchBest(recentPart, candidates)+`
	SELECT count(*) FROM best JOIN conversations c ON c.id = best.id WHERE true`+filter,
		append([]any{pgx.QueryExecModeExec}, args...)...).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("search: count the recent matches: %w", err)
	}
	return n, nil
}

// searchPart is a page of one part of a search, and how many
// conversations match f in that part (0 when the page is empty).
func searchPart(ctx context.Context, q Querier, query string, f Filter, part, candidates int) ([]Hit, int, error) {
	args := []any{query}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	where := f.conditions(arg)
	filter := ""
	if len(where) > 0 {
		filter = ` AND ` + strings.Join(where, " AND ")
	}
	page := ""
	if f.Limit > 0 {
		page += ` LIMIT ` + arg(f.Limit)
	}
	if f.Offset > 0 {
		page += ` OFFSET ` + arg(f.Offset)
	}
	opts := arg(headlineOptions)
	// The page is chosen before ts_headline runs, so snippets are made for
	// the page only. The tsquery is written out in each kind's condition
	// (not taken from q) so that the planner, which plans this statement
	// with its arguments (QueryExecModeExec), knows how common the words
	// are: it walks the newest rows for a common word and reads the GIN
	// index for a rare one.
	sql := searchBest(part, candidates) + `,
	page AS (
		SELECT best.*, count(*) OVER () AS matching FROM best JOIN conversations c ON c.id = best.id
		WHERE true` + filter + `
		ORDER BY best.rank DESC, c.opened_at DESC, c.id` + page + `
	)
	SELECT ` + conversationColumns + `, page.source, page.ref, page.rank, page.matching,
		ts_headline('english', translate(CASE page.source
			WHEN 1 THEN (SELECT coalesce(m.search_text, '') FROM messages m WHERE m.id = page.ref)
			WHEN 2 THEN (SELECT n.text FROM notes n WHERE n.id = page.ref)
			WHEN 3 THEN concat_ws(' · ', nullif(c.subject, ''), nullif(c.author->>'name', ''), nullif(c.author->>'handle', ''),
				nullif(c.author->>'email', ''), nullif(c.author->>'organisation', ''))
			ELSE concat_ws(' · ', nullif(cu.name, ''), nullif(cu.organisation, ''))
		END, '` + startMatch + stopMatch + `', ''), q.q, ` + opts + `)
	FROM page JOIN conversations c ON c.id = page.id LEFT JOIN customers cu ON cu.id = c.customer_id, q
	ORDER BY page.rank DESC, c.opened_at DESC, c.id`
	rows, err := q.Query(ctx, sql, append([]any{pgx.QueryExecModeExec}, args...)...)
	if err != nil {
		return nil, 0, fmt.Errorf("search: %w", err)
	}
	var matching int
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Hit, error) {
		var (
			h         Hit
			source    int32
			ref, head string
		)
		c, err := scanConversationWith(r, &source, &ref, &h.Rank, &matching, &head)
		if err != nil {
			return h, err
		}
		h.Conversation, h.Source, h.Snippet = c, triagev1.SearchSource(source), snippet(head)
		switch h.Source {
		case triagev1.SearchSource_SEARCH_SOURCE_MESSAGE:
			h.MessageID = ref
		case triagev1.SearchSource_SEARCH_SOURCE_NOTE:
			h.NoteID = ref
		}
		return h, nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("search: %w", err)
	}
	return out, matching, nil
}

// snippet splits ts_headline's output at the match markers.
func snippet(head string) []*triagev1.SnippetPart {
	var out []*triagev1.SnippetPart
	for head != "" {
		i := strings.Index(head, startMatch)
		if i < 0 {
			out = append(out, &triagev1.SnippetPart{Text: head})
			break
		}
		if i > 0 {
			out = append(out, &triagev1.SnippetPart{Text: head[:i]})
		}
		head = head[i+len(startMatch):]
		j := strings.Index(head, stopMatch)
		if j < 0 {
			j = len(head)
		}
		out = append(out, &triagev1.SnippetPart{Text: head[:j], Match: true})
		head = strings.TrimPrefix(head[j:], stopMatch)
	}
	return out
}
