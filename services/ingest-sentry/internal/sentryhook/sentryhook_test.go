package sentryhook

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

var now = time.Date(2026, 11, 20, 10, 30, 0, 0, time.UTC)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerify(t *testing.T) {
	secret := []byte("client-secret")
	body := fixture(t, "issue-created.json")
	sig := Sign(secret, body)
	if len(sig) != 64 || Verify(secret, body, sig) != nil {
		t.Fatalf("own signature %q rejected", sig)
	}
	for name, tc := range map[string]struct {
		secret []byte
		body   []byte
		header string
		want   error
	}{
		"missing":      {secret, body, "", ErrMissingSignature},
		"other body":   {secret, append([]byte(" "), body...), sig, ErrBadSignature},
		"other secret": {[]byte("x"), body, sig, ErrBadSignature},
		"no secret":    {nil, body, sig, ErrBadSignature},
		"upper hex":    {secret, body, strings.ToUpper(sig[:1]) + "z" + sig[2:], ErrBadSignature},
		"prefixed":     {secret, body, "sha256=" + sig, ErrBadSignature},
		"short":        {secret, body, sig[:10], ErrBadSignature},
	} {
		if err := Verify(tc.secret, tc.body, tc.header); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}

func TestParse(t *testing.T) {
	type want struct {
		occurrence bool
		key        string
		thread     string
		kind       supportv1.MessageKind
		role       supportv1.AuthorRole
		author     string
		project    string
		permalink  string
		attrs      map[string]string
	}
	const issueURL = "https://sentry.io/organizations/acme/issues/1170820242/"
	for name, tc := range map[string]struct {
		resource, file string
		want           want
	}{
		"issue created": {"issue", "issue-created.json", want{true, "1170820242", "sentry:1170820242",
			supportv1.MessageKind_MESSAGE_KIND_POSTED, supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER, "sentry:api", "api",
			"https://acme.sentry.io/issues/1170820242/", map[string]string{"short_id": "API-9", "level": "error", "sentry_count": "1", "culprit": "billing.views in charge_card"}}},
		"issue resolved by a person": {"issue", "issue-resolved.json", want{false, "1170820242", "sentry:1170820242",
			supportv1.MessageKind_MESSAGE_KIND_THREAD_CLOSED, supportv1.AuthorRole_AUTHOR_ROLE_STAFF, "sentry-user:1", "api", "", nil}},
		"issue archived": {"issue", "issue-archived.json", want{false, "1170820242", "sentry:1170820242",
			supportv1.MessageKind_MESSAGE_KIND_UPDATED, supportv1.AuthorRole_AUTHOR_ROLE_STAFF, "sentry-user:1", "api", "", map[string]string{"muted": "true", "substatus": "archived_until_escalating"}}},
		"issue regressed": {"issue", "issue-unresolved.json", want{false, "1170820242", "sentry:1170820242",
			supportv1.MessageKind_MESSAGE_KIND_THREAD_REOPENED, supportv1.AuthorRole_AUTHOR_ROLE_BOT, "sentry", "api", "", map[string]string{"muted": "false", "substatus": "regressed"}}},
		"issue assigned": {"issue", "issue-assigned.json", want{false, "1170820242", "sentry:1170820242",
			supportv1.MessageKind_MESSAGE_KIND_UPDATED, supportv1.AuthorRole_AUTHOR_ROLE_STAFF, "sentry-user:1", "api", "", map[string]string{"assigned_to": "alice@example.com"}}},
		"error created": {"error", "error-created.json", want{true, "1170820242", "sentry:1170820242",
			supportv1.MessageKind_MESSAGE_KIND_POSTED, supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER, "u-4711", "api", issueURL,
			map[string]string{"level": "error", "environment": "production", "release": "api@2026.11.3", "event_id": "bb78c1407cea4519aa397afc059c793d"}}},
		"issue alert triggered": {"event_alert", "event_alert-triggered.json", want{true, "1170820242", "sentry:1170820242",
			supportv1.MessageKind_MESSAGE_KIND_POSTED, supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER, "u-4711", "api", issueURL,
			map[string]string{"level": "fatal", "triggered_rule": "Billing errors page the platform team"}}},
		"metric alert critical": {"metric_alert", "metric_alert-critical.json", want{false, "incident-4", "sentry:incident:4",
			supportv1.MessageKind_MESSAGE_KIND_POSTED, supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER, "sentry", "frontend",
			"https://sentry.io/organizations/acme/alerts/1/", map[string]string{"alert_rule": "Too many errors", "level": "fatal"}}},
		"metric alert resolved": {"metric_alert", "metric_alert-resolved.json", want{false, "incident-4", "sentry:incident:4",
			supportv1.MessageKind_MESSAGE_KIND_THREAD_CLOSED, supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER, "sentry", "frontend", "", nil}},
		"comment created": {"comment", "comment-created.json", want{false, "1170820242", "sentry:1170820242",
			supportv1.MessageKind_MESSAGE_KIND_POSTED, supportv1.AuthorRole_AUTHOR_ROLE_STAFF, "sentry-user:1", "api", "", nil}},
	} {
		t.Run(name, func(t *testing.T) {
			ev, err := Parse(tc.resource, "req-1", fixture(t, tc.file), now)
			if err != nil {
				t.Fatal(err)
			}
			m, w := ev.Message, tc.want
			if m == nil {
				t.Fatalf("ignored: %s", ev.Ignored)
			}
			if ev.Occurrence != w.occurrence || ev.Key != w.key || ev.Project != w.project {
				t.Errorf("occurrence %v key %q project %q", ev.Occurrence, ev.Key, ev.Project)
			}
			if !strings.HasPrefix(m.GetId(), "sentry:"+tc.resource+".") || strings.Contains(m.GetId(), "req-1") || m.GetChannel() != supportv1.Channel_CHANNEL_SENTRY || m.GetThreadKey() != w.thread || m.GetKind() != w.kind {
				t.Errorf("id %q thread %q kind %v", m.GetId(), m.GetThreadKey(), m.GetKind())
			}
			if m.GetAuthor().GetRole() != w.role || m.GetAuthor().GetId() != w.author {
				t.Errorf("author %v", m.GetAuthor())
			}
			if w.permalink != "" && m.GetPermalink() != w.permalink {
				t.Errorf("permalink %q", m.GetPermalink())
			}
			for k, v := range w.attrs {
				if m.GetAttributes()[k] != v {
					t.Errorf("attributes[%q] = %q, want %q", k, m.GetAttributes()[k], v)
				}
			}
			if m.GetSentAt() == nil || m.GetReceivedAt().AsTime() != now {
				t.Errorf("times %v %v", m.GetSentAt(), m.GetReceivedAt())
			}
		})
	}
}

func TestParseAffectedUser(t *testing.T) {
	ev, err := Parse("error", "req-2", fixture(t, "error-created.json"), now)
	if err != nil {
		t.Fatal(err)
	}
	a := ev.Message.GetAuthor()
	if a.GetEmail() != "jane@customer.io" || a.GetHandle() != "jane" || a.GetName() != "jane" {
		t.Fatalf("affected user %v", a)
	}
	if ev.Tags["component"] != "billing" {
		t.Fatalf("tags %v", ev.Tags)
	}
	if !strings.Contains(ev.Message.GetText(), "billing.views in charge_card") {
		t.Fatalf("text %q", ev.Message.GetText())
	}
}

func TestParseIgnoredAndBad(t *testing.T) {
	for name, tc := range map[string]struct {
		resource string
		body     string
		ignored  string
		err      error
	}{
		"installation":      {"installation", string(fixture(t, "installation-created.json")), IgnoredInstallation, nil},
		"unknown resource":  {"seer", `{"action":"root_cause_completed"}`, IgnoredResource, nil},
		"unknown action":    {"issue", `{"action":"deleted","data":{}}`, IgnoredAction, nil},
		"not JSON":          {"issue", `{"action":`, "", ErrMalformed},
		"issue without id":  {"issue", `{"action":"created","data":{"issue":{"title":"x"}}}`, "", ErrUnusable},
		"error without id":  {"error", `{"action":"created","data":{"error":{"title":"x"}}}`, "", ErrUnusable},
		"wrong type":        {"issue", `{"action":"created","data":{"issue":{"id":{"x":1}}}}`, "", ErrUnusable},
		"bad timestamp":     {"comment", `{"action":"created","data":{"issue_id":1,"comment_id":2,"timestamp":"yesterday"}}`, "", ErrUnusable},
		"comment no issue":  {"comment", `{"action":"created","data":{"comment":"hi","comment_id":2}}`, "", ErrUnusable},
		"metric without id": {"metric_alert", `{"action":"critical","data":{"metric_alert":{}}}`, "", ErrUnusable},
	} {
		ev, err := Parse(tc.resource, "r", []byte(tc.body), now)
		if tc.err != nil && !errors.Is(err, tc.err) || tc.err == nil && err != nil {
			t.Errorf("%s: err %v, want %v", name, err, tc.err)
		}
		if ev.Ignored != tc.ignored || (ev.Message != nil && tc.ignored != "") {
			t.Errorf("%s: ignored %q, want %q", name, ev.Ignored, tc.ignored)
		}
	}
}

func FuzzVerify(f *testing.F) {
	secret := []byte("fuzz")
	f.Add([]byte(`{"action":"created"}`), Sign(secret, []byte(`{"action":"created"}`)))
	f.Add([]byte(""), "")
	f.Fuzz(func(t *testing.T, body []byte, header string) {
		err := Verify(secret, body, header)
		right := Sign(secret, body)
		// Hex is case-insensitive: the same MAC in capitals is the same MAC.
		if (err == nil) != strings.EqualFold(header, right) {
			t.Fatalf("Verify(%q) = %v; right signature %q", header, err, right)
		}
	})
}

func FuzzParse(f *testing.F) {
	for _, s := range []struct{ resource, file string }{
		{"issue", "issue-created.json"}, {"issue", "issue-resolved.json"}, {"error", "error-created.json"},
		{"event_alert", "event_alert-triggered.json"}, {"metric_alert", "metric_alert-critical.json"}, {"comment", "comment-created.json"},
	} {
		f.Add(s.resource, fixture(f, s.file))
	}
	f.Fuzz(func(t *testing.T, resource string, body []byte) {
		ev, err := Parse(resource, "fuzz", body, now)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnusable) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if ev.Message == nil {
			if ev.Ignored == "" {
				t.Fatal("neither a message nor a reason")
			}
			return
		}
		m := ev.Message
		if ev.Key == "" || !strings.HasPrefix(m.GetId(), "sentry:") || strings.ContainsAny(m.GetId(), " \r\n") || !strings.HasPrefix(m.GetThreadKey(), "sentry:") || m.GetAuthor() == nil || m.GetSentAt() == nil {
			t.Fatalf("incomplete event %+v", ev)
		}
	})
}

