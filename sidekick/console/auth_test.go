package console_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/sidekickhq/sidekick/platform/app"
	"github.com/sidekickhq/sidekick/platform/grpcx"
	"github.com/sidekickhq/sidekick/platform/logging"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/sidekick/console"
)

func TestConfigNeedsTokenOutsideDev(t *testing.T) {
	base := console.Config{Timezone: "UTC", SessionTTL: time.Hour, RPCTimeout: time.Second}
	noToken := base
	if err := noToken.Validate(); err == nil || !strings.Contains(err.Error(), "SIDEKICK_CONSOLE_TOKEN") {
		t.Errorf("no token outside dev: want an error naming SIDEKICK_CONSOLE_TOKEN, got %v", err)
	}
	short := base
	short.Token = "short"
	if err := short.Validate(); err == nil {
		t.Error("a 5-character token was accepted")
	}
	dev := base
	dev.Dev = true
	if err := dev.Validate(); err != nil {
		t.Errorf("dev without token: %v", err)
	}
	if _, err := console.New(noToken, console.Deps{}); err == nil || !strings.Contains(err.Error(), "SIDEKICK_CONSOLE_TOKEN") {
		t.Errorf("New without token: %v", err)
	}
}

// TestEveryPageNeedsSignIn: outside dev, only the sign-in page and the
// stylesheet answer without a session; page loads go to sign-in and
// actions get 401, without any call to triage.
func TestEveryPageNeedsSignIn(t *testing.T) {
	h := start(t, console.Config{Token: testToken}, nil, nil)
	for _, path := range []string{"/console/", "/console/oncall", "/console/conversations/c-42", "/console/?status=closed"} {
		r := h.get(path)
		if r.code != http.StatusSeeOther || r.header.Get("Location") != "/console/signin?next="+url.QueryEscape(path) {
			t.Errorf("GET %s without session: %d %q", path, r.code, r.header.Get("Location"))
		}
	}
	for _, action := range []string{"assign", "tag", "note", "close", "reopen", "escalate"} {
		r := h.post("/console/conversations/c-42/"+action, url.Values{"text": {"x"}})
		if r.code != http.StatusUnauthorized {
			t.Errorf("POST %s without session: %d, want 401", action, r.code)
		}
	}
	if n := len(h.triage.Calls()); n != 0 {
		t.Errorf("%d calls reached triage without a session", n)
	}
	if r := h.get("/console/signin"); r.code != http.StatusOK || !strings.Contains(r.body, `name="token"`) {
		t.Errorf("sign-in page: %d\n%s", r.code, r.body)
	}
	if r := h.get("/console/static/console.css"); r.code != http.StatusOK {
		t.Errorf("stylesheet: %d", r.code)
	}
}

// TestShareLinkFromAnotherSite: the SameSite=Strict cookie is not sent on
// a navigation from Slack, so such a page load gets a same-origin reload
// of the same address instead of a sign-in prompt.
func TestShareLinkFromAnotherSite(t *testing.T) {
	h := start(t, console.Config{Token: testToken}, nil, nil)
	r := h.get("/console/conversations/c-42?x=1", "Sec-Fetch-Site", "cross-site")
	if r.code != http.StatusOK || !strings.Contains(r.body, `<meta http-equiv="refresh" content="0; url=/console/conversations/c-42?x=1">`) {
		t.Fatalf("cross-site page load: %d\n%s", r.code, r.body)
	}
	// The reload comes from our own page; still no session: sign in.
	r = h.get("/console/conversations/c-42?x=1", "Sec-Fetch-Site", "same-origin")
	if r.code != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/console/signin?next=") {
		t.Fatalf("same-origin reload: %d %q", r.code, r.header.Get("Location"))
	}
	// A browser that calls the reload cross-site again carries the bounce
	// mark and is sent to sign-in: never a reload loop.
	r = h.get("/console/conversations/c-42?x=1", "Sec-Fetch-Site", "cross-site")
	if r.code != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/console/signin?next=") {
		t.Fatalf("second cross-site load: %d %q", r.code, r.header.Get("Location"))
	}
}

