package fakes

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
)

// Webhook receives the notifier's webhook channel (SIDEKICK_WEBHOOK_URL):
// signed JSON POSTs whose X-Sidekick-Signature is
// "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)), with the
// timestamp in X-Sidekick-Timestamp. A request with a good signature is
// answered 204 and recorded; any other gets 401 and is only counted.
type Webhook struct {
	srv    *httptest.Server
	secret []byte

	mu       sync.Mutex
	got      []WebhookDelivery
	rejected int
}

// WebhookDelivery is one verified webhook request.
type WebhookDelivery struct {
	// Event is X-Sidekick-Event: "notification" or "notification.updated".
	Event          string
	IdempotencyKey string
	Timestamp      string
	Body           []byte
	Payload        WebhookPayload
}

// WebhookPayload is the part of the version 1 payload tests look at.
type WebhookPayload struct {
	Version        string `json:"version"`
	Type           string `json:"type"`
	DedupKey       string `json:"dedup_key"`
	NotificationID string `json:"notification_id"`
	DeliveryID     string `json:"delivery_id"`
	ConversationID string `json:"conversation_id"`
	Urgency        string `json:"urgency"`
	Title          string `json:"title"`
	Text           string `json:"text"`
	Status         string `json:"status"`
	Recipient      struct {
		PersonID string `json:"person_id"`
		Name     string `json:"name"`
		Email    string `json:"email"`
		SlackID  string `json:"slack_id"`
		Role     string `json:"role"`
	} `json:"recipient"`
}

// NewWebhook starts a receiver checking signatures with secret.
func NewWebhook(secret string) *Webhook {
	h := &Webhook{secret: []byte(secret)}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	return h
}

// URL is where to POST.
func (h *Webhook) URL() string { return h.srv.URL + "/sidekick" }

// Close stops the server.
func (h *Webhook) Close() { h.srv.Close() }

// Deliveries returns the verified requests, oldest first.
func (h *Webhook) Deliveries() []WebhookDelivery {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]WebhookDelivery(nil), h.got...)
}

// Rejected returns how many requests failed the signature check.
func (h *Webhook) Rejected() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rejected
}

func (h *Webhook) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	ts := r.Header.Get("X-Sidekick-Timestamp")
	var p WebhookPayload
	if err != nil || r.Method != http.MethodPost || ts == "" || !h.verify(ts, body, r.Header.Get("X-Sidekick-Signature")) ||
		json.Unmarshal(body, &p) != nil {
		h.mu.Lock()
		h.rejected++
		h.mu.Unlock()
		http.Error(w, "bad signature or payload", http.StatusUnauthorized)
		return
	}
	h.mu.Lock()
	h.got = append(h.got, WebhookDelivery{
		Event: r.Header.Get("X-Sidekick-Event"), IdempotencyKey: r.Header.Get("Idempotency-Key"),
		Timestamp: ts, Body: body, Payload: p,
	})
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (h *Webhook) verify(ts string, body []byte, header string) bool {
	sig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, h.secret)
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}
