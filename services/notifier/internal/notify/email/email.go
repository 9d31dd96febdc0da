// Package email delivers notifications by SMTP: a MIME message with a
// text/plain and a text/html alternative, sent through a submission server
// with STARTTLS (opportunistic or required) or implicit TLS, and PLAIN
// authentication when configured.
//
// The Message-ID derives from the delivery's dedup key, so a retried
// delivery carries the same Message-ID and a receiving server or client
// that has seen it can drop the copy. Every message about one conversation
// refers to the same thread root (In-Reply-To and References
// <conversation.<id>@domain>), and updates (acknowledged, answered,
// closed) reply to the message they update, so mail clients show one
// thread per conversation.
//
// 4xx replies and network errors are retryable; 5xx replies, a server
// without STARTTLS when it is required, and certificates that do not
// verify are permanent.
package email

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/netip"
	"net/smtp"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"

	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
)

// Name is the channel name recorded in the delivery log.
const Name = "email"

// StartTLS says whether to upgrade a plain connection.
type StartTLS string

// STARTTLS modes.
const (
	// StartTLSOpportunistic upgrades when the server offers STARTTLS.
	StartTLSOpportunistic StartTLS = "opportunistic"
	// StartTLSRequired refuses to send unless the connection is upgraded.
	StartTLSRequired StartTLS = "required"
	// StartTLSOff never upgrades (a local relay on a trusted network).
	StartTLSOff StartTLS = "off"
)

// Config says where and how to submit mail.
type Config struct {
	// Host and Port of the submission server.
	Host string
	Port int
	// Username and Password enable PLAIN authentication.
	Username, Password string
	// From is the sender, with an optional display name.
	From mail.Address
	// StartTLS applies to smtp:// (not to ImplicitTLS).
	StartTLS StartTLS
	// ImplicitTLS speaks TLS from the first byte (smtps://, port 465).
	ImplicitTLS bool
	// Hello is the name sent with EHLO; default "localhost".
	Hello string
}

// Addr is host:port.
func (c Config) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// ParseURL reads a configuration URL:
//
//	smtp://user:pass@host:587?from=sidekick@example.com&starttls=required
//	smtps://user:pass@host:465?from=Sidekick%20%3Csidekick@example.com%3E
//
// smtp:// defaults to port 587 with opportunistic STARTTLS
// (starttls=opportunistic|required|off); smtps:// defaults to port 465 with
// implicit TLS. from is required; hello sets the EHLO name. User and
// password are URL-encoded.
func ParseURL(raw string) (Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Config{}, fmt.Errorf("email: parse URL: %w", err)
	}
	var c Config
	switch u.Scheme {
	case "smtp":
		c.Port, c.StartTLS = 587, StartTLSOpportunistic
	case "smtps":
		c.Port, c.ImplicitTLS = 465, true
	default:
		return Config{}, fmt.Errorf("email: URL scheme %q: want smtp or smtps", u.Scheme)
	}
	c.Host = u.Hostname()
	if c.Host == "" {
		return Config{}, errors.New("email: URL has no host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return Config{}, fmt.Errorf("email: bad port %q", p)
		}
		c.Port = n
	}
	if u.User != nil {
		c.Username = u.User.Username()
		c.Password, _ = u.User.Password()
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "from", "starttls", "hello":
		default:
			return Config{}, fmt.Errorf("email: unknown URL parameter %q (want from, starttls, hello)", k)
		}
	}
	from, err := mail.ParseAddress(q.Get("from"))
	if err != nil {
		return Config{}, fmt.Errorf("email: from %q: %w", q.Get("from"), err)
	}
	c.From = *from
	if s := q.Get("starttls"); s != "" {
		if c.ImplicitTLS {
			return Config{}, errors.New("email: starttls does not apply to smtps://")
		}
		switch m := StartTLS(s); m {
		case StartTLSOpportunistic, StartTLSRequired, StartTLSOff:
			c.StartTLS = m
		default:
			return Config{}, fmt.Errorf("email: starttls=%q: want required, opportunistic or off", s)
		}
	}
	c.Hello = q.Get("hello")
	return c, nil
}

