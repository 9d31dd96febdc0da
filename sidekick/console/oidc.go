package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
)

const (
	// oidcCookie carries one sign-in's state, nonce and PKCE verifier from
	// the redirect to the provider until its callback.
	oidcCookie = "sidekick_console_oidc"
	// oidcFlowTTL bounds how long a sign-in at the provider may take.
	oidcFlowTTL = 10 * time.Minute
	// OIDCCallbackPath is where the provider sends the browser back; the
	// redirect URL registered with the provider must end in it.
	OIDCCallbackPath = BasePath + "/oidc/callback"
)

// oidcFlow is what the flow cookie carries, signed like a session.
type oidcFlow struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Next     string `json:"x"`
	Exp      int64  `json:"e"`
}

// oidcSignin signs people in with an OpenID Connect provider and matches
// them to people of the organisation file by email. The provider is
// discovered on first use, not at start, so a provider that is down
// keeps the console serving those already signed in.
type oidcSignin struct {
	cfg    Config
	client *http.Client

	mu       sync.Mutex
	provider *oidc.Provider
}

// endpoints discovers the provider once and returns the OAuth2 settings
// and the ID token verifier.
func (o *oidcSignin) endpoints(ctx context.Context) (*oauth2.Config, *oidc.IDTokenVerifier, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.provider == nil {
		p, err := oidc.NewProvider(o.context(ctx), o.cfg.OIDCIssuer)
		if err != nil {
			return nil, nil, fmt.Errorf("discover %s: %w", o.cfg.OIDCIssuer, err)
		}
		o.provider = p
	}
	oc := &oauth2.Config{
		ClientID: o.cfg.OIDCClientID, ClientSecret: o.cfg.OIDCClientSecret,
		RedirectURL: o.cfg.OIDCRedirectURL, Endpoint: o.provider.Endpoint(),
		Scopes: []string{oidc.ScopeOpenID, "email", "profile"},
	}
	return oc, o.provider.Verifier(&oidc.Config{ClientID: o.cfg.OIDCClientID}), nil
}

// context makes the OIDC and OAuth2 libraries use our HTTP client.
func (o *oidcSignin) context(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, o.client)
}

// oidcStart sends the browser to the provider with a fresh state, nonce
// and PKCE challenge, remembered in a short-lived signed cookie.
func (s *Service) oidcStart(w http.ResponseWriter, r *http.Request) {
	oc, _, err := s.oidc.endpoints(r.Context())
	if err != nil {
		s.deps.Logger.Error("console: oidc provider", "error", err)
		s.renderError(w, r, nil, http.StatusBadGateway, "The sign-in provider cannot be reached; try again in a minute.")
		return
	}
	flow := oidcFlow{
		State: rand.Text(), Nonce: rand.Text(), Verifier: oauth2.GenerateVerifier(),
		Next: safeNext(r.URL.Query().Get("next")), Exp: s.deps.Clock.Now().Add(oidcFlowTTL).Unix(),
	}
	// Lax, not Strict: the provider's redirect back is a cross-site
	// navigation, and the cookie must come with it.
	http.SetCookie(w, &http.Cookie{
		Name: oidcCookie, Value: s.sign(flow), Path: BasePath + "/oidc/", MaxAge: int(oidcFlowTTL / time.Second),
		HttpOnly: true, Secure: isHTTPS(r), SameSite: http.SameSiteLaxMode,
	})
	http.Redirect(w, r, oc.AuthCodeURL(flow.State, oidc.Nonce(flow.Nonce), oauth2.S256ChallengeOption(flow.Verifier)), http.StatusSeeOther)
}

