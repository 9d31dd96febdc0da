// Package ghwebhook verifies and normalizes GitHub webhook deliveries: the
// X-Hub-Signature-256 check, the repository allow-list and the mapping of
// issues, issue_comment, discussion and discussion_comment events onto
// InboundMessage.
package ghwebhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
)

// Signature errors; both mean 401.
var (
	ErrMissingSignature = errors.New("missing X-Hub-Signature-256")
	ErrBadSignature     = errors.New("invalid X-Hub-Signature-256")
)

// Sign returns the X-Hub-Signature-256 value GitHub sends for body:
// "sha256=" and the hex HMAC-SHA256 of the raw body keyed by the secret.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// CheckHeader says whether header, the X-Hub-Signature-256 value, can be a
// signature at all. It needs no body, so a request without one is refused
// before its body is read.
func CheckHeader(header string) error {
	_, err := parseHeader(header)
	return err
}

func parseHeader(header string) ([]byte, error) {
	if header == "" {
		return nil, ErrMissingSignature
	}
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok || len(hexSig) != 2*sha256.Size {
		return nil, ErrBadSignature
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return nil, ErrBadSignature
	}
	return got, nil
}

// Verify checks header, the X-Hub-Signature-256 value, against the raw
// body in constant time. An empty secret verifies nothing.
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
