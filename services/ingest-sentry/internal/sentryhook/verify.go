// Package sentryhook verifies and parses Sentry integration-platform
// webhooks (Sentry-Hook-Resource installation, issue, event_alert,
// metric_alert, error and comment) into InboundMessages.
package sentryhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
)

// Signature errors; both mean 401.
var (
	ErrMissingSignature = errors.New("missing Sentry-Hook-Signature")
	ErrBadSignature     = errors.New("invalid Sentry-Hook-Signature")
)

// Sign returns the Sentry-Hook-Signature Sentry sends for body: the hex
// HMAC-SHA256 of the body keyed by the integration's client secret.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// Verify checks the Sentry-Hook-Signature header against the raw body in
// constant time.
func Verify(secret, body []byte, header string) error {
	if header == "" {
		return ErrMissingSignature
	}
	if len(secret) == 0 || len(header) != 2*sha256.Size {
		return ErrBadSignature
	}
	got, err := hex.DecodeString(header)
	if err != nil {
		return ErrBadSignature
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return ErrBadSignature
	}
	return nil
}
