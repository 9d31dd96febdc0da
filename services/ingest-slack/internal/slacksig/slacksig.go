// Package slacksig verifies Slack's request signatures (version v0): the
// HMAC-SHA256, keyed with the app's signing secret, of
// "v0:" + X-Slack-Request-Timestamp + ":" + raw body, sent hex-encoded in
// X-Slack-Signature as "v0=<hex>". A request whose timestamp is more than
// MaxSkew away from now is refused, so a captured request cannot be
// replayed later.
package slacksig

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
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

// Verify checks that signature is Slack's signature of body at timestamp
// under secret, and that timestamp (Unix seconds) is within MaxSkew of now.
func Verify(secret []byte, now time.Time, timestamp, signature string, body []byte) error {
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
	if !ok {
		return ErrMismatch
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return ErrMismatch
	}
	if !hmac.Equal(got, mac(secret, timestamp, body)) {
		return ErrMismatch
	}
	return nil
}

// Sign returns the X-Slack-Signature value Slack would send for body at
// timestamp (Unix seconds, as sent in X-Slack-Request-Timestamp). Tests and
// the benchmark use it to play Slack.
func Sign(secret []byte, timestamp string, body []byte) string {
	return version + "=" + hex.EncodeToString(mac(secret, timestamp, body))
}

func mac(secret []byte, timestamp string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(version + ":" + timestamp + ":"))
	h.Write(body)
	return h.Sum(nil)
}
