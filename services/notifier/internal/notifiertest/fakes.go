package notifiertest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/sidekickhq/sidekick/services/notifier/internal/notify/pagerduty"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify/webhook"
)

// SMTP is a real SMTP server (emersion/go-smtp) on a loopback port that
// records every message it accepted.
type SMTP struct {
	addr string

	mu   sync.Mutex
	mail []Mail
}

// Mail is one message the fake SMTP server accepted.
type Mail struct {
	From    string
	To      []string
	Subject string
	Header  mail.Header
	Body    string
}

// StartSMTP starts the server; it stops when the test ends.
func StartSMTP(t testing.TB) *SMTP {
	t.Helper()
	s := &SMTP{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &smtpSession{srv: s}, nil }))
	srv.Domain = "mx.test"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtp listen: %v", err)
	}
	s.addr = l.Addr().String()
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

// URL is the SIDEKICK_SMTP_URL for the server (plain SMTP on loopback).
func (s *SMTP) URL() string {
	return "smtp://" + s.addr + "?from=sidekick@example.com&starttls=off"
}

// Mail returns the messages accepted so far, optionally only those to rcpt.
func (s *SMTP) Mail(rcpt string) []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Mail
	for _, m := range s.mail {
		for _, to := range m.To {
			if rcpt == "" || strings.EqualFold(to, rcpt) {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

type smtpSession struct {
	srv  *SMTP
	from string
	to   []string
}

func (s *smtpSession) AuthMechanisms() []string { return nil }

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	msg, err := mail.ReadMessage(r)
	if err != nil {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "not RFC 5322: " + err.Error()}
	}
	body, err := io.ReadAll(msg.Body)
	if err != nil {
		return err
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		subject = msg.Header.Get("Subject")
	}
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	s.srv.mail = append(s.srv.mail, Mail{From: s.from, To: s.to, Subject: subject, Header: msg.Header, Body: string(body)})
	return nil
}

func (s *smtpSession) Reset()        { s.from, s.to = "", nil }
func (s *smtpSession) Logout() error { return nil }

// PagerDuty is a fake Events API v2 endpoint: it checks each event's
// documented shape (routing key, action, dedup key, a payload with
// summary, source and severity for triggers), answers 202 with the dedup
// key, and records what it accepted.
type PagerDuty struct {
	// RoutingKey is the only key accepted.
	RoutingKey string

	mu     sync.Mutex
	events []pagerduty.Event
	srv    *httptest.Server
}

// StartPagerDuty starts the fake; it stops when the test ends.
func StartPagerDuty(t testing.TB) *PagerDuty {
	p := &PagerDuty{RoutingKey: "R0UTINGKEY0000000000000000000000"}
	p.srv = httptest.NewServer(p)
	t.Cleanup(p.srv.Close)
	return p
}

// URL is the endpoint to configure (SIDEKICK_PAGERDUTY_URL).
func (p *PagerDuty) URL() string { return p.srv.URL + "/v2/enqueue" }

// ServeHTTP implements http.Handler.
func (p *PagerDuty) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var ev pagerduty.Event
	err := json.NewDecoder(r.Body).Decode(&ev)
	if err == nil {
		err = p.check(r, ev)
	}
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "invalid event", "message": "Event object is invalid", "errors": []string{err.Error()}})
		return
	}
	p.mu.Lock()
	p.events = append(p.events, ev)
	p.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "message": "Event processed", "dedup_key": ev.DedupKey})
}

func (p *PagerDuty) check(r *http.Request, ev pagerduty.Event) error {
	switch {
	case r.Method != http.MethodPost || r.URL.Path != "/v2/enqueue":
		return fmt.Errorf("%s %s", r.Method, r.URL.Path)
	case ev.RoutingKey != p.RoutingKey:
		return errors.New("unknown routing_key")
	case ev.DedupKey == "":
		return errors.New("dedup_key is required by this fake")
	}
	switch ev.EventAction {
	case pagerduty.ActionTrigger:
		if ev.Payload == nil || ev.Payload.Summary == "" || ev.Payload.Source == "" || ev.Payload.Severity == "" {
			return errors.New("trigger needs payload.summary, source and severity")
		}
	case pagerduty.ActionAcknowledge, pagerduty.ActionResolve:
	default:
		return fmt.Errorf("event_action %q", ev.EventAction)
	}
	return nil
}

// Events returns the events accepted so far, optionally of one action.
func (p *PagerDuty) Events(action string) []pagerduty.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []pagerduty.Event
	for _, e := range p.events {
		if action == "" || e.EventAction == action {
			out = append(out, e)
		}
	}
	return out
}

// Webhook is a fake webhook receiver: it verifies the signature over
// timestamp and body, answers 204 and records the payloads.
type Webhook struct {
	Secret string

	mu       sync.Mutex
	payloads []webhook.Payload
	rejected int
	srv      *httptest.Server
}

// StartWebhook starts the receiver; it stops when the test ends. now is
// the clock the signature timestamps are checked against.
func StartWebhook(t testing.TB, now func() time.Time) *Webhook {
	h := &Webhook{Secret: "webhook-test-secret"}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err == nil {
			err = webhook.Verify([]byte(h.Secret), r.Header, body, now(), 5*time.Minute)
		}
		var p webhook.Payload
		if err == nil {
			err = json.Unmarshal(body, &p)
		}
		if err == nil && r.Header.Get(webhook.HeaderIdempotencyKey) == "" {
			err = errors.New("no Idempotency-Key")
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if err != nil {
			h.rejected++
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		h.payloads = append(h.payloads, p)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// URL is the endpoint to configure (SIDEKICK_WEBHOOK_URL).
func (h *Webhook) URL() string { return h.srv.URL + "/hooks/sidekick" }

// Payloads returns what was received, optionally only of one type
// (webhook.EventNotification, webhook.EventUpdated).
func (h *Webhook) Payloads(typ string) []webhook.Payload {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []webhook.Payload
	for _, p := range h.payloads {
		if typ == "" || p.Type == typ {
			out = append(out, p)
		}
	}
	return out
}

// Rejected counts requests whose signature or shape was wrong.
func (h *Webhook) Rejected() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rejected
}
