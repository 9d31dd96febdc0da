package slackevent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func classify(t *testing.T, name string, opts Options) (*Envelope, *Item, string, error) {
	t.Helper()
	env, err := Parse(fixture(t, name))
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	it, ignored, err := Classify(env, opts)
	return env, it, ignored, err
}

func TestClassifyFixtures(t *testing.T) {
	cases := []struct {
		file      string
		opts      Options
		ignored   string
		kind      supportv1.MessageKind
		label     string
		ts, root  string
		topLevel  bool
		senderBot bool
	}{
		{file: "message.json", kind: supportv1.MessageKind_MESSAGE_KIND_POSTED, label: "message", ts: "1700000000.000100", root: "1700000000.000100", topLevel: true},
		{file: "thread_reply.json", kind: supportv1.MessageKind_MESSAGE_KIND_POSTED, label: "message", ts: "1700000060.000200", root: "1700000000.000100"},
		{file: "message_changed.json", kind: supportv1.MessageKind_MESSAGE_KIND_EDITED, label: "message_changed", ts: "1700000000.000100", root: "1700000000.000100"},
		{file: "message_changed_unfurl.json", ignored: IgnoredUnchanged},
		{file: "message_deleted.json", kind: supportv1.MessageKind_MESSAGE_KIND_DELETED, label: "message_deleted", ts: "1700000060.000200", root: "1700000000.000100"},
		{file: "message_deleted_bare.json", kind: supportv1.MessageKind_MESSAGE_KIND_DELETED, label: "message_deleted", ts: "1358878749.000002", root: "1358878749.000002"},
		{file: "file_share.json", kind: supportv1.MessageKind_MESSAGE_KIND_POSTED, label: "file_share", ts: "1529342088.000086", root: "1529342000.000010"},
		{file: "bot_message.json", kind: supportv1.MessageKind_MESSAGE_KIND_POSTED, label: "bot_message", ts: "1700000200.000600", root: "1700000000.000100", senderBot: true},
		{file: "shared_channel.json", kind: supportv1.MessageKind_MESSAGE_KIND_POSTED, label: "message", ts: "1700000400.000800", root: "1700000400.000800", topLevel: true},
		{file: "self_message.json", ignored: IgnoredSelf},
		{file: "channel_join.json", ignored: IgnoredSubtype},
		{file: "url_verification.json", ignored: IgnoredEnvelope},
		{file: "app_rate_limited.json", ignored: IgnoredEnvelope},
		// With no allow-list every channel is an intake channel, so the
		// mention duplicates the message event.
		{file: "app_mention.json", ignored: IgnoredMention},
		{file: "app_mention.json", opts: Options{Channels: map[string]bool{"C0LAN2Q66": true}}, ignored: IgnoredMention},
		{file: "app_mention.json", opts: Options{Channels: map[string]bool{"C0LAN2Q65": true}}, kind: supportv1.MessageKind_MESSAGE_KIND_POSTED, label: "app_mention", ts: "1515449483.000108", root: "1515449483.000108", topLevel: true},
		{file: "message.json", opts: Options{Channels: map[string]bool{"C0OTHER": true}}, ignored: IgnoredChannel},
		{file: "message.json", opts: Options{Channels: map[string]bool{"C0LAN2Q65": true}}, kind: supportv1.MessageKind_MESSAGE_KIND_POSTED, label: "message", ts: "1700000000.000100", root: "1700000000.000100", topLevel: true},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			_, it, ignored, err := classify(t, c.file, c.opts)
			if err != nil {
				t.Fatalf("Classify: %v", err)
			}
			if ignored != c.ignored {
				t.Fatalf("ignored = %q, want %q", ignored, c.ignored)
			}
			if c.ignored != "" {
				if it != nil {
					t.Fatal("an ignored event came with an item")
				}
				return
			}
			if it.Kind != c.kind || it.Label != c.label || it.TS != c.ts || it.RootTS != c.root || it.IsTopLevel != c.topLevel || it.Sender.IsBot != c.senderBot {
				t.Fatalf("item = %+v", it)
			}
		})
	}
}

