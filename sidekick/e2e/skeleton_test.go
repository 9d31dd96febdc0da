// Package e2e runs the whole stack (devstack with every service, embedded
// NATS, a throwaway PostgreSQL, real gRPC) and drives it the way Slack and
// people do.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/platform/grpcx"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/sidekick/cli"
	"github.com/sidekickhq/sidekick/sidekick/devstack"
	"github.com/sidekickhq/sidekick/sidekick/fakes"
)

// syncBuffer is a goroutine-safe buffer for the console output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startStack runs the whole dev stack on free ports and returns it once
// every service runs.
func startStack(t *testing.T, environ ...string) (*devstack.Stack, *syncBuffer) {
	t.Helper()
	return startStackOn(t, nil, environ...)
}

// startStackOn is startStack with every service on clk (nil: the wall
// clock).
func startStackOn(t *testing.T, clk clock.Clock, environ ...string) (*devstack.Stack, *syncBuffer) {
	t.Helper()
	return startStackWith(t, devstack.Options{Clock: clk, Environ: environ})
}

// startStackWith is startStack with o's clock, environment and tracing.
func startStackWith(t *testing.T, o devstack.Options) (*devstack.Stack, *syncBuffer) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: starts NATS, PostgreSQL and every service")
	}
	if o.Clock == nil {
		o.Environ = alwaysWorking(t, o.Environ)
		o.Environ = withoutShiftReminders(o.Environ)
	}
	console := &syncBuffer{}
	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("console:\n%s", console.String())
			t.Logf("logs:\n%s", tail(logs.String(), 60))
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *devstack.Stack, 1)
	done := make(chan error, 1)
	go func() {
		done <- devstack.Run(ctx, devstack.Options{
			Environ:   o.Environ,
			Services:  devstack.All(),
			Console:   console,
			Logs:      logs,
			Ephemeral: true,
			Clock:     o.Clock,
			Tracing:   o.Tracing,
		}, func(s *devstack.Stack) { ready <- s })
	}()
	var stack *devstack.Stack
	select {
	case stack = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("stack did not start: %v", err)
	case <-time.After(90 * time.Second):
		cancel()
		t.Fatal("stack did not start within 90s")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("stack stopped with error: %v", err)
		}
	})
	return stack, console
}

// workingHours matches each person's working hours in an organisation file.
var workingHours = regexp.MustCompile(`working_hours: "[^"]*"`)

