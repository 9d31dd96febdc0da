package fakes

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/mail"
	"net/url"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// SMTP is an SMTP server that accepts every message for any recipient and
// keeps it. NewSMTP offers no STARTTLS and no AUTH, so point a client at
// it with TLS off (URL does); NewSMTPStartTLS offers STARTTLS and refuses
// mail on a connection that did not use it (530), as a submission relay
// does.
type SMTP struct {
	srv        *smtp.Server
	lis        net.Listener
	wg         sync.WaitGroup
	requireTLS bool

	mu        sync.Mutex
	mail      []Mail
	rejects   []*smtp.SMTPError
	onMessage func(Mail)
}

// Mail is one message the SMTP fake received.
type Mail struct {
	// From and To are the envelope (MAIL FROM, RCPT TO).
	From string
	To   []string
	// Data is the message as sent after DATA.
	Data []byte
	// Header is Data's header, parsed; nil when Data is not RFC 5322.
	Header mail.Header
	// Body is what follows the header.
	Body []byte
	// TLS says the message came over a connection upgraded by STARTTLS.
	TLS bool
}

// NewSMTP starts an SMTP fake on a free loopback port.
func NewSMTP() (*SMTP, error) { return newSMTP(nil) }

// NewSMTPStartTLS starts an SMTP fake that offers STARTTLS with cert and
// accepts mail only after it.
func NewSMTPStartTLS(cert tls.Certificate) (*SMTP, error) {
	return newSMTP(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
}

func newSMTP(tc *tls.Config) (*SMTP, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fakes: smtp listen: %w", err)
	}
	s := &SMTP{lis: lis, requireTLS: tc != nil}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &smtpSession{fake: s, conn: c}, nil
	}))
	s.srv.TLSConfig = tc
	// Clients that vanish mid-session are part of the tests.
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.Domain = "smtp.fake.test"
	s.srv.ReadTimeout = 30 * time.Second
	s.srv.WriteTimeout = 30 * time.Second
	s.srv.MaxMessageBytes = 16 << 20
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.srv.Serve(lis)
	}()
	return s, nil
}

// Addr is host:port of the listener.
func (s *SMTP) Addr() string { return s.lis.Addr().String() }

// URL is a notifier SMTP URL (SIDEKICK_SMTP_URL) for this server, sending
// from the given address, without TLS.
func (s *SMTP) URL(from string) string {
	q := url.Values{"from": {from}, "starttls": {"off"}}
	return "smtp://" + s.Addr() + "?" + q.Encode()
}

// Messages returns the messages received so far, oldest first.
func (s *SMTP) Messages() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mail...)
}

// Reject makes the next n messages answer code and msg at the end of
// DATA instead of being kept: 451 a temporary failure, 550 or 554 a
// permanent one.
func (s *SMTP) Reject(code int, msg string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.rejects = append(s.rejects, &smtp.SMTPError{Code: code, Message: msg})
	}
}

// OnMessage runs f after each message is kept and before the server
// answers 250: a test can make the client vanish at the worst moment.
func (s *SMTP) OnMessage(f func(Mail)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onMessage = f
}

// WithMessageID counts the messages kept whose Message-Id header is id
// (with its angle brackets): how many times one reply arrived.
func (s *SMTP) WithMessageID(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.mail {
		if m.Header != nil && m.Header.Get("Message-Id") == id {
			n++
		}
	}
	return n
}

// Close stops the server. It closes the listener itself too: go-smtp's
// Close closes only the listeners Serve has registered, so a Close that
// comes before the serving goroutine got that far (a test skipped at once,
// on a loaded machine) would leave Serve accepting, and Close waiting for
// it, forever.
func (s *SMTP) Close() error {
	err := s.srv.Close()
	_ = s.lis.Close() // already closed when Serve had registered it
	s.wg.Wait()
	return err
}

func (s *SMTP) add(m Mail) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mail = append(s.mail, m)
}

type smtpSession struct {
	fake *SMTP
	conn *smtp.Conn
	from string
	to   []string
}

func (s *smtpSession) Reset()        { s.from, s.to = "", nil }
func (s *smtpSession) Logout() error { return nil }

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if _, tls := s.conn.TLSConnectionState(); s.fake.requireTLS && !tls {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Must issue a STARTTLS command first"}
	}
	s.from = from
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.fake.mu.Lock()
	var reject *smtp.SMTPError
	if len(s.fake.rejects) > 0 {
		reject, s.fake.rejects = s.fake.rejects[0], s.fake.rejects[1:]
	}
	s.fake.mu.Unlock()
	if reject != nil {
		return reject
	}
	_, tls := s.conn.TLSConnectionState()
	m := Mail{From: s.from, To: append([]string(nil), s.to...), Data: data, TLS: tls}
	if msg, err := mail.ReadMessage(bytes.NewReader(data)); err == nil {
		m.Header = msg.Header
		m.Body, _ = io.ReadAll(msg.Body)
	}
	s.fake.add(m)
	s.fake.mu.Lock()
	hook := s.fake.onMessage
	s.fake.mu.Unlock()
	if hook != nil {
		hook(m)
	}
	return nil
}

// SendMail delivers raw, an RFC 5322 message, to the SMTP server at addr
// the way a mail relay does, in plain text: EHLO, MAIL FROM, RCPT TO for
// each recipient, DATA, QUIT. An error carries the server's reply.
func SendMail(addr, from string, to []string, raw []byte) error {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return fmt.Errorf("fakes: send mail: connect %s: %w", addr, err)
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := smtp.NewClient(conn)
	defer c.Close()
	if err := c.SendMail(from, to, bytes.NewReader(raw)); err != nil {
		return fmt.Errorf("fakes: send mail to %s: %w", addr, err)
	}
	if err := c.Quit(); err != nil {
		return fmt.Errorf("fakes: send mail to %s: QUIT: %w", addr, err)
	}
	return nil
}
