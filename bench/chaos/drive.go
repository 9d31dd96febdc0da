package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sidekickhq/sidekick/platform/loadgen"
	"github.com/sidekickhq/sidekick/sidekick/fakes"
)

// custUser is a customer writing in a Slack Connect channel.
type custUser struct {
	id, name   string
	subscriber bool
}

// customerUsers write the harness's messages: the Subscribers (known to
// triage's customer directory, so each conversation is pinged) and
// Community members (unknown, so each goes into a digest).
var customerUsers = func() []custUser {
	var us []custUser
	for i := range 4 {
		us = append(us, custUser{id: fmt.Sprintf("U0SUBSCR%02d", i), name: fmt.Sprintf("Subscriber %d", i), subscriber: true})
	}
	for i := range 16 {
		us = append(us, custUser{id: fmt.Sprintf("U0COMMUN%02d", i), name: fmt.Sprintf("Community %d", i)})
	}
	return us
}()

// load is what one scenario run sends.
type load struct {
	// run numbers the scenario run; it is part of every id and text.
	run int
	// messages Slack messages at rate a second; pingShare of them from
	// Subscribers.
	messages  int
	rate      float64
	pingShare float64
	// sentryEvents Sentry error events at sentryRate a second, spread
	// over sentryIssues issues.
	sentryEvents int
	sentryRate   float64
	sentryIssues int
	seed         uint64
}

// retryPolicy is how a provider retries a delivery: each attempt waits at
// most timeout for a 2xx; attempt i+1 follows after[i] after attempt i
// failed.
type retryPolicy struct {
	timeout time.Duration
	after   []time.Duration
}

// slackRetries is Slack's: 3 seconds for a 2xx, then a retry nearly at
// once, one a minute later and one five minutes after that.
var slackRetries = retryPolicy{timeout: 3 * time.Second, after: []time.Duration{0, time.Minute, 5 * time.Minute}}

// sentMessage is one Slack message and what became of its delivery.
type sentMessage struct {
	n          int
	token      string
	eventID    string
	ts         string
	subscriber bool
	// attempts made and whether one was answered 2xx.
	attempts int
	accepted bool
	// statuses of the attempts, 0 for no answer in time.
	statuses []int
}

// sentIssue is one Sentry issue of the storm.
type sentIssue struct {
	k       int
	token   string
	issueID string
	events  int // webhooks sent about it
	// accepted webhooks (2xx on some attempt).
	accepted int
	attempts int
}

// traffic is what a scenario run sent, filled in while it runs.
type traffic struct {
	mu       sync.Mutex
	messages []*sentMessage
	issues   []*sentIssue
	// sent counts messages whose first attempt left.
	sent atomic.Int64
}

// tokenOf is the mark every text, id and title of a run's message n
// carries, which is how the count finds it in triage's tables and in what
// the fakes received.
func tokenOf(run, n int) string { return fmt.Sprintf("CHAOS%03dN%05d", run, n) }

// issueTokenOf is the mark of a run's Sentry issue k.
func issueTokenOf(run, k int) string { return fmt.Sprintf("CHAOS%03dS%02d", run, k) }

// plan decides, from the seed, who writes each message: the same seed
// gives the same run.
func (l load) plan() (*traffic, []fakes.SlackSharedMessage) {
	rng := rand.New(rand.NewPCG(l.seed, uint64(l.run)))
	var subs, comm []custUser
	for _, u := range customerUsers {
		if u.subscriber {
			subs = append(subs, u)
		} else {
			comm = append(comm, u)
		}
	}
	tr := &traffic{}
	msgs := make([]fakes.SlackSharedMessage, l.messages)
	for n := range l.messages {
		tok := tokenOf(l.run, n)
		sub := rng.Float64() < l.pingShare
		u := comm[rng.IntN(len(comm))]
		if sub {
			u = subs[rng.IntN(len(subs))]
		}
		msgs[n] = fakes.SlackSharedMessage{
			EventID: "Ev" + tok, TeamID: ourTeam, UserTeam: customerTeam, UserID: u.id, Name: u.name,
			Channel: intakeChannel, AppID: slackAppID, BotUserID: slackBotUserID,
			Text: fmt.Sprintf("%s: %s\n%s", tok, subjects[rng.IntN(len(subjects))], "We are on the latest release. Thanks for looking!"),
		}
		tr.messages = append(tr.messages, &sentMessage{n: n, token: tok, eventID: "Ev" + tok, subscriber: sub})
	}
	for k := range l.sentryIssues {
		tok := issueTokenOf(l.run, k)
		tr.issues = append(tr.issues, &sentIssue{k: k, token: tok, issueID: fmt.Sprintf("%d%03d%02d", 7, l.run, k)})
	}
	return tr, msgs
}

