package console

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

const (
	// CookieName is the session cookie.
	CookieName = "sidekick_console"
	// ProxyUserHeader carries the authenticated user from a proxy in front
	// of the console; read only with SIDEKICK_CONSOLE_TRUST_PROXY_USER=true.
	ProxyUserHeader = "X-Forwarded-User"
	// DevActor is the name recorded for actions in dev mode before anyone
	// signs in with a name.
	DevActor = "dev"
	// bounceCookie marks a cross-site page load already reloaded once.
	bounceCookie = "sidekick_console_bounce"
	// maxNameLen bounds the name typed at sign-in, in characters.
	maxNameLen = 64
	// maxFormBytes bounds a posted form.
	maxFormBytes = 64 << 10
)

// keys are the secrets behind sessions and CSRF tokens. They are derived
// (HKDF-SHA256) from the console token, or from the OIDC client secret
// when there is no token, so every replica accepts the others' cookies and
// changing the secret signs everybody out; in dev mode without either
// they are random per process.
type keys struct {
	session []byte
	csrf    []byte
	// tokenHash is the console token's hash; unset without a token, so
	// nothing signs in with a token then.
	tokenHash [sha256.Size]byte
	hasToken  bool
}

func deriveKeys(token, oidcSecret string) (keys, error) {
	secret := token
	if secret == "" {
		secret = oidcSecret
	}
	if secret == "" {
		k := make([]byte, 64)
		rand.Read(k) // never fails since Go 1.24
		return keys{session: k[:32], csrf: k[32:]}, nil
	}
	sk, err := hkdf.Key(sha256.New, []byte(secret), nil, "sidekick console session v1", 32)
	if err != nil {
		return keys{}, err
	}
	ck, err := hkdf.Key(sha256.New, []byte(secret), nil, "sidekick console csrf v1", 32)
	if err != nil {
		return keys{}, err
	}
	k := keys{session: sk, csrf: ck}
	if token != "" {
		k.tokenHash, k.hasToken = sha256.Sum256([]byte(token)), true
	}
	return k, nil
}

// session is what the cookie carries, signed.
type session struct {
	// Name is the name given at sign-in.
	Name string `json:"n"`
	// ID is random per sign-in; CSRF tokens are bound to it.
	ID string `json:"i"`
	// Exp is the expiry in Unix seconds.
	Exp int64 `json:"e"`
}

// visitor is the signed-in person on one request.
type visitor struct {
	// Name is the name on the session.
	Name string
	// Actor is recorded in the audit trail: Name, or the proxy's user.
	Actor string
	// CSRF is the token every form of this session must carry.
	CSRF string
	// expires is when the session ends.
	expires time.Time
}

// open reports whether the console runs without sign-in (dev mode
// without a token or OIDC).
func (s *Service) open() bool { return s.cfg.Token == "" && s.cfg.OIDCIssuer == "" }

func (s *Service) mac(payload string) []byte {
	m := hmac.New(sha256.New, s.keys.session)
	m.Write([]byte("v1."))
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// encodeSession signs a session into a cookie value.
func (s *Service) encodeSession(sess session) string { return s.sign(sess) }

var errBadSession = errors.New("bad session cookie")

// decodeSession verifies a cookie value's signature and expiry.
func (s *Service) decodeSession(v string, now time.Time) (session, error) {
	var sess session
	if err := s.verify(v, &sess); err != nil || sess.ID == "" || validName(sess.Name) == "" {
		return session{}, errBadSession
	}
	if now.Unix() >= sess.Exp {
		return session{}, errors.New("session expired")
	}
	return sess, nil
}

func (s *Service) newSession(name string) session {
	return session{Name: name, ID: rand.Text(), Exp: s.deps.Clock.Now().Add(s.cfg.SessionTTL).Unix()}
}

// csrfToken is bound to the session: HMAC(csrf key, session id).
func (s *Service) csrfToken(sess session) string {
	m := hmac.New(sha256.New, s.keys.csrf)
	m.Write([]byte(sess.ID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *Service) readSession(r *http.Request) (session, bool) {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return session{}, false
	}
	sess, err := s.decodeSession(c.Value, s.deps.Clock.Now())
	return sess, err == nil
}

func (s *Service) setSession(w http.ResponseWriter, r *http.Request, sess session) {
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: s.encodeSession(sess), Path: BasePath,
		Expires: time.Unix(sess.Exp, 0), MaxAge: int(s.cfg.SessionTTL / time.Second),
		HttpOnly: true, Secure: isHTTPS(r), SameSite: http.SameSiteStrictMode,
	})
}

