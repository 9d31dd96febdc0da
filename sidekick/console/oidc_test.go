package console_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/sidekick/console"
)

// idp is an OpenID Connect provider at the wire: discovery, JWKS, the
// authorization endpoint (which signs in whoever the test says, at once)
// and the token endpoint, which checks the client's secret, the redirect
// URI and the PKCE verifier, and issues RS256-signed ID tokens.
type idp struct {
	t      *testing.T
	srv    *httptest.Server
	key    *rsa.PrivateKey
	client string
	secret string

	mu sync.Mutex
	// who the next sign-in is, and how its ID token is spoilt, if at all.
	email    string
	verified *bool
	spoil    func(claims map[string]any) *rsa.PrivateKey
	codes    map[string]grant
	tokens   int
}

type grant struct {
	nonce, challenge, redirect, email string
	verified                          *bool
}

func startIdP(t *testing.T) *idp {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &idp{t: t, key: key, client: "sidekick-console", secret: "idp-client-secret-0123456789", codes: map[string]grant{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{
			"issuer": p.srv.URL, "authorization_endpoint": p.srv.URL + "/authorize", "token_endpoint": p.srv.URL + "/token",
			"jwks_uri": p.srv.URL + "/jwks", "response_types_supported": []string{"code"},
			"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"RS256"},
			"code_challenge_methods_supported": []string{"S256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &p.key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	p.srv = httptest.NewTLSServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func (p *idp) signInAs(email string, verified *bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.email, p.verified = email, verified
}

func (p *idp) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("response_type") != "code" || q.Get("client_id") != p.client || q.Get("code_challenge_method") != "S256" ||
		q.Get("code_challenge") == "" || q.Get("nonce") == "" || !strings.Contains(q.Get("scope"), "openid") {
		http.Error(w, "invalid_request", http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	code := rand.Text()
	p.codes[code] = grant{nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri"), email: p.email, verified: p.verified}
	p.mu.Unlock()
	back, err := url.Parse(q.Get("redirect_uri"))
	if err != nil {
		http.Error(w, "invalid_request", http.StatusBadRequest)
		return
	}
	v := back.Query()
	v.Set("code", code)
	v.Set("state", q.Get("state"))
	back.RawQuery = v.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func (p *idp) token(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
	}
	if id != p.client || secret != p.secret {
		w.WriteHeader(http.StatusUnauthorized)
		writeJSON(w, map[string]string{"error": "invalid_client"})
		return
	}
	p.mu.Lock()
	g, found := p.codes[r.PostFormValue("code")]
	delete(p.codes, r.PostFormValue("code")) // a code is good once
	p.tokens++
	spoil := p.spoil
	p.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
	if !found || r.PostFormValue("redirect_uri") != g.redirect || base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
		w.WriteHeader(http.StatusBadRequest)
		writeJSON(w, map[string]string{"error": "invalid_grant"})
		return
	}
	now := time.Now()
	claims := map[string]any{
		"iss": p.srv.URL, "sub": "sub-" + g.email, "aud": p.client, "nonce": g.nonce,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "email": g.email,
	}
	if g.verified != nil {
		claims["email_verified"] = *g.verified
	}
	key := p.key
	if spoil != nil {
		if k := spoil(claims); k != nil {
			key = k
		}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		p.t.Error(err)
		return
	}
	payload, _ := json.Marshal(claims)
	obj, err := signer.Sign(payload)
	if err != nil {
		p.t.Error(err)
		return
	}
	raw, _ := obj.CompactSerialize()
	writeJSON(w, map[string]any{"access_token": rand.Text(), "token_type": "Bearer", "expires_in": 3600, "id_token": raw})
}

// startOIDC serves a console that signs people in with p only (no token),
// whose browser trusts p's certificate.
func startOIDC(t *testing.T, p *idp, tr *fakeTriage) *harness {
	t.Helper()
	return startOIDCAt(t, p, tr, "127.0.0.1")
}

// startOIDCAt is startOIDC with the console's redirect URL on host (its
// listener is on 127.0.0.1): "localhost" puts the console on another site
// than the provider, as in production.
func startOIDCAt(t *testing.T, p *idp, tr *fakeTriage, host string) *harness {
	t.Helper()
	rot := &fakeRotation{people: []*rotationv1.Person{
		{Id: "alice", Name: "Alice Hero", Email: "alice@example.com"},
		{Id: "bob", Name: "Bob Second", Email: "bob@example.com", Emails: []string{"Bob.Alias@Example.org"}},
	}}
	h := startWith(t, console.Config{}, tr, rot, func(addr string, cfg *console.Config, deps *console.Deps) {
		cfg.OIDCIssuer, cfg.OIDCClientID, cfg.OIDCClientSecret = p.srv.URL, p.client, p.secret
		cfg.OIDCRedirectURL = "http://" + strings.Replace(addr, "127.0.0.1", host, 1) + console.OIDCCallbackPath
		deps.HTTPClient = p.srv.Client()
	})
	h.client.Transport = p.srv.Client().Transport
	return h
}

// browse follows redirects from path as a browser would, across the
// console and the provider, and returns the last answer and the path it
// came from.
func (h *harness) browse(path string) (response, string) {
	h.t.Helper()
	u := h.srv.URL + path
	for range 10 {
		req, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			h.t.Fatal(err)
		}
		r := h.do(req)
		if r.code != http.StatusFound && r.code != http.StatusSeeOther {
			at, _ := url.Parse(u)
			return r, at.RequestURI()
		}
		next, err := url.Parse(r.header.Get("Location"))
		if err != nil {
			h.t.Fatal(err)
		}
		base, _ := url.Parse(u)
		u = base.ResolveReference(next).String()
	}
	h.t.Fatalf("more than 10 redirects from %s", path)
	return response{}, ""
}

func sessionCookie(h *harness) bool {
	u, _ := url.Parse(h.srv.URL + "/console/")
	for _, c := range h.client.Jar.Cookies(u) {
		if c.Name == console.CookieName && c.Value != "" {
			return true
		}
	}
	return false
}

// A person of the organisation signs in at the provider and acts as
// themselves: the action's actor is their person id, found by email.
func TestOIDCSignInActsAsThePerson(t *testing.T) {
	p := startIdP(t)
	tr := &fakeTriage{get: func(*triagev1.GetConversationRequest) (*triagev1.GetConversationResponse, error) {
		return sampleConversation(), nil
	}}
	h := startOIDC(t, p, tr)

	// The sign-in page offers the provider and no token form.
	r := h.get("/console/signin?next=/console/conversations/c-42")
	if r.code != http.StatusOK || !strings.Contains(r.body, `id="oidc"`) || strings.Contains(r.body, `name="token"`) {
		t.Fatalf("sign-in page: %d\n%s", r.code, r.body)
	}
	// A page load without a session goes to sign-in; from there, to the
	// provider and back, landing where it started.
	p.signInAs("Bob.Alias@example.org", nil)
	r, at := h.browse("/console/oidc/start?next=" + url.QueryEscape("/console/conversations/c-42"))
	if r.code != http.StatusOK || at != "/console/conversations/c-42" {
		t.Fatalf("after sign-in: %d at %s\n%s", r.code, at, r.body)
	}
	csrf := h.csrf("/console/conversations/c-42")
	if r := h.post("/console/conversations/c-42/note", url.Values{"text": {"looking"}, "csrf": {csrf}}); r.code != http.StatusSeeOther {
		t.Fatalf("note: %d\n%s", r.code, r.body)
	}
	notes := callsOf[*triagev1.AddNoteRequest](tr)
	if len(notes) != 1 || notes[0].GetActor() != "bob" {
		t.Fatalf("notes %v, want one by bob (matched by his other address)", notes)
	}
	// The password form cannot be used to sign in as someone else.
	h2 := &harness{t: t, srv: h.srv, triage: tr, rotation: h.rotation, clock: h.clock, client: newClient(t)}
	if r := h2.post("/console/signin", url.Values{"name": {"alice"}, "token": {p.secret}, "next": {"/console/"}}); r.code != http.StatusUnauthorized || sessionCookie(h2) {
		t.Fatalf("form sign-in without a token: %d, session %v", r.code, sessionCookie(h2))
	}
}

// What the provider vouches for is checked: someone not in the
// organisation, an unverified email, a token signed by another key or for
// another client, a replayed or forged state: each refused, no session.
func TestOIDCRefusesWhatCannotBeTrusted(t *testing.T) {
	verifiedNo := false
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		email    string
		verified *bool
		spoil    func(map[string]any) *rsa.PrivateKey
		want     int
	}{
		"not in the organisation": {email: "mallory@example.com", want: http.StatusForbidden},
		"email not verified":      {email: "alice@example.com", verified: &verifiedNo, want: http.StatusForbidden},
		"signed by another key":   {email: "alice@example.com", spoil: func(map[string]any) *rsa.PrivateKey { return other }, want: http.StatusUnauthorized},
		"for another client":      {email: "alice@example.com", spoil: func(c map[string]any) *rsa.PrivateKey { c["aud"] = "someone-else"; return nil }, want: http.StatusUnauthorized},
		"expired":                 {email: "alice@example.com", spoil: func(c map[string]any) *rsa.PrivateKey { c["exp"] = time.Now().Add(-time.Hour).Unix(); return nil }, want: http.StatusUnauthorized},
		"another nonce":           {email: "alice@example.com", spoil: func(c map[string]any) *rsa.PrivateKey { c["nonce"] = "replayed"; return nil }, want: http.StatusUnauthorized},
	} {
		t.Run(name, func(t *testing.T) {
			p := startIdP(t)
			p.spoil = tc.spoil
			h := startOIDC(t, p, &fakeTriage{})
			p.signInAs(tc.email, tc.verified)
			r, at := h.browse("/console/oidc/start?next=/console/")
			if r.code != tc.want || !strings.HasPrefix(at, console.OIDCCallbackPath) || sessionCookie(h) {
				t.Fatalf("got %d at %s (session %v), want %d at the callback and no session\n%s", r.code, at, sessionCookie(h), tc.want, r.body)
			}
			if r := h.get("/console/"); r.code != http.StatusSeeOther {
				t.Fatalf("queue after a refused sign-in: %d", r.code)
			}
		})
	}

	t.Run("state of another browser", func(t *testing.T) {
		p := startIdP(t)
		h := startOIDC(t, p, &fakeTriage{})
		p.signInAs("alice@example.com", nil)
		// The victim's browser starts a sign-in; the attacker's code and
		// state arrive at a browser that has no flow cookie, or its own.
		start := h.get("/console/oidc/start?next=/console/")
		loc, _ := url.Parse(start.header.Get("Location"))
		fresh := &harness{t: t, srv: h.srv, client: newClient(t)}
		fresh.client.Transport = h.client.Transport
		cb := fresh.get(console.OIDCCallbackPath + "?code=x&state=" + url.QueryEscape(loc.Query().Get("state")))
		if cb.code != http.StatusBadRequest || sessionCookie(fresh) {
			t.Fatalf("callback without the flow cookie: %d", cb.code)
		}
		cb = h.get(console.OIDCCallbackPath + "?code=x&state=forged")
		if cb.code != http.StatusBadRequest || sessionCookie(h) {
			t.Fatalf("callback with a forged state: %d", cb.code)
		}
		if p.tokens != 0 {
			t.Fatalf("%d code exchanges for refused states, want 0", p.tokens)
		}
	})
}

func TestOIDCConfiguration(t *testing.T) {
	ok := console.Config{
		OIDCIssuer: "https://accounts.example.com", OIDCClientID: "c", OIDCClientSecret: "0123456789abcdef0123",
		OIDCRedirectURL: "https://support.example.com/console/oidc/callback", SessionTTL: time.Hour, RPCTimeout: time.Second, Timezone: "UTC",
	}
	if err := ok.Validate(); err != nil {
		t.Fatalf("OIDC without a token: %v", err)
	}
	for name, mut := range map[string]func(*console.Config){
		"no client id":          func(c *console.Config) { c.OIDCClientID = "" },
		"short secret":          func(c *console.Config) { c.OIDCClientSecret = "short" },
		"http issuer":           func(c *console.Config) { c.OIDCIssuer = "http://accounts.example.com" },
		"redirect elsewhere":    func(c *console.Config) { c.OIDCRedirectURL = "https://support.example.com/callback" },
		"relative redirect":     func(c *console.Config) { c.OIDCRedirectURL = "/console/oidc/callback" },
		"client without issuer": func(c *console.Config) { c.OIDCIssuer = "" },
	} {
		c := ok
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