// subjects are the first lines of the customers' messages: support
// questions, nothing triage would close as spam or send to business
// contacts.
var subjects = []string{
	"dashboards stopped loading since this morning",
	"session recordings are missing for some users",
	"feature flags evaluate to false for everyone",
	"the insights page times out on large date ranges",
	"our events are arriving with a delay of several minutes",
	"the toolbar does not show up on our staging site",
}

// driveSlack sends the run's messages on an open loop at l.rate and
// delivers each the way Slack does, retries included; it returns when
// every message was accepted or given up.
func driveSlack(ctx context.Context, url string, l load, tr *traffic, msgs []fakes.SlackSharedMessage, retries retryPolicy) {
	client := &http.Client{Timeout: retries.timeout, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	s := fakes.SlackEvents{URL: url, Secret: slackSecret, Client: client}
	var clock tsClock
	loadgen.OpenLoop(ctx, l.rate, len(msgs), 0, func(ctx context.Context, n int) error {
		tr.sent.Add(1)
		// The customer posts the message now; Slack's ts is that moment.
		msg := msgs[n]
		msg.TS = clock.next()
		body := fakes.SlackSharedMessageEvent(msg)
		m := tr.messages[n]
		statuses, ok := deliver(ctx, retries, func(ctx context.Context, retry int, reason string) (int, error) {
			return s.Send(ctx, body, retry, reason)
		})
		tr.mu.Lock()
		m.ts, m.statuses, m.attempts, m.accepted = msg.TS, statuses, len(statuses), ok
		tr.mu.Unlock()
		return nil
	})
}

// tsClock hands out Slack ts values: the time in microseconds, unique
// as Slack's are within a channel.
type tsClock struct {
	mu   sync.Mutex
	last int64
}

func (c *tsClock) next() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = max(time.Now().UnixMicro(), c.last+1)
	return fmt.Sprintf("%d.%06d", c.last/1e6, c.last%1e6)
}

// deliver makes the attempts retries allows until one is answered 2xx
// and returns each attempt's status (0: no answer in time) and whether
// one was.
func deliver(ctx context.Context, retries retryPolicy, attempt func(ctx context.Context, retry int, reason string) (int, error)) ([]int, bool) {
	var statuses []int
	reason := ""
	for i := 0; i <= len(retries.after); i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return statuses, false
			case <-time.After(retries.after[i-1]):
			}
		}
		code, err := attempt(ctx, i, reason)
		statuses = append(statuses, code)
		if err == nil && code >= 200 && code < 300 {
			return statuses, true
		}
		switch {
		case err == nil:
			reason = fakes.SlackRetryHTTPError
		case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
			reason = fakes.SlackRetryTimeout
		default:
			reason = fakes.SlackRetryConnect
		}
		if ctx.Err() != nil {
			return statuses, false
		}
	}
	return statuses, false
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// driveSentry sends the storm: l.sentryEvents error events at
// l.sentryRate, round-robin over the run's issues, each delivery retried
// like Slack's (Sentry waits 1 second for an answer).
func driveSentry(ctx context.Context, url string, l load, tr *traffic) {
	if l.sentryEvents == 0 || len(tr.issues) == 0 {
		return
	}
	retries := retryPolicy{timeout: time.Second, after: slackRetries.after}
	client := &http.Client{Timeout: retries.timeout, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	s := fakes.Sentry{URL: url, Secret: sentrySecret, Client: client}
	loadgen.OpenLoop(ctx, l.sentryRate, l.sentryEvents, 0, func(ctx context.Context, i int) error {
		is := tr.issues[i%len(tr.issues)]
		eventID := fmt.Sprintf("%032x", uint64(l.run)<<32|uint64(i))
		body := fakes.SentryErrorCreated(fakes.SentryEvent{
			Org: "chaos", Project: "web", IssueID: is.issueID, EventID: eventID,
			Title: is.token + " TypeError: cannot read properties of undefined", Culprit: "checkout.js in submit",
		})
		requestID := fmt.Sprintf("chaos-%03d-%06d", l.run, i)
		statuses, ok := deliver(ctx, retries, func(ctx context.Context, _ int, _ string) (int, error) {
			return s.Send(ctx, "error", requestID, body)
		})
		tr.mu.Lock()
		is.events++
		is.attempts += len(statuses)
		if ok {
			is.accepted++
		}
		tr.mu.Unlock()
		return nil
	})
}
