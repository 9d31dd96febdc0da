// Package mailparse turns a raw RFC 5322 message into the facts Sidekick
// needs: who wrote it, the thread it belongs to, readable text without the
// quoted history, attachments as metadata, and whether it was sent by a
// machine (auto-replies, bounces) rather than a person.
package mailparse

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // any charset, not only UTF-8 and ASCII
	gomail "github.com/emersion/go-message/mail"
	"golang.org/x/text/encoding/charmap"
)

// Email is a parsed message.
type Email struct {
	// MessageID without angle brackets; derived from the content when the
	// message has none, so a retry of the same bytes gets the same id.
	MessageID  string
	InReplyTo  string
	References []string
	From       mail.Address
	To         []mail.Address
	Cc         []mail.Address
	// ReplyTo is where the sender wants answers (Reply-To), when it says.
	ReplyTo []mail.Address
	Subject string
	Date    time.Time
	// Text is the readable body with the quoted reply history trimmed.
	Text string
	// Full is the readable body including the quoted history.
	Full        string
	Attachments []Attachment
	// Automated is set for auto-replies, bulk mail and delivery status
	// notifications, with the reason.
	Automated string
	// AuthResults is the Authentication-Results header; AuthFailed is set
	// when SPF, DKIM or DMARC failed.
	AuthResults string
	AuthFailed  bool
	// OutboundID is the X-Sidekick-Outbound header of a reply Sidekick
	// sent, when a copy of it comes back to a support address.
	OutboundID string
}

// Attachment is recorded as metadata only.
type Attachment struct {
	Name        string
	ContentType string
	Size        int64
}

// ErrMalformed marks input that is not a parseable message.
var ErrMalformed = errors.New("malformed message")

// maxPartBytes bounds how much of one text part is read.
const maxPartBytes = 4 << 20

// Parse reads a raw message.
func Parse(raw []byte) (*Email, error) {
	m, err := message.Read(bytes.NewReader(raw))
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if m == nil {
		return nil, fmt.Errorf("%w: no header", ErrMalformed)
	}
	// Old mailers put raw 8-bit text in headers without encoded words;
	// read such values as Windows-1252 before parsing addresses from them.
	for _, k := range []string{"From", "To", "Cc", "Reply-To", "Subject"} {
		if v := m.Header.Get(k); !utf8.ValidString(v) {
			m.Header.Set(k, legacyText(v))
		}
	}
	h := gomail.Header{Header: m.Header}
	e := &Email{}

	if from, err := h.AddressList("From"); err == nil && len(from) > 0 {
		e.From = mail.Address{Name: from[0].Name, Address: strings.ToLower(from[0].Address)}
	} else {
		return nil, fmt.Errorf("%w: no usable From address", ErrMalformed)
	}
	for k, dst := range map[string]*[]mail.Address{"To": &e.To, "Cc": &e.Cc, "Reply-To": &e.ReplyTo} {
		if list, err := h.AddressList(k); err == nil {
			for _, a := range list {
				*dst = append(*dst, mail.Address{Name: a.Name, Address: strings.ToLower(a.Address)})
			}
		}
	}
	if s, err := h.Subject(); err == nil {
		e.Subject = strings.TrimSpace(s)
	} else {
		e.Subject = strings.TrimSpace(m.Header.Get("Subject"))
	}
	e.Date = date(h)
	e.MessageID = trimID(m.Header.Get("Message-Id"))
	if e.MessageID == "" {
		sum := sha256.Sum256(raw)
		e.MessageID = "sidekick-" + hex.EncodeToString(sum[:16]) + "@generated"
	}
	e.InReplyTo = firstID(m.Header.Get("In-Reply-To"))
	e.References = ids(m.Header.Get("References"))
	e.Automated = automated(m.Header)
	e.OutboundID = strings.TrimSpace(m.Header.Get("X-Sidekick-Outbound"))
	e.AuthResults = strings.Join(m.Header.Values("Authentication-Results"), "; ")
	e.AuthFailed = authFailed(e.AuthResults)

	var plain, html string
	walkErr := m.Walk(func(path []int, part *message.Entity, err error) error {
		if err != nil {
			// A part in an unknown charset or encoding is still walked; keep going.
			if !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
				return err
			}
		}
		ct, params, _ := part.Header.ContentType()
		if strings.HasPrefix(ct, "multipart/") {
			return nil
		}
		disp, dparams, _ := part.Header.ContentDisposition()
		name := dparams["filename"]
		if name == "" {
			name = params["name"]
		}
		if name != "" {
			if dec, err := new(mime.WordDecoder).DecodeHeader(name); err == nil {
				name = dec
			}
		}
		if disp == "attachment" || (name != "" && disp != "inline") || (!strings.HasPrefix(ct, "text/") && ct != "message/delivery-status" && ct != "") {
			n, _ := io.Copy(io.Discard, part.Body)
			e.Attachments = append(e.Attachments, Attachment{Name: name, ContentType: ct, Size: n})
			return nil
		}
		body, err := io.ReadAll(io.LimitReader(part.Body, maxPartBytes))
		if err != nil {
			return err
		}
		switch {
		case ct == "text/html":
			if html == "" {
				html = string(body)
			}
		case ct == "message/delivery-status":
			if e.Automated == "" {
				e.Automated = "delivery status notification"
			}
		default: // text/plain and parts without a type
			if plain == "" {
				plain = string(body)
			}
		}
		return nil
	})
	if walkErr != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, walkErr)
	}
	full := plain
	if strings.TrimSpace(full) == "" && html != "" {
		full = HTMLToText(html)
	}
	full = normalizeNewlines(full)
	e.Full = strings.TrimSpace(full)
	e.Text = TrimQuoted(full)
	e.validUTF8()
	return e, nil
}

