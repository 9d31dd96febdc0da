package ghwebhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

var now = time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerify(t *testing.T) {
	secret := []byte("It's a Secret to Everybody")
	body := []byte("Hello, World!")
	// The example from GitHub's "Validating webhook deliveries" guide.
	const documented = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	if got := Sign(secret, body); got != documented {
		t.Fatalf("Sign = %s, want %s", got, documented)
	}
	if err := Verify(secret, body, documented); err != nil {
		t.Fatalf("documented signature: %v", err)
	}
	for name, tc := range map[string]struct {
		secret []byte
		body   string
		header string
		want   error
	}{
		"missing":      {secret, "Hello, World!", "", ErrMissingSignature},
		"sha1 only":    {secret, "Hello, World!", "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59", ErrBadSignature},
		"not hex":      {secret, "Hello, World!", "sha256=" + strings.Repeat("zz", 32), ErrBadSignature},
		"short":        {secret, "Hello, World!", "sha256=757107ea", ErrBadSignature},
		"other body":   {secret, "Hello, World?", documented, ErrBadSignature},
		"other secret": {[]byte("guess"), "Hello, World!", documented, ErrBadSignature},
		"no secret":    {nil, "Hello, World!", documented, ErrBadSignature},
		"upper prefix": {secret, "Hello, World!", "SHA256=" + documented[7:], ErrBadSignature},
	} {
		if err := Verify(tc.secret, []byte(tc.body), tc.header); !errors.Is(err, tc.want) {
			t.Errorf("%s: Verify = %v, want %v", name, err, tc.want)
		}
	}
}

func TestParseRepositories(t *testing.T) {
	r, err := ParseRepositories(" acme/main:high, acme/docs ,,Acme/Charts:low")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]struct {
		hint string
		ok   bool
	}{
		"acme/main": {"high", true}, "ACME/Main": {"high", true}, "acme/docs": {"", true},
		"acme/charts": {"low", true}, "acme/other": {"", false}, "evil/main": {"", false},
	} {
		hint, ok := r.Lookup(name)
		if hint != want.hint || ok != want.ok {
			t.Errorf("Lookup(%q) = %q, %v; want %q, %v", name, hint, ok, want.hint, want.ok)
		}
	}
	all, err := ParseRepositories("")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := all.Lookup("anyone/anything"); !ok || all.Len() != 0 {
		t.Fatal("empty list should allow every repository")
	}
	for _, bad := range []string{"acme", "acme/", "/main", "a/b/c:high"} {
		if _, err := ParseRepositories(bad); err == nil {
			t.Errorf("ParseRepositories(%q): want an error", bad)
		}
	}
}