func TestSignIn(t *testing.T) {
	h := start(t, console.Config{Token: testToken}, nil, nil)

	r := h.post("/console/signin", url.Values{"name": {"Alice"}, "token": {"not-the-token-at-all"}})
	if r.code != http.StatusUnauthorized || !strings.Contains(r.body, "not the console token") {
		t.Errorf("wrong token: %d\n%s", r.code, r.body)
	}
	r = h.post("/console/signin", url.Values{"name": {"  "}, "token": {testToken}})
	if r.code != http.StatusBadRequest {
		t.Errorf("empty name: %d", r.code)
	}
	r = h.post("/console/signin", url.Values{"name": {"Alice\x00"}, "token": {testToken}})
	if r.code != http.StatusBadRequest {
		t.Errorf("name with a control character: %d", r.code)
	}
	r = h.post("/console/signin", url.Values{"name": {"Alice"}, "token": {testToken}}, "Sec-Fetch-Site", "cross-site")
	if r.code != http.StatusForbidden {
		t.Errorf("cross-site sign-in: %d, want 403", r.code)
	}
	if got := h.client.Jar.Cookies(mustURL(t, h.srv.URL+"/console/")); len(got) != 0 {
		t.Fatalf("failed sign-ins set cookies: %v", got)
	}

	// Open redirects are refused: after sign-in the visitor stays here.
	for next, want := range map[string]string{
		"/console/conversations/c-42?done=x": "/console/conversations/c-42?done=x",
		"https://evil.example/console/":      "/console/",
		"//evil.example/console/":            "/console/",
		"/elsewhere":                         "/console/",
		`/console/\evil`:                     "/console/",
		"/console/../elsewhere":              "/console/",
		"/console/conversations/../oncall":   "/console/oncall",
	} {
		r = h.post("/console/signin", url.Values{"name": {"Alice"}, "token": {testToken}, "next": {next}})
		if r.code != http.StatusSeeOther || r.header.Get("Location") != want {
			t.Errorf("next=%q: %d %q, want %q", next, r.code, r.header.Get("Location"), want)
		}
	}

	c := findCookie(t, r, console.CookieName)
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/console" || c.Secure {
		t.Errorf("cookie over http: HttpOnly=%v SameSite=%v Path=%q Secure=%v", c.HttpOnly, c.SameSite, c.Path, c.Secure)
	}
	if c.MaxAge != int((12 * time.Hour).Seconds()) {
		t.Errorf("cookie MaxAge %d, want 12h", c.MaxAge)
	}
	r = h.post("/console/signin", url.Values{"name": {"Alice"}, "token": {testToken}}, "X-Forwarded-Proto", "https")
	if c := findCookie(t, r, console.CookieName); !c.Secure {
		t.Error("cookie behind a TLS-terminating proxy is not Secure")
	}

	if r := h.get("/console/"); r.code != http.StatusOK || !strings.Contains(r.body, `<span id="actor">Alice</span>`) {
		t.Errorf("queue after sign-in: %d\n%s", r.code, r.body)
	}

	// Sign out: the cookie is cleared and pages need sign-in again.
	csrf := h.csrf("/console/")
	if r := h.post("/console/signout", url.Values{"csrf": {csrf}}); r.code != http.StatusSeeOther {
		t.Fatalf("sign out: %d", r.code)
	}
	if r := h.get("/console/"); r.code != http.StatusSeeOther {
		t.Errorf("after sign-out: %d, want a redirect to sign-in", r.code)
	}
}

