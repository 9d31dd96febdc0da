package email_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/sidekickhq/sidekick/platform/tlstest"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify/email"
)

var now = time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC)

// delivered is what the test server accepted (or, for attempts, saw).
type delivered struct {
	from string
	to   []string
	data []byte
	tls  bool
	user string
}

// mailServer is a real SMTP server (emersion/go-smtp) on a random port
// that records what it got. Scripted replies make RCPT or DATA fail.
type mailServer struct {
	addr string

	mu          sync.Mutex
	accepted    []delivered
	attempts    []delivered // every DATA, accepted or not
	rcptReplies []error
	dataReplies []error
}

type serverOptions struct {
	tls         *tls.Config // offer STARTTLS with it
	implicitTLS bool        // speak TLS from the first byte instead
}

func startServer(t *testing.T, o serverOptions) *mailServer {
	t.Helper()
	ms := &mailServer{}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{srv: ms, conn: c}, nil
	}))
	s.Domain = "mx.test"
	s.ErrorLog = testLogger{t}
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if o.implicitTLS {
		l = tls.NewListener(l, o.tls)
	} else {
		s.TLSConfig = o.tls
	}
	ms.addr = l.Addr().String()
	go func() { _ = s.Serve(l) }()
	t.Cleanup(func() { _ = s.Close() })
	return ms
}

type testLogger struct{ t *testing.T }

func (l testLogger) Printf(format string, v ...any) { l.t.Logf("smtp server: "+format, v...) }
func (l testLogger) Println(v ...any)               { l.t.Log(append([]any{"smtp server:"}, v...)...) }

type session struct {
	srv  *mailServer
	conn *smtp.Conn
	from string
	to   []string
	user string
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		if username != "sidekick" || password != "p@ss word" {
			return smtp.ErrAuthFailed
		}
		s.user = username
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	if len(s.srv.rcptReplies) > 0 {
		err := s.srv.rcptReplies[0]
		s.srv.rcptReplies = s.srv.rcptReplies[1:]
		if err != nil {
			return err
		}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := s.conn.TLSConnectionState()
	d := delivered{from: s.from, to: s.to, data: data, tls: isTLS, user: s.user}
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	s.srv.attempts = append(s.srv.attempts, d)
	if len(s.srv.dataReplies) > 0 {
		err := s.srv.dataReplies[0]
		s.srv.dataReplies = s.srv.dataReplies[1:]
		if err != nil {
			return err
		}
	}
	s.srv.accepted = append(s.srv.accepted, d)
	return nil
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }

func (ms *mailServer) snapshot() (accepted, attempts []delivered) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return append([]delivered(nil), ms.accepted...), append([]delivered(nil), ms.attempts...)
}

// selfSigned returns a server certificate for 127.0.0.1 and localhost and
// a pool that trusts it.
func selfSigned(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	ca := tlstest.NewCA(t, "mx test CA")
	cert := ca.Certificate(t, "mx.test", "127.0.0.1", "localhost")
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, ca.Pool()
}