func TestNormalize(t *testing.T) {
	repos, _ := ParseRepositories("acme/main:high,acme/docs")
	const issueKey = "github:acme/main#123"
	type want struct {
		kind      supportv1.MessageKind
		thread    string
		source    string
		author    string
		role      supportv1.AuthorRole
		text      string
		permalink string
		attrs     map[string]string
	}
	cases := map[string]struct {
		event, file string
		want        want
	}{
		"issue opened by a customer": {"issues", "issues-opened.json", want{
			supportv1.MessageKind_MESSAGE_KIND_POSTED, issueKey, "issue:444500041", "jane-doe", supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER,
			"Upgrading with helm upgrade fails with: migration 0042 timed out.", "https://github.com/acme/main/issues/123",
			map[string]string{"priority_hint": "high", "labels": "bug,deployments", "repository": "acme/main", "author_association": "NONE"}}},
		"issue edited by its author": {"issues", "issues-edited.json", want{
			supportv1.MessageKind_MESSAGE_KIND_EDITED, issueKey, "issue:444500041", "jane-doe", supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER,
			"Upgrading with helm upgrade fails with: migration 0042 timed out.", "", map[string]string{"previous_title": "Helm upgrade fails"}}},
		"issue closed by a maintainer": {"issues", "issues-closed.json", want{
			supportv1.MessageKind_MESSAGE_KIND_THREAD_CLOSED, issueKey, "issue:444500041", "bob-acme", supportv1.AuthorRole_AUTHOR_ROLE_STAFF,
			"", "", map[string]string{"state_reason": "completed"}}},
		"issue reopened by its author": {"issues", "issues-reopened.json", want{
			supportv1.MessageKind_MESSAGE_KIND_THREAD_REOPENED, issueKey, "issue:444500041", "jane-doe", supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER,
			"", "", nil}},
		"issue labeled by a bot": {"issues", "issues-labeled.json", want{
			supportv1.MessageKind_MESSAGE_KIND_UPDATED, issueKey, "issue:444500041", "dependabot[bot]", supportv1.AuthorRole_AUTHOR_ROLE_BOT,
			"", "", map[string]string{"label": "deployments"}}},
		"issue transferred": {"issues", "issues-transferred.json", want{
			supportv1.MessageKind_MESSAGE_KIND_THREAD_CLOSED, issueKey, "issue:444500041", "bob-acme", supportv1.AuthorRole_AUTHOR_ROLE_STAFF,
			"", "", map[string]string{"transferred_to": "github:acme/charts#7", "state_reason": "transferred"}}},
		"comment by a member": {"issue_comment", "issue_comment-created-staff.json", want{
			supportv1.MessageKind_MESSAGE_KIND_POSTED, issueKey, "comment:492700400", "bob-acme", supportv1.AuthorRole_AUTHOR_ROLE_STAFF,
			"Thanks! Can you share the output of kubectl logs for the migrate job?", "https://github.com/acme/main/issues/123#issuecomment-492700400",
			map[string]string{"author_association": "MEMBER"}}},
		"comment by a customer": {"issue_comment", "issue_comment-created.json", want{
			supportv1.MessageKind_MESSAGE_KIND_POSTED, issueKey, "comment:492700401", "jane-doe", supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER,
			"Here are the logs: lock timeout on posthog_event.", "", nil}},
		"comment by a bot": {"issue_comment", "issue_comment-created-bot.json", want{
			supportv1.MessageKind_MESSAGE_KIND_POSTED, issueKey, "comment:492700402", "dependabot[bot]", supportv1.AuthorRole_AUTHOR_ROLE_BOT,
			"", "", nil}},
		"comment edited": {"issue_comment", "issue_comment-edited.json", want{
			supportv1.MessageKind_MESSAGE_KIND_EDITED, issueKey, "comment:492700401", "jane-doe", supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER,
			"", "", nil}},
		"comment deleted by a maintainer": {"issue_comment", "issue_comment-deleted.json", want{
			supportv1.MessageKind_MESSAGE_KIND_DELETED, issueKey, "comment:492700401", "jane-doe", supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER,
			"", "", map[string]string{"changed_by": "bob-acme"}}},
		"discussion created": {"discussion", "discussion-created.json", want{
			supportv1.MessageKind_MESSAGE_KIND_POSTED, "github:acme/main/discussions#7", "discussion:3801", "jane-doe", supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER,
			"We ingest 40k events/s; which knobs matter?", "https://github.com/acme/main/discussions/7", map[string]string{"category": "Q&A"}}},
		"discussion comment by a collaborator": {"discussion_comment", "discussion_comment-created.json", want{
			supportv1.MessageKind_MESSAGE_KIND_POSTED, "github:acme/main/discussions#7", "discussion_comment:1007", "bob-acme", supportv1.AuthorRole_AUTHOR_ROLE_STAFF,
			"Start with the worker concurrency setting.", "", nil}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			res, err := Normalize(Delivery{Event: tc.event, ID: "72d3162e-cc78-11e3-81ab-4c9367dc0958", Body: fixture(t, tc.file)}, repos, now)
			if err != nil {
				t.Fatal(err)
			}
			m := res.Message
			if m == nil {
				t.Fatalf("ignored: %s", res.Ignored)
			}
			w := tc.want
			if !strings.HasPrefix(m.GetId(), "github:"+tc.event+".") || strings.Contains(m.GetId(), "72d3162e") || m.GetChannel() != supportv1.Channel_CHANNEL_GITHUB {
				t.Errorf("id %q channel %v", m.GetId(), m.GetChannel())
			}
			if m.GetKind() != w.kind || m.GetThreadKey() != w.thread || m.GetSourceId() != w.source {
				t.Errorf("kind %v thread %q source %q; want %v %q %q", m.GetKind(), m.GetThreadKey(), m.GetSourceId(), w.kind, w.thread, w.source)
			}
			if m.GetAuthor().GetId() != w.author || m.GetAuthor().GetRole() != w.role {
				t.Errorf("author %q %v; want %q %v", m.GetAuthor().GetId(), m.GetAuthor().GetRole(), w.author, w.role)
			}
			if w.text != "" && m.GetText() != w.text {
				t.Errorf("text %q, want %q", m.GetText(), w.text)
			}
			if w.permalink != "" && m.GetPermalink() != w.permalink {
				t.Errorf("permalink %q, want %q", m.GetPermalink(), w.permalink)
			}
			for k, v := range w.attrs {
				if m.GetAttributes()[k] != v {
					t.Errorf("attributes[%q] = %q, want %q (all: %v)", k, m.GetAttributes()[k], v, m.GetAttributes())
				}
			}
			if m.GetSentAt() == nil || m.GetReceivedAt().AsTime() != now {
				t.Errorf("sent %v received %v", m.GetSentAt(), m.GetReceivedAt())
			}
			if m.GetAttributes()["priority_hint"] != "high" {
				t.Errorf("priority hint %q", m.GetAttributes()["priority_hint"])
			}
		})
	}
}