// TestCookieTampering: a cookie whose payload or signature was changed,
// one signed under another token, and an expired one are all refused.
func TestCookieTampering(t *testing.T) {
	h := start(t, console.Config{Token: testToken, SessionTTL: time.Hour}, nil, nil)
	r := h.post("/console/signin", url.Values{"name": {"mallory"}, "token": {testToken}})
	good := findCookie(t, r, console.CookieName).Value

	payload, sig, ok := strings.Cut(good, ".")
	if !ok {
		t.Fatalf("cookie %q has no signature", good)
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		t.Fatal(err)
	}
	forged := strings.Replace(string(raw), `"mallory"`, `"admin"`, 1)
	if forged == string(raw) {
		t.Fatalf("payload %s does not carry the name", raw)
	}
	flipped := []byte(sig)
	flipped[0] ^= 1

	other := start(t, console.Config{Token: "another-token-entirely-1234"}, nil, nil)
	or := other.post("/console/signin", url.Values{"name": {"mallory"}, "token": {"another-token-entirely-1234"}})
	foreign := findCookie(t, or, console.CookieName).Value

	load := func(value string) int {
		req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/console/", nil)
		req.AddCookie(&http.Cookie{Name: console.CookieName, Value: value})
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := load(good); code != http.StatusOK {
		t.Fatalf("the genuine cookie: %d", code)
	}
	for what, value := range map[string]string{
		"changed payload":     base64.RawURLEncoding.EncodeToString([]byte(forged)) + "." + sig,
		"changed signature":   payload + "." + string(flipped),
		"no signature":        payload,
		"another token's":     foreign,
		"garbage":             "a.b",
		"empty":               "",
		"payload as the name": base64.RawURLEncoding.EncodeToString([]byte(`{"n":"admin","i":"x","e":99999999999}`)) + "." + sig,
	} {
		if code := load(value); code != http.StatusSeeOther {
			t.Errorf("%s cookie: %d, want a redirect to sign-in", what, code)
		}
	}
	h.clock.Advance(time.Hour)
	if code := load(good); code != http.StatusSeeOther {
		t.Errorf("expired cookie: %d, want a redirect to sign-in", code)
	}
}

// TestCSRF: a form post needs this session's token and a same-origin
// browser; nothing reaches triage otherwise.
func TestCSRF(t *testing.T) {
	h := start(t, console.Config{Token: testToken}, nil, nil)
	h.signIn("Alice")
	csrf := h.csrf("/console/conversations/c-42")

	other := newClient(t)
	h2 := *h
	h2.client = other
	h2.signIn("Bob")
	bobCSRF := h2.csrf("/console/conversations/c-42")
	if bobCSRF == csrf {
		t.Fatal("two sessions share a CSRF token")
	}

	note := func(token string, header ...string) int {
		return h.post("/console/conversations/c-42/note", url.Values{"text": {"hi"}, "csrf": {token}}, header...).code
	}
	for what, code := range map[string]int{
		"no token":                note(""),
		"wrong token":             note("AAAA" + csrf[4:]),
		"another session's token": note(bobCSRF),
		"cross-site browser":      note(csrf, "Sec-Fetch-Site", "cross-site"),
		"foreign Origin":          note(csrf, "Sec-Fetch-Site", "", "Origin", "https://evil.example"),
	} {
		if code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", what, code)
		}
	}
	if n := len(h.triage.Calls()); n != 0 {
		t.Fatalf("%d forged posts reached triage", n)
	}
	if code := note(csrf); code != http.StatusSeeOther {
		t.Errorf("genuine post: %d", code)
	}
	if code := note(csrf, "Sec-Fetch-Site", "", "Origin", ""); code != http.StatusSeeOther {
		t.Errorf("genuine post from a client without Origin headers: %d", code)
	}
}

