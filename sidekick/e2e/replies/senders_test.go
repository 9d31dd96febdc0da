package replies_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/slack-go/slack"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/sidekick/fakes"
)

const (
	sent   = supportv1.OutboundStatus_OUTBOUND_STATUS_SENT
	failed = supportv1.OutboundStatus_OUTBOUND_STATUS_FAILED
)

// wantFailed checks a receipt says FAILED, permanent or not, with a
// reason containing reason.
func wantFailed(t *testing.T, rc *supportv1.OutboundReceipt, permanent bool, reason string) {
	t.Helper()
	if rc.GetStatus() != failed || rc.GetPermanent() != permanent || !strings.Contains(rc.GetReason(), reason) {
		t.Errorf("receipt %s: status %v permanent %v reason %q; want FAILED, permanent %v, reason with %q",
			rc.GetOutboundId(), rc.GetStatus(), rc.GetPermanent(), rc.GetReason(), permanent, reason)
	}
}

func TestSlackReplies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ingest-slack on NATS against the Slack fake")
	}
	r := newRig(t)
	r.slack.LimitPostRate(1)
	r.serve(r.spec("slack"))

	t.Run("in the thread, as the person, formatted for Slack", func(t *testing.T) {
		m := slackReply("slack-ok", "C0CUSTOMER")
		m.Text = "Fixed <b> & deployed: see [notes](https://acme.test/n?a=1&b=2), @U0FARAH01"
		r.send(m)
		rc := r.receipt("slack-ok")
		var post *fakes.SlackMessage
		for _, p := range r.slack.Posted() {
			if p.Metadata != nil && p.Metadata.EventPayload["outbound_id"] == "slack-ok" {
				post = &p
			}
		}
		if rc.GetStatus() != sent || post == nil || rc.GetProviderId() != post.TS {
			t.Fatalf("receipt %v, post %+v", rc, post)
		}
		if !strings.Contains(rc.GetPermalink(), "/archives/C0CUSTOMER/p") {
			t.Errorf("permalink %q", rc.GetPermalink())
		}
		if post.ThreadTS != "1700000000.000100" || post.Username != "Farah" || post.IconURL != "https://acme.test/farah.png" || post.Metadata.EventType != "sidekick_reply" {
			t.Errorf("posted %+v: want the customer's thread, Farah's name and avatar, sidekick_reply metadata", *post)
		}
		if want := "Fixed &lt;b&gt; &amp; deployed: see <https://acme.test/n?a=1&amp;b=2|notes>, <@U0FARAH01>"; post.Text != want {
			t.Errorf("text %q, want %q", post.Text, want)
		}
	})

	t.Run("Slack's rate limit is waited out", func(t *testing.T) {
		before := r.slack.Calls("chat.postMessage")
		ids := []string{"slack-busy-1", "slack-busy-2", "slack-busy-3"}
		for _, id := range ids {
			r.send(slackReply(id, "C0BUSY"))
		}
		for _, id := range ids {
			if rc := r.receipt(id); rc.GetStatus() != sent || r.slack.MetadataPosts("outbound_id", id) != 1 {
				t.Errorf("%s: receipt %v, posted %d times", id, rc, r.slack.MetadataPosts("outbound_id", id))
			}
		}
		if calls := r.slack.Calls("chat.postMessage") - before; calls <= len(ids) {
			t.Errorf("%d calls for %d posts to one channel: the fake's rate limit never answered 429", calls, len(ids))
		}
	})

	t.Run("refusals are permanent failures with Slack's reason", func(t *testing.T) {
		r.slack.RemoveFromChannel("C0GONE")
		r.send(slackReply("slack-gone", "C0GONE"))
		wantFailed(t, r.receipt("slack-gone"), true, "not_in_channel")

		long := slackReply("slack-long", "C0CUSTOMER")
		long.Text = strings.Repeat("a", 40001)
		r.send(long)
		wantFailed(t, r.receipt("slack-long"), true, "msg_too_long")

		unthreaded := slackReply("slack-nothread", "C0CUSTOMER")
		unthreaded.GetSlack().ThreadTs = ""
		r.send(unthreaded)
		wantFailed(t, r.receipt("slack-nothread"), true, "thread_ts")
	})

	t.Run("a transient error is retried", func(t *testing.T) {
		r.slack.Fail("chat.postMessage", "internal_error", 1)
		r.send(slackReply("slack-retry", "C0CUSTOMER"))
		if rc := r.receipt("slack-retry"); rc.GetStatus() != sent || r.slack.MetadataPosts("outbound_id", "slack-retry") != 1 {
			t.Errorf("receipt %v after one internal_error", rc)
		}
	})

	t.Run("an earlier attempt that reached Slack is found, not posted again", func(t *testing.T) {
		api := slack.New(botToken, slack.OptionAPIURL(r.slack.APIURL()))
		_, ts, err := api.PostMessage("C0EARLIER", slack.MsgOptionText("Thanks for waiting", false), slack.MsgOptionTS("1700000000.000100"),
			slack.MsgOptionMetadata(slack.SlackMetadata{EventType: "sidekick_reply", EventPayload: map[string]any{"outbound_id": "slack-earlier"}}))
		if err != nil {
			t.Fatal(err)
		}
		r.seedReached("slack", "slack-earlier")
		r.send(slackReply("slack-earlier", "C0EARLIER"))
		rc := r.receipt("slack-earlier")
		if rc.GetStatus() != sent || !rc.GetRecovered() || rc.GetProviderId() != ts {
			t.Errorf("receipt %v, want SENT, recovered, ts %s", rc, ts)
		}
		if n := r.slack.MetadataPosts("outbound_id", "slack-earlier"); n != 1 {
			t.Errorf("posted %d times, want once", n)
		}
	})
}