// alwaysWorking gives a stack on the wall clock an organisation whose
// people work around the clock, every day: rotation sends a ping to the
// person on duty only within their working hours (a catcher or nobody
// otherwise), and a test on the wall clock must not pass at 10:00 on a
// Tuesday and fail at night or on a Sunday. The organisation is the
// environment's SIDEKICK_ORG_CONFIG, or the demo organisation. Tests of
// working hours run on a fake clock and keep them.
func alwaysWorking(t *testing.T, environ []string) []string {
	t.Helper()
	org, at := devstack.DemoOrg, -1
	for i, kv := range environ {
		if path, ok := strings.CutPrefix(kv, "SIDEKICK_ORG_CONFIG="); ok {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			org, at = b, i
		}
	}
	if !workingHours.Match(org) {
		t.Fatal("the organisation file names no working hours: alwaysWorking has nothing to replace")
	}
	path := filepath.Join(t.TempDir(), "always-working.yaml")
	if err := os.WriteFile(path, workingHours.ReplaceAll(org, []byte(`working_hours: "Mon-Sun 00:00-24:00"`)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := append([]string(nil), environ...)
	if at >= 0 {
		out = append(out[:at], out[at+1:]...)
	}
	return append(out, "SIDEKICK_ORG_CONFIG="+path)
}

// withoutShiftReminders turns off, unless the test sets them, the
// reminders the demo organisation's real schedule would send at the wall
// clock's whim: the shift reminder an hour before a shift (platform's
// secondary starts Mondays 09:00 New York, so every test counting
// notifications failed on Mondays 13:00-14:00 UTC) and the outgoing
// hero's handoff-note reminder. The tests of both run on a fake clock.
func withoutShiftReminders(environ []string) []string {
	out := append([]string(nil), environ...)
	for _, name := range []string{"SIDEKICK_NOTIFIER_SHIFT_REMINDER", "SIDEKICK_TRIAGE_HANDOFF_REMINDER"} {
		if !slices.ContainsFunc(environ, func(kv string) bool { return strings.HasPrefix(kv, name+"=") }) {
			out = append(out, name+"=0")
		}
	}
	return out
}

func postSlack(t *testing.T, addr, secret string, ts int64, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/slack/events", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Slack-Request-Timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("X-Slack-Signature", fakes.SignSlack(secret, ts, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// messageEvent is a Slack Events API event_callback carrying a message, as
// Slack documents it: a customer from another workspace (user_team T0ACME)
// writing in our shared support channel through Slack Connect.
func messageEvent(eventID, user, text, ts string) []byte {
	return []byte(fmt.Sprintf(`{
  "token": "XXYYZZ",
  "team_id": "T0DEMO",
  "api_app_id": "A0SIDEKICK",
  "event": {
    "type": "message",
    "channel": "C0SUPPORT",
    "channel_type": "channel",
    "user": %q,
    "text": %q,
    "ts": %q,
    "event_ts": %q,
    "team": "T0DEMO",
    "user_team": "T0ACME"
  },
  "type": "event_callback",
  "authed_users": [],
  "event_id": %q,
  "event_time": 1700000000
}`, user, text, ts, ts, eventID))
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestWalkingSkeleton drives the foundation's path: a signed Slack message
// event is published to support.inbound.slack, triage stores a conversation,
// notifier gets the opened event, asks rotation over gRPC who the Support
// Hero is, and writes the ping to its console sink.
func TestWalkingSkeleton(t *testing.T) {
	stack, console := startStack(t)
	secret := stack.Env["SIDEKICK_SLACK_SIGNING_SECRET"]
	now := time.Now()

	// A bad signature is refused and publishes nothing.
	body := messageEvent("Ev0BADSIG", "U0CUSTOMER1", "forged", "1700000000.000001")
	req, _ := http.NewRequest(http.MethodPost, "http://"+stack.HTTPAddr+"/slack/events", bytes.NewReader(body))
	req.Header.Set("X-Slack-Request-Timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("X-Slack-Signature", fakes.SignSlack("wrong-secret", now.Unix(), body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad signature: want 401, got %d", resp.StatusCode)
	}

	ts := fmt.Sprintf("%d.000100", now.Unix())
	body = messageEvent("Ev0WALKING1", "U0CUSTOMER1", "Our dashboards stopped loading after the upgrade", ts)
	if code := postSlack(t, stack.HTTPAddr, secret, now.Unix(), body); code != http.StatusOK {
		t.Fatalf("signed Slack event: want 200, got %d", code)
	}
	// Slack retries the same event: stored once.
	if code := postSlack(t, stack.HTTPAddr, secret, now.Unix(), body); code != http.StatusOK {
		t.Fatalf("retried Slack event: want 200, got %d", code)
	}

	// The hero is pinged on the console, once.
	hero := whoIsHero(t, stack)
	ping := "[notify] ping " + hero + " (Support Hero)"
	waitFor(t, 30*time.Second, "the console ping of the hero", func() bool {
		return strings.Contains(console.String(), ping)
	})

	// The conversation is listed over gRPC, and by the CLI.
	cc, err := grpcx.Dial(stack.GRPCAddr, grpcx.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	list, err := triagev1.NewConversationServiceClient(cc).ListConversations(context.Background(), &triagev1.ListConversationsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(list.GetConversations()); n != 1 {
		t.Fatalf("want exactly 1 conversation after a retried event, got %d", n)
	}
	c := list.GetConversations()[0]
	if c.GetChannel() != supportv1.Channel_CHANNEL_SLACK || !strings.Contains(c.GetThreadKey(), "C0SUPPORT") {
		t.Fatalf("unexpected conversation %v", c)
	}
	// Its share link points at this stack's console, on whatever port.
	if want := "http://" + stack.HTTPAddr + "/console/conversations/" + c.GetId(); c.GetShareUrl() != want {
		t.Errorf("share link %q, want %q", c.GetShareUrl(), want)
	}

	var out bytes.Buffer
	err = cli.Run(context.Background(), []string{"conversations", "list", "--json", "--addr", stack.GRPCAddr}, cli.IO{Stdout: &out, Stderr: io.Discard})
	if err != nil {
		t.Fatalf("sidekick conversations list: %v", err)
	}
	if !strings.Contains(out.String(), c.GetId()) {
		t.Fatalf("CLI output does not list conversation %s:\n%s", c.GetId(), out.String())
	}

	// Exactly one ping: the retried event did not notify twice.
	if n := strings.Count(console.String(), "[notify] "); n != 1 {
		t.Fatalf("want exactly one notification, got %d:\n%s", n, console.String())
	}
}

// onCallLine is the first line of `sidekick oncall --json`: the Support
// Hero.
type onCallLine struct {
	Role   string `json:"role"`
	Person struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"person"`
	Reason string `json:"reason"`
}

// oncallCLI runs `sidekick oncall --json` and returns its first line.
func oncallCLI(t *testing.T, stack *devstack.Stack) onCallLine {
	t.Helper()
	var out bytes.Buffer
	err := cli.Run(context.Background(), []string{"oncall", "--json", "--addr", stack.GRPCAddr}, cli.IO{Stdout: &out, Stderr: io.Discard})
	if err != nil {
		t.Fatalf("sidekick oncall: %v", err)
	}
	first, _, _ := strings.Cut(out.String(), "\n")
	var hero onCallLine
	if err := json.Unmarshal([]byte(first), &hero); err != nil {
		t.Fatalf("oncall --json line %q: %v", first, err)
	}
	return hero
}

// whoIsHero asks the CLI who the Support Hero is now and returns their name.
func whoIsHero(t *testing.T, stack *devstack.Stack) string {
	t.Helper()
	hero := oncallCLI(t, stack)
	if hero.Role != "hero" || hero.Person.ID == "" || hero.Person.Name == "" {
		t.Fatalf("no hero in %+v", hero)
	}
	return hero.Person.Name
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
