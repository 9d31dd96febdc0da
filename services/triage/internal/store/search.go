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

// Search finds the conversations matching f whose messages, notes,
// subject or author, or customer contain query's words (websearch_to_tsquery
// syntax, English configuration), best match first, then newest.
func Search(ctx context.Context, q Querier, query string, f Filter) ([]Hit, error) {
	var nodes int
	if err := q.QueryRow(ctx, `SELECT numnode(websearch_to_tsquery('english', $1))`, query).Scan(&nodes); err != nil {
		return nil, fmt.Errorf("search: parse query: %w", err)
	}
	if nodes == 0 {
		return nil, ErrEmptyQuery
	}
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
	// hits are every match; best keeps each conversation's best one; the
	// page is chosen before ts_headline runs, so snippets are made for the
	// page only.
	sql := `WITH q AS (SELECT websearch_to_tsquery('english', $1) AS q),
	hits AS (
		SELECT m.conversation_id AS id, 1 AS source, m.id AS ref, ts_rank(m.search, q.q) AS rank
			FROM messages m, q WHERE m.search @@ q.q AND m.conversation_id IS NOT NULL
		UNION ALL
		SELECT n.conversation_id, 2, n.id, ts_rank(n.search, q.q) FROM notes n, q WHERE n.search @@ q.q
		UNION ALL
		SELECT c.id, 3, '', ts_rank(c.search, q.q) FROM conversations c, q WHERE c.search @@ q.q
		UNION ALL
		SELECT c.id, 4, '', ts_rank(cu.search, q.q)
			FROM customers cu JOIN conversations c ON c.customer_id = cu.id, q WHERE cu.search @@ q.q
	),
	best AS (SELECT DISTINCT ON (id) id, source, ref, rank FROM hits ORDER BY id, rank DESC, source),
	page AS (
		SELECT best.* FROM best JOIN conversations c ON c.id = best.id
		WHERE true` + filter + `
		ORDER BY best.rank DESC, c.opened_at DESC, c.id` + page + `
	)
	SELECT ` + conversationColumns + `, page.source, page.ref, page.rank,
		ts_headline('english', translate(CASE page.source
			WHEN 1 THEN (SELECT coalesce(m.search_text, '') FROM messages m WHERE m.id = page.ref)
			WHEN 2 THEN (SELECT n.text FROM notes n WHERE n.id = page.ref)
			WHEN 3 THEN concat_ws(' · ', nullif(c.subject, ''), nullif(c.author->>'name', ''), nullif(c.author->>'handle', ''),
				nullif(c.author->>'email', ''), nullif(c.author->>'organisation', ''))
			ELSE concat_ws(' · ', nullif(cu.name, ''), nullif(cu.organisation, ''))
		END, '` + startMatch + stopMatch + `', ''), q.q, ` + opts + `)
	FROM page JOIN conversations c ON c.id = page.id LEFT JOIN customers cu ON cu.id = c.customer_id, q
	ORDER BY page.rank DESC, c.opened_at DESC, c.id`
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Hit, error) {
		var (
			h         Hit
			source    int32
			ref, head string
		)
		c, err := scanConversationWith(r, &source, &ref, &h.Rank, &head)
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
		return nil, fmt.Errorf("search: %w", err)
	}
	return out, nil
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