func TestBuildTopLevelMessage(t *testing.T) {
	_, it, _, err := classify(t, "message.json", Options{})
	if err != nil {
		t.Fatal(err)
	}
	received := time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC)
	author := Author(it.Sender, nil, "T061EG9R6")
	m := Build(it, author, "event", Permalink("https://acme.slack.com", it.Team, it.Channel, it.RootTS), received)
	want := &supportv1.InboundMessage{
		Id:        "slack:Ev0PV52K21",
		Channel:   supportv1.Channel_CHANNEL_SLACK,
		SourceId:  "1700000000.000100",
		ThreadKey: "slack:T061EG9R6/C0LAN2Q65/1700000000.000100",
		Author:    &supportv1.Author{Id: "W012A3CDE", Role: supportv1.AuthorRole_AUTHOR_ROLE_STAFF, Organisation: "T061EG9R6"},
		Subject:   "Hi! Our session recordings stopped showing up since this morning.",
		Text:      "Hi! Our session recordings stopped showing up since this morning.\nAny idea?",
		Permalink: "https://acme.slack.com/archives/C0LAN2Q65/p1700000000000100",
		Kind:      supportv1.MessageKind_MESSAGE_KIND_POSTED,
		Attributes: map[string]string{
			"team_id": "T061EG9R6", "channel_id": "C0LAN2Q65", "ts": "1700000000.000100", "thread_ts": "1700000000.000100",
			"event": "message", "channel_type": "channel", "author_source": "event",
		},
	}
	if got := m.GetSentAt().AsTime(); !got.Equal(time.Unix(1700000000, 100000)) {
		t.Fatalf("sent_at = %s", got)
	}
	if !m.GetReceivedAt().AsTime().Equal(received) {
		t.Fatalf("received_at = %s", m.GetReceivedAt().AsTime())
	}
	m.SentAt, m.ReceivedAt = nil, nil
	if !proto.Equal(m, want) {
		t.Fatalf("message\n got %v\nwant %v", m, want)
	}
}

func TestBuildReplyEditDeleteShareOneThread(t *testing.T) {
	var keys []string
	for _, f := range []string{"message.json", "thread_reply.json", "message_changed.json", "message_deleted.json"} {
		_, it, _, err := classify(t, f, Options{})
		if err != nil {
			t.Fatal(err)
		}
		m := Build(it, Author(it.Sender, nil, "T061EG9R6"), "event", "", time.Now())
		keys = append(keys, m.GetThreadKey())
		switch f {
		case "thread_reply.json":
			if m.GetSubject() != "" || len(m.GetReferences()) != 1 || m.GetReferences()[0] != "1700000000.000100" {
				t.Fatalf("reply: subject %q references %v", m.GetSubject(), m.GetReferences())
			}
		case "message_changed.json":
			if !strings.Contains(m.GetText(), "project 4242") || m.GetSourceId() != "1700000000.000100" {
				t.Fatalf("edit: %v", m)
			}
			if !m.GetSentAt().AsTime().Equal(time.Unix(1700000120, 0)) {
				t.Fatalf("edit sent_at = %s, want the edit time", m.GetSentAt().AsTime())
			}
		case "message_deleted.json":
			if m.GetSourceId() != "1700000060.000200" || m.GetAuthor().GetId() != "U024BE7LH" || m.GetText() != "" {
				t.Fatalf("delete: %v", m)
			}
		}
	}
	for _, k := range keys {
		if k != keys[0] {
			t.Fatalf("thread keys differ: %v", keys)
		}
	}
}

