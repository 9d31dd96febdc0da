// Package ingestemail is the email ingest service: an SMTP listener for the
// support address(es) and POST /email/inbound for relays that forward raw
// MIME. Every accepted message is normalized into an InboundMessage on
// support.inbound.email, and the sender hears "accepted" (250 / 200) only
// after JetStream acknowledged the publish.
//
// With a relay configured it also sends replies to customers
// (support.outbound.email) as threaded emails; package mailreply says how
// they are written, platform/outbound how each is sent once.
package ingestemail

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/app"
	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/platform/config"
	"github.com/sidekickhq/sidekick/platform/content"
	"github.com/sidekickhq/sidekick/platform/httpx"
	"github.com/sidekickhq/sidekick/platform/outbound"
	"github.com/sidekickhq/sidekick/platform/promreg"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/ingest-email/internal/mailparse"
	"github.com/sidekickhq/sidekick/services/ingest-email/internal/mailreply"
)

// Config is ingest-email's configuration.
type Config struct {
	// InboundToken authenticates POST /email/inbound (Authorization: Bearer).
	InboundToken string `env:"SIDEKICK_EMAIL_INBOUND_TOKEN,required,notEmpty"`
	// HMACSecret, when set, also accepts X-Sidekick-Signature: sha256=<hex
	// HMAC-SHA256 of the body> instead of the bearer token.
	HMACSecret string `env:"SIDEKICK_EMAIL_INBOUND_HMAC_SECRET"`
	// SMTPAddr is the SMTP listener; "off" (or empty, for a Config built
	// in code) disables it. An empty variable means the default.
	SMTPAddr string `env:"SIDEKICK_SMTP_ADDR" envDefault:":2525"`
	// Domain is the name the SMTP server announces.
	Domain string `env:"SIDEKICK_SMTP_DOMAIN" envDefault:"localhost"`
	// Recipients is the allow-list of support addresses SMTP accepts mail
	// for. Required with the SMTP listener outside dev mode (FromKit);
	// empty accepts any recipient, which only a dev stack wants.
	Recipients []string `env:"SIDEKICK_EMAIL_RECIPIENTS"`
	// StaffDomains are our own domains: senders there are staff.
	StaffDomains []string `env:"SIDEKICK_EMAIL_STAFF_DOMAINS"`
	// MaxBytes bounds one message (SMTP and HTTP); larger ones get 552 or
	// 413.
	MaxBytes int64 `env:"SIDEKICK_EMAIL_MAX_BYTES" envDefault:"26214400"`
	// ContentMaxBytes bounds the object store SUPPORT_INBOUND_CONTENT,
	// where large messages and raw emails with attachments are kept (see
	// platform/content); when it is full, mail is refused for a while
	// (451, 503) until old objects expire with the inbound stream.
	ContentMaxBytes int64 `env:"SIDEKICK_EMAIL_CONTENT_MAX_BYTES" envDefault:"1073741824"`
	// TLSCert and TLSKey enable STARTTLS.
	TLSCert string `env:"SIDEKICK_SMTP_TLS_CERT"`
	TLSKey  string `env:"SIDEKICK_SMTP_TLS_KEY"`

	// Replies to customers (support.outbound.email) are submitted to a
	// relay; without Relay none are sent. See docs/replies.md.

	// Relay is host:port of the SMTP submission server replies go through.
	Relay string `env:"SIDEKICK_EMAIL_RELAY"`
	// RelayTLS is "starttls" (required), "implicit" (TLS from the first
	// byte, port 465) or "off" (a relay on a trusted network only).
	RelayTLS string `env:"SIDEKICK_EMAIL_RELAY_TLS" envDefault:"starttls"`
	// RelayCA is a PEM file of the CA that signed the relay's certificate,
	// when it is not a public one.
	RelayCA string `env:"SIDEKICK_EMAIL_RELAY_CA"`
	// RelayUsername and RelayPassword enable AUTH PLAIN.
	RelayUsername string `env:"SIDEKICK_EMAIL_RELAY_USERNAME"`
	RelayPassword string `env:"SIDEKICK_EMAIL_RELAY_PASSWORD"`
	// From is the support address replies come from, with its name:
	// "Acme Support <support@acme.example>". Required with Relay; its
	// domain is the domain of our Message-IDs.
	From string `env:"SIDEKICK_EMAIL_FROM"`
	// ReplyConcurrency is how many replies are sent at once.
	ReplyConcurrency int `env:"SIDEKICK_EMAIL_REPLY_CONCURRENCY" envDefault:"4"`
	// ReplyAckWait is how long a reply whose sending process died waits
	// before it is tried again.
	ReplyAckWait time.Duration `env:"SIDEKICK_EMAIL_REPLY_ACK_WAIT" envDefault:"30s"`
}