// TestIdentity: the message id comes from what Sentry says about the
// change, not from Request-ID, so a signed body replayed under a fresh
// Request-ID is the same message; a different change to the same issue
// is not. Before, the id was "sentry:"+Request-ID, so a replay was stored
// again.
func TestIdentity(t *testing.T) {
	id := func(resource, requestID string, body []byte) string {
		t.Helper()
		ev, err := Parse(resource, requestID, body, now)
		if err != nil || ev.Message == nil {
			t.Fatalf("%s: %v %s", resource, err, ev.Ignored)
		}
		return ev.Message.GetId()
	}
	files := map[string]string{
		"issue-created.json": "issue", "issue-resolved.json": "issue", "issue-archived.json": "issue",
		"issue-unresolved.json": "issue", "issue-assigned.json": "issue", "error-created.json": "error",
		"event_alert-triggered.json": "event_alert", "metric_alert-critical.json": "metric_alert",
		"metric_alert-resolved.json": "metric_alert", "comment-created.json": "comment",
	}
	seen := map[string]string{}
	for file, resource := range files {
		body := fixture(t, file)
		first, replay := id(resource, "req-1", body), id(resource, "req-2", body)
		if first != replay || strings.Contains(first, "req-") {
			t.Errorf("%s: replayed under a fresh Request-ID: %q, then %q", file, first, replay)
		}
		if other, dup := seen[first]; dup {
			t.Errorf("%s and %s share the id %q", file, other, first)
		}
		seen[first] = file
	}
	// Resolved again later (another count, another last seen): a new
	// message, not a replay.
	resolved := fixture(t, "issue-resolved.json")
	again := bytes.Replace(resolved, []byte(`"count": "1"`), []byte(`"count": "7"`), 1)
	if bytes.Equal(again, resolved) {
		t.Fatal("the fixture did not change")
	}
	if id("issue", "r", again) == id("issue", "r", resolved) {
		t.Error("a second resolve of the issue has the first one's id")
	}
	// An occurrence without an event id keeps the Request-ID.
	if got := id("error", "req-9", []byte(`{"action":"created","data":{"error":{"issue_id":"5"}}}`)); got != "sentry:req-9" {
		t.Errorf("without an event id: %q", got)
	}
}

