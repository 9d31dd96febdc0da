package mailparse

import (
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	gomail "github.com/emersion/go-message/mail"
)

func load(t *testing.T, name string) *Email {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	e, err := Parse(raw)
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return e
}

func TestPlain(t *testing.T) {
	e := load(t, "plain.eml")
	if e.MessageID != "CAF1234@mail.customer.io" || e.ThreadRoot() != e.MessageID {
		t.Fatalf("ids: %q root %q", e.MessageID, e.ThreadRoot())
	}
	if e.From.Address != "jane@customer.io" || e.From.Name != "Jane Doe" {
		t.Fatalf("from %+v", e.From)
	}
	if e.Subject != "Dashboards stopped loading" || !strings.Contains(e.Text, "dashboards do not load") {
		t.Fatalf("subject %q text %q", e.Subject, e.Text)
	}
	if e.Automated != "" || e.AuthFailed {
		t.Fatalf("a person's authenticated mail flagged: %q %v", e.Automated, e.AuthFailed)
	}
	if e.Date.IsZero() {
		t.Fatal("date not parsed")
	}
}

func TestMultipartAlternativeLatin1PrefersPlain(t *testing.T) {
	e := load(t, "multipart-latin1.eml")
	if e.From.Name != "Jürgen Müller" {
		t.Fatalf("RFC 2047 name: %q", e.From.Name)
	}
	if e.Subject != "Fehler beim Export – dringend" {
		t.Fatalf("RFC 2047 base64 subject: %q", e.Subject)
	}
	if e.Text != `Der Export schlägt fehl: "Größe überschritten".` {
		t.Fatalf("quoted-printable ISO-8859-1 text: %q", e.Text)
	}
}

// TestRaw8BitIsReadAsWindows1252: an old mailer's raw Latin-1 bytes in
// headers (no encoded words), a text part without a charset and an
// attachment name all come out as the text the sender meant, in UTF-8.
// Before, the From address did not parse (the message was refused) and
// the other strings were invalid UTF-8, which no protobuf message can
// carry, so the message could not be published.
func TestRaw8BitIsReadAsWindows1252(t *testing.T) {
	e := load(t, "raw-8bit.eml")
	if e.From.Name != "José Martínez" || e.From.Address != "jose@cafe.example" {
		t.Errorf("from %+v", e.From)
	}
	if e.Subject != "Café crème: export échoue" {
		t.Errorf("subject %q", e.Subject)
	}
	if e.Text != "Bonjour, l'export échoue depuis hier. Merci d'avance – José" {
		t.Errorf("text %q", e.Text)
	}
	if len(e.Attachments) != 1 || e.Attachments[0].Name != "résumé.csv" {
		t.Errorf("attachments %+v", e.Attachments)
	}
}

func TestReplyThreadsAndTrimsQuote(t *testing.T) {
	e := load(t, "reply-attachment.eml")
	if e.ThreadRoot() != "CAF1234@mail.customer.io" {
		t.Fatalf("thread root %q, want the first References entry", e.ThreadRoot())
	}
	if e.InReplyTo != "reply-1@example.com" || len(e.References) != 2 {
		t.Fatalf("in-reply-to %q references %v", e.InReplyTo, e.References)
	}
	if e.Text != "Still broken, screenshot attached." {
		t.Fatalf("quoted history not trimmed: %q", e.Text)
	}
	if !strings.Contains(e.Full, "Could you try clearing the cache?") {
		t.Fatalf("full text lost the quoted history: %q", e.Full)
	}
	if len(e.Attachments) != 1 {
		t.Fatalf("attachments %+v", e.Attachments)
	}
	a := e.Attachments[0]
	if a.Name != "screen.png" || a.ContentType != "image/png" || a.Size != 70 {
		t.Fatalf("attachment %+v (want screen.png image/png 70 decoded bytes)", a)
	}
}

func TestMachineMail(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"autoreply.eml", "Auto-Submitted: auto-replied"},
		{"bounce.eml", "delivery status notification"},
	} {
		e := load(t, tc.file)
		if e.Automated != tc.want {
			t.Errorf("%s: automated %q, want %q", tc.file, e.Automated, tc.want)
		}
	}
}

func TestHTMLOnlyAndAuthFailure(t *testing.T) {
	e := load(t, "spoofed-html.eml")
	if !e.AuthFailed || !strings.Contains(e.AuthResults, "spf=fail") {
		t.Fatalf("auth failure not detected: %v %q", e.AuthFailed, e.AuthResults)
	}
	if e.Text != "Click here (http://phish.example/x) & verify." {
		t.Fatalf("html text: %q", e.Text)
	}
	if strings.Contains(e.Full, "p{}") {
		t.Fatalf("style leaked into text: %q", e.Full)
	}
}

