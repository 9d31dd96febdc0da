package main

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/sidekick/fakes"
)

// storedRow is one row of triage's messages table in a thread the run
// wrote to.
type storedRow struct {
	id             string
	threadKey      string
	conversationID string
	tier           supportv1.Tier
}

// observed is everything the count reads after a run: triage's tables,
// and what the fake Slack and PagerDuty received.
type observed struct {
	rows []storedRow
	// convsPerThread counts triage's conversations per thread key.
	convsPerThread map[string]int
	posts          []fakes.SlackMessage
	// updates are the chat.update calls Slack took: the rewrites of a
	// burst's message as its list grew.
	updates []fakes.SlackMessage
	// refused are the posts and rewrites the fake refused as real Slack
	// would (past its documented limits).
	refused []fakes.SlackMessage
	pages   []fakes.PagerDutyEvent
}

// result is one scenario run's figures.
type result struct {
	Scenario string
	Repeat   int
	Run      int

	// Slack messages: sent (their first attempt left), accepted (a 2xx
	// on some attempt), stored (in triage's messages table), lost
	// (accepted, not stored), duplicated (stored more than once: a second
	// row or a second conversation for one Slack message).
	Sent, Accepted, Stored, Lost, Duplicated int
	// Attempts is every POST made, retries included.
	Attempts int

	// Conversations the policies say to notify (one ping for a
	// Subscriber, one digest item for Community), and how many got a
	// ping, a digest item, exactly one notification, none, or more than
	// one. DupPings counts pings beyond the first of one conversation.
	Expected, Pinged, Digested, Once, Never, Twice, DupPings int
	// Refused counts the conversations never notified that were in a
	// post over Slack's limits: not lost by the notifier, but refused by
	// real Slack.
	Refused int
	// OverLimit counts posts and rewrites past Slack's documented
	// limits, which Slack (and the fake) refuses: invalid_blocks,
	// msg_too_long.
	OverLimit int

	// Sentry storm: webhooks sent and accepted; issues, issues with a
	// conversation in triage, issues paged (PagerDuty trigger and Slack
	// page), pages beyond the first per issue.
	SentryEvents, SentryAccepted, Issues, IssuesStored, IssuesPaged, DupPages int

	// Crashes are exits of a process the harness did not cause.
	Crashes int
	// Fault says what was done and when, for the log.
	Fault string
	// Examples names a few tokens per problem, for the log.
	Examples map[string][]string
}

// tokenRE finds message and issue tokens in ids and texts.
var tokenRE = regexp.MustCompile(`CHAOS(\d{3})([NS])(\d+)`)

