// Package slacksig verifies Slack's request signatures (version v0): the
// HMAC-SHA256, keyed with the app's signing secret, of
// "v0:" + X-Slack-Request-Timestamp + ":" + raw body, sent hex-encoded in
// X-Slack-Signature as "v0=<hex>". A request whose timestamp is more than
// MaxSkew away from now is refused, so a captured request cannot be
// replayed later.
package slacksig

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Header names Slack signs requests with.
const (
	HeaderTimestamp = "X-Slack-Request-Timestamp"
	HeaderSignature = "X-Slack-Signature"
)

// MaxSkew is how far the request timestamp may be from the verifier's
// clock, either way.
const MaxSkew = 5 * time.Minute

// version is the only signature scheme Slack defines.
const version = "v0"

// Errors returned by Verify; each wraps ErrUnauthorized.
var (
	ErrUnauthorized = errors.New("slack signature rejected")
	ErrMissing      = fmt.Errorf("%w: missing %s or %s", ErrUnauthorized, HeaderTimestamp, HeaderSignature)
	ErrTimestamp    = fmt.Errorf("%w: malformed %s", ErrUnauthorized, HeaderTimestamp)
	ErrStale        = fmt.Errorf("%w: timestamp more than %s from now", ErrUnauthorized, MaxSkew)
	ErrMismatch     = fmt.Errorf("%w: signature does not match", ErrUnauthorized)
)

// Verifier checks requests signed with one secret. It keeps the keyed
// HMAC state between requests, so a verification costs the hash of the
// body and no set-up; it is safe for concurrent use.
type Verifier struct {
	macs sync.Pool // of *macState
}

// macState is an HMAC keyed with the secret and the buffers one
// verification needs, pooled together so that verifying allocates nothing.
type macState struct {
	h         hash.Hash
	base, sum []byte
}

// NewVerifier returns a Verifier for secret.
func NewVerifier(secret []byte) *Verifier {
	key := bytes.Clone(secret)
	return &Verifier{macs: sync.Pool{New: func() any {
		return &macState{h: hmac.New(sha256.New, key), base: make([]byte, 0, 32), sum: make([]byte, 0, sha256.Size)}
	}}}
}

// Verify checks that signature is Slack's signature of body at timestamp,
// and that timestamp (Unix seconds) is within MaxSkew of now.
func (v *Verifier) Verify(now time.Time, timestamp, signature string, body []byte) error {
	if err := CheckHeaders(now, timestamp, signature); err != nil {
		return err
	}
	hexSig, _ := strings.CutPrefix(signature, version+"=")
	var src [2 * sha256.Size]byte
	copy(src[:], hexSig)
	var got [sha256.Size]byte
	if _, err := hex.Decode(got[:], src[:]); err != nil {
		return ErrMismatch
	}
	m := v.macs.Get().(*macState)
	defer v.macs.Put(m)
	m.base = base(m.base[:0], timestamp)
	m.sum = sum(m.h, m.base, body, m.sum[:0])
	if !hmac.Equal(got[:], m.sum) {
		return ErrMismatch
	}
	return nil
}

// CheckHeaders checks what can be checked without the body: both headers
// are there, timestamp is within MaxSkew of now and signature has the
// shape of one. A request that fails it is refused before its body is
// read.
func CheckHeaders(now time.Time, timestamp, signature string) error {
	if timestamp == "" || signature == "" {
		return ErrMissing
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil || ts <= 0 {
		return ErrTimestamp
	}
	skew := now.Unix() - ts
	if skew > int64(MaxSkew/time.Second) || -skew > int64(MaxSkew/time.Second) {
		return ErrStale
	}
	hexSig, ok := strings.CutPrefix(signature, version+"=")
	if !ok || len(hexSig) != hex.EncodedLen(sha256.Size) {
		return ErrMismatch
	}
	return nil
}

// Verify checks that signature is Slack's signature of body at timestamp
// under secret, and that timestamp (Unix seconds) is within MaxSkew of now.
// A service verifying many requests uses a Verifier.
func Verify(secret []byte, now time.Time, timestamp, signature string, body []byte) error {
	return NewVerifier(secret).Verify(now, timestamp, signature, body)
}

// Sign returns the X-Slack-Signature value Slack would send for body at
// timestamp (Unix seconds, as sent in X-Slack-Request-Timestamp). Tests and
// the benchmark use it to play Slack.
func Sign(secret []byte, timestamp string, body []byte) string {
	return version + "=" + hex.EncodeToString(sum(hmac.New(sha256.New, secret), base(nil, timestamp), body, nil))
}

// base appends to b the start of Slack's base string: "v0:" + timestamp +
// ":"; the body follows.
func base(b []byte, timestamp string) []byte {
	return append(append(append(b, version+":"...), timestamp...), ':')
}

// sum appends to b the MAC of prefix + body computed with h, a keyed HMAC
// that it resets first.
func sum(h hash.Hash, prefix, body, b []byte) []byte {
	h.Reset()
	h.Write(prefix)
	h.Write(body)
	return h.Sum(b)
}