// smtpOn reports whether the SMTP listener is configured.
func (c Config) smtpOn() bool { return c.SMTPAddr != "" && c.SMTPAddr != "off" }

// Publisher publishes one event and returns after the PubAck.
type Publisher interface {
	Publish(ctx context.Context, e bus.Event) (*jetstream.PubAck, error)
}

// Deps are ingest-email's collaborators.
type Deps struct {
	Logger    *slog.Logger
	Publisher Publisher
	// DeadLetter records accepted input that cannot be normalized.
	DeadLetter func(ctx context.Context, location string, data []byte, hdr nats.Header, cause error) error
	Registry   prometheus.Registerer
	Now        func() time.Time
	// TLS overrides the certificate files (tests).
	TLS *tls.Config
	// JS holds the reply stream and ledger; replies need it.
	JS jetstream.JetStream
	// Content is the object store SUPPORT_INBOUND_CONTENT (content.Ensure):
	// messages over the inline limit and raw emails with attachments go
	// there, with a reference in the message. Without it a message over
	// NATS's max_payload is refused as too large.
	Content jetstream.ObjectStore
	// Clock times replies' retries; default the wall clock.
	Clock clock.Clock
	// RelayTLS overrides the TLS configuration of the relay connection
	// (tests).
	RelayTLS *tls.Config
	// LedgerReplicas is the replica count of the reply ledger bucket (the
	// kit's SIDEKICK_STREAM_REPLICAS); default 1.
	LedgerReplicas int
	// LedgerMaxBytes bounds the reply ledger bucket (the kit's
	// SIDEKICK_OUTBOUND_LEDGER_MAX_BYTES); default outbound's.
	LedgerMaxBytes int64
	// SMTPListener is the bound SMTP port Run serves. FromKit binds it
	// while the host builds its services, so the port accepts connections
	// by the time the host reports ready (a mail relay, or a test, that
	// connects at once is not refused). Nil: Run binds cfg.SMTPAddr.
	SMTPListener net.Listener
}

// Service is the email ingest service.
type Service struct {
	cfg     Config
	deps    Deps
	metrics *metrics
	tls     *tls.Config
	// replies sends support.outbound.email; nil without a relay.
	replies *outbound.Runner
}

type metrics struct {
	messages *prometheus.CounterVec
}

// New builds the service.
func New(cfg Config, deps Deps) (*Service, error) {
	if deps.Publisher == nil {
		return nil, errors.New("ingest-email: a publisher is required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	s := &Service{cfg: cfg, deps: deps, tls: deps.TLS}
	if s.tls == nil && cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("load SMTP TLS certificate: %w", err)
		}
		s.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	s.metrics = &metrics{messages: promreg.MustRegister(deps.Registry, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sidekick_ingest_email_messages_total",
		Help: "Email messages by path (smtp, http) and result (published, duplicate, automated, rejected, deadletter, unauthorized, too_large, malformed, error).",
	}, []string{"path", "result"}))}
	if cfg.Relay != "" {
		ch, err := replyChannel(cfg, deps.RelayTLS)
		if err != nil {
			return nil, err
		}
		if deps.JS == nil {
			return nil, errors.New("ingest-email: replies need JetStream")
		}
		s.replies, err = outbound.New(outbound.Config{
			Channel: "email", Service: Name, Source: Source, Replicas: deps.LedgerReplicas, MaxBytes: deps.LedgerMaxBytes,
			Concurrency: cfg.ReplyConcurrency, AckWait: cfg.ReplyAckWait,
		}, ch, outbound.Deps{JS: deps.JS, Publisher: deps.Publisher, Logger: deps.Logger, Registry: deps.Registry, Clock: deps.Clock})
		if err != nil {
			return nil, fmt.Errorf("ingest-email: replies: %w", err)
		}
	}
	return s, nil
}

