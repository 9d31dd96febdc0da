package ghreply

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/sidekickhq/sidekick/platform/outbound"
)

// StaticToken is a personal access token (fine-grained: Issues and
// Discussions read and write on the repositories) or any other fixed
// token.
type StaticToken string

// Token returns the token.
func (t StaticToken) Token(context.Context) (string, error) {
	if t == "" {
		return "", ErrNoToken
	}
	return string(t), nil
}

// AppTokens are GitHub App installation tokens: a JSON Web Token signed
// with the App's private key (RS256, issuer the App id, ten minutes at
// most) buys an installation token at POST
// /app/installations/{id}/access_tokens, which lasts an hour and is
// reused until five minutes before it expires.
type AppTokens struct {
	APIURL         string
	AppID          string
	InstallationID int64
	Key            *rsa.PrivateKey
	HTTP           *http.Client
	Now            func() time.Time

	mu      sync.Mutex
	token   string
	expires time.Time
}

// ParsePrivateKey reads the App's PEM private key (PKCS#1 as GitHub
// downloads it, or PKCS#8).
func ParsePrivateKey(pemBytes []byte) (*rsa.PrivateKey, error) {
	b, _ := pem.Decode(pemBytes)
	if b == nil {
		return nil, errors.New("not a PEM private key")
	}
	if k, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("the private key is not RSA")
	}
	return rk, nil
}

// Token returns a valid installation token, fetching a new one when the
// last is within five minutes of expiry.
func (a *AppTokens) Token(ctx context.Context) (string, error) {
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.token != "" && now().Before(a.expires.Add(-5*time.Minute)) {
		return a.token, nil
	}
	jwt, err := AppJWT(a.AppID, a.Key, now())
	if err != nil {
		return "", outbound.Permanent("sign the GitHub App token", err)
	}
	c := &Channel{APIURL: a.APIURL, HTTP: a.HTTP, Tokens: StaticToken(jwt)}
	var out struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if err := c.rest(ctx, http.MethodPost, "/app/installations/"+strconv.FormatInt(a.InstallationID, 10)+"/access_tokens", map[string]any{}, &out); err != nil {
		return "", fmt.Errorf("GitHub App installation token: %w", err)
	}
	a.token, a.expires = out.Token, out.ExpiresAt
	return a.token, nil
}

// AppJWT is the JSON Web Token that authenticates a GitHub App: RS256,
// issued a minute in the past (GitHub's advice against clock drift),
// expiring nine minutes later.
func AppJWT(appID string, key *rsa.PrivateKey, now time.Time) (string, error) {
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`))
	claims, err := json.Marshal(map[string]any{"iat": now.Add(-time.Minute).Unix(), "exp": now.Add(9 * time.Minute).Unix(), "iss": appID})
	if err != nil {
		return "", err
	}
	signing := header + "." + enc.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return signing + "." + enc.EncodeToString(sig), nil
}