func TestNormalizeIgnoredAndBad(t *testing.T) {
	repos, _ := ParseRepositories("acme/docs")
	allowAll := Repositories{}
	check := func(name string, d Delivery, r Repositories, ignored string, wantErr error) {
		t.Helper()
		res, err := Normalize(d, r, now)
		if !errors.Is(err, wantErr) || (wantErr == nil && err != nil) {
			t.Errorf("%s: err %v, want %v", name, err, wantErr)
		}
		if res.Ignored != ignored {
			t.Errorf("%s: ignored %q, want %q", name, res.Ignored, ignored)
		}
		if (ignored != "" || wantErr != nil) && res.Message != nil {
			t.Errorf("%s: unexpected message", name)
		}
	}
	check("repository not listed", Delivery{"issues", "d1", fixture(t, "issues-opened.json")}, repos, IgnoredRepository, nil)
	check("unknown event", Delivery{"push", "d2", []byte(`{"ref":"refs/heads/main"}`)}, allowAll, IgnoredEvent, nil)
	check("other action", Delivery{"issues", "d3", fixture(t, "issues-milestoned.json")}, allowAll, IgnoredAction, nil)
	check("not JSON", Delivery{"issues", "d4", []byte(`{"action": "opened",`)}, allowAll, "", ErrMalformed)
	check("no repository", Delivery{"issues", "d5", []byte(`{"action":"opened","issue":{"number":1,"user":{"login":"x"}}}`)}, allowAll, "", ErrUnusable)
	check("no issue", Delivery{"issues", "d6", []byte(`{"action":"opened","repository":{"full_name":"a/b"}}`)}, allowAll, "", ErrUnusable)
	check("wrong type", Delivery{"issues", "d7", []byte(`{"action":"opened","repository":{"full_name":"a/b"},"issue":{"number":"one"}}`)}, allowAll, "", ErrUnusable)
	check("comment without user", Delivery{"issue_comment", "d8", []byte(`{"action":"created","repository":{"full_name":"a/b"},"issue":{"number":1},"comment":{"id":5}}`)}, allowAll, "", ErrUnusable)
	check("closed without sender", Delivery{"issues", "d9", []byte(`{"action":"closed","repository":{"full_name":"a/b"},"issue":{"number":1,"user":{"login":"x"}}}`)}, allowAll, "", ErrUnusable)
}

func FuzzVerify(f *testing.F) {
	secret := []byte("fuzz-secret")
	f.Add([]byte(`{"action":"opened"}`), Sign(secret, []byte(`{"action":"opened"}`)))
	f.Add([]byte(""), "sha256=")
	f.Add([]byte("x"), "sha256="+strings.Repeat("0", 64))
	f.Fuzz(func(t *testing.T, body []byte, header string) {
		err := Verify(secret, body, header)
		right := Sign(secret, body)
		// The prefix is exact; the hex digits are case-insensitive (the
		// same MAC in capitals is the same MAC).
		ok := strings.HasPrefix(header, "sha256=") && strings.EqualFold(header, right)
		if (err == nil) != ok {
			t.Fatalf("Verify(%q) = %v; right signature %q", header, err, right)
		}
	})
}

func FuzzNormalize(f *testing.F) {
	for _, seed := range []struct{ event, file string }{
		{"issues", "issues-opened.json"}, {"issues", "issues-transferred.json"}, {"issue_comment", "issue_comment-created.json"},
		{"discussion", "discussion-created.json"}, {"discussion_comment", "discussion_comment-created.json"},
	} {
		f.Add(seed.event, fixture(f, seed.file))
	}
	f.Add("issues", []byte(`{"action":"closed","repository":{"full_name":"a/b"},"issue":{"number":1},"sender":{"login":"x","type":"Bot"}}`))
	f.Fuzz(func(t *testing.T, event string, body []byte) {
		res, err := Normalize(Delivery{Event: event, ID: "fuzz", Body: body}, Repositories{}, now)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnusable) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if res.Message == nil {
			if res.Ignored == "" {
				t.Fatal("neither a message nor a reason")
			}
			return
		}
		m := res.Message
		if !strings.HasPrefix(m.GetId(), "github:") || strings.ContainsAny(m.GetId(), " \r\n") || !strings.HasPrefix(m.GetThreadKey(), "github:") || m.GetAuthor().GetId() == "" || m.GetSentAt() == nil {
			t.Fatalf("incomplete message %v", m)
		}
	})
}