// Source is the ce-source of everything the service publishes.
const Source = "sidekick/ingest-email"

// Name is the service name; dead letters go to
// support.deadletter.ingest-email.
const Name = "ingest-email"

// replyChannel checks the relay settings and builds the channel.
func replyChannel(cfg Config, base *tls.Config) (*mailreply.Channel, error) {
	from, err := mail.ParseAddress(cfg.From)
	if err != nil || !strings.Contains(from.Address, "@") {
		return nil, fmt.Errorf("ingest-email: SIDEKICK_EMAIL_FROM %q: replies need the support address they come from", cfg.From)
	}
	if _, _, err := net.SplitHostPort(cfg.Relay); err != nil {
		return nil, fmt.Errorf("ingest-email: SIDEKICK_EMAIL_RELAY %q: want host:port: %w", cfg.Relay, err)
	}
	switch cfg.RelayTLS {
	case "", mailreply.TLSStartTLS, mailreply.TLSImplicit, mailreply.TLSOff:
	default:
		return nil, fmt.Errorf("ingest-email: SIDEKICK_EMAIL_RELAY_TLS %q: want starttls, implicit or off", cfg.RelayTLS)
	}
	if cfg.RelayTLS == mailreply.TLSOff && cfg.RelayUsername != "" {
		return nil, errors.New("ingest-email: SIDEKICK_EMAIL_RELAY_TLS=off with a username would send the password in clear")
	}
	tc := base
	if tc == nil && cfg.RelayCA != "" {
		pemBytes, err := os.ReadFile(cfg.RelayCA)
		if err != nil {
			return nil, fmt.Errorf("ingest-email: SIDEKICK_EMAIL_RELAY_CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("ingest-email: SIDEKICK_EMAIL_RELAY_CA %s holds no PEM certificate", cfg.RelayCA)
		}
		tc = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &mailreply.Channel{
		Relay: cfg.Relay, TLSMode: cfg.RelayTLS, TLS: tc,
		Username: cfg.RelayUsername, Password: cfg.RelayPassword, From: *from,
	}, nil
}

// Spec describes ingest-email to an app.Host.
func Spec() app.Spec {
	return app.Spec{Name: Name, Config: &Config{}, Build: FromKit, Provision: provision}
}

// provision makes the object store of large content (platform/content)
// and the ledger bucket of the replies sent on email (platform/outbound).
func provision(ctx context.Context, k *app.Kit) error {
	var cfg Config
	if err := config.LoadSettings(&cfg, k.Environ); err != nil {
		return err
	}
	if _, err := content.Ensure(ctx, k.JS, contentConfig(cfg, k)); err != nil {
		return err
	}
	return outbound.ProvisionLedger(ctx, k.JS, outbound.Config{Channel: "email", Service: k.Name, Replicas: k.Common.StreamReplicas, MaxBytes: k.Common.LedgerMaxBytes})
}

func contentConfig(cfg Config, k *app.Kit) content.Config {
	return content.Config{Replicas: k.Common.StreamReplicas, MaxAge: bus.DefaultEventMaxAge, MaxBytes: cfg.ContentMaxBytes}
}

// FromKit builds the service from the process kit.
func FromKit(ctx context.Context, k *app.Kit) (app.Service, error) {
	var cfg Config
	if err := config.Load(&cfg, k.Environ); err != nil {
		return nil, err
	}
	if cfg.smtpOn() && len(cfg.Recipients) == 0 && !k.Common.Dev {
		// Without an allow-list the listener would take mail for any
		// address: an open drop box for anyone who finds the port.
		return nil, errors.New("ingest-email: SIDEKICK_EMAIL_RECIPIENTS is required outside dev mode: the support addresses the SMTP listener accepts mail for (or SIDEKICK_SMTP_ADDR=off to turn the listener off)")
	}
	js := k.JS
	store, err := content.Open(ctx, js, contentConfig(cfg, k))
	if err != nil {
		return nil, fmt.Errorf("ingest-email: %w", err)
	}
	var lis net.Listener
	if cfg.smtpOn() {
		if lis, err = net.Listen("tcp", cfg.SMTPAddr); err != nil {
			return nil, fmt.Errorf("ingest-email: listen smtp %s: %w", cfg.SMTPAddr, err)
		}
	}
	svc, err := New(cfg, Deps{
		Logger:    k.Logger,
		Publisher: bus.NewPublisher(js, Source),
		DeadLetter: func(ctx context.Context, location string, data []byte, hdr nats.Header, cause error) error {
			return bus.DeadLetter(ctx, js, Name, location, bus.InboundSubject("email"), data, hdr, cause)
		},
		Registry: k.Registry,
		Now:      clock.OrReal(k.Clock).Now,
		JS:       js,
		Clock:    k.Clock,
		Content:  store,

		LedgerReplicas: k.Common.StreamReplicas,
		LedgerMaxBytes: k.Common.LedgerMaxBytes,
		SMTPListener:   lis,
	})
	if err != nil {
		if lis != nil {
			_ = lis.Close()
		}
		return nil, err
	}
	return svc, nil
}

// Register mounts POST /email/inbound.
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /email/inbound", s.serveInbound)
}

// Run serves SMTP and sends replies (each when configured) until ctx is
// done.
func (s *Service) Run(ctx context.Context) error {
	if s.deps.JS != nil {
		sub, err := bus.ServeReplay(ctx, s.deps.JS.Conn(), Name, 30*time.Second, s.replay)
		if err != nil {
			return err
		}
		defer func() { _ = sub.Drain() }()
	}
	g, ctx := errgroup.WithContext(ctx)
	if s.replies != nil {
		g.Go(func() error { return s.replies.Run(ctx) })
	}
	switch {
	case s.deps.SMTPListener != nil:
		g.Go(func() error { return s.ServeSMTP(ctx, s.deps.SMTPListener) })
	case s.cfg.smtpOn():
		g.Go(func() error { return s.serveSMTP(ctx) })
	}
	g.Go(func() error { <-ctx.Done(); return nil })
	return g.Wait()
}

// replay runs a dead-lettered email (see session.Data) through the parser
// and normaliser again with its SMTP envelope, and publishes it; the whole
// of an email too large for the dead letter comes from the object store.
func (s *Service) replay(ctx context.Context, raw []byte, hdr nats.Header) error {
	if ref := hdr.Get(content.AttrRawRef); ref != "" && s.deps.Content != nil {
		whole, err := s.deps.Content.GetBytes(ctx, ref)
		if err != nil {
			return fmt.Errorf("read the whole email %s: %w", ref, err)
		}
		raw = whole
	} else if n := hdr.Get(bus.HeaderBodyTruncatedFrom); n != "" {
		return fmt.Errorf("only the first %d of %s bytes were kept", len(raw), n)
	}
	var rcpts []string
	if r := hdr.Get("smtp-rcpt"); r != "" {
		rcpts = strings.Split(r, ",")
	}
	if _, err := s.ingest(ctx, "replay", raw, hdr.Get("smtp-from"), rcpts); err != nil {
		return fmt.Errorf("replay email: %w", err)
	}
	return nil
}

// errRejected marks input refused for what it is (not retryable).
var errRejected = errors.New("rejected")

// errTooLarge marks a message that can never be stored however often it
// is sent (552, 413), as opposed to a store that is unavailable for now.
var errTooLarge = errors.New("message too large to store")

// ingest parses raw and publishes it. It returns the message id. Errors
// wrapping mailparse.ErrMalformed mean bad input; other errors mean the
// publish failed and the sender should retry.
func (s *Service) ingest(ctx context.Context, path string, raw []byte, envelopeFrom string, rcpts []string) (string, error) {
	e, err := mailparse.Parse(raw)
	if err != nil {
		s.metrics.messages.WithLabelValues(path, "rejected").Inc()
		return "", err
	}
	msg := s.normalize(e, rcpts)
	if envelopeFrom != "" {
		msg.Attributes["envelope_from"] = envelopeFrom
	}
	if msg, err = s.offload(ctx, msg, raw, len(e.Attachments) > 0); err != nil {
		s.metrics.messages.WithLabelValues(path, "error").Inc()
		s.deps.Logger.Error("store email content", "message_id", e.MessageID, "error", err)
		return "", err
	}
	ack, err := s.deps.Publisher.Publish(ctx, bus.Event{Subject: bus.InboundSubject("email"), ID: msg.GetId(), Message: msg})
	if errors.Is(err, nats.ErrMaxPayload) {
		s.metrics.messages.WithLabelValues(path, "too_large").Inc()
		return "", fmt.Errorf("%w: %v", errTooLarge, err)
	}
	if err != nil {
		s.metrics.messages.WithLabelValues(path, "error").Inc()
		s.deps.Logger.Error("publish email", "message_id", e.MessageID, "error", err)
		return "", fmt.Errorf("publish: %w", err)
	}
	result := "published"
	switch {
	case ack.Duplicate:
		result = "duplicate"
	case e.Automated != "":
		result = "automated"
	}
	s.metrics.messages.WithLabelValues(path, result).Inc()
	return msg.GetId(), nil
}

// offload keeps what does not fit in a NATS message in the object store:
// the raw email when it has attachments (their content is nowhere else) or
// is large, and the whole message when it is over the inline limit, which
// is then published as a stub that refers to it (platform/content).
func (s *Service) offload(ctx context.Context, msg *supportv1.InboundMessage, raw []byte, attachments bool) (*supportv1.InboundMessage, error) {
	if s.deps.Content == nil {
		return msg, nil
	}
	if attachments || len(raw) > content.InlineBytes {
		name, err := content.PutRaw(ctx, s.deps.Content, msg.GetId(), raw)
		if err != nil {
			return nil, err
		}
		msg.Attributes[content.AttrRawRef] = name
	}
	out, err := content.Offload(ctx, s.deps.Content, msg)
	if errors.Is(err, content.ErrTooLarge) {
		return nil, fmt.Errorf("%w: %v", errTooLarge, err)
	}
	return out, err
}

// normalize maps a parsed email to an InboundMessage.
func (s *Service) normalize(e *mailparse.Email, rcpts []string) *supportv1.InboundMessage {
	role := supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER
	if s.isStaff(e.From.Address) {
		role = supportv1.AuthorRole_AUTHOR_ROLE_STAFF
	}
	kind := supportv1.MessageKind_MESSAGE_KIND_POSTED
	attrs := map[string]string{}
	if e.Automated != "" {
		kind = supportv1.MessageKind_MESSAGE_KIND_AUTOMATED
		role = supportv1.AuthorRole_AUTHOR_ROLE_BOT
		attrs["automated"] = e.Automated
	}
	if e.AuthResults != "" {
		attrs["authentication_results"] = e.AuthResults
	}
	if e.AuthFailed {
		attrs["auth_failed"] = "true"
	}
	if e.Full != e.Text {
		attrs["quoted_text"] = e.Full
	}
	if len(rcpts) > 0 {
		attrs["recipients"] = strings.Join(rcpts, ",")
	}
	if e.InReplyTo != "" {
		attrs["in_reply_to"] = e.InReplyTo
	}
	// Who a reply goes to: triage answers Reply-To (else From) and copies
	// the others of To and Cc.
	for k, list := range map[string][]mail.Address{"to": e.To, "cc": e.Cc, "reply_to": e.ReplyTo} {
		if len(list) > 0 {
			attrs[k] = addressList(list)
		}
	}
	if e.OutboundID != "" {
		// A copy of our own reply (the support address was on it): triage
		// matches it to the staff message instead of storing it again.
		attrs["outbound_id"] = e.OutboundID
	}
	sent := e.Date
	now := s.deps.Now()
	if sent.IsZero() {
		sent = now
	}
	domain := ""
	if _, d, ok := strings.Cut(e.From.Address, "@"); ok {
		domain = d
	}
	m := &supportv1.InboundMessage{
		Id:       "email:" + e.MessageID,
		Channel:  supportv1.Channel_CHANNEL_EMAIL,
		SourceId: e.MessageID,
		// Threads are keyed by their first message: a reply carries it in
		// References (or In-Reply-To). The subject is never used, so two
		// strangers writing "Help" stay apart.
		ThreadKey:  "email:" + e.ThreadRoot(),
		Author:     &supportv1.Author{Id: e.From.Address, Name: e.From.Name, Email: e.From.Address, Role: role, Organisation: domain},
		Subject:    e.Subject,
		Text:       e.Text,
		SentAt:     timestamppb.New(sent),
		ReceivedAt: timestamppb.New(now),
		Attributes: attrs,
		Kind:       kind,
		References: append(append([]string(nil), e.References...), nonEmpty(e.InReplyTo)...),
	}
	for _, a := range e.Attachments {
		m.Attachments = append(m.Attachments, &supportv1.Attachment{Name: a.Name, ContentType: a.ContentType, SizeBytes: a.Size})
	}
	return m
}

// addressList is a comma-separated list of the addresses, without names.
func addressList(list []mail.Address) string {
	out := make([]string, len(list))
	for i, a := range list {
		out[i] = a.Address
	}
	return strings.Join(out, ", ")
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func (s *Service) isStaff(addr string) bool {
	_, domain, ok := strings.Cut(strings.ToLower(addr), "@")
	if !ok {
		return false
	}
	for _, d := range s.cfg.StaffDomains {
		if strings.EqualFold(strings.TrimSpace(d), domain) {
			return true
		}
	}
	return false
}

// allowed reports whether rcpt is one of the support addresses.
func (s *Service) allowed(rcpt string) bool {
	if len(s.cfg.Recipients) == 0 {
		return true
	}
	for _, r := range s.cfg.Recipients {
		if strings.EqualFold(strings.TrimSpace(r), rcpt) {
			return true
		}
	}
	return false
}

// serveInbound handles POST /email/inbound with a raw RFC 5322 body.
//
// Credentials are checked before the body is read: a bearer token is
// decided from the headers alone, so a stranger's 25 MB post costs no
// memory. Only a request carrying a well-formed signature is read (within
// the size limit), since the signature covers the body.
func (s *Service) serveInbound(w http.ResponseWriter, r *http.Request) {
	cred := s.credentials(r)
	if cred == credNone {
		s.metrics.messages.WithLabelValues("http", "unauthorized").Inc()
		httpError(w, http.StatusUnauthorized, "missing or invalid bearer token or signature")
		return
	}
	raw, berr := httpx.ReadBody(w, r, s.cfg.MaxBytes)
	if berr != nil {
		s.metrics.messages.WithLabelValues("http", berr.Result).Inc()
		httpError(w, berr.Status, berr.Message)
		return
	}
	if cred == credSignature && !s.signed(r, raw) {
		s.metrics.messages.WithLabelValues("http", "unauthorized").Inc()
		httpError(w, http.StatusUnauthorized, "missing or invalid bearer token or signature")
		return
	}
	id, err := s.ingest(r.Context(), "http", raw, r.Header.Get("X-Envelope-From"), splitList(r.Header.Get("X-Envelope-To")))
	switch {
	case errors.Is(err, mailparse.ErrMalformed):
		httpError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, errTooLarge):
		httpError(w, http.StatusRequestEntityTooLarge, err.Error())
	case err != nil:
		httpError(w, http.StatusServiceUnavailable, "could not store the message; retry")
	default:
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"id": id})
	}
}