func channel(t *testing.T, rawURL string, roots *x509.CertPool) *email.Channel {
	t.Helper()
	cfg, err := email.ParseURL(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := email.New(email.Options{Config: cfg, TLSConfig: &tls.Config{RootCAs: roots}, Timeout: 10 * time.Second, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

var msg = notify.Message{
	NotificationID: "n1", DeliveryID: "d1",
	Recipient: notify.Recipient{PersonID: "alice", Name: "Alice Müller", Email: "alice@example.com", Role: "Support Hero"},
	Urgency:   notify.Page, Title: "Priorität: Kunde wartet – Acme <Enterprise>",
	Text:           "Our deploy is down.\nPlease help & hurry.",
	Links:          []notify.Link{{Title: "Open in Sidekick", URL: "https://sidekick.example.com/c/c42?x=1&y=2"}},
	ConversationID: "c42", DedupKey: "conv-c42|person:alice|1", Attempt: 1,
}

// parsed is a received message read back with a MIME parser.
type parsed struct {
	header mail.Header
	parts  map[string]string // content type → decoded body
}

func parse(t *testing.T, data []byte) parsed {
	t.Helper()
	r, err := mail.CreateReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("not a MIME message: %v\n%s", err, data)
	}
	p := parsed{header: r.Header, parts: map[string]string{}}
	for {
		part, err := r.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		h, ok := part.Header.(*mail.InlineHeader)
		if !ok {
			t.Fatalf("part is an attachment: %v", part.Header)
		}
		ct, params, _ := h.ContentType()
		if params["charset"] != "utf-8" {
			t.Errorf("%s part charset %q", ct, params["charset"])
		}
		body, _ := io.ReadAll(part.Body)
		p.parts[ct] = string(body)
	}
	return p
}

func TestSendComposesMIME(t *testing.T) {
	srv := startServer(t, serverOptions{})
	ch := channel(t, "smtp://"+srv.addr+"?from=Sidekick%20%3Csidekick@example.com%3E&starttls=off", nil)
	r, err := ch.Send(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	accepted, _ := srv.snapshot()
	if len(accepted) != 1 {
		t.Fatalf("server accepted %d messages", len(accepted))
	}
	got := accepted[0]
	if got.from != "sidekick@example.com" || len(got.to) != 1 || got.to[0] != "alice@example.com" || got.tls {
		t.Errorf("envelope = %+v", got)
	}
	raw := string(got.data)
	if !strings.Contains(raw, "Subject: =?utf-8?q?") {
		t.Errorf("subject is not RFC 2047 encoded:\n%s", raw)
	}
	for _, line := range strings.Split(raw, "\r\n") {
		for _, r := range line {
			if r > 127 {
				t.Fatalf("8-bit data in a 7-bit message: %q", line)
			}
		}
	}
	p := parse(t, got.data)
	h := p.header
	subject, _ := h.Subject()
	if subject != "[Sidekick] PAGE: Priorität: Kunde wartet – Acme <Enterprise>" {
		t.Errorf("subject = %q", subject)
	}
	if ct, _, _ := h.ContentType(); ct != "multipart/alternative" {
		t.Errorf("content type = %s", ct)
	}
	if h.Get("Mime-Version") != "1.0" {
		t.Errorf("MIME-Version = %q", h.Get("Mime-Version"))
	}
	id, _ := h.MessageID()
	if id != r.Ref || !strings.HasSuffix(id, "@example.com") {
		t.Errorf("Message-ID %q, receipt %q", id, r.Ref)
	}
	root := ch.ThreadRoot("c42")
	if root != "conversation.c42@example.com" {
		t.Errorf("thread root = %s", root)
	}
	if irt, _ := h.MsgIDList("In-Reply-To"); len(irt) != 1 || irt[0] != root {
		t.Errorf("In-Reply-To = %v", irt)
	}
	if refs, _ := h.MsgIDList("References"); len(refs) != 1 || refs[0] != root {
		t.Errorf("References = %v", refs)
	}
	from, _ := h.AddressList("From")
	to, _ := h.AddressList("To")
	if len(from) != 1 || from[0].Name != "Sidekick" || len(to) != 1 || to[0].Name != "Alice Müller" || to[0].Address != "alice@example.com" {
		t.Errorf("From %v To %v", from, to)
	}
	if d, _ := h.Date(); !d.Equal(now) {
		t.Errorf("Date = %s", d)
	}
	if h.Get("Auto-Submitted") != "auto-generated" || h.Get("Importance") != "high" ||
		h.Get("X-Sidekick-Conversation") != "c42" || h.Get("X-Sidekick-Notification") != "n1" {
		t.Errorf("headers = %v", h.Header)
	}
	text, htm := strings.ReplaceAll(p.parts["text/plain"], "\r\n", "\n"), p.parts["text/html"]
	for _, want := range []string{msg.Title, "You are the Support Hero.", "Our deploy is down.\nPlease help & hurry.", "Open in Sidekick: https://sidekick.example.com/c/c42?x=1&y=2"} {
		if !strings.Contains(text, want) {
			t.Errorf("text part lacks %q:\n%s", want, text)
		}
	}
	for _, want := range []string{"Acme &lt;Enterprise&gt;", "Please help &amp; hurry.", `<a href="https://sidekick.example.com/c/c42?x=1&amp;y=2">Open in Sidekick</a>`, "<em>You are the Support Hero.</em>"} {
		if !strings.Contains(htm, want) {
			t.Errorf("html part lacks %q:\n%s", want, htm)
		}
	}
	if strings.Contains(htm, "<Enterprise>") {
		t.Errorf("html part is not escaped:\n%s", htm)
	}
}

func TestTemporaryFailureThenSuccessKeepsMessageID(t *testing.T) {
	srv := startServer(t, serverOptions{})
	srv.dataReplies = []error{&smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Try again later"}}
	ch := channel(t, "smtp://"+srv.addr+"?from=sidekick@example.com", nil)
	ctx := context.Background()

	_, err := ch.Send(ctx, msg)
	if err == nil || notify.IsPermanent(err) {
		t.Fatalf("451: err = %v, want retryable", err)
	}
	if !strings.Contains(err.Error(), "451") {
		t.Errorf("error does not carry the reply: %v", err)
	}
	retry := msg
	retry.Attempt = 2
	r, err := ch.Send(ctx, retry)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	accepted, attempts := srv.snapshot()
	if len(attempts) != 2 || len(accepted) != 1 {
		t.Fatalf("attempts %d, accepted %d", len(attempts), len(accepted))
	}
	p1, p2 := parse(t, attempts[0].data), parse(t, attempts[1].data)
	first, _ := p1.header.MessageID()
	second, _ := p2.header.MessageID()
	if first != second || second != r.Ref {
		t.Errorf("Message-IDs differ across the retry: %q, %q (receipt %q)", first, second, r.Ref)
	}
}

func TestPermanentRejection(t *testing.T) {
	srv := startServer(t, serverOptions{})
	srv.rcptReplies = []error{&smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}}
	ch := channel(t, "smtp://"+srv.addr+"?from=sidekick@example.com", nil)
	_, err := ch.Send(context.Background(), msg)
	if err == nil || !notify.IsPermanent(err) {
		t.Fatalf("550: err = %v, want permanent", err)
	}
	if !strings.Contains(err.Error(), "RCPT TO") || !strings.Contains(err.Error(), "No such user") {
		t.Errorf("error does not name the step and reply: %v", err)
	}
	if accepted, _ := srv.snapshot(); len(accepted) != 0 {
		t.Errorf("accepted %d", len(accepted))
	}
}

func TestStartTLSWithAuth(t *testing.T) {
	serverTLS, roots := selfSigned(t)
	srv := startServer(t, serverOptions{tls: serverTLS})
	ch := channel(t, "smtp://sidekick:p%40ss%20word@"+srv.addr+"?from=sidekick@example.com&starttls=required", roots)
	if _, err := ch.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	accepted, _ := srv.snapshot()
	if len(accepted) != 1 || !accepted[0].tls || accepted[0].user != "sidekick" {
		t.Fatalf("accepted = %+v", accepted)
	}
}

func TestOpportunisticStartTLS(t *testing.T) {
	serverTLS, roots := selfSigned(t)
	withTLS := startServer(t, serverOptions{tls: serverTLS})
	without := startServer(t, serverOptions{})
	for _, tt := range []struct {
		srv     *mailServer
		wantTLS bool
	}{{withTLS, true}, {without, false}} {
		ch := channel(t, "smtp://"+tt.srv.addr+"?from=sidekick@example.com", roots)
		if _, err := ch.Send(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
		accepted, _ := tt.srv.snapshot()
		if len(accepted) != 1 || accepted[0].tls != tt.wantTLS {
			t.Errorf("accepted = %+v, want TLS %v", accepted, tt.wantTLS)
		}
	}
}

func TestStartTLSRequiredButNotOffered(t *testing.T) {
	srv := startServer(t, serverOptions{})
	ch := channel(t, "smtp://"+srv.addr+"?from=sidekick@example.com&starttls=required", nil)
	_, err := ch.Send(context.Background(), msg)
	if err == nil || !notify.IsPermanent(err) || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("err = %v, want a permanent STARTTLS error", err)
	}
	if _, attempts := srv.snapshot(); len(attempts) != 0 {
		t.Errorf("sent %d messages in clear", len(attempts))
	}
}

func TestUntrustedCertificateIsPermanent(t *testing.T) {
	serverTLS, _ := selfSigned(t)
	srv := startServer(t, serverOptions{tls: serverTLS})
	ch := channel(t, "smtp://"+srv.addr+"?from=sidekick@example.com&starttls=required", x509.NewCertPool())
	_, err := ch.Send(context.Background(), msg)
	if err == nil || !notify.IsPermanent(err) {
		t.Fatalf("err = %v, want permanent", err)
	}
}

func TestImplicitTLS(t *testing.T) {
	serverTLS, roots := selfSigned(t)
	srv := startServer(t, serverOptions{tls: serverTLS, implicitTLS: true})
	ch := channel(t, "smtps://sidekick:p%40ss%20word@"+srv.addr+"?from=sidekick@example.com", roots)
	if _, err := ch.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	accepted, _ := srv.snapshot()
	if len(accepted) != 1 || !accepted[0].tls || accepted[0].user != "sidekick" {
		t.Fatalf("accepted = %+v", accepted)
	}
}

func TestWrongPasswordIsPermanent(t *testing.T) {
	serverTLS, roots := selfSigned(t)
	srv := startServer(t, serverOptions{tls: serverTLS})
	ch := channel(t, "smtp://sidekick:wrong@"+srv.addr+"?from=sidekick@example.com&starttls=required", roots)
	_, err := ch.Send(context.Background(), msg)
	if err == nil || !notify.IsPermanent(err) || !strings.Contains(err.Error(), "AUTH") {
		t.Fatalf("535: err = %v, want permanent AUTH error", err)
	}
}

func TestNetworkErrorIsRetryable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ch := channel(t, "smtp://"+addr+"?from=sidekick@example.com", nil)
	if _, err := ch.Send(context.Background(), msg); err == nil || notify.IsPermanent(err) {
		t.Fatalf("err = %v, want retryable", err)
	}
}

func TestNoAddressIsPermanent(t *testing.T) {
	ch := channel(t, "smtp://127.0.0.1:1?from=sidekick@example.com", nil)
	m := msg
	m.Recipient.Email = ""
	if _, err := ch.Send(context.Background(), m); !notify.IsPermanent(err) {
		t.Fatalf("err = %v", err)
	}
	if ch.CanReach(m.Recipient) || !ch.CanReach(msg.Recipient) {
		t.Error("CanReach disagrees with the address")
	}
}

func TestUpdateRepliesInThread(t *testing.T) {
	srv := startServer(t, serverOptions{})
	ch := channel(t, "smtp://"+srv.addr+"?from=sidekick@example.com", nil)
	ctx := context.Background()
	r, err := ch.Send(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Update(ctx, r, msg, "acknowledged by alice"); err != nil {
		t.Fatal(err)
	}
	accepted, _ := srv.snapshot()
	if len(accepted) != 2 {
		t.Fatalf("accepted %d", len(accepted))
	}
	p := parse(t, accepted[1].data)
	subject, _ := p.header.Subject()
	id, _ := p.header.MessageID()
	irt, _ := p.header.MsgIDList("In-Reply-To")
	refs, _ := p.header.MsgIDList("References")
	if subject != "Re: "+email.Subject(msg) || id == r.Ref || len(irt) != 1 || irt[0] != r.Ref ||
		len(refs) != 2 || refs[0] != ch.ThreadRoot("c42") || refs[1] != r.Ref {
		t.Errorf("update: subject %q id %q In-Reply-To %v References %v", subject, id, irt, refs)
	}
	if !strings.Contains(p.parts["text/plain"], "Acknowledged by alice") || p.header.Get("Importance") != "" {
		t.Errorf("update body:\n%s", p.parts["text/plain"])
	}
}

func TestMessageIDIsStable(t *testing.T) {
	ch := channel(t, "smtp://127.0.0.1:1?from=sidekick@example.com", nil)
	a, b := ch.MessageID("k|person:alice|0", "d1"), ch.MessageID("k|person:alice|0", "d2")
	if a != b || a == ch.MessageID("k|person:bob|0", "d1") {
		t.Errorf("Message-IDs: %s %s", a, b)
	}
	if ch.ThreadRoot("odd id/with spaces") == ch.ThreadRoot("other") || strings.ContainsAny(ch.ThreadRoot("odd id/with spaces"), " /") {
		t.Errorf("thread root %q", ch.ThreadRoot("odd id/with spaces"))
	}
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		in   string
		want email.Config
	}{
		{"smtp://user:pass@mail.example.com:587?from=sidekick@example.com&starttls=required", email.Config{
			Host: "mail.example.com", Port: 587, Username: "user", Password: "pass",
			From: mail.Address{Address: "sidekick@example.com"}, StartTLS: email.StartTLSRequired,
		}},
		{"smtp://relay.internal?from=sidekick@example.com&starttls=off&hello=notifier.example.com", email.Config{
			Host: "relay.internal", Port: 587, From: mail.Address{Address: "sidekick@example.com"}, StartTLS: email.StartTLSOff, Hello: "notifier.example.com",
		}},
		{"smtps://u%40x:p%3Aw@smtp.example.com?from=Sidekick%20%3Csidekick@example.com%3E", email.Config{
			Host: "smtp.example.com", Port: 465, Username: "u@x", Password: "p:w", ImplicitTLS: true,
			From: mail.Address{Name: "Sidekick", Address: "sidekick@example.com"},
		}},
		{"smtp://[::1]:2525?from=sidekick@example.com", email.Config{
			Host: "::1", Port: 2525, From: mail.Address{Address: "sidekick@example.com"}, StartTLS: email.StartTLSOpportunistic,
		}},
	}
	for _, tt := range tests {
		got, err := email.ParseURL(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseURL(%q) = %+v, %v\nwant %+v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{
		"http://mail.example.com?from=a@example.com",
		"smtp://mail.example.com",
		"smtp://mail.example.com?from=not-an-address",
		"smtp://mail.example.com?from=a@example.com&starttls=maybe",
		"smtps://mail.example.com?from=a@example.com&starttls=required",
		"smtp://mail.example.com:99999?from=a@example.com",
		"smtp://mail.example.com?from=a@example.com&tls=yes",
		"smtp://?from=a@example.com",
	} {
		if _, err := email.ParseURL(bad); err == nil {
			t.Errorf("ParseURL(%q) accepted", bad)
		}
	}
}

func TestNewRefusesPasswordInClear(t *testing.T) {
	for _, u := range []string{
		"smtp://user:pass@mail.example.com?from=a@example.com",
		"smtp://user:pass@mail.example.com?from=a@example.com&starttls=off",
	} {
		cfg, err := email.ParseURL(u)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := email.New(email.Options{Config: cfg}); err == nil {
			t.Errorf("New accepted %s", u)
		}
	}
}