func TestGitHubReplies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ingest-github on NATS against the GitHub API fake")
	}
	r := newRig(t)
	r.gh.AddIssue("acme/app", 7)
	r.gh.AddDiscussion("acme/app", 9)
	r.serve(r.spec("github"))
	issue := supportv1.GitHubTarget_KIND_ISSUE

	t.Run("an issue comment with its permalink and marker", func(t *testing.T) {
		r.send(githubReply("gh-ok", "acme/app", 7, issue))
		rc := r.receipt("gh-ok")
		cs := r.gh.Comments()
		if rc.GetStatus() != sent || len(cs) != 1 {
			t.Fatalf("receipt %v, comments %+v", rc, cs)
		}
		c := cs[0]
		if rc.GetProviderId() == "" || !strings.HasSuffix(c.HTMLURL, rc.GetProviderId()) || rc.GetPermalink() != c.HTMLURL {
			t.Errorf("receipt id %q permalink %q; comment %d at %s", rc.GetProviderId(), rc.GetPermalink(), c.ID, c.HTMLURL)
		}
		if want := "Thanks for the report: fixed in 1.2.3.\n\n<!-- sidekick:outbound:gh-ok -->"; c.Body != want {
			t.Errorf("body %q, want %q", c.Body, want)
		}
	})

	t.Run("a discussion comment through GraphQL", func(t *testing.T) {
		r.send(githubReply("gh-disc", "acme/app", 9, supportv1.GitHubTarget_KIND_DISCUSSION))
		rc := r.receipt("gh-disc")
		if rc.GetStatus() != sent || !strings.HasPrefix(rc.GetProviderId(), "DC_") || !strings.Contains(rc.GetPermalink(), "/discussions/9#discussioncomment-") {
			t.Errorf("receipt %v", rc)
		}
		if n := r.gh.CommentsContaining("sidekick:outbound:gh-disc "); n != 1 {
			t.Errorf("%d discussion comments, want 1", n)
		}
	})

	t.Run("refusals are permanent failures with GitHub's reason", func(t *testing.T) {
		r.send(githubReply("gh-404", "acme/app", 404, issue))
		wantFailed(t, r.receipt("gh-404"), true, "HTTP 404: Not Found")

		r.gh.AddIssue("acme/app", 8)
		r.gh.LockIssue("acme/app", 8)
		r.send(githubReply("gh-locked", "acme/app", 8, issue))
		wantFailed(t, r.receipt("gh-locked"), true, "HTTP 403: Unable to create comment because issue is locked.")

		long := githubReply("gh-long", "acme/app", 7, issue)
		long.Text = strings.Repeat("a", 65536)
		r.send(long)
		wantFailed(t, r.receipt("gh-long"), true, "body is too long (maximum is 65536 characters)")
	})

	t.Run("a server error and a secondary rate limit are retried", func(t *testing.T) {
		r.gh.FailNext(502, 429)
		r.send(githubReply("gh-retry", "acme/app", 7, issue))
		if rc := r.receipt("gh-retry"); rc.GetStatus() != sent || r.gh.CommentsContaining("sidekick:outbound:gh-retry ") != 1 {
			t.Errorf("receipt %v", rc)
		}
	})

	t.Run("an earlier attempt that reached GitHub is found, not posted again", func(t *testing.T) {
		// What an attempt that died before GitHub's answer left there.
		body := "Thanks for the report: fixed in 1.2.3.\n\n<!-- sidekick:outbound:gh-earlier -->"
		api := &ghClient{url: r.gh.URL(), token: githubToken}
		id := api.comment(t, "acme/app", 7, body)
		r.seedReached("github", "gh-earlier")
		r.send(githubReply("gh-earlier", "acme/app", 7, issue))
		rc := r.receipt("gh-earlier")
		if rc.GetStatus() != sent || !rc.GetRecovered() || rc.GetProviderId() != id {
			t.Errorf("receipt %v, want SENT, recovered, comment %s", rc, id)
		}
		if n := r.gh.CommentsContaining("sidekick:outbound:gh-earlier "); n != 1 {
			t.Errorf("%d comments, want 1", n)
		}
	})
}