func TestCheckTimestamp(t *testing.T) {
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	unix := func(d time.Duration) string { return strconv.FormatInt(at.Add(d).Unix(), 10) }
	for header, want := range map[string]error{
		unix(0): nil, unix(-4 * time.Minute): nil, unix(4 * time.Minute): nil,
		unix(-6 * time.Minute): ErrStale, unix(6 * time.Minute): ErrStale, unix(-30 * 24 * time.Hour): ErrStale,
		"1795168800.25": nil, "": ErrMissingTimestamp, "soon": ErrBadTimestamp, "-1": ErrBadTimestamp,
		"1e300": ErrBadTimestamp, "NaN": ErrBadTimestamp,
	} {
		if err := CheckTimestamp(at, header); !errors.Is(err, want) {
			t.Errorf("%q: %v, want %v", header, err, want)
		}
	}
}

func FuzzCheckTimestamp(f *testing.F) {
	for _, s := range []string{"1795170600", "1795170600.5", "", "NaN", "1e400", "-0", "0x1p30"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		if err := CheckTimestamp(now, header); err == nil {
			secs, perr := strconv.ParseFloat(header, 64)
			if perr != nil || math.Abs(secs-float64(now.Unix())) > MaxSkew.Seconds()+1 {
				t.Fatalf("%q accepted at %v", header, now)
			}
		}
	})
}

// BenchmarkParse parses the storm's webhook, error.created (6 kB, most of
// it the event's stack trace and contexts, which Parse does not use).
func BenchmarkParse(b *testing.B) {
	for _, c := range []struct{ resource, file string }{{"error", "error-created.json"}, {"issue", "issue-created.json"}} {
		body := fixture(b, c.file)
		b.Run(c.resource, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := Parse(c.resource, "bench", body, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