// TestOwnReplyIsMarked: the issue_comment webhook of a comment Sidekick
// posted carries its outbound id and loses the marker; a comment that
// merely quotes a marker mid-text is anyone's.
func TestOwnReplyIsMarked(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("testdata", "issue_comment-created-staff.json"))
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ body, id, text string }{
		{WithReplyMarker("Fixed in 1.2.3.\n", "out-42"), "out-42", "Fixed in 1.2.3."},
		{"see " + ReplyMarker("out-42") + " above", "", "see " + ReplyMarker("out-42") + " above"},
	} {
		p["comment"].(map[string]any)["body"] = c.body
		b, _ := json.Marshal(p)
		res, err := Normalize(Delivery{Event: "issue_comment", ID: "d-1", Body: b}, Repositories{}, time.Unix(1700000000, 0))
		if err != nil || res.Message == nil {
			t.Fatalf("Normalize: %v %+v", err, res)
		}
		if got := res.Message.GetAttributes()["outbound_id"]; got != c.id {
			t.Errorf("body %q: outbound_id %q, want %q", c.body, got, c.id)
		}
		if got := res.Message.GetText(); got != c.text {
			t.Errorf("body %q: text %q, want %q", c.body, got, c.text)
		}
	}
}

// TestIdentity: the message id comes from what GitHub says about the
// change, not from X-GitHub-Delivery. A signed body replayed under a fresh
// delivery id, and GitHub's own redelivery, are the same message; two
// different changes to one issue or comment are not. Before, the id was
// "github:"+delivery, so a replay was stored again.
func TestIdentity(t *testing.T) {
	id := func(event, delivery string, body []byte) string {
		t.Helper()
		res, err := Normalize(Delivery{Event: event, ID: delivery, Body: body}, Repositories{}, now)
		if err != nil || res.Message == nil {
			t.Fatalf("%s: %v %v", event, err, res.Ignored)
		}
		return res.Message.GetId()
	}
	for _, tc := range []struct{ event, file string }{
		{"issues", "issues-opened.json"}, {"issues", "issues-edited.json"}, {"issues", "issues-closed.json"},
		{"issues", "issues-reopened.json"}, {"issues", "issues-labeled.json"}, {"issues", "issues-transferred.json"},
		{"issue_comment", "issue_comment-created.json"}, {"issue_comment", "issue_comment-edited.json"},
		{"issue_comment", "issue_comment-deleted.json"}, {"discussion", "discussion-created.json"},
		{"discussion_comment", "discussion_comment-created.json"},
	} {
		body := fixture(t, tc.file)
		first, replay := id(tc.event, "delivery-1", body), id(tc.event, "delivery-2", body)
		if first != replay {
			t.Errorf("%s: replayed under a fresh delivery id: %q, then %q", tc.file, first, replay)
		}
		if strings.Contains(first, "delivery-") {
			t.Errorf("%s: id %q still derives from the delivery", tc.file, first)
		}
	}

	// Two edits of one issue, at different times or with different text
	// in the same second, are two messages.
	edited := fixture(t, "issues-edited.json")
	later := bytes.Replace(edited, []byte(`"updated_at": "2026-11-02T10:05:00Z"`), []byte(`"updated_at": "2026-11-02T10:07:00Z"`), 1)
	reworded := bytes.Replace(edited, []byte(`"body": "`), []byte(`"body": "Also: `), 1)
	base := id("issues", "d", edited)
	for name, b := range map[string][]byte{"later": later, "reworded": reworded} {
		if bytes.Equal(b, edited) {
			t.Fatalf("%s: the fixture did not change", name)
		}
		if id("issues", "d", b) == base {
			t.Errorf("%s edit has the id of the first: %q", name, base)
		}
	}
	// A payload without the time of the change keeps the delivery id.
	noTime := []byte(`{"action":"reopened","repository":{"full_name":"a/b"},"issue":{"id":5,"number":1},"sender":{"login":"x"}}`)
	if got := id("issues", "d-9", noTime); got != "github:d-9" {
		t.Errorf("without updated_at: id %q, want the delivery's", got)
	}
}