// Options configure the channel.
type Options struct {
	Config Config
	// TLSConfig is the base TLS configuration (RootCAs for a private CA);
	// ServerName defaults to Config.Host.
	TLSConfig *tls.Config
	// Timeout bounds one delivery, connection to QUIT; default 30s.
	Timeout time.Duration
	// Now is the clock for the Date header; default time.Now.
	Now func() time.Time
}

// Channel sends mail through one submission server.
type Channel struct {
	cfg     Config
	tls     *tls.Config
	timeout time.Duration
	now     func() time.Time
	domain  string
}

var (
	_ notify.Channel = (*Channel)(nil)
	_ notify.Updater = (*Channel)(nil)
)

// New returns an email channel. It refuses a configuration that would send
// the password in clear over the network.
func New(o Options) (*Channel, error) {
	c := o.Config
	if c.Host == "" || c.Port == 0 {
		return nil, errors.New("email: no server host and port")
	}
	_, domain, ok := strings.Cut(c.From.Address, "@")
	if !ok || domain == "" {
		return nil, fmt.Errorf("email: from %q is not an address", c.From.Address)
	}
	if c.StartTLS == "" && !c.ImplicitTLS {
		c.StartTLS = StartTLSOpportunistic
	}
	if c.Username != "" && !c.ImplicitTLS && c.StartTLS != StartTLSRequired && !isLoopback(c.Host) {
		return nil, errors.New("email: authentication needs starttls=required or smtps://, or the password would cross the network in clear")
	}
	if c.Hello == "" {
		c.Hello = "localhost"
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.TLSConfig != nil {
		tc = o.TLSConfig.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = c.Host
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Channel{cfg: c, tls: tc, timeout: o.Timeout, now: o.Now, domain: strings.ToLower(domain)}, nil
}

// Name returns "email".
func (c *Channel) Name() string { return Name }

// CanReach reports whether the recipient has an email address.
func (c *Channel) CanReach(r notify.Recipient) bool { return r.Email != "" }

// Send mails the notification. The receipt is its Message-ID.
func (c *Channel) Send(ctx context.Context, m notify.Message) (notify.Receipt, error) {
	if m.Recipient.Email == "" {
		return notify.Receipt{}, notify.Permanent(fmt.Errorf("email: %s has no email address", m.Recipient.Display()))
	}
	id := c.MessageID(m.DedupKey, m.DeliveryID)
	msg, err := c.Compose(m, id, "", "")
	if err != nil {
		return notify.Receipt{}, err
	}
	if err := c.submit(ctx, m.Recipient.Email, msg); err != nil {
		return notify.Receipt{}, err
	}
	return notify.Receipt{Ref: id}, nil
}

// Update mails a short follow-up ("Acknowledged by alice") in reply to the
// message r refers to.
func (c *Channel) Update(ctx context.Context, r notify.Receipt, m notify.Message, status string) error {
	if m.Recipient.Email == "" {
		return notify.Permanent(fmt.Errorf("email: %s has no email address", m.Recipient.Display()))
	}
	parent := r.Ref
	if parent == "" {
		parent = c.MessageID(m.DedupKey, m.DeliveryID)
	}
	id := c.MessageID(m.DedupKey+"|"+status, m.DeliveryID+"|"+status)
	msg, err := c.Compose(m, id, parent, status)
	if err != nil {
		return err
	}
	return c.submit(ctx, m.Recipient.Email, msg)
}

// MessageID returns the Message-ID (without angle brackets) for a
// delivery: a hash of its dedup key (or, lacking one, its id) at the
// sender's domain, the same on every attempt.
func (c *Channel) MessageID(dedupKey, deliveryID string) string {
	key := dedupKey
	if key == "" {
		key = "delivery:" + deliveryID
	}
	sum := sha256.Sum256([]byte(key))
	return "sidekick." + hex.EncodeToString(sum[:16]) + "@" + c.domain
}

// ThreadRoot returns the Message-ID every message about a conversation
// refers to. It is never sent itself; clients thread by it.
func (c *Channel) ThreadRoot(conversationID string) string {
	id := conversationID
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			sum := sha256.Sum256([]byte(conversationID))
			id = hex.EncodeToString(sum[:16])
			break
		}
	}
	return "conversation." + id + "@" + c.domain
}