func TestShiftJISWithoutMessageID(t *testing.T) {
	raw, err := os.ReadFile("testdata/shiftjis-no-msgid.eml")
	if err != nil {
		t.Fatal(err)
	}
	a, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if a.Subject != "テスト" || a.Text != "データが消えました" {
		t.Fatalf("subject %q text %q", a.Subject, a.Text)
	}
	b, _ := Parse(raw)
	if a.MessageID == "" || a.MessageID != b.MessageID {
		t.Fatalf("a message without Message-ID needs a stable derived id: %q vs %q", a.MessageID, b.MessageID)
	}
}

func TestMalformed(t *testing.T) {
	for name, raw := range map[string]string{
		"empty":   "",
		"no from": "Subject: hi\r\n\r\nbody",
		"garbage": "\x00\x01\x02 not a message",
	} {
		if _, err := Parse([]byte(raw)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func TestTrimQuoted(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Thanks!\n\n-----Original Message-----\nFrom: x\nold", "Thanks!"},
		{"Yes.\n\nFrom: Bob\nSent: Monday\nTo: Jane\nSubject: Re\n\nold", "Yes."},
		{"Fixed.\n-- \nJane, ACME", "Fixed."},
		{"On the roadmap we wrote: nothing\nkeep this", "On the roadmap we wrote: nothing\nkeep this"},
	} {
		if got := TrimQuoted(tc.in); got != tc.want {
			t.Errorf("TrimQuoted(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.eml")
	for _, p := range files {
		raw, err := os.ReadFile(p)
		if err == nil {
			f.Add(raw)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := Parse(raw)
		if err != nil {
			return
		}
		if e.MessageID == "" || e.From.Address == "" {
			t.Fatalf("parsed without id or sender: %+v", e)
		}
		texts := []string{e.MessageID, e.InReplyTo, e.From.Name, e.From.Address, e.Subject, e.Text, e.Full, e.Automated, e.AuthResults}
		texts = append(texts, e.References...)
		for _, a := range e.To {
			texts = append(texts, a.Name, a.Address)
		}
		for _, a := range e.Attachments {
			texts = append(texts, a.Name, a.ContentType)
		}
		for _, s := range texts {
			if !utf8.ValidString(s) {
				t.Fatalf("parsed text %q is not UTF-8", s)
			}
		}
		_ = e.ThreadRoot()
	})
}

func BenchmarkParse(b *testing.B) { benchParse(b, "reply-attachment.eml") }

func BenchmarkParsePlain(b *testing.B) { benchParse(b, "plain.eml") }

func benchParse(b *testing.B, name string) {
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// dateHeader is a header with only Date: v.
func dateHeader(v string) gomail.Header {
	var h gomail.Header
	h.Set("Date", v)
	return h
}

// TestDateAgreesWithNetMail: the fast path for the usual form gives what
// net/mail.ParseDate gives, and the other forms still parse through it.
func TestDateAgreesWithNetMail(t *testing.T) {
	for _, v := range []string{
		"Tue, 03 Mar 2026 10:00:00 +0000",
		"Tue, 3 Mar 2026 10:00:00 -0500",
		"Tue, 03 Mar 2026 10:00:00 +0000 (UTC)",
		"3 Mar 2026 10:00:00 +0100",
		"Tue, 03 Mar 26 10:00 GMT",
		"  Tue, 03 Mar 2026 10:00:00 +0000  ",
	} {
		want, err := mail.ParseDate(v)
		if err != nil {
			t.Fatalf("net/mail cannot parse %q: %v", v, err)
		}
		if got := date(dateHeader(v)); !got.Equal(want) || got.Location().String() != want.Location().String() {
			t.Errorf("%q: %v, net/mail says %v", v, got, want)
		}
	}
	if got := date(dateHeader("yesterday")); !got.IsZero() {
		t.Errorf("unparseable date gave %v", got)
	}
}

// FuzzDate: whenever net/mail parses a Date, date gives the same instant;
// whenever it does not, date gives none.
func FuzzDate(f *testing.F) {
	f.Add("Tue, 03 Mar 2026 10:00:00 +0000")
	f.Add("Tue, 3 Mar 2026 10:00:00 -0500")
	f.Add("Mon, 31 Feb 2026 25:00:00 +0000")
	f.Fuzz(func(t *testing.T, v string) {
		if strings.ContainsAny(v, "\r\n") {
			return
		}
		want, err := mail.ParseDate(v)
		got := date(dateHeader(v))
		if err != nil && !got.IsZero() {
			t.Fatalf("%q: date %v, net/mail refuses it: %v", v, got, err)
		}
		if err == nil && !got.Equal(want) {
			t.Fatalf("%q: date %v, net/mail %v", v, got, want)
		}
	})
}
