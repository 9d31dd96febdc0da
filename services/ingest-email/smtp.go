package ingestemail

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/nats-io/nats.go"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/content"
	"github.com/sidekickhq/sidekick/services/ingest-email/internal/mailparse"
)

// serveSMTP runs the SMTP listener until ctx is done.
func (s *Service) serveSMTP(ctx context.Context) error {
	lis, err := net.Listen("tcp", s.cfg.SMTPAddr)
	if err != nil {
		return fmt.Errorf("listen smtp %s: %w", s.cfg.SMTPAddr, err)
	}
	return s.ServeSMTP(ctx, lis)
}

// ServeSMTP serves SMTP on lis until ctx is done.
func (s *Service) ServeSMTP(ctx context.Context, lis net.Listener) error {
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{svc: s, ctx: ctx}, nil
	}))
	srv.Domain = s.cfg.Domain
	srv.MaxMessageBytes = s.cfg.MaxBytes
	srv.MaxRecipients = 50
	srv.ReadTimeout = 60 * time.Second
	srv.WriteTimeout = 60 * time.Second
	srv.TLSConfig = s.tls // STARTTLS is offered only with a certificate
	srv.ErrorLog = smtpLogger{s}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	s.deps.Logger.Info("smtp listening", "addr", lis.Addr().String(), "starttls", s.tls != nil)
	select {
	case err := <-errc:
		if errors.Is(err, smtp.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("smtp serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	return nil
}

type smtpLogger struct{ s *Service }

func (l smtpLogger) Printf(format string, v ...any) {
	l.s.deps.Logger.Warn("smtp", "detail", fmt.Sprintf(format, v...))
}

func (l smtpLogger) Println(v ...any) { l.s.deps.Logger.Warn("smtp", "detail", fmt.Sprint(v...)) }

// session is one SMTP transaction sequence.
type session struct {
	svc   *Service
	ctx   context.Context
	from  string
	rcpts []string
}

func (s *session) Reset() { s.from, s.rcpts = "", nil }

func (s *session) Logout() error { return nil }

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if !s.svc.allowed(to) {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such support address here"}
	}
	s.rcpts = append(s.rcpts, strings.ToLower(to))
	return nil
}

// Data answers 250 only after the JetStream PubAck; a failed publish is a
// temporary failure (451) so the sending server retries.
func (s *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err // ErrDataTooLarge becomes 552 in go-smtp
	}
	_, err = s.svc.ingest(s.ctx, "smtp", raw, s.from, s.rcpts)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errTooLarge):
		// Sending it again cannot help: a bounce tells the sender now.
		return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "message too big to store"}
	case errors.Is(err, mailparse.ErrMalformed):
		// The sending server cannot fix this message; keep it where an
		// operator can see it instead of bouncing it into the void.
		if s.svc.deps.DeadLetter != nil {
			data, hdr, kerr := s.svc.keepRaw(s.ctx, raw)
			if kerr != nil {
				return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "temporary failure, try again later"}
			}
			// The raw email with its envelope, replayed through this
			// service (see replay), never republished as it is.
			if hdr == nil {
				hdr = nats.Header{}
			}
			hdr.Set(bus.HeaderRawRequest, Name)
			hdr.Set("smtp-from", s.from)
			hdr.Set("smtp-rcpt", strings.Join(s.rcpts, ","))
			if dlErr := s.svc.deps.DeadLetter(s.ctx, "ingest-email/smtp/parse", data, hdr, err); dlErr != nil {
				return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "temporary failure, try again later"}
			}
			s.svc.metrics.messages.WithLabelValues("smtp", "deadletter").Inc()
			return nil
		}
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "message could not be parsed"}
	default:
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "temporary failure, try again later"}
	}
}

// keepRaw returns what a dead letter of raw carries: raw itself when it
// fits in a NATS message, else its start, with the whole of it in the
// object store (header raw_ref) so an operator still has all of it.
func (s *Service) keepRaw(ctx context.Context, raw []byte) ([]byte, nats.Header, error) {
	if len(raw) <= content.InlineBytes || s.deps.Content == nil {
		return raw, nil, nil
	}
	sum := sha256.Sum256(raw)
	name, err := content.PutRaw(ctx, s.deps.Content, "deadletter:"+hex.EncodeToString(sum[:]), raw)
	if err != nil {
		return nil, nil, err
	}
	hdr := nats.Header{}
	hdr.Set(content.AttrRawRef, name)
	hdr.Set(bus.HeaderBodyTruncatedFrom, strconv.Itoa(len(raw)))
	return raw[:content.InlineBytes], hdr, nil
}