// TestGitHubAppReplies: as a GitHub App, replies go out with an
// installation token bought with a JWT signed by the App's key.
func TestGitHubAppReplies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ingest-github on NATS against the GitHub API fake")
	}
	r := newRig(t)
	r.gh.AddIssue("acme/app", 7)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		t.Fatal(err)
	}
	r.gh.SetApp("424242", &key.PublicKey)
	s := r.spec("github")
	s.AppID, s.InstallationID, s.KeyFile = "424242", 77, file
	r.serve(s)
	r.send(githubReply("gh-app", "acme/app", 7, supportv1.GitHubTarget_KIND_ISSUE))
	if rc := r.receipt("gh-app"); rc.GetStatus() != sent {
		t.Errorf("receipt %v", rc)
	}
}

func TestEmailReplies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ingest-email on NATS against the SMTP fake")
	}
	r := newRig(t)
	r.serve(r.spec("email"))

	t.Run("a threaded reply over STARTTLS", func(t *testing.T) {
		r.send(emailReply("mail-ok"))
		rc := r.receipt("mail-ok")
		if rc.GetStatus() != sent || rc.GetProviderId() != "<mail-ok@acme.test>" {
			t.Fatalf("receipt %v", rc)
		}
		msgs := r.smtp.Messages()
		if len(msgs) != 1 {
			t.Fatalf("%d messages at the relay", len(msgs))
		}
		m := msgs[0]
		h := m.Header
		for k, want := range map[string]string{
			"Message-Id":  "<mail-ok@acme.test>",
			"In-Reply-To": "<ana-2@customer.test>",
			"References":  "<ana-1@customer.test> <ana-2@customer.test>",
			"Subject":     "Re: Recordings stopped",
			"From":        `"Farah (Acme Support)" <support@acme.test>`,
		} {
			if got := h.Get(k); got != want {
				t.Errorf("%s: %q, want %q", k, got, want)
			}
		}
		if !m.TLS || m.From != supportAddr || strings.Join(m.To, ",") != "ana@customer.test,ops@customer.test" {
			t.Errorf("envelope from %s to %v, TLS %v: want from the support address to the customer and Cc, not to ourselves, over STARTTLS", m.From, m.To, m.TLS)
		}
		mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
		if err != nil || mt != "multipart/alternative" {
			t.Fatalf("Content-Type %q", h.Get("Content-Type"))
		}
		parts := map[string]string{}
		mr := multipart.NewReader(strings.NewReader(string(m.Body)), params["boundary"])
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(p)
			ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
			parts[ct] = string(b)
		}
		if !strings.Contains(parts["text/plain"], "[the release notes](https://acme.test/notes?v=1.2.3&x=1)") ||
			!strings.Contains(parts["text/html"], `<a href="https://acme.test/notes?v=1.2.3&amp;x=1">the release notes</a>`) {
			t.Errorf("parts %q", parts)
		}
	})

	t.Run("the Message-ID triage chose is used", func(t *testing.T) {
		m := emailReply("mail-chosen")
		m.GetEmail().MessageId = "<reply.mail-chosen@mail.acme.test>"
		r.send(m)
		if rc := r.receipt("mail-chosen"); rc.GetProviderId() != "<reply.mail-chosen@mail.acme.test>" || r.smtp.WithMessageID("<reply.mail-chosen@mail.acme.test>") != 1 {
			t.Errorf("receipt %v", rc)
		}
	})

	t.Run("a 5xx is a permanent failure, a 4xx is retried", func(t *testing.T) {
		r.smtp.Reject(550, "5.1.1 mailbox unavailable", 1)
		r.send(emailReply("mail-550"))
		wantFailed(t, r.receipt("mail-550"), true, "550 5.1.1 mailbox unavailable")

		r.smtp.Reject(451, "4.3.0 try again later", 1)
		r.send(emailReply("mail-451"))
		if rc := r.receipt("mail-451"); rc.GetStatus() != sent || r.smtp.WithMessageID("<mail-451@acme.test>") != 1 {
			t.Errorf("receipt %v", rc)
		}
	})

	t.Run("an attempt that may have reached the relay is sent again, counted", func(t *testing.T) {
		r.seedReached("email", "mail-unknown")
		r.send(emailReply("mail-unknown"))
		rc := r.receipt("mail-unknown")
		if rc.GetStatus() != sent || rc.GetUnverifiedResends() != 1 {
			t.Errorf("receipt %v, want SENT with one unverified resend", rc)
		}
	})
}

// ghClient posts a comment the way a crashed sender's request would have.
type ghClient struct{ url, token string }

func (c *ghClient) comment(t *testing.T, repo string, number int64, body string) string {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"body": body})
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, fmt.Sprintf("%s/repos/%s/issues/%d/comments", c.url, repo, number), bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		ID int64 `json:"id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create comment: %d %v", resp.StatusCode, err)
	}
	return strconv.FormatInt(out.ID, 10)
}
