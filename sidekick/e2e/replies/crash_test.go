package replies_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/sidekick/fakes"
)

var long = flag.Bool("replies.long", false, "TestRepliesSurviveSIGKILL: 200 replies per channel and twice the kills, instead of 200 replies across the three channels")

// TestRepliesSurviveSIGKILL is issue 14's "must show": the sending
// service runs as its own process and is killed with SIGKILL again and
// again while it sends a run of replies; each reply arrives exactly once,
// counted at the fakes. The kills take turns among three moments: inside
// the fake, after it stored a reply and before it answers (the provider
// has it, the sender never hears so: the case the check before a resend
// is for); after a random number of further receipts; and at a random
// time after the process started.
//
// For email, SMTP leaves a window no check can close (package outbound):
// a kill between the end of the DATA and the ledger's record of the 250
// sends the reply again, with the same Message-ID, and the receipt counts
// it. The test allows an email exactly as many extra copies as its
// receipt's unverified_resends, and reports them; any other duplicate, or
// a reply that never arrives, fails it.
func TestRepliesSurviveSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts the sending services many times")
	}
	runs := map[string]int{"slack": 70, "github": 65, "email": 65}
	kills := 9
	if *long {
		runs = map[string]int{"slack": 200, "github": 200, "email": 200}
		kills = 24
	}
	for _, ch := range []string{"slack", "github", "email"} {
		t.Run(ch, func(t *testing.T) { crashRun(t, ch, runs[ch], kills) })
	}
}

func crashRun(t *testing.T, channel string, n, kills int) {
	r := newRig(t)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-crash-%03d", channel, i)
	}
	for i, id := range ids {
		switch channel {
		case "slack":
			// 35 threads, one a channel: Slack's one post a second per
			// channel holds some replies back (429) while others go.
			r.slack.LimitPostRate(1)
			r.send(slackReply(id, fmt.Sprintf("C0CRASH%02d", i%35)))
		case "github":
			number := int64(i%20 + 1)
			kind := supportv1.GitHubTarget_KIND_ISSUE
			if i%5 == 4 {
				kind = supportv1.GitHubTarget_KIND_DISCUSSION
				r.gh.AddDiscussion("acme/app", number)
			} else {
				r.gh.AddIssue("acme/app", number)
			}
			r.send(githubReply(id, "acme/app", number, kind))
		case "email":
			r.send(emailReply(id))
		}
	}

	// Every run of the sender appends its log to one file, shown if the
	// test fails.
	logs, err := os.OpenFile(filepath.Join(t.TempDir(), "sender.log"), os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logs.Name())
			t.Logf("sender logs:\n%s", b)
		}
		_ = logs.Close()
	})
	// armed is the process to kill at the provider's next delivery.
	var armed atomic.Pointer[child]
	fired := make(chan struct{}, 1)
	atDelivery := func() {
		if c := armed.Swap(nil); c != nil {
			c.kill()
			fired <- struct{}{}
		}
	}
	r.slack.OnPost(func(fakes.SlackMessage) { atDelivery() })
	r.gh.OnComment(func(fakes.GitHubAPIComment) { atDelivery() })
	r.smtp.OnMessage(func(fakes.Mail) { atDelivery() })

	s := r.spec(channel)
	child := startChild(t, s, logs)
	killed := map[string]int{}
	for round := 0; round < kills && r.receiptCount() < n; round++ {
		switch round % 3 {
		case 0:
			armed.Store(child)
			select {
			case <-fired:
				killed["at the provider"]++
			case <-time.After(time.Minute):
				t.Fatal("the sender delivered nothing for a minute")
			}
		case 1:
			target := min(n, r.receiptCount()+1+rand.IntN(10))
			waitUntil(t, 2*time.Minute, func() bool { return r.receiptCount() >= target })
			child.kill()
			killed["after receipts"]++
		case 2:
			time.Sleep(time.Duration(rand.IntN(150_000)) * time.Microsecond)
			child.kill()
			killed["at random"]++
		}
		child = startChild(t, s, logs)
	}
	waitUntil(t, 3*time.Minute, func() bool { return r.receiptCount() >= n })
	child.stop(t)

	var recovered, unverified, extra, resent int
	for _, id := range ids {
		rc := r.receipt(id)
		if rc.GetStatus() != supportv1.OutboundStatus_OUTBOUND_STATUS_SENT {
			t.Errorf("%s: %v, want SENT", id, rc)
			continue
		}
		if rc.GetRecovered() {
			recovered++
		}
		var arrived int
		switch channel {
		case "slack":
			arrived = r.slack.MetadataPosts("outbound_id", id)
		case "github":
			arrived = r.gh.CommentsContaining("sidekick:outbound:" + id + " ")
		case "email":
			arrived = r.smtp.WithMessageID("<" + id + "@acme.test>")
		}
		unverified += int(rc.GetUnverifiedResends())
		if rc.GetUnverifiedResends() > 0 {
			resent++
		}
		switch {
		case arrived == 0:
			t.Errorf("%s never arrived", id)
		case arrived > 1 && arrived-1 <= int(rc.GetUnverifiedResends()):
			extra += arrived - 1 // the documented SMTP window
		case arrived > 1:
			t.Errorf("%s arrived %d times (unverified resends %d)", id, arrived, rc.GetUnverifiedResends())
		}
	}
	t.Logf("%s: %d replies, SIGKILLs %v; all arrived; %d found at the provider after a kill instead of being sent again; %d sent again unverified (email), %d of those arrived twice",
		channel, n, killed, recovered, resent, extra)
}

// child is one run of the sending service in its own process.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	exited chan struct{}
}

// startChild runs the service of s in a new process of this test binary.
func startChild(t *testing.T, s spec, logs io.Writer) *child {
	t.Helper()
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(raw))
	cmd.Stdout, cmd.Stderr = logs, logs
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s sender: %v", s.Channel, err)
	}
	c := &child{cmd: cmd, stdin: stdin, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(c.exited) }()
	t.Cleanup(c.kill)
	return c
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *child) kill() {
	select {
	case <-c.exited:
		return
	default:
	}
	_ = c.cmd.Process.Kill()
	<-c.exited
}

// stop asks the process to finish (its standard input closes) and waits.
func (c *child) stop(t *testing.T) {
	_ = c.stdin.Close()
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		t.Error("the sender did not stop within 30s of being asked")
		c.kill()
	}
}

// waitUntil polls cond until it holds, failing the test after d.
func waitUntil(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not reached within %v", d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
