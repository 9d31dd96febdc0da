package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/sidekick/fakes"
)

// post is a chat.postMessage as the notifier makes it: the fallback text
// and one section with the title and text.
func post(title, text string) fakes.SlackMessage {
	blocks, _ := json.Marshal([]map[string]any{{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": "*" + title + "*\n" + text}}})
	return fakes.SlackMessage{Method: "chat.postMessage", Text: "ping: " + title, Blocks: blocks}
}

func TestTally(t *testing.T) {
	const run = 7
	tok := func(n int) string { return tokenOf(run, n) }
	tr := &traffic{}
	for n, accepted := range []bool{true, true, true, true, true, false} {
		tr.messages = append(tr.messages, &sentMessage{n: n, token: tok(n), attempts: 1 + n%2, accepted: accepted})
	}
	tr.issues = []*sentIssue{
		{k: 0, token: issueTokenOf(run, 0), issueID: "1", events: 5, accepted: 5},
		{k: 1, token: issueTokenOf(run, 1), issueID: "2", events: 5, accepted: 4},
		{k: 2, token: issueTokenOf(run, 2), issueID: "3", events: 3, accepted: 3},
	}
	sub, comm := supportv1.Tier_TIER_SUBSCRIBER, supportv1.Tier_TIER_COMMUNITY
	stored := func(n int, tier supportv1.Tier) storedRow {
		return storedRow{id: "slack:Ev" + tok(n), threadKey: fmt.Sprintf("T:C:%d", n), conversationID: fmt.Sprintf("c%d", n), tier: tier}
	}
	obs := observed{
		rows: []storedRow{
			stored(0, sub), stored(1, sub), // 2 is lost
			stored(3, comm),
			{id: "slack:EvOTHER", threadKey: "T:C:3", conversationID: "c3", tier: comm}, // 3 stored twice
			stored(4, comm),
			stored(5, comm), // not accepted, stored all the same
		},
		convsPerThread: map[string]int{"T:C:0": 1, "T:C:1": 1, "T:C:3": 1, "T:C:4": 2, "T:C:5": 1, "sentry:1": 1, "sentry:2": 1},
		posts: []fakes.SlackMessage{
			post("new subscriber conversation", tok(0)+": help"),
			post("new subscriber conversation", tok(1)+": help"),
			post("new subscriber conversation", tok(1)+": help"), // a duplicate ping
			post("digest: 2 new conversations", "• "+tok(3)+"\n• "+tok(5)+"\n• "+tokenOf(run+1, 9)),
			post("Sentry alert: "+issueTokenOf(run, 0)+" TypeError", ""),
			post("Sentry alert: "+issueTokenOf(run, 1)+" TypeError", ""),
			post("Sentry alert: "+issueTokenOf(run, 1)+" TypeError", ""), // paged twice on Slack
		},
		refused: []fakes.SlackMessage{refusedPost(post("digest: 1 new conversation", "• "+tok(4)+strings.Repeat("x", fakes.SlackMaxSectionText)))},
		pages: []fakes.PagerDutyEvent{
			{EventAction: "trigger", DedupKey: "a", Payload: &fakes.PagerDutyPayload{Summary: "Sentry alert: " + issueTokenOf(run, 0)}},
			{EventAction: "trigger", DedupKey: "b", Payload: &fakes.PagerDutyPayload{Summary: "Sentry alert: " + issueTokenOf(run, 1)}},
			{EventAction: "acknowledge", DedupKey: "b"},
		},
	}
	got := tally(run, tr, obs)
	got.Examples = nil
	want := result{Run: run,
		Sent: 6, Attempts: 9, Accepted: 5, Stored: 5, Lost: 1, Duplicated: 2,
		Expected: 5, Pinged: 2, Digested: 2, Once: 3, Never: 1, Refused: 1, Twice: 1, DupPings: 1, OverLimit: 1,
		SentryEvents: 13, SentryAccepted: 12, Issues: 3, IssuesStored: 2, IssuesPaged: 2, DupPages: 1,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("tally:\n got %+v\nwant %+v", got, want)
	}
}

// A burst's message is posted with one conversation and rewritten as
// more come in: each conversation it lists is notified once, however many
// rewrites list it; one also listed by another message is notified twice;
// a rewrite real Slack would refuse notifies nobody.
func TestTallyCountsABurstsMessageOnce(t *testing.T) {
	const run = 3
	tok := func(n int) string { return tokenOf(run, n) }
	tr := &traffic{}
	obs := observed{convsPerThread: map[string]int{}}
	for n := range 5 {
		tr.messages = append(tr.messages, &sentMessage{n: n, token: tok(n), attempts: 1, accepted: true})
		obs.rows = append(obs.rows, storedRow{id: "slack:Ev" + tok(n), threadKey: fmt.Sprintf("T:C:%d", n), conversationID: fmt.Sprintf("c%d", n), tier: supportv1.Tier_TIER_SUBSCRIBER})
		obs.convsPerThread[fmt.Sprintf("T:C:%d", n)] = 1
	}
	at := func(m fakes.SlackMessage, ts, method string) fakes.SlackMessage {
		m.Channel, m.TS, m.Method = "D0HERO", ts, method
		return m
	}
	obs.posts = []fakes.SlackMessage{
		at(post("new subscriber conversation", tok(0)), "1.1", "chat.postMessage"),
		at(post("new subscriber conversation", tok(2)), "1.2", "chat.postMessage"),
	}
	obs.updates = []fakes.SlackMessage{
		at(post("2 new conversations", tok(0)+"\n"+tok(1)), "1.1", "chat.update"),
		at(post("3 new conversations", tok(0)+"\n"+tok(1)+"\n"+tok(2)), "1.1", "chat.update"),
		at(post("5 new conversations", tok(4)), "9.9", "chat.update"), // of no message posted
	}
	obs.refused = []fakes.SlackMessage{refusedPost(at(post("4 new conversations", tok(3)+strings.Repeat("x", fakes.SlackMaxSectionText)), "1.1", "chat.update"))}
	got := tally(run, tr, obs)
	if got.Expected != 5 || got.Once != 2 || got.Twice != 1 || got.DupPings != 1 || got.Never != 2 || got.Refused != 1 || got.OverLimit != 1 {
		t.Errorf("tally %+v; want 5 to notify: 2 once (0, 1), 1 twice (2), 2 never (3 only in a refused rewrite)", got)
	}
}

// refusedPost is m as the fake keeps it after refusing it.
func refusedPost(m fakes.SlackMessage) fakes.SlackMessage {
	m.Error = fakes.SlackRefusal(m.Text, string(m.Blocks))
	return m
}

func TestPlanIsSeeded(t *testing.T) {
	l := load{run: 3, messages: 200, pingShare: 0.25, sentryIssues: 2, seed: 42}
	users := func(l load) []string {
		_, msgs := l.plan()
		var out []string
		for _, m := range msgs {
			out = append(out, m.UserID+" "+m.Text)
		}
		return out
	}
	a, b := users(l), users(l)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed planned different runs")
	}
	other := l
	other.seed = 43
	if reflect.DeepEqual(a, users(other)) {
		t.Fatal("another seed planned the same run")
	}
	tr, msgs := l.plan()
	subs := 0
	for i, m := range tr.messages {
		if !strings.HasPrefix(msgs[i].Text, m.token+":") || msgs[i].EventID != "Ev"+m.token {
			t.Fatalf("message %d does not carry its token %s: %+v", i, m.token, msgs[i])
		}
		if m.subscriber != strings.HasPrefix(msgs[i].UserID, "U0SUBSCR") {
			t.Fatalf("message %d: subscriber %v but user %s", i, m.subscriber, msgs[i].UserID)
		}
		if m.subscriber {
			subs++
		}
	}
	if subs == 0 || subs == len(msgs) {
		t.Fatalf("%d of %d messages from Subscribers with a share of 0.25", subs, len(msgs))
	}
	if len(tr.issues) != 2 || tr.issues[1].token != issueTokenOf(3, 1) {
		t.Fatalf("issues %+v", tr.issues)
	}
}

func TestDeliverRetriesLikeSlack(t *testing.T) {
	retries := retryPolicy{after: []time.Duration{0, 0, 0}}
	type call struct {
		retry  int
		reason string
	}
	var calls []call
	answers := []struct {
		code int
		err  error
	}{{http.StatusServiceUnavailable, nil}, {0, context.DeadlineExceeded}, {0, errors.New("connection refused")}, {http.StatusOK, nil}}
	statuses, ok := deliver(context.Background(), retries, func(_ context.Context, retry int, reason string) (int, error) {
		calls = append(calls, call{retry, reason})
		a := answers[len(calls)-1]
		return a.code, a.err
	})
	if !ok || !reflect.DeepEqual(statuses, []int{503, 0, 0, 200}) {
		t.Fatalf("deliver = %v, %v; want accepted on the fourth attempt", statuses, ok)
	}
	want := []call{{0, ""}, {1, fakes.SlackRetryHTTPError}, {2, fakes.SlackRetryTimeout}, {3, fakes.SlackRetryConnect}}
	if !reflect.DeepEqual(calls, want) {
		t.Fatalf("attempts %+v, want %+v", calls, want)
	}

	calls = nil
	answers = answers[:0]
	for range 4 {
		answers = append(answers, struct {
			code int
			err  error
		}{http.StatusInternalServerError, nil})
	}
	if statuses, ok := deliver(context.Background(), retries, func(_ context.Context, retry int, reason string) (int, error) {
		calls = append(calls, call{retry, reason})
		return answers[len(calls)-1].code, nil
	}); ok || len(statuses) != 4 {
		t.Fatalf("deliver = %v, %v; want given up after four attempts", statuses, ok)
	}
}

func TestFailures(t *testing.T) {
	rs := []result{
		{Run: 1, Scenario: "kill triage", Expected: 10, Once: 10, Issues: 1, IssuesStored: 1, IssuesPaged: 1},
		{Run: 2, Scenario: "kill notifier", Expected: 10, Once: 8, Never: 1, Twice: 1, DupPings: 1, Issues: 1, IssuesStored: 1, IssuesPaged: 1},
		{Run: 3, Scenario: "postgres stopped", Lost: 2, Expected: 10, Once: 10, Issues: 1, IssuesStored: 1, IssuesPaged: 1},
	}
	if got := failures(rs, map[string]bool{"messages": true}); len(got) != 1 || !strings.Contains(got[0], "run 3") {
		t.Errorf("messages only: %q", got)
	}
	if got := failures(rs, map[string]bool{"notified": true}); len(got) != 2 || !strings.Contains(got[0], "run 2") {
		t.Errorf("notified only: %q", got)
	}
	if got := failures(rs[:1], map[string]bool{"messages": true, "notified": true}); len(got) != 0 {
		t.Errorf("a clean run: %q", got)
	}
}

func TestMarkdownSumsRepeats(t *testing.T) {
	rs := []result{
		{Scenario: "kill triage", Run: 1, Sent: 10, Accepted: 10, Stored: 10, Expected: 10, Once: 9, Never: 1, Fault: "SIGKILL triage"},
		{Scenario: "kill notifier", Run: 2, Sent: 10, Accepted: 9, Stored: 9, Expected: 9, Once: 8, Twice: 1, DupPings: 1, Fault: "SIGKILL notifier"},
		{Scenario: "kill triage", Run: 3, Sent: 10, Accepted: 10, Stored: 10, Expected: 10, Once: 10, Fault: "SIGKILL triage"},
	}
	var b strings.Builder
	markdown(&b, reportMeta{Command: "go run ./bench/chaos"}, rs)
	out := b.String()
	for _, want := range []string{
		"| kill triage | 2 | 20 | 20 | 20 | 0 | 0 | 20 | 19 | 1 (0) | 0 | 0 | 0 | 0/0 | 0 | 0 |",
		"| kill notifier | 1 | 10 | 9 | 9 | 0 | 0 | 9 | 8 | 0 (0) | 1 | 1 | 0 | 0/0 | 0 | 0 |",
		"| **all** | 3 | 30 | 29 | 29 |",
		"- run 2, kill notifier (repeat 0): SIGKILL notifier",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the table lacks %q:\n%s", want, out)
		}
	}
}
