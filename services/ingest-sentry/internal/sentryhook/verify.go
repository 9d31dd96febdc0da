// Package sentryhook verifies and parses Sentry integration-platform
// webhooks (Sentry-Hook-Resource installation, issue, event_alert,
// metric_alert, error and comment) into InboundMessages.
package sentryhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Signature and timestamp errors; each means 401.
var (
	ErrMissingSignature = errors.New("missing Sentry-Hook-Signature")
	ErrBadSignature     = errors.New("invalid Sentry-Hook-Signature")
	ErrMissingTimestamp = errors.New("missing Sentry-Hook-Timestamp")
	ErrBadTimestamp     = errors.New("malformed Sentry-Hook-Timestamp")
	ErrStale            = fmt.Errorf("Sentry-Hook-Timestamp more than %s from now", MaxSkew)
)

// MaxSkew is how far Sentry-Hook-Timestamp may be from now, either way.
const MaxSkew = 5 * time.Minute

// CheckTimestamp refuses a webhook whose Sentry-Hook-Timestamp (Unix
// seconds) is more than MaxSkew from now. Sentry does not sign the
// timestamp, so this only turns away a replay that keeps its original
// headers; the message id (see Parse) is what makes any replay change
// nothing.
func CheckTimestamp(now time.Time, header string) error {
	if header == "" {
		return ErrMissingTimestamp
	}
	secs, err := strconv.ParseFloat(header, 64)
	if err != nil || !(secs > 0 && secs < 1e15) {
		return ErrBadTimestamp
	}
	whole := math.Floor(secs)
	skew := now.Sub(time.Unix(int64(whole), int64((secs-whole)*1e9)))
	if skew > MaxSkew || skew < -MaxSkew {
		return ErrStale
	}
	return nil
}

// Sign returns the Sentry-Hook-Signature Sentry sends for body: the hex
// HMAC-SHA256 of the body keyed by the integration's client secret.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// CheckHeader says whether header, the Sentry-Hook-Signature value, can
// be a signature at all. It needs no body, so a request without one is
// refused before its body is read.
func CheckHeader(header string) error {
	_, err := parseHeader(header)
	return err
}

func parseHeader(header string) ([]byte, error) {
	if header == "" {
		return nil, ErrMissingSignature
	}
	if len(header) != 2*sha256.Size {
		return nil, ErrBadSignature
	}
	got, err := hex.DecodeString(header)
	if err != nil {
		return nil, ErrBadSignature
	}
	return got, nil
}

// Verify checks the Sentry-Hook-Signature header against the raw body in
// constant time.
func Verify(secret, body []byte, header string) error {
	got, err := parseHeader(header)
	if err != nil {
		return err
	}
	if len(secret) == 0 {
		return ErrBadSignature
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return ErrBadSignature
	}
	return nil
}
