package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/sidekick/cli"
	"github.com/sidekickhq/sidekick/sidekick/devstack"
	"github.com/sidekickhq/sidekick/sidekick/fakes"
)

// subscriberPolicies are the escalation and response policies the stack
// starts with: a new Subscriber conversation pings the hero, and its
// first response is due in 30 minutes of wall time.
const subscriberPolicies = `escalation:
  policies:
    - id: subscriber-new
      match: {kind: new_conversation, tier: subscriber}
      steps:
        - {notify: hero, via: ping}
policies:
  - {tier: subscriber, first_response: 30m, okay: 2h, too_late: 8h, coverage: always}
`

// `sidekick apply` changes the notifier's and triage's policies in the
// running stack, without a restart: after it, a new Subscriber
// conversation pings the person the applied policy names instead of the
// hero, and its deadline follows the applied response policy. A file
// naming a person the organisation does not have is refused by rotation
// with the line, and changes nothing. The dry run shows the changes of
// those sections.
func TestApplyReachesNotifierAndTriageWithoutARestart(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	// Tuesday 3 March 2026, 10:00 London: carol's week as hero.
	tuesday := time.Date(2026, 3, 3, 10, 0, 0, 0, london)
	slack := fakes.NewSlack("sidekick-demo", "T0DEMO")
	t.Cleanup(slack.Close)
	stack, _ := startStackAt(t, tuesday,
		"SIDEKICK_ORG_CONFIG="+orgFile(t, subscriberPolicies),
		"SIDEKICK_SLACK_BOT_TOKEN=xoxb-e2e-0000-token",
		"SIDEKICK_SLACK_API_URL="+slack.APIURL(),
	)
	a := dialStack(t, stack.Stack)
	a.addCustomer(t, acmeSubscriber)
	secret := stack.Env["SIDEKICK_SLACK_SIGNING_SECRET"]
	t.Cleanup(func() {
		if t.Failed() {
			for _, m := range slack.Posted() {
				t.Logf("slack %s to %s: %q", m.Method, m.Target, m.Text)
			}
		}
	})
	// pings counts the pings about new Subscriber conversations a person
	// got as Slack DMs.
	pings := func(slackID string) int {
		n := 0
		for _, m := range slack.Posted() {
			if m.Target == slackID && strings.Contains(m.Text, "new Subscriber conversation") {
				n++
			}
		}
		return n
	}
	// write opens a Subscriber conversation and returns how long after
	// it opened its first response is due.
	write := func(n int, subject string) time.Duration {
		t.Helper()
		now := stack.Clock.Now()
		ts := fmt.Sprintf("%d.%06d", now.Unix(), n)
		if code := postSlack(t, stack.HTTPAddr, secret, now.Unix(), messageEvent(fmt.Sprintf("Ev0APPLY%04d", n), "U0CUSTOMER1", subject, ts)); code != http.StatusOK {
			t.Fatalf("Slack message: want 200, got %d", code)
		}
		var conv *supportv1.Conversation
		waitFor(t, 30*time.Second, "the conversation "+subject, func() bool {
			for _, c := range a.list(t, supportv1.Channel_CHANNEL_SLACK) {
				if c.GetSubject() == subject && c.GetNextDeadlineAt() != nil {
					conv = c
					return true
				}
			}
			return false
		})
		return conv.GetNextDeadlineAt().AsTime().Sub(conv.GetOpenedAt().AsTime())
	}
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := cli.Run(context.Background(), append(args, "--addr", stack.GRPCAddr), cli.IO{Stdout: &out, Stderr: io.Discard})
		return out.String(), err
	}
	file := func(extra string) string {
		path := filepath.Join(t.TempDir(), "sidekick.yaml")
		if err := os.WriteFile(path, append(append([]byte(nil), devstack.DemoOrg...), "\n"+extra...), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}

	if got := write(1, "Before: exports time out"); got != 30*time.Minute {
		t.Fatalf("first response due %s after opening, want the file's 30m", got)
	}
	waitFor(t, 30*time.Second, "the hero's ping", func() bool { return pings("U0CAROL") == 1 })

	// Refused by rotation with the line; nothing changes.
	demoLines := bytes.Count(devstack.DemoOrg, []byte("\n")) + 1
	bad := file(strings.Replace(subscriberPolicies, "notify: hero", `notify: "person:zed"`, 1))
	_, err = run("apply", "-f", bad)
	want := fmt.Sprintf(`escalation: policy "subscriber-new" (line %d): step 1: notify: unknown person "zed"`, demoLines+3)
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "nothing applied") {
		t.Fatalf("apply of a file naming zed: %v, want %q", err, want)
	}

	changed := strings.NewReplacer("notify: hero", `notify: "person:gus"`, "first_response: 30m", "first_response: 7m").Replace(subscriberPolicies)
	good := file(changed)
	out, err := run("apply", "-f", good, "--dry-run")
	for _, line := range []string{
		`~ escalation.policies[subscriber-new].steps[1].notify: hero → person:gus`,
		`~ policies[subscriber].first_response: 30m → 7m`,
		"dry run: 2 change(s) not applied",
	} {
		if err != nil || !strings.Contains(out, line) {
			t.Fatalf("dry run: %q %v, want the line %q", out, err, line)
		}
	}
	if out, err = run("apply", "-f", good); err != nil || !strings.Contains(out, "applied 2 change(s)") {
		t.Fatalf("apply: %q %v", out, err)
	}
	// Both services say, in their metrics, that they loaded it.
	waitFor(t, 30*time.Second, "the notifier and triage to load the applied file", func() bool {
		return loadedVersions(t, stack.HTTPAddr, "notifier") == 1 && loadedVersions(t, stack.HTTPAddr, "triage") == 1
	})
	if got := write(2, "After: the dashboards are blank"); got != 7*time.Minute {
		t.Fatalf("first response due %s after opening, want the applied 7m", got)
	}
	waitFor(t, 30*time.Second, "gus's ping", func() bool { return pings("U0GUS") == 1 })
	if n := pings("U0CAROL"); n != 1 {
		t.Errorf("the hero got %d pings, want only the one before the apply", n)
	}
}

// loadedVersions reads sidekick_org_config_loads_total{result="loaded"}
// of a service from the stack's /metrics.
func loadedVersions(t *testing.T, addr, service string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "sidekick_org_config_loads_total{") && strings.Contains(line, `result="loaded"`) &&
			strings.Contains(line, `service="`+service+`"`) {
			v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			if err == nil {
				return v
			}
		}
	}
	return 0
}
