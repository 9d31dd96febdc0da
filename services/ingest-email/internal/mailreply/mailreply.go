// Package mailreply sends replies to customers by email: a real reply from
// the support address, threaded into the customer's conversation
// (In-Reply-To, References, "Re: " subject), multipart/alternative with
// the text as written and an HTML rendering of it, under a Message-ID
// chosen before sending (by triage, or "<outbound id>@<our domain>") so
// the customer's answer comes back into the same conversation. It is
// submitted to a configured relay over SMTP with STARTTLS (or implicit
// TLS), with PLAIN authentication when configured.
//
// SMTP gives no way to ask a relay whether it already has a message, so
// Find says outbound.ErrCannotCheck; the Runner's ledger narrows the
// window in which a crash can make a second copy to the time between the
// end of the DATA and the record of the relay's 250 (see package
// outbound). A second copy carries the same Message-ID.
//
// 5xx replies and certificates that do not verify are permanent; 4xx
// replies and network errors are retried.
package mailreply

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/sidekickhq/sidekick/platform/outbound"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

// TLS modes of the relay connection.
const (
	// TLSStartTLS upgrades a plain connection and refuses a relay that
	// does not offer STARTTLS.
	TLSStartTLS = "starttls"
	// TLSImplicit speaks TLS from the first byte (port 465).
	TLSImplicit = "implicit"
	// TLSOff never encrypts: only for a relay on the same host or a
	// trusted network.
	TLSOff = "off"
)

// HeaderOutbound names the reply's outbound id in the message, so that a
// copy that comes back to the support address is recognised.
const HeaderOutbound = "X-Sidekick-Outbound"

// Channel is the email side of outbound.Runner.
type Channel struct {
	// Relay is host:port of the submission server.
	Relay string
	// TLSMode is TLSStartTLS (default), TLSImplicit or TLSOff.
	TLSMode string
	// TLS is the base TLS configuration (RootCAs for a private CA);
	// ServerName defaults to the relay's host.
	TLS *tls.Config
	// Username and Password enable AUTH PLAIN.
	Username, Password string
	// From is the support address replies come from; its name is shown
	// after the author's.
	From mail.Address
	// Timeout bounds one submission; default 60s.
	Timeout time.Duration
	// Now stamps the Date header; default time.Now.
	Now func() time.Time
}

var (
	_ outbound.Channel      = (*Channel)(nil)
	_ outbound.Unverifiable = (*Channel)(nil)
)

// Domain is the domain of the From address, which Message-IDs use.
func (c *Channel) Domain() string {
	_, d, _ := strings.Cut(c.From.Address, "@")
	return strings.ToLower(d)
}

// MessageID is the Message-ID of m, without angle brackets: the one triage
// chose, or the outbound id at our domain.
func (c *Channel) MessageID(m *supportv1.OutboundMessage) string {
	if id := strings.Trim(strings.TrimSpace(m.GetEmail().GetMessageId()), "<>"); id != "" {
		return id
	}
	return m.GetId() + "@" + c.Domain()
}

// Send submits m to the relay. reached is called with the whole message
// written, right before the end of the DATA, after which the relay may
// have it.
func (c *Channel) Send(ctx context.Context, m *supportv1.OutboundMessage, reached func(context.Context) error) (outbound.Sent, error) {
	id := c.MessageID(m)
	msg, err := c.Compose(m, id)
	if err != nil {
		return outbound.Sent{}, outbound.Permanent("compose the message", err)
	}
	var rcpts []string
	for _, a := range append(append([]string(nil), m.GetEmail().GetTo()...), m.GetEmail().GetCc()...) {
		addr, err := mail.ParseAddress(a)
		if err != nil {
			return outbound.Sent{}, outbound.Permanent(fmt.Sprintf("recipient %q", a), err)
		}
		if !strings.EqualFold(addr.Address, c.From.Address) {
			rcpts = append(rcpts, addr.Address)
		}
	}
	if len(rcpts) == 0 {
		return outbound.Sent{}, outbound.Permanent("no recipient other than the support address", nil)
	}
	if err := c.submit(ctx, rcpts, msg, reached); err != nil {
		return outbound.Sent{}, err
	}
	return outbound.Sent{ProviderID: "<" + id + ">"}, nil
}

// CannotCheck says Find never can.
func (c *Channel) CannotCheck() {}