// Compose renders the MIME message. With parent and status set it is a
// follow-up to parent saying the new status.
func (c *Channel) Compose(m notify.Message, id, parent, status string) ([]byte, error) {
	var h mail.Header
	h.SetDate(c.now())
	from := c.cfg.From
	h.SetAddressList("From", []*mail.Address{&from})
	h.SetAddressList("To", []*mail.Address{{Name: m.Recipient.Name, Address: m.Recipient.Email}})
	subject := Subject(m)
	if status != "" {
		subject = "Re: " + subject
	}
	h.SetSubject(subject)
	h.SetMessageID(id)
	var refs []string
	if m.ConversationID != "" {
		refs = append(refs, c.ThreadRoot(m.ConversationID))
	}
	if parent != "" {
		refs = append(refs, parent)
	}
	if len(refs) > 0 {
		h.SetMsgIDList("In-Reply-To", refs[len(refs)-1:])
		h.SetMsgIDList("References", refs)
	}
	// RFC 3834: an automatic message; Outlook's equivalent.
	h.Set("Auto-Submitted", "auto-generated")
	h.Set("X-Auto-Response-Suppress", "All")
	if m.Urgency == notify.Page && status == "" {
		h.Set("Importance", "high")
		h.Set("X-Priority", "1")
	}
	if m.NotificationID != "" {
		h.Set("X-Sidekick-Notification", m.NotificationID)
	}
	if m.ConversationID != "" {
		h.Set("X-Sidekick-Conversation", m.ConversationID)
	}

	var buf bytes.Buffer
	w, err := mail.CreateInlineWriter(&buf, h)
	if err != nil {
		return nil, fmt.Errorf("email: write header: %w", err)
	}
	for _, part := range []struct{ contentType, body string }{
		{"text/plain", PlainText(m, status)},
		{"text/html", HTML(m, status)},
	} {
		var ph mail.InlineHeader
		ph.SetContentType(part.contentType, map[string]string{"charset": "utf-8"})
		pw, err := w.CreatePart(ph)
		if err != nil {
			return nil, fmt.Errorf("email: write %s part: %w", part.contentType, err)
		}
		if _, err := io.WriteString(pw, part.body); err != nil {
			return nil, fmt.Errorf("email: write %s part: %w", part.contentType, err)
		}
		if err := pw.Close(); err != nil {
			return nil, fmt.Errorf("email: write %s part: %w", part.contentType, err)
		}
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("email: finish message: %w", err)
	}
	return buf.Bytes(), nil
}

// Subject is "[Sidekick] <title>", with "PAGE: " before the title of a page.
func Subject(m notify.Message) string {
	if m.Urgency == notify.Page {
		return "[Sidekick] PAGE: " + m.Title
	}
	return "[Sidekick] " + m.Title
}

// PlainText is the text/plain body.
func PlainText(m notify.Message, status string) string {
	var b strings.Builder
	if status != "" {
		fmt.Fprintf(&b, "%s: %s\n\n", capitalise(status), m.Title)
	} else {
		b.WriteString(m.Title + "\n")
		if m.Recipient.Role != "" {
			fmt.Fprintf(&b, "You are the %s.\n", m.Recipient.Role)
		}
		if t := strings.TrimSpace(m.Text); t != "" {
			b.WriteString("\n" + t + "\n")
		}
		b.WriteString("\n")
	}
	for _, l := range m.Links {
		if l.Title != "" {
			fmt.Fprintf(&b, "%s: %s\n", l.Title, l.URL)
		} else {
			b.WriteString(l.URL + "\n")
		}
	}
	b.WriteString("\n-- \nSent by Sidekick.\n")
	return b.String()
}

// HTML is the text/html body.
func HTML(m notify.Message, status string) string {
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html><body style=\"font-family: sans-serif\">\n")
	if status != "" {
		fmt.Fprintf(&b, "<p><strong>%s</strong>: %s</p>\n", html.EscapeString(capitalise(status)), html.EscapeString(m.Title))
	} else {
		title := html.EscapeString(m.Title)
		if m.Urgency == notify.Page {
			title = "&#x1F6A8; " + title
		}
		fmt.Fprintf(&b, "<p><strong>%s</strong></p>\n", title)
		if m.Recipient.Role != "" {
			fmt.Fprintf(&b, "<p><em>You are the %s.</em></p>\n", html.EscapeString(m.Recipient.Role))
		}
		if t := strings.TrimSpace(m.Text); t != "" {
			fmt.Fprintf(&b, "<p>%s</p>\n", strings.ReplaceAll(html.EscapeString(t), "\n", "<br>\n"))
		}
	}
	if len(m.Links) > 0 {
		b.WriteString("<ul>\n")
		for _, l := range m.Links {
			title := l.Title
			if title == "" {
				title = l.URL
			}
			if u, err := url.Parse(l.URL); err == nil && (u.Scheme == "https" || u.Scheme == "http") {
				fmt.Fprintf(&b, "<li><a href=\"%s\">%s</a></li>\n", html.EscapeString(l.URL), html.EscapeString(title))
			} else {
				fmt.Fprintf(&b, "<li>%s</li>\n", html.EscapeString(title))
			}
		}
		b.WriteString("</ul>\n")
	}
	b.WriteString("<p style=\"color: #777; font-size: small\">Sent by Sidekick.</p>\n</body></html>\n")
	return b.String()
}

