package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/sidekick/cli"
	"github.com/sidekickhq/sidekick/sidekick/fakes"
)

// TestSearchFromTheCLI: `sidekick conversations search` finds
// conversations by the words of their messages (stemmed: "timeouts" finds
// "timeout") and of their private notes, prints each with an excerpt of
// its best match and the words found in bold, leaves out those that do
// not match, says when --limit cut the list, prints JSON for scripts, and
// refuses a query with nothing to search for, through the whole stack.
func TestSearchFromTheCLI(t *testing.T) {
	stack, _ := startStack(t)
	a := dialStack(t, stack)
	const support = "support@sidekick.test"
	send := func(from, subject, id, body string) {
		t.Helper()
		msg := rawEmail(from, support, subject, id, time.Now(), body)
		if err := fakes.SendMail(stack.SMTPAddr, strings.Trim(from[strings.Index(from, "<"):], "<>"), []string{support}, msg); err != nil {
			t.Fatalf("send %s: %v", id, err)
		}
	}
	send("Jane <jane@globex.example>", "Webhooks fail", "<search-1@globex.example>",
		"Every webhook to our endpoint ends in a timeout after 30 seconds since Monday.")
	send("Raj <raj@initech.example>", "Cohort export", "<search-2@initech.example>",
		"The cohort export has been stuck at 90% for an hour.")
	send("Li <li@hooli.example>", "Slow webhook deliveries", "<search-3@hooli.example>",
		"Webhook deliveries arrive late, sometimes after a timeout.")
	var convs []*supportv1.Conversation
	waitFor(t, time.Minute, "three email conversations", func() bool {
		convs = a.list(t, supportv1.Channel_CHANNEL_EMAIL)
		return len(convs) == 3
	})
	bySubject := map[string]string{}
	for _, c := range convs {
		bySubject[c.GetSubject()] = c.GetId()
	}
	webhooks, export, slow := bySubject["Webhooks fail"], bySubject["Cohort export"], bySubject["Slow webhook deliveries"]
	if _, err := a.conv.AddNote(rpcCtx(t), &triagev1.AddNoteRequest{Id: export, Text: "Reproduced with the kubernetes operator", Actor: "alice"}); err != nil {
		t.Fatal(err)
	}

	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := cli.Run(context.Background(), append(append([]string{"conversations", "search"}, args...), "--addr", stack.GRPCAddr),
			cli.IO{Stdout: &out, Stderr: io.Discard})
		return out.String(), err
	}
	out, err := run("webhook", "timeouts")
	if err != nil {
		t.Fatalf("search: %v", err)
	}
	if !strings.Contains(out, webhooks) || !strings.Contains(out, slow) || strings.Contains(out, export) {
		t.Errorf("search webhook timeouts: want %s and %s, not %s:\n%s", webhooks, slow, export, out)
	}
	if !strings.Contains(out, "message: ") || !strings.Contains(out, "**timeout**") || !strings.Contains(out, "opened ") {
		t.Errorf("no excerpt with the words found in bold:\n%s", out)
	}

	out, err = run("kubernetes")
	if err != nil {
		t.Fatalf("search kubernetes: %v", err)
	}
	if !strings.HasPrefix(out, export+"  ") || !strings.Contains(out, "note: Reproduced with the **kubernetes** operator") {
		t.Errorf("search kubernetes: want %s found in its note:\n%s", export, out)
	}

	out, err = run("webhook", "--limit", "1")
	if err != nil {
		t.Fatalf("search --limit 1: %v", err)
	}
	if strings.Count(out, "\n  message: ") != 1 || !strings.Contains(out, "raise --limit") {
		t.Errorf("search webhook --limit 1: want one hit and a word about the others:\n%s", out)
	}

	out, err = run("webhook", "--json")
	if err != nil {
		t.Fatalf("search --json: %v", err)
	}
	var hits []struct {
		Conversation struct {
			ID string `json:"id"`
		} `json:"conversation"`
		Source string `json:"source"`
	}
	if err := json.Unmarshal([]byte(out), &hits); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if len(hits) != 2 || hits[0].Source != "SEARCH_SOURCE_MESSAGE" {
		t.Errorf("--json: %+v, want the two webhook conversations found in messages", hits)
	}

	if out, err = run("the"); err == nil || !strings.Contains(err.Error(), "invalid argument") {
		t.Errorf("a query of a stop word only: %v, want invalid argument\n%s", err, out)
	}
	if out, err = run("cohort", "--limit", "0"); err == nil || out != "" {
		t.Errorf("--limit 0: %v, want a refusal and nothing printed\n%s", err, out)
	}
}