// Find cannot ask an SMTP relay anything.
func (c *Channel) Find(context.Context, *supportv1.OutboundMessage, time.Time) (outbound.Sent, bool, error) {
	return outbound.Sent{}, false, outbound.ErrCannotCheck
}

// Compose renders m as a MIME message with Message-ID id.
func (c *Channel) Compose(m *supportv1.OutboundMessage, id string) ([]byte, error) {
	t := m.GetEmail()
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	var h mail.Header
	h.SetDate(now())
	from := c.From
	if name := m.GetAuthor().GetDisplayName(); name != "" {
		from.Name = name
		if c.From.Name != "" {
			from.Name = name + " (" + c.From.Name + ")"
		}
	}
	h.SetAddressList("From", []*mail.Address{&from})
	to, err := addresses(t.GetTo())
	if err != nil {
		return nil, err
	}
	h.SetAddressList("To", to)
	if len(t.GetCc()) > 0 {
		cc, err := addresses(t.GetCc())
		if err != nil {
			return nil, err
		}
		h.SetAddressList("Cc", cc)
	}
	h.SetSubject(ReplySubject(t.GetSubject()))
	h.SetMessageID(id)
	refs := bare(t.GetReferences())
	if p := strings.Trim(strings.TrimSpace(t.GetInReplyTo()), "<>"); p != "" {
		h.SetMsgIDList("In-Reply-To", []string{p})
		if len(refs) == 0 || refs[len(refs)-1] != p {
			refs = append(refs, p)
		}
	}
	if len(refs) > 0 {
		h.SetMsgIDList("References", refs)
	}
	h.Set(HeaderOutbound, m.GetId())
	if m.GetConversationId() != "" {
		h.Set("X-Sidekick-Conversation", m.GetConversationId())
	}

	var buf bytes.Buffer
	w, err := mail.CreateInlineWriter(&buf, h)
	if err != nil {
		return nil, fmt.Errorf("write header: %w", err)
	}
	for _, p := range [...][2]string{{"text/plain", m.GetText() + "\n"}, {"text/html", HTML(m.GetText())}} {
		if err := writePart(w, p[0], p[1]); err != nil {
			return nil, fmt.Errorf("write %s part: %w", p[0], err)
		}
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("finish message: %w", err)
	}
	return buf.Bytes(), nil
}

// writePart adds one UTF-8 alternative to w.
func writePart(w *mail.InlineWriter, contentType, body string) error {
	var h mail.InlineHeader
	h.SetContentType(contentType, map[string]string{"charset": "utf-8"})
	pw, err := w.CreatePart(h)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(pw, body); err != nil {
		_ = pw.Close()
		return err
	}
	return pw.Close()
}

// ReplySubject is subject with "Re: " in front, unless it has one.
func ReplySubject(subject string) string {
	s := strings.TrimSpace(subject)
	if len(s) >= 3 && strings.EqualFold(s[:3], "re:") {
		return s
	}
	return "Re: " + s
}

func addresses(list []string) ([]*mail.Address, error) {
	out := make([]*mail.Address, 0, len(list))
	for _, a := range list {
		addr, err := mail.ParseAddress(a)
		if err != nil {
			return nil, fmt.Errorf("address %q: %w", a, err)
		}
		out = append(out, addr)
	}
	return out, nil
}

func bare(ids []string) []string {
	var out []string
	for _, id := range ids {
		if id = strings.Trim(strings.TrimSpace(id), "<>"); id != "" {
			out = append(out, id)
		}
	}
	return out
}

var (
	mdLink  = regexp.MustCompile(`\[([^\[\]\n]+)\]\((https?://[^\s()]+|mailto:[^\s()]+)\)`)
	bareURL = regexp.MustCompile(`https?://[^\s<>"]+[^\s<>".,;:!?)]`)
	strong  = regexp.MustCompile(`\*\*([^*\n]+)\*\*`)
	code    = regexp.MustCompile("`([^`\n]+)`")
)

// HTML renders the light formatting of a reply: paragraphs and line
// breaks, [label](url) and bare links, **bold** and `code`; everything
// else is escaped.
func HTML(text string) string {
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html><body>\n")
	for _, para := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n\n") {
		if strings.TrimSpace(para) == "" {
			continue
		}
		b.WriteString("<p>" + inline(para) + "</p>\n")
	}
	b.WriteString("</body></html>\n")
	return b.String()
}