// TestDevMode: without a token in dev mode the console is open; actions
// are recorded as "dev" until someone gives a name.
func TestDevMode(t *testing.T) {
	h := start(t, console.Config{Dev: true}, nil, nil)
	r := h.get("/console/")
	if r.code != http.StatusOK || !strings.Contains(r.body, "Dev mode") {
		t.Fatalf("dev queue: %d\n%s", r.code, r.body)
	}
	csrf := h.csrf("/console/conversations/c-42")
	h.post("/console/conversations/c-42/note", url.Values{"text": {"x"}, "csrf": {csrf}})
	if got := callsOf[*triagev1.AddNoteRequest](h.triage)[0].GetActor(); got != console.DevActor {
		t.Errorf("dev actor %q, want %q", got, console.DevActor)
	}
	if r := h.get("/console/signin"); strings.Contains(r.body, `name="token"`) {
		t.Error("dev sign-in asks for a token")
	}
	if r := h.post("/console/signin", url.Values{"name": {"Carol"}}); r.code != http.StatusSeeOther {
		t.Fatalf("dev sign-in with a name: %d\n%s", r.code, r.body)
	}
	csrf = h.csrf("/console/conversations/c-42")
	h.post("/console/conversations/c-42/note", url.Values{"text": {"y"}, "csrf": {csrf}})
	if got := callsOf[*triagev1.AddNoteRequest](h.triage)[1].GetActor(); got != "Carol" {
		t.Errorf("named dev actor %q, want Carol", got)
	}
}

// TestProxyUser: behind an authenticating proxy the actor is the proxy's
// X-Forwarded-User, but only when trusted; the console token is still
// needed either way.
func TestProxyUser(t *testing.T) {
	for _, trust := range []bool{true, false} {
		h := start(t, console.Config{Token: testToken, TrustProxyUser: trust}, nil, nil)
		if r := h.get("/console/", console.ProxyUserHeader, "carol"); r.code != http.StatusSeeOther {
			t.Errorf("trust=%v: the proxy header alone signed in (%d)", trust, r.code)
		}
		h.signIn("Alice")
		csrf := h.csrf("/console/conversations/c-42")
		h.post("/console/conversations/c-42/assign", url.Values{"assignee": {"bob"}, "csrf": {csrf}}, console.ProxyUserHeader, "carol@example.com")
		want := "Alice"
		if trust {
			want = "carol@example.com"
		}
		if got := callsOf[*triagev1.AssignRequest](h.triage)[0].GetActor(); got != want {
			t.Errorf("trust=%v: actor %q, want %q", trust, got, want)
		}
	}
}

// TestFromKit: the console builds from a kit, dialing triage and rotation
// with the kit's dialer, and serves pages from them.
func TestFromKit(t *testing.T) {
	tr := &fakeTriage{}
	addr := serveGRPC(t, tr, &fakeRotation{})
	var dialed []string
	k := &app.Kit{
		Name: "console", Environ: []string{"SIDEKICK_DEV=true"}, Logger: logging.Discard(),
		Common: app.Common{TriageAddr: addr, RotationAddr: addr},
		Dial: func(a string) (*grpc.ClientConn, error) {
			dialed = append(dialed, a)
			return grpcx.Dial(a, grpcx.DialOptions{})
		},
	}
	svc, err := console.FromKit(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	if len(dialed) != 2 {
		t.Errorf("dialed %v, want triage and rotation", dialed)
	}
	mux := http.NewServeMux()
	svc.(app.HTTPService).Register(mux)
	h := &harness{t: t, triage: tr, client: newClient(t)}
	h.srv = newServer(t, mux)
	if r := h.get("/console/"); r.code != http.StatusOK {
		t.Errorf("queue through the kit: %d\n%s", r.code, r.body)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := svc.Run(ctx); err != nil {
		t.Errorf("Run after cancel: %v", err)
	}

	if _, err := console.FromKit(context.Background(), &app.Kit{Environ: nil, Dial: k.Dial}); err == nil || !strings.Contains(err.Error(), "SIDEKICK_CONSOLE_TOKEN") {
		t.Errorf("FromKit outside dev without a token: %v", err)
	}
}

func findCookie(t *testing.T, r response, name string) *http.Cookie {
	t.Helper()
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %s cookie in %v", name, r.header.Values("Set-Cookie"))
	return nil
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