// What a request's headers offer as credentials.
const (
	credNone = iota
	// credToken: a bearer token, checked and valid.
	credToken
	// credSignature: a well-formed signature, to check against the body.
	credSignature
)

// credentials decides what the headers alone can: a bearer token is
// compared in constant time; a signature can only be checked once the
// body is read, so it is only recognised here.
func (s *Service) credentials(r *http.Request) int {
	if auth := r.Header.Get("Authorization"); auth != "" {
		tok, ok := strings.CutPrefix(auth, "Bearer ")
		if ok && subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.InboundToken)) == 1 {
			return credToken
		}
		return credNone
	}
	if s.cfg.HMACSecret == "" {
		return credNone
	}
	sig, ok := strings.CutPrefix(r.Header.Get("X-Sidekick-Signature"), "sha256=")
	if !ok || len(sig) != 2*sha256.Size {
		return credNone
	}
	if _, err := hex.DecodeString(sig); err != nil {
		return credNone
	}
	return credSignature
}

// signed checks X-Sidekick-Signature, the hex HMAC-SHA256 of the body, in
// constant time.
func (s *Service) signed(r *http.Request, body []byte) bool {
	got, err := hex.DecodeString(strings.TrimPrefix(r.Header.Get("X-Sidekick-Signature"), "sha256="))
	if err != nil || s.cfg.HMACSecret == "" {
		return false
	}
	mac := hmac.New(sha256.New, []byte(s.cfg.HMACSecret))
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