func (s *Service) clearSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: "", Path: BasePath, MaxAge: -1,
		HttpOnly: true, Secure: isHTTPS(r), SameSite: http.SameSiteStrictMode,
	})
}

// isHTTPS tells whether the browser talks HTTPS to us, directly or through
// a TLS-terminating proxy; the cookie is then marked Secure.
func isHTTPS(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// validName returns the trimmed name, or "" when it is empty, too long or
// holds control characters.
func validName(name string) string {
	name = strings.TrimSpace(name)
	if name == "" || !utf8.ValidString(name) || utf8.RuneCountInString(name) > maxNameLen {
		return ""
	}
	if strings.ContainsFunc(name, unicode.IsControl) {
		return ""
	}
	return name
}

// tokenOK compares the typed token with the configured one in constant
// time (hashes of both, so not even the length leaks).
func (s *Service) tokenOK(typed string) bool {
	h := sha256.Sum256([]byte(typed))
	return subtle.ConstantTimeCompare(h[:], s.keys.tokenHash[:]) == 1 && s.keys.hasToken
}

// authed runs h for a signed-in visitor. Without a valid session: in dev
// mode without a token a session named DevActor is started; otherwise a
// page load is sent to the sign-in page and anything else gets 401.
func (s *Service) authed(h func(http.ResponseWriter, *http.Request, *visitor)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, ok := s.readSession(r)
		if !ok {
			if !s.open() {
				s.unauthenticated(w, r)
				return
			}
			sess = s.newSession(DevActor)
			s.setSession(w, r, sess)
		}
		v := &visitor{Name: sess.Name, Actor: sess.Name, CSRF: s.csrfToken(sess), expires: time.Unix(sess.Exp, 0)}
		if u := s.proxyUser(r); u != "" {
			v.Actor = u
		}
		h(w, r, v)
	})
}

// proxyUser is the X-Forwarded-User name when it is trusted and valid.
func (s *Service) proxyUser(r *http.Request) string {
	if !s.cfg.TrustProxyUser {
		return ""
	}
	return validName(r.Header.Get(ProxyUserHeader))
}

// unauthenticated answers a request without a valid session.
//
// The cookie is SameSite=Strict, so a browser following a share link from
// another site (Slack, email) does not send it even to someone signed in.
// Such a page load gets a tiny page that reloads the same address from
// this origin, which does carry the cookie; only when that still has no
// session does the visitor land on the sign-in page.
func (s *Service) unauthenticated(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.renderError(w, r, nil, http.StatusUnauthorized, "Sign in first: your session is missing or has expired.")
		return
	}
	target := r.URL.RequestURI()
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		// A short-lived Lax cookie marks the bounce: a browser that still
		// calls the reload cross-site carries it and goes to sign-in
		// instead of bouncing forever.
		if _, err := r.Cookie(bounceCookie); err != nil {
			http.SetCookie(w, &http.Cookie{
				Name: bounceCookie, Value: "1", Path: BasePath, MaxAge: 60,
				HttpOnly: true, Secure: isHTTPS(r), SameSite: http.SameSiteLaxMode,
			})
			s.render(w, r, http.StatusOK, "bounce", nil, target)
			return
		}
	}
	http.Redirect(w, r, BasePath+"/signin?next="+url.QueryEscape(target), http.StatusSeeOther)
}