// inline renders one paragraph: links first (their URLs must not be
// escaped twice), then emphasis in what is left.
func inline(s string) string {
	var b strings.Builder
	last := 0
	for _, m := range mdLink.FindAllStringSubmatchIndex(s, -1) {
		b.WriteString(plainHTML(s[last:m[0]]))
		fmt.Fprintf(&b, `<a href="%s">%s</a>`, html.EscapeString(s[m[4]:m[5]]), html.EscapeString(s[m[2]:m[3]]))
		last = m[1]
	}
	b.WriteString(plainHTML(s[last:]))
	return b.String()
}

func plainHTML(s string) string {
	var b strings.Builder
	last := 0
	for _, m := range bareURL.FindAllStringIndex(s, -1) {
		b.WriteString(emphasis(s[last:m[0]]))
		u := html.EscapeString(s[m[0]:m[1]])
		fmt.Fprintf(&b, `<a href="%s">%s</a>`, u, u)
		last = m[1]
	}
	b.WriteString(emphasis(s[last:]))
	return b.String()
}

func emphasis(s string) string {
	s = html.EscapeString(s)
	s = strong.ReplaceAllString(s, "<strong>$1</strong>")
	s = code.ReplaceAllString(s, "<code>$1</code>")
	return strings.ReplaceAll(s, "\n", "<br>\n")
}

// submit runs one SMTP session. A recipient the relay refuses is left
// out; if it refuses them all, that refusal is the failure.
func (c *Channel) submit(ctx context.Context, rcpts []string, msg []byte, reached func(context.Context) error) error {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	host, _, err := net.SplitHostPort(c.Relay)
	if err != nil {
		return outbound.Permanent("relay address", err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.TLS != nil {
		tc = c.TLS.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	var conn net.Conn
	if c.TLSMode == TLSImplicit {
		conn, err = (&tls.Dialer{Config: tc}).DialContext(ctx, "tcp", c.Relay)
	} else {
		conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", c.Relay)
	}
	if err != nil {
		return classify(ctx, "connect", err)
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	step := "greeting"
	var cl *smtp.Client
	switch c.TLSMode {
	case TLSOff, TLSImplicit:
		cl = smtp.NewClient(conn)
		step = "EHLO"
		err = cl.Hello("localhost")
	default:
		step = "STARTTLS"
		cl, err = smtp.NewClientStartTLS(conn, tc)
	}
	if err != nil {
		return classify(ctx, step, err)
	}
	defer cl.Close()
	if c.Username != "" {
		step = "AUTH"
		if err := cl.Auth(sasl.NewPlainClient("", c.Username, c.Password)); err != nil {
			return classify(ctx, step, err)
		}
	}
	step = "MAIL FROM"
	if err := cl.Mail(c.From.Address, nil); err != nil {
		return classify(ctx, step, err)
	}
	var refused []error
	for _, to := range rcpts {
		if err := cl.Rcpt(to, nil); err != nil {
			refused = append(refused, fmt.Errorf("%s: %w", to, err))
		}
	}
	if len(refused) == len(rcpts) {
		return classify(ctx, "RCPT TO", errors.Join(refused...))
	}
	step = "DATA"
	w, err := cl.Data()
	if err != nil {
		return classify(ctx, step, err)
	}
	if _, err := w.Write(msg); err != nil {
		return classify(ctx, step, err)
	}
	if err := reached(ctx); err != nil {
		return err
	}
	step = "end of DATA"
	if err := w.Close(); err != nil { // the relay's verdict on the message
		return classify(ctx, step, err)
	}
	_ = cl.Quit() // accepted: a failed QUIT changes nothing
	return nil
}

// classify marks err: 5xx replies and certificates that do not verify are
// permanent; 4xx replies, network errors and timeouts are retried.
func classify(ctx context.Context, step string, err error) error {
	if ctx.Err() != nil {
		return outbound.Retryable(step+": "+ctx.Err().Error(), err)
	}
	var reply *smtp.SMTPError
	if errors.As(err, &reply) {
		reason := fmt.Sprintf("%s: %d %s", step, reply.Code, reply.Message)
		if reply.Code >= 500 {
			return outbound.Permanent(reason, err)
		}
		return outbound.Retryable(reason, err)
	}
	var verify *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	var hostname x509.HostnameError
	if errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &hostname) {
		return outbound.Permanent(step+": "+err.Error(), err)
	}
	return outbound.Retryable(step+": "+err.Error(), err)
}