// oidcCallback finishes a sign-in: the state must be this browser's, the
// code is exchanged with the PKCE verifier, the ID token must be signed
// by the provider, for this client, unexpired and carry our nonce, and
// its verified email must belong to a person of the organisation. The
// session is then that person's: every action is recorded under their id.
func (s *Service) oidcCallback(w http.ResponseWriter, r *http.Request) {
	refuse := func(code int, result, msg string, args ...any) {
		s.metrics.signins.WithLabelValues(result).Inc()
		s.deps.Logger.Warn("console sign-in refused", append([]any{"reason", result, "remote", r.RemoteAddr}, args...)...)
		s.renderError(w, r, nil, code, msg)
	}
	var flow oidcFlow
	c, err := r.Cookie(oidcCookie)
	if err != nil || s.verify(c.Value, &flow) != nil || s.deps.Clock.Now().Unix() >= flow.Exp {
		refuse(http.StatusBadRequest, "oidc_state", "This sign-in has expired or was started in another browser. Sign in again.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: "", Path: BasePath + "/oidc/", MaxAge: -1, HttpOnly: true, Secure: isHTTPS(r), SameSite: http.SameSiteLaxMode})
	q := r.URL.Query()
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(flow.State)) != 1 {
		refuse(http.StatusBadRequest, "oidc_state", "This sign-in has expired or was started in another browser. Sign in again.")
		return
	}
	if e := q.Get("error"); e != "" {
		refuse(http.StatusUnauthorized, "oidc_denied", "The sign-in provider refused: "+e+".", "error", e, "description", q.Get("error_description"))
		return
	}
	oc, verifier, err := s.oidc.endpoints(r.Context())
	if err != nil {
		s.deps.Logger.Error("console: oidc provider", "error", err)
		s.renderError(w, r, nil, http.StatusBadGateway, "The sign-in provider cannot be reached; try again in a minute.")
		return
	}
	ctx, cancel := s.call(s.oidc.context(r.Context()))
	defer cancel()
	tok, err := oc.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(flow.Verifier))
	if err != nil {
		refuse(http.StatusUnauthorized, "oidc_token", "The sign-in provider did not confirm this sign-in. Sign in again.", "error", err)
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := verifier.Verify(ctx, raw)
	if err != nil || subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(flow.Nonce)) != 1 {
		refuse(http.StatusUnauthorized, "oidc_token", "The sign-in provider's answer could not be verified. Sign in again.", "error", err)
		return
	}
	var claims struct {
		Email         string `json:"email"`
		EmailVerified *bool  `json:"email_verified"`
	}
	if err := idt.Claims(&claims); err != nil || claims.Email == "" {
		refuse(http.StatusForbidden, "oidc_no_email", "The sign-in provider gave no email address; Sidekick matches people by email.")
		return
	}
	if claims.EmailVerified != nil && !*claims.EmailVerified {
		refuse(http.StatusForbidden, "oidc_unverified", "Your email address is not verified at the sign-in provider.", "email", claims.Email)
		return
	}
	person, err := s.personByEmail(r.Context(), claims.Email)
	if err != nil {
		s.deps.Logger.Error("console: people", "error", err)
		s.renderError(w, r, nil, http.StatusBadGateway, "The rotation service cannot be reached to find who you are; try again in a minute.")
		return
	}
	if person == "" {
		refuse(http.StatusForbidden, "oidc_unknown", "You are signed in as "+claims.Email+" at the provider, but nobody in the organisation file has that email. Ask whoever runs Sidekick to add it.", "email", claims.Email)
		return
	}
	s.metrics.signins.WithLabelValues("ok").Inc()
	s.deps.Logger.Info("console sign-in", "person", person, "via", "oidc", "remote", r.RemoteAddr)
	s.setSession(w, r, s.newSession(person))
	http.Redirect(w, r, flow.Next, http.StatusSeeOther)
}

// personByEmail finds the person of the organisation file with this
// address, their main one or another they write from; "" if nobody.
func (s *Service) personByEmail(ctx context.Context, email string) (string, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	resp, err := s.deps.Rotation.ListPeople(ctx, &rotationv1.ListPeopleRequest{})
	if err != nil {
		return "", err
	}
	for _, p := range resp.GetPeople() {
		for _, e := range append([]string{p.GetEmail()}, p.GetEmails()...) {
			if e != "" && strings.EqualFold(strings.TrimSpace(e), strings.TrimSpace(email)) {
				return p.GetId(), nil
			}
		}
	}
	return "", nil
}

// sign and verify carry a value in a cookie as base64url(JSON) "."
// base64url(HMAC-SHA256), under the session key.
func (s *Service) sign(v any) string {
	b, _ := json.Marshal(v) // structs of strings and ints cannot fail
	payload := base64.RawURLEncoding.EncodeToString(b)
	return payload + "." + base64.RawURLEncoding.EncodeToString(s.mac(payload))
}

func (s *Service) verify(cookie string, into any) error {
	payload, sig, ok := strings.Cut(cookie, ".")
	if !ok {
		return errBadSession
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac(payload)) {
		return errBadSession
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return errBadSession
	}
	if err := json.Unmarshal(b, into); err != nil {
		return errBadSession
	}
	return nil
}

// validateOIDC checks the OIDC settings, all or none.
func (c Config) validateOIDC() error {
	if c.OIDCIssuer == "" {
		if c.OIDCClientID != "" || c.OIDCClientSecret != "" || c.OIDCRedirectURL != "" {
			return errors.New("configuration: SIDEKICK_CONSOLE_OIDC_CLIENT_ID, _CLIENT_SECRET and _REDIRECT_URL need SIDEKICK_CONSOLE_OIDC_ISSUER")
		}
		return nil
	}
	switch {
	case c.OIDCClientID == "":
		return errors.New("configuration: SIDEKICK_CONSOLE_OIDC_CLIENT_ID is required with SIDEKICK_CONSOLE_OIDC_ISSUER")
	case len(c.OIDCClientSecret) < MinTokenLength:
		return fmt.Errorf("configuration: SIDEKICK_CONSOLE_OIDC_CLIENT_SECRET must be set, at least %d characters (it also keys the console's sessions)", MinTokenLength)
	}
	if u, err := url.Parse(c.OIDCIssuer); err != nil || (u.Scheme != "https" && !c.Dev) || u.Host == "" {
		return errors.New("configuration: SIDEKICK_CONSOLE_OIDC_ISSUER must be an https URL")
	}
	u, err := url.Parse(c.OIDCRedirectURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.Path != OIDCCallbackPath {
		return fmt.Errorf("configuration: SIDEKICK_CONSOLE_OIDC_REDIRECT_URL must be the console's absolute URL ending in %s, as registered with the provider", OIDCCallbackPath)
	}
	return nil
}