// checkPost is the CSRF defence of every form: the browser must say the
// request is same-origin (or send no origin at all, as non-browser clients
// do), and the form must carry this session's token. It parses the form.
func (s *Service) checkPost(w http.ResponseWriter, r *http.Request, v *visitor) bool {
	if err := s.origin.Check(r); err != nil {
		s.renderError(w, r, v, http.StatusForbidden, "Refused: this form was posted from another site.")
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.renderError(w, r, v, http.StatusBadRequest, "The form could not be read.")
		return false
	}
	if v == nil {
		return true
	}
	if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(v.CSRF)) != 1 {
		s.renderError(w, r, v, http.StatusForbidden, "Refused: the form has expired or did not come from this console. Reload the page and try again.")
		return false
	}
	return true
}

// safeNext keeps redirects after sign-in inside the console.
func safeNext(next string) string {
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" ||
		strings.HasPrefix(next, "//") || strings.Contains(next, `\`) {
		return BasePath + "/"
	}
	clean := path.Clean(u.Path)
	if strings.HasSuffix(u.Path, "/") && clean != "/" {
		clean += "/"
	}
	if !strings.HasPrefix(clean, BasePath+"/") {
		return BasePath + "/"
	}
	u.Path, u.RawPath = clean, ""
	return u.RequestURI()
}

// signinData is what the sign-in page shows.
type signinData struct {
	Next      string
	Name      string
	NeedToken bool
	ProxyUser string
	// OIDC offers sign-in with the organisation's identity provider;
	// NoForm hides the name-and-token form when there is no token.
	OIDC   bool
	NoForm bool
}

func (s *Service) signinPage(w http.ResponseWriter, r *http.Request) {
	d := s.signinData(safeNext(r.URL.Query().Get("next")), r)
	if sess, ok := s.readSession(r); ok {
		d.Name = sess.Name
	}
	if d.Name == "" || d.Name == DevActor {
		d.Name = d.ProxyUser
	}
	s.render(w, r, http.StatusOK, "signin", nil, d)
}

func (s *Service) signinData(next string, r *http.Request) signinData {
	return signinData{
		Next: next, NeedToken: s.cfg.Token != "", ProxyUser: s.proxyUser(r),
		OIDC: s.cfg.OIDCIssuer != "", NoForm: s.cfg.Token == "" && s.cfg.OIDCIssuer != "",
	}
}

func (s *Service) signin(w http.ResponseWriter, r *http.Request) {
	if !s.checkPost(w, r, nil) {
		return
	}
	d := s.signinData(safeNext(r.PostForm.Get("next")), r)
	if d.NoForm {
		s.metrics.signins.WithLabelValues("bad_token").Inc()
		s.renderPage(w, r, http.StatusUnauthorized, "signin", nil, d, "", "Sign in with your organisation's account: this console has no shared token.")
		return
	}
	name := validName(r.PostForm.Get("name"))
	if name == "" {
		name = d.ProxyUser
	}
	d.Name = name
	if name == "" {
		s.metrics.signins.WithLabelValues("bad_name").Inc()
		s.renderPage(w, r, http.StatusBadRequest, "signin", nil, d, "", "Enter your name (up to 64 characters): it is recorded with what you do here.")
		return
	}
	if !s.open() && !s.tokenOK(r.PostForm.Get("token")) {
		s.metrics.signins.WithLabelValues("bad_token").Inc()
		s.deps.Logger.Warn("console sign-in refused", "name", name, "remote", r.RemoteAddr)
		s.renderPage(w, r, http.StatusUnauthorized, "signin", nil, d, "", "That is not the console token.")
		return
	}
	s.metrics.signins.WithLabelValues("ok").Inc()
	s.deps.Logger.Info("console sign-in", "name", name, "remote", r.RemoteAddr)
	s.setSession(w, r, s.newSession(name))
	http.Redirect(w, r, d.Next, http.StatusSeeOther)
}

func (s *Service) signout(w http.ResponseWriter, r *http.Request, v *visitor) {
	if !s.checkPost(w, r, v) {
		return
	}
	s.clearSession(w, r)
	http.Redirect(w, r, BasePath+"/signin", http.StatusSeeOther)
}
