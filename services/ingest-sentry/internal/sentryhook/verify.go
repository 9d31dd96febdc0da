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