// submit runs one SMTP session: connect, EHLO, STARTTLS, AUTH, MAIL, RCPT,
// DATA, QUIT.
func (c *Channel) submit(ctx context.Context, to string, msg []byte) (err error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	dialer := &net.Dialer{}
	var conn net.Conn
	if c.cfg.ImplicitTLS {
		conn, err = (&tls.Dialer{NetDialer: dialer, Config: c.tls}).DialContext(ctx, "tcp", c.cfg.Addr())
	} else {
		conn, err = dialer.DialContext(ctx, "tcp", c.cfg.Addr())
	}
	if err != nil {
		return classify(ctx, "connect", err)
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	// Unblock reads and writes when the caller gives up.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	step := "greeting"
	cl, err := smtp.NewClient(conn, c.cfg.Host)
	if err != nil {
		return classify(ctx, step, err)
	}
	defer cl.Close()
	step = "EHLO"
	if err := cl.Hello(c.cfg.Hello); err != nil {
		return classify(ctx, step, err)
	}
	if !c.cfg.ImplicitTLS && c.cfg.StartTLS != StartTLSOff {
		ok, _ := cl.Extension("STARTTLS")
		switch {
		case ok:
			step = "STARTTLS"
			if err := cl.StartTLS(c.tls); err != nil {
				return classify(ctx, step, err)
			}
		case c.cfg.StartTLS == StartTLSRequired:
			return notify.Permanent(fmt.Errorf("email: %s does not offer STARTTLS, which is required", c.cfg.Addr()))
		}
	}
	if c.cfg.Username != "" {
		step = "AUTH"
		if ok, _ := cl.Extension("AUTH"); !ok {
			return notify.Permanent(fmt.Errorf("email: %s does not offer AUTH", c.cfg.Addr()))
		}
		if err := cl.Auth(smtp.PlainAuth("", c.cfg.Username, c.cfg.Password, c.cfg.Host)); err != nil {
			return classify(ctx, step, err)
		}
	}
	step = "MAIL FROM"
	if err := cl.Mail(c.cfg.From.Address); err != nil {
		return classify(ctx, step, err)
	}
	step = "RCPT TO"
	if err := cl.Rcpt(to); err != nil {
		return classify(ctx, step, err)
	}
	step = "DATA"
	w, err := cl.Data()
	if err != nil {
		return classify(ctx, step, err)
	}
	if _, err := w.Write(msg); err != nil {
		return classify(ctx, step, err)
	}
	step = "end of DATA"
	if err := w.Close(); err != nil { // the server's verdict on the message
		return classify(ctx, step, err)
	}
	_ = cl.Quit() // accepted: a failed QUIT changes nothing
	return nil
}

// classify marks err retryable or permanent: 5xx replies and certificate
// failures are permanent; 4xx replies, network errors and timeouts are
// retried.
func classify(ctx context.Context, step string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("email: %s: %w", step, ctx.Err())
	}
	wrapped := fmt.Errorf("email: %s: %w", step, err)
	var reply *textproto.Error
	if errors.As(err, &reply) {
		if reply.Code >= 500 {
			return notify.Permanent(wrapped)
		}
		return wrapped
	}
	var verify *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	var hostname x509.HostnameError
	if errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &hostname) {
		return notify.Permanent(wrapped)
	}
	if step == "AUTH" && strings.Contains(err.Error(), "unencrypted connection") {
		return notify.Permanent(wrapped)
	}
	return wrapped
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func capitalise(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