// tokensIn returns the run's message tokens (kind 'N') or issue tokens
// ('S') in s, each once.
func tokensIn(s string, run int, kind string) []string {
	prefix := fmt.Sprintf("CHAOS%03d%s", run, kind)
	var out []string
	seen := map[string]bool{}
	for _, m := range tokenRE.FindAllString(s, -1) {
		if strings.HasPrefix(m, prefix) && !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	return out
}

// messages groups the posts with their rewrites: one slice per message
// (channel and ts), the post first, in the order they were posted.
// Rewrites of a message not posted here are left out; a post without a
// ts is a message of its own.
func messages(posts, updates []fakes.SlackMessage) [][]fakes.SlackMessage {
	at := map[string]int{}
	var out [][]fakes.SlackMessage
	for _, p := range posts {
		if p.TS != "" {
			at[p.Channel+"/"+p.TS] = len(out)
		}
		out = append(out, []fakes.SlackMessage{p})
	}
	for _, u := range updates {
		if i, ok := at[u.Channel+"/"+u.TS]; ok {
			out[i] = append(out[i], u)
		}
	}
	return out
}

// isDigest tells a digest from a ping: its title is "digest: N new
// conversations".
func isDigest(m fakes.SlackMessage) bool { return strings.Contains(m.Text, "digest: ") }

// isSentryPage tells a Sentry alert's page.
func isSentryPage(m fakes.SlackMessage) bool { return strings.Contains(m.Text, "Sentry alert: ") }

// tally counts one run from what it sent and what was observed.
func tally(run int, tr *traffic, obs observed) result {
	r := result{Run: run, Examples: map[string][]string{}}
	example := func(kind, token string) {
		if len(r.Examples[kind]) < 5 {
			r.Examples[kind] = append(r.Examples[kind], token)
		}
	}

	// Messages: what was sent and accepted ...
	byToken := map[string]*sentMessage{}
	for _, m := range tr.messages {
		byToken[m.token] = m
		if m.attempts > 0 {
			r.Sent++
		}
		r.Attempts += m.attempts
		if m.accepted {
			r.Accepted++
		}
	}
	// ... and what triage stored, per thread.
	type thread struct {
		token string
		rows  int
		convs map[string]bool
		tier  supportv1.Tier
	}
	threads := map[string]*thread{}
	for _, row := range obs.rows {
		th := threads[row.threadKey]
		if th == nil {
			th = &thread{convs: map[string]bool{}}
			threads[row.threadKey] = th
		}
		th.rows++
		if row.conversationID != "" {
			th.convs[row.conversationID] = true
		}
		if toks := tokensIn(row.id, run, "N"); len(toks) == 1 {
			th.token = toks[0]
			th.tier = row.tier
		}
	}
	storedTier := map[string]supportv1.Tier{}
	for key, th := range threads {
		if th.token == "" {
			continue // a thread the run did not write (cannot happen: rows are selected by the run's threads)
		}
		r.Stored++
		storedTier[th.token] = th.tier
		extra := max(th.rows-1, 0) + max(obs.convsPerThread[key]-1, 0)
		if extra > 0 {
			r.Duplicated += extra
			example("duplicated", th.token)
		}
	}
	for _, m := range tr.messages {
		if _, ok := storedTier[m.token]; m.accepted && !ok {
			r.Lost++
			example("lost", m.token)
		}
	}

	// Notifications at the fake Slack: pings and digest items per
	// message token, from what Slack took (the fake refuses what real
	// Slack refuses, and keeps it apart: counted as refused). A
	// message is a post with its rewrites (chat.update of its channel and
	// ts): a burst's message lists more conversations as it grows, so a
	// conversation is notified by the message once it is in the post or
	// in any rewrite of it, and a conversation in two messages is
	// notified twice.
	pings, items, refused := map[string]int{}, map[string]int{}, map[string]bool{}
	for _, m := range obs.refused {
		toks := tokensIn(m.Text+" "+string(m.Blocks), run, "N")
		if len(toks) == 0 {
			continue
		}
		r.OverLimit++
		example("over Slack's limits", m.Method+": "+m.Error)
		for _, t := range toks {
			refused[t] = true
		}
	}
	for _, versions := range messages(obs.posts, obs.updates) {
		post := versions[0]
		if isSentryPage(post) {
			continue
		}
		listed := map[string]bool{}
		for _, v := range versions {
			for _, t := range tokensIn(v.Text+" "+string(v.Blocks), run, "N") {
				listed[t] = true
			}
		}
		for t := range listed {
			if isDigest(post) {
				items[t]++
			} else {
				pings[t]++
			}
		}
	}
	tokens := make([]string, 0, len(storedTier))
	for t := range storedTier {
		tokens = append(tokens, t)
	}
	sort.Strings(tokens)
	for _, t := range tokens {
		switch storedTier[t] {
		case supportv1.Tier_TIER_SUBSCRIBER, supportv1.Tier_TIER_COMMUNITY:
		default:
			continue // no policy of the harness's organisation matches
		}
		r.Expected++
		p, d := pings[t], items[t]
		if p > 0 {
			r.Pinged++
		}
		if d > 0 {
			r.Digested++
		}
		if p > 1 {
			r.DupPings += p - 1
			example("duplicate ping", t)
		}
		switch n := p + d; {
		case n == 0 && refused[t]:
			r.Never++
			r.Refused++
			example("only in posts over Slack's limits", t)
		case n == 0:
			r.Never++
			example("never notified", t)
		case n == 1:
			r.Once++
		default:
			r.Twice++
			example("notified more than once", t)
		}
	}

	// The Sentry storm: one conversation and one page per issue.
	slackPages, pdKeys := map[string]int{}, map[string]map[string]bool{}
	for _, p := range obs.posts {
		if isSentryPage(p) {
			for _, t := range tokensIn(p.Text+" "+string(p.Blocks), run, "S") {
				slackPages[t]++
			}
		}
	}
	for _, e := range obs.pages {
		if e.EventAction != "trigger" || e.Payload == nil {
			continue
		}
		for _, t := range tokensIn(e.Payload.Summary, run, "S") {
			if pdKeys[t] == nil {
				pdKeys[t] = map[string]bool{}
			}
			pdKeys[t][e.DedupKey] = true
		}
	}
	for _, is := range tr.issues {
		r.SentryEvents += is.events
		r.SentryAccepted += is.accepted
		if is.events == 0 {
			continue
		}
		r.Issues++
		if obs.convsPerThread["sentry:"+is.issueID] > 0 {
			r.IssuesStored++
		} else if is.accepted > 0 {
			example("Sentry issue not stored", is.token)
		}
		s, k := slackPages[is.token], len(pdKeys[is.token])
		if s > 0 && k > 0 {
			r.IssuesPaged++
		} else if is.accepted > 0 {
			example("Sentry issue not paged", is.token)
		}
		if extra := max(s-1, 0) + max(k-1, 0); extra > 0 {
			r.DupPages += extra
			example("Sentry issue paged twice", is.token)
		}
	}
	return r
}

// observe reads what a run left: triage's rows in the run's Slack
// threads and Sentry issues, and everything the fakes received.
func (s *stack) observe(ctx context.Context, run int, tr *traffic) (observed, error) {
	obs := observed{convsPerThread: map[string]int{}}
	like := fmt.Sprintf("slack:EvCHAOS%03dN%%", run)
	rows, err := s.db.Query(ctx, `
		SELECT m.id, m.thread_key, coalesce(m.conversation_id, ''), coalesce(c.tier, 0)
		FROM triage.messages m LEFT JOIN triage.conversations c ON c.id = m.conversation_id
		WHERE m.channel = $1 AND m.thread_key IN (SELECT thread_key FROM triage.messages WHERE id LIKE $2)`,
		int(supportv1.Channel_CHANNEL_SLACK), like)
	if err != nil {
		return obs, fmt.Errorf("read triage's messages: %w", err)
	}
	for rows.Next() {
		var row storedRow
		var tier int32
		if err := rows.Scan(&row.id, &row.threadKey, &row.conversationID, &tier); err != nil {
			return obs, fmt.Errorf("read triage's messages: %w", err)
		}
		row.tier = supportv1.Tier(tier)
		obs.rows = append(obs.rows, row)
	}
	if err := rows.Err(); err != nil {
		return obs, fmt.Errorf("read triage's messages: %w", err)
	}
	keys := []string{}
	for _, row := range obs.rows {
		keys = append(keys, row.threadKey)
	}
	for _, is := range tr.issues {
		keys = append(keys, "sentry:"+is.issueID)
	}
	crows, err := s.db.Query(ctx, `SELECT thread_key, count(*) FROM triage.conversations WHERE thread_key = ANY($1) GROUP BY 1`, keys)
	if err != nil {
		return obs, fmt.Errorf("read triage's conversations: %w", err)
	}
	for crows.Next() {
		var key string
		var n int
		if err := crows.Scan(&key, &n); err != nil {
			return obs, fmt.Errorf("read triage's conversations: %w", err)
		}
		obs.convsPerThread[key] = n
	}
	if err := crows.Err(); err != nil {
		return obs, fmt.Errorf("read triage's conversations: %w", err)
	}
	obs.posts, obs.updates, obs.refused = s.slack.Posted(), s.slack.Updated(), s.slack.Refused()
	obs.pages = s.pd.Events()
	return obs, nil
}

// storedCount is how many of the run's Slack messages triage has stored.
func (s *stack) storedCount(ctx context.Context, run int) (int, error) {
	var n int
	err := s.db.QueryRow(ctx, `SELECT count(*) FROM triage.messages WHERE id LIKE $1`, fmt.Sprintf("slack:EvCHAOS%03dN%%", run)).Scan(&n)
	return n, err
}
