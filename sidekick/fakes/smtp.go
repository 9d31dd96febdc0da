package fakes

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/mail"
	"net/url"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// SMTP is an SMTP server that accepts every message for any recipient and
// keeps it. It offers no STARTTLS and no AUTH, so point a client at it
// with TLS off (URL does).
type SMTP struct {
	srv *smtp.Server
	lis net.Listener
	wg  sync.WaitGroup

	mu   sync.Mutex
	mail []Mail
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
}

// NewSMTP starts an SMTP fake on a free loopback port.
func NewSMTP() (*SMTP, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fakes: smtp listen: %w", err)
	}
	s := &SMTP{lis: lis}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &smtpSession{fake: s}, nil
	}))
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

// Close stops the server.
func (s *SMTP) Close() error {
	err := s.srv.Close()
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
	from string
	to   []string
}

func (s *smtpSession) Reset()        { s.from, s.to = "", nil }
func (s *smtpSession) Logout() error { return nil }

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
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
	m := Mail{From: s.from, To: append([]string(nil), s.to...), Data: data}
	if msg, err := mail.ReadMessage(bytes.NewReader(data)); err == nil {
		m.Header = msg.Header
		m.Body, _ = io.ReadAll(msg.Body)
	}
	s.fake.add(m)
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