// legacyText returns s when it is UTF-8 and otherwise reads it as
// Windows-1252, which is what a mailer sending raw 8-bit text without a
// charset (or with one nobody knows) almost always means; it is a
// superset of Latin-1, so nothing is replaced by U+FFFD.
func legacyText(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	if out, err := charmap.Windows1252.NewDecoder().String(s); err == nil {
		return out
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// validUTF8 makes every text of e UTF-8: a message may carry raw 8-bit
// bytes anywhere (a body part without a charset, an unknown charset, an
// id or an attachment name), and the InboundMessage it becomes, like any
// protobuf string, must be UTF-8.
func (e *Email) validUTF8() {
	for _, s := range []*string{&e.MessageID, &e.InReplyTo, &e.From.Name, &e.From.Address, &e.Subject, &e.Text, &e.Full, &e.Automated, &e.AuthResults} {
		*s = legacyText(*s)
	}
	for i := range e.References {
		e.References[i] = legacyText(e.References[i])
	}
	for _, list := range [][]mail.Address{e.To, e.Cc, e.ReplyTo} {
		for i := range list {
			list[i].Name, list[i].Address = legacyText(list[i].Name), legacyText(list[i].Address)
		}
	}
	for i := range e.Attachments {
		e.Attachments[i].Name, e.Attachments[i].ContentType = legacyText(e.Attachments[i].Name), legacyText(e.Attachments[i].ContentType)
	}
}

// ThreadRoot is the id of the first message of the thread this one belongs
// to: the first References entry, else In-Reply-To, else its own id.
func (e *Email) ThreadRoot() string {
	if len(e.References) > 0 {
		return e.References[0]
	}
	if e.InReplyTo != "" {
		return e.InReplyTo
	}
	return e.MessageID
}

func trimID(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "<")
	s = strings.TrimSuffix(s, ">")
	return strings.TrimSpace(s)
}

var idRE = regexp.MustCompile(`<([^<>\s]+)>`)

func ids(s string) []string {
	var out []string
	for _, m := range idRE.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	if len(out) == 0 && strings.TrimSpace(s) != "" {
		for _, f := range strings.Fields(s) {
			out = append(out, trimID(f))
		}
	}
	return out
}

func firstID(s string) string {
	if l := ids(s); len(l) > 0 {
		return l[0]
	}
	return ""
}

// automated reports why a message was sent by a machine, or "".
// date is the Date header's time, zero when it has none that parses. The
// form RFC 5322 prescribes, which nearly every mailer sends, is tried on
// its own first: net/mail.ParseDate tries dozens of layouts in turn, and
// the failed attempts were a fifth of parsing a plain message.
func date(h gomail.Header) time.Time {
	v := strings.TrimSpace(h.Get("Date"))
	for _, layout := range []string{time.RFC1123Z, "Mon, 2 Jan 2006 15:04:05 -0700"} {
		if len(v) == len(layout) {
			if d, err := time.Parse(layout, v); err == nil {
				return d
			}
		}
	}
	d, _ := h.Date()
	return d
}

func automated(h message.Header) string {
	if v := strings.ToLower(strings.TrimSpace(h.Get("Auto-Submitted"))); v != "" && v != "no" {
		return "Auto-Submitted: " + v
	}
	switch strings.ToLower(strings.TrimSpace(h.Get("Precedence"))) {
	case "bulk", "junk", "list", "auto_reply":
		return "Precedence: " + strings.ToLower(h.Get("Precedence"))
	}
	if h.Get("X-Autoreply") != "" || h.Get("X-Autorespond") != "" || strings.EqualFold(h.Get("X-Auto-Response-Suppress"), "All") {
		return "auto-reply header"
	}
	if !strings.Contains(strings.ToLower(h.Get("Content-Type")), "multipart/report") {
		return ""
	}
	if ct, params, _ := h.ContentType(); ct == "multipart/report" && strings.EqualFold(params["report-type"], "delivery-status") {
		return "delivery status notification"
	}
	return ""
}

var authFailRE = regexp.MustCompile(`(?i)\b(spf|dkim|dmarc)=(fail|softfail|permerror)\b`)

func authFailed(results string) bool { return authFailRE.MatchString(results) }

func normalizeNewlines(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

var (
	// "On Tue, 3 Mar 2026 at 10:00, Alice <a@example.com> wrote:" and
	// localized variants ending in "wrote:" / "schrieb:" / "a écrit :".
	attributionRE = regexp.MustCompile(`(?i)^(on\s.+|am\s.+|le\s.+)(wrote|schrieb|a écrit)\s?:\s*$`)
	outlookRE     = regexp.MustCompile(`(?i)^-{2,}\s*(original message|forwarded message)\s*-{2,}`)
	fromHeaderRE  = regexp.MustCompile(`(?i)^from:\s.+`)
)

// TrimQuoted removes the quoted reply history: lines quoted with ">", the
// attribution line before them, an Outlook "Original Message" block, and a
// trailing signature separated by "-- ".
func TrimQuoted(text string) string {
	lines := strings.Split(normalizeNewlines(text), "\n")
	out := make([]string, 0, len(lines))
	// Each pattern is tried only on lines that could match it (its fixed
	// start, or end), so most lines of a message cost no regexp at all.
	for i, l := range lines {
		trimmed := strings.TrimSpace(l)
		if strings.HasPrefix(trimmed, "--") && outlookRE.MatchString(trimmed) {
			break
		}
		if hasPrefixFold(trimmed, "from:") && fromHeaderRE.MatchString(trimmed) && i > 0 && strings.TrimSpace(lines[i-1]) == "" && looksLikeHeaderBlock(lines[i:]) {
			break
		}
		if strings.HasSuffix(trimmed, ":") && (hasPrefixFold(trimmed, "on") || hasPrefixFold(trimmed, "am") || hasPrefixFold(trimmed, "le")) &&
			attributionRE.MatchString(trimmed) && restIsQuoted(lines[i+1:]) {
			break
		}
		if l == "-- " {
			break
		}
		if strings.HasPrefix(trimmed, ">") {
			continue
		}
		out = append(out, l)
	}
	return strings.TrimSpace(strings.Join(out, "\n"))
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// restIsQuoted reports whether the non-blank lines after an attribution are
// mostly quoted.
func restIsQuoted(lines []string) bool {
	quoted, other := 0, 0
	for _, l := range lines {
		t := strings.TrimSpace(l)
		switch {
		case t == "":
		case strings.HasPrefix(t, ">"):
			quoted++
		default:
			other++
		}
	}
	return quoted > 0 && quoted >= other
}

// looksLikeHeaderBlock recognises a forwarded/replied header block
// ("From: …", "Sent: …", "To: …", "Subject: …").
func looksLikeHeaderBlock(lines []string) bool {
	n := 0
	for _, l := range lines[:min(len(lines), 6)] {
		t := strings.ToLower(strings.TrimSpace(l))
		for _, p := range []string{"from:", "sent:", "date:", "to:", "subject:", "cc:"} {
			if strings.HasPrefix(t, p) {
				n++
			}
		}
	}
	return n >= 3
}