func TestBuildFileShare(t *testing.T) {
	_, it, _, err := classify(t, "file_share.json", Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := Build(it, Author(it.Sender, nil, "T061EG9R6"), "event", "", time.Now())
	if len(m.GetAttachments()) != 1 {
		t.Fatalf("attachments = %v", m.GetAttachments())
	}
	a := m.GetAttachments()[0]
	if a.GetName() != "ghostrap.png" || a.GetContentType() != "image/png" || a.GetSizeBytes() != 196920 ||
		a.GetUrl() != "https://episod-slackform.slack.com/files/U061F7AUR/F0RDC39U1/ghostrap.png" {
		t.Fatalf("attachment = %v", a)
	}
	if m.GetAttributes()["subtype"] != "file_share" || m.GetThreadKey() != "slack:T061EG9R6/C0LAN2Q65/1529342000.000010" {
		t.Fatalf("message = %v", m)
	}
}

func TestTombstoneIsADeletion(t *testing.T) {
	body := []byte(`{"type":"event_callback","team_id":"T1","event_id":"Ev9","event":{"type":"message","subtype":"message_changed","hidden":true,"channel":"C1","ts":"1700000500.000001",
		"message":{"type":"message","subtype":"tombstone","text":"This message was deleted.","user":"USLACKBOT","hidden":true,"ts":"1700000000.000100","thread_ts":"1700000000.000100","reply_count":2},
		"previous_message":{"type":"message","text":"help","user":"W1","ts":"1700000000.000100","thread_ts":"1700000000.000100"}}}`)
	env, err := Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	it, ignored, err := Classify(env, Options{})
	if err != nil || ignored != "" {
		t.Fatalf("Classify: %v %q", err, ignored)
	}
	if it.Kind != supportv1.MessageKind_MESSAGE_KIND_DELETED || it.TS != "1700000000.000100" || it.Sender.User != "W1" {
		t.Fatalf("item = %+v", it)
	}
}

func TestUnprocessable(t *testing.T) {
	for name, body := range map[string]string{
		"no event":          `{"type":"event_callback","team_id":"T1","event_id":"Ev1"}`,
		"no event id":       `{"type":"event_callback","team_id":"T1","event":{"type":"message","channel":"C1","ts":"1.2","text":"x"}}`,
		"no team":           `{"type":"event_callback","event_id":"Ev1","event":{"type":"message","channel":"C1","ts":"1.2","text":"x"}}`,
		"no channel":        `{"type":"event_callback","team_id":"T1","event_id":"Ev1","event":{"type":"message","ts":"1.2","text":"x"}}`,
		"no ts":             `{"type":"event_callback","team_id":"T1","event_id":"Ev1","event":{"type":"message","channel":"C1","text":"x"}}`,
		"bad ts":            `{"type":"event_callback","team_id":"T1","event_id":"Ev1","event":{"type":"message","channel":"C1","ts":"yesterday","text":"x"}}`,
		"changed, no inner": `{"type":"event_callback","team_id":"T1","event_id":"Ev1","event":{"type":"message","subtype":"message_changed","channel":"C1","ts":"1.2"}}`,
		"deleted, no ts":    `{"type":"event_callback","team_id":"T1","event_id":"Ev1","event":{"type":"message","subtype":"message_deleted","channel":"C1","ts":"1.2"}}`,
		"mention, no ts":    `{"type":"event_callback","team_id":"T1","event_id":"Ev1","event":{"type":"app_mention","channel":"C9","text":"<@U1>"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			env, err := Parse([]byte(body))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			_, _, err = Classify(env, Options{Channels: map[string]bool{"C1": true}})
			if !errors.Is(err, ErrUnprocessable) {
				t.Fatalf("Classify = %v, want ErrUnprocessable", err)
			}
		})
	}
}

func TestMalformed(t *testing.T) {
	for name, body := range map[string]string{
		"empty":          ``,
		"not json":       `token=x&type=event_callback`,
		"array":          `[{"type":"event_callback"}]`,
		"truncated":      `{"type":"event_callback","event":{`,
		"no type":        `{"team_id":"T1"}`,
		"wrong type":     `{"type":"event_callback","event_id":42}`,
		"event a string": `{"type":"event_callback","event":"message"}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(body)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestAuthorRoles(t *testing.T) {
	const ours = "T061EG9R6"
	member := &Profile{ID: "U1", TeamID: ours, RealName: "Alice Example", DisplayName: "alice", Name: "alice", Email: "alice@example.com"}
	guest := &Profile{ID: "U2", TeamID: ours, RealName: "Gus Guest", IsRestricted: true}
	single := &Profile{ID: "U3", TeamID: ours, IsUltraRestricted: true}
	external := &Profile{ID: "U4", TeamID: "T0CUSTOMER", RealName: "Dana Customer"}
	stranger := &Profile{ID: "U5", IsStranger: true}
	botUser := &Profile{ID: "U6", TeamID: ours, IsBot: true, RealName: "Deploy Bot"}
	staff, customer, bot := supportv1.AuthorRole_AUTHOR_ROLE_STAFF, supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER, supportv1.AuthorRole_AUTHOR_ROLE_BOT
	cases := []struct {
		name string
		s    Sender
		p    *Profile
		want supportv1.AuthorRole
	}{
		{"member", Sender{User: "U1"}, member, staff},
		{"guest", Sender{User: "U2"}, guest, customer},
		{"single-channel guest", Sender{User: "U3"}, single, customer},
		{"slack connect", Sender{User: "U4"}, external, customer},
		{"stranger", Sender{User: "U5"}, stranger, customer},
		{"bot user", Sender{User: "U6"}, botUser, bot},
		{"bot message", Sender{BotID: "B1", Username: "github", IsBot: true}, nil, bot},
		{"event: our team", Sender{User: "U1", Team: ours}, nil, staff},
		{"event: other team", Sender{User: "U4", Team: "T0CUSTOMER"}, nil, customer},
		{"event: restricted profile", Sender{User: "U2", Team: ours, Profile: &UserProfile{Team: ours, IsRestricted: true}}, nil, customer},
		{"event: unknown team", Sender{User: "U9"}, nil, customer},
		{"nobody", Sender{}, nil, supportv1.AuthorRole_AUTHOR_ROLE_UNSPECIFIED},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Author(c.s, c.p, ours).GetRole(); got != c.want {
				t.Fatalf("role = %s, want %s", got, c.want)
			}
		})
	}
	a := Author(Sender{User: "U1"}, member, ours)
	if a.GetName() != "Alice Example" || a.GetHandle() != "alice" || a.GetEmail() != "alice@example.com" || a.GetOrganisation() != ours {
		t.Fatalf("member author = %v", a)
	}
	if a := Author(Sender{BotID: "B1", Username: "github", IsBot: true}, nil, ours); a.GetId() != "B1" || a.GetName() != "github" {
		t.Fatalf("bot author = %v", a)
	}
}

func TestSharedChannelAuthorFromEvent(t *testing.T) {
	_, it, _, err := classify(t, "shared_channel.json", Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := Author(it.Sender, nil, "T061EG9R6")
	if a.GetRole() != supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER || a.GetName() != "Dana Customer" || a.GetHandle() != "dana" || a.GetOrganisation() != "T0CUSTOMER" {
		t.Fatalf("author = %v", a)
	}
	m := Build(it, a, "event", "", time.Now())
	if m.GetAttributes()["ext_shared"] != "true" {
		t.Fatalf("attributes = %v", m.GetAttributes())
	}
}

func TestPermalink(t *testing.T) {
	if got := Permalink("https://acme.slack.com/", "T1", "C1", "1700000000.000100"); got != "https://acme.slack.com/archives/C1/p1700000000000100" {
		t.Fatal(got)
	}
	if got := Permalink("", "T1", "C1", "1700000000.000100"); got != "https://app.slack.com/client/T1/C1/thread/C1-1700000000.000100" {
		t.Fatal(got)
	}
}

func TestParseTS(t *testing.T) {
	for ts, want := range map[string]time.Time{
		"1700000000.000100": time.Unix(1700000000, 100000),
		"1700000000":        time.Unix(1700000000, 0),
		"1358878755.000001": time.Unix(1358878755, 1000),
	} {
		got, err := ParseTS(ts)
		if err != nil || !got.Equal(want) {
			t.Fatalf("ParseTS(%q) = %s, %v", ts, got, err)
		}
	}
	for _, ts := range []string{"", ".5", "-1.0", "1e9", "17000000000000.0", "1.0000000001", "1.a"} {
		if _, err := ParseTS(ts); err == nil {
			t.Fatalf("ParseTS(%q) accepted", ts)
		}
	}
}

func TestSubject(t *testing.T) {
	long := strings.Repeat("é", 200)
	if got := subject("\n\n  first line  \nsecond"); got != "first line" {
		t.Fatal(got)
	}
	if got := subject(long); len([]rune(got)) != maxSubject || !strings.HasSuffix(got, "…") {
		t.Fatalf("long subject %q", got)
	}
}

// FuzzParse: any body either fails to parse with ErrMalformed, or
// classifies into exactly one of: an item, an ignore reason, an
// ErrUnprocessable; an item always builds a message with the id and thread
// key the contract promises.
func FuzzParse(f *testing.F) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			f.Add(fixture(f, e.Name()))
		}
	}
	f.Add([]byte(`{"type":"event_callback","team_id":"T1","event_id":"E","event":{"type":"message","subtype":"message_changed","channel":"C","ts":"1.1","message":{"ts":"2.2"}}}`))
	f.Add([]byte(`{"type":"event_callback","team_id":"T1","event_id":"E","event":{"type":"message","channel":"C","ts":"99999999999.999999","thread_ts":"1.000001"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		env, err := Parse(body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse error %v is not ErrMalformed", err)
			}
			return
		}
		_ = Label(env)
		for _, opts := range []Options{{}, {Channels: map[string]bool{"C": true}}} {
			it, ignored, err := Classify(env, opts)
			switch {
			case err != nil:
				if !errors.Is(err, ErrUnprocessable) || it != nil || ignored != "" {
					t.Fatalf("Classify = %v, %q, %v", it, ignored, err)
				}
				continue
			case ignored != "":
				if it != nil {
					t.Fatalf("ignored %q with an item", ignored)
				}
				continue
			case it == nil:
				t.Fatal("no item, no reason, no error")
			}
			m := Build(it, Author(it.Sender, nil, env.TeamID), "event", Permalink("", it.Team, it.Channel, it.RootTS), time.Unix(0, 0))
			if m.GetId() != "slack:"+env.EventID || env.EventID == "" {
				t.Fatalf("id %q for event_id %q", m.GetId(), env.EventID)
			}
			if want := ThreadKey(env.TeamID, env.Event.Channel, it.RootTS); m.GetThreadKey() != want || it.RootTS == "" || it.TS == "" {
				t.Fatalf("thread key %q, want %q", m.GetThreadKey(), want)
			}
			if m.GetKind() == supportv1.MessageKind_MESSAGE_KIND_UNSPECIFIED {
				t.Fatal("message without kind")
			}
			if _, err := proto.Marshal(m); err != nil {
				t.Fatalf("marshal: %v", err)
			}
		}
	})
}

// BenchmarkNormalize is the CPU cost of one message event: parse,
// classify, build and encode.
func BenchmarkNormalize(b *testing.B) {
	body := fixture(b, "message.json")
	for b.Loop() {
		env, err := Parse(body)
		if err != nil {
			b.Fatal(err)
		}
		it, _, err := Classify(env, Options{})
		if err != nil {
			b.Fatal(err)
		}
		m := Build(it, Author(it.Sender, nil, env.TeamID), "event", Permalink("", it.Team, it.Channel, it.RootTS), time.Unix(0, 0))
		// MarshalVT, as bus.Publisher encodes it.
		if _, err := m.MarshalVT(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestParseLeniency: the decoder takes what Slack's own clients take. A
// repeated member keeps its last value and invalid UTF-8 in a text becomes
// U+FFFD, so the message still encodes as protobuf (whose strings must be
// UTF-8); members match by their exact names.
func TestParseLeniency(t *testing.T) {
	body := []byte("{\"type\":\"event_callback\",\"team_id\":\"T1\",\"event_id\":\"Ev1\",\"event_id\":\"Ev2\"," +
		"\"event\":{\"type\":\"message\",\"channel\":\"C1\",\"user\":\"U1\",\"ts\":\"1700000000.000100\",\"text\":\"caf\xe9 \xff\",\"Channel\":\"C9\"}}")
	env, err := Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	if env.EventID != "Ev2" {
		t.Errorf("event_id %q, want the last one, Ev2", env.EventID)
	}
	if env.Event.Channel != "C1" {
		t.Errorf("channel %q: a member named Channel matched channel", env.Event.Channel)
	}
	if want := "caf\uFFFD \uFFFD"; env.Event.Text != want {
		t.Errorf("text %q, want %q", env.Event.Text, want)
	}
	it, ignored, err := Classify(env, Options{})
	if err != nil || ignored != "" {
		t.Fatalf("classify: %q %v", ignored, err)
	}
	if _, err := proto.Marshal(Build(it, Author(it.Sender, nil, "T1"), "event", "", time.Unix(0, 0))); err != nil {
		t.Fatalf("marshal: %v", err)
	}
}

// TestOwnReplyIsPublishedMarked: the message event of a reply Sidekick
// posted (our bot, with our reply metadata) is published with its
// outbound id, so triage can match it to the staff message; our other
// posts are still dropped.
func TestOwnReplyIsPublishedMarked(t *testing.T) {
	const tmpl = `{"type":"event_callback","team_id":"T061EG9R6","api_app_id":"A0MDYCDME","event_id":"Ev0ECHO%d",
	  "authorizations":[{"team_id":"T061EG9R6","user_id":"U0LAN0Z89","is_bot":true}],
	  "event":{"type":"message","subtype":"bot_message","channel":"C0LAN2Q65","bot_id":"B0SIDEKICK","app_id":"A0MDYCDME",
	    "username":"Farah","text":"Fixed &amp; deployed: see <https://status.example.com|status>","ts":"1700000100.000200",
	    "thread_ts":"1700000000.000100"%s}}`
	reply := fmt.Sprintf(tmpl, 1, `,"metadata":{"event_type":"sidekick_reply","event_payload":{"outbound_id":"out-123"}}`)
	env, err := Parse([]byte(reply))
	if err != nil {
		t.Fatal(err)
	}
	it, ignored, err := Classify(env, Options{})
	if err != nil || ignored != "" {
		t.Fatalf("Classify: ignored %q, err %v", ignored, err)
	}
	m := Build(it, Author(it.Sender, nil, "T061EG9R6"), "event", "", time.Unix(1700000200, 0))
	if got := m.GetAttributes()["outbound_id"]; got != "out-123" {
		t.Errorf("outbound_id attribute %q, want out-123", got)
	}
	if want := "Fixed & deployed: see [status](https://status.example.com)"; m.GetText() != want {
		t.Errorf("text %q, want the decoded %q", m.GetText(), want)
	}

	other := fmt.Sprintf(tmpl, 2, `,"metadata":{"event_type":"something_else","event_payload":{"outbound_id":"x"}}`)
	if env, err = Parse([]byte(other)); err != nil {
		t.Fatal(err)
	}
	if _, ignored, _ := Classify(env, Options{}); ignored != IgnoredSelf {
		t.Errorf("our post without reply metadata: ignored %q, want %q", ignored, IgnoredSelf)
	}
}
