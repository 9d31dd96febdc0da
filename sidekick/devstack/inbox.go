package devstack

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"sync"

	"github.com/sidekickhq/sidekick/sidekick/fakes"
)

// startInbox starts the dev stack's customer inbox: an SMTP server that
// takes every email reply ingest-email submits and prints it on console.
func startInbox(console io.Writer) (*fakes.SMTP, error) {
	inbox, err := fakes.NewSMTP()
	if err != nil {
		return nil, fmt.Errorf("customer inbox: %w", err)
	}
	var mu sync.Mutex
	inbox.OnMessage(func(m fakes.Mail) {
		mu.Lock()
		defer mu.Unlock()
		printMail(console, m)
	})
	return inbox, nil
}

// printMail writes what a customer would see of m: who it is from and to,
// its subject, what it answers, and its plain text.
func printMail(w io.Writer, m fakes.Mail) {
	h := m.Header
	if h == nil {
		fmt.Fprintf(w, "[customer inbox] a message to %s that is not RFC 5322 (%d bytes)\n", strings.Join(m.To, ", "), len(m.Data))
		return
	}
	fmt.Fprintf(w, "[customer inbox] email to %s\n", strings.Join(m.To, ", "))
	for _, k := range []string{"From", "To", "Cc", "Subject", "Message-Id", "In-Reply-To"} {
		if v := h.Get(k); v != "" {
			if d, err := new(mime.WordDecoder).DecodeHeader(v); err == nil {
				v = d
			}
			fmt.Fprintf(w, "  %-12s %s\n", k+":", v)
		}
	}
	text := strings.ReplaceAll(plainText(h, m.Body), "\r\n", "\n")
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		fmt.Fprintf(w, "  | %s\n", line)
	}
}

// plainText is the text/plain part of a message body (the first one of a
// multipart message), decoded.
func plainText(h mail.Header, body []byte) string {
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		mt = "text/plain"
	}
	if strings.HasPrefix(mt, "multipart/") {
		r := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		for {
			p, err := r.NextPart()
			if err != nil {
				return "(no text part)"
			}
			if pt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); pt == "text/plain" || pt == "" {
				// multipart.Reader decodes quoted-printable parts itself.
				b, _ := io.ReadAll(p)
				return string(b)
			}
		}
	}
	if strings.EqualFold(h.Get("Content-Transfer-Encoding"), "quoted-printable") {
		if b, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body))); err == nil {
			return string(b)
		}
	}
	return string(body)
}
