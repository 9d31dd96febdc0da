package ingestemail

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/smtp"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/sidekickhq/sidekick/platform/app"
	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/bus/bustest"
	"github.com/sidekickhq/sidekick/platform/content"
	"github.com/sidekickhq/sidekick/platform/httpx/httpxtest"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

const token = "test-inbound-token"

type fixture struct {
	js      jetstream.JetStream
	content jetstream.ObjectStore
	svc     *Service
	mux     *http.ServeMux
	fail    bool // make the publisher fail
}

type failingPublisher struct {
	f    *fixture
	next Publisher
}

func (p failingPublisher) Publish(ctx context.Context, e bus.Event) (*jetstream.PubAck, error) {
	if p.f.fail {
		return nil, errors.New("jetstream unavailable")
	}
	return p.next.Publish(ctx, e)
}

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	if testing.Short() {
		t.Skip("needs an embedded NATS server")
	}
	_, js := bustest.StartJetStream(t)
	f := &fixture{js: js}
	if cfg.InboundToken == "" {
		cfg.InboundToken = token
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = 1 << 20
	}
	store, err := content.Ensure(context.Background(), js, content.Config{MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	f.content = store
	svc, err := New(cfg, Deps{
		Content:   store,
		Publisher: failingPublisher{f: f, next: bus.NewPublisher(js, "sidekick/ingest-email")},
		DeadLetter: func(ctx context.Context, location string, data []byte, hdr nats.Header, cause error) error {
			return bus.DeadLetter(ctx, js, "ingest-email", location, bus.InboundSubject("email"), data, hdr, cause)
		},
		Registry: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	f.mux = http.NewServeMux()
	svc.Register(f.mux)
	return f
}

func (f *fixture) post(t *testing.T, body []byte, hdr map[string]string) int {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/email/inbound", bytes.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	f.mux.ServeHTTP(rec, req)
	return rec.Code
}

// messages returns what the inbound stream holds for email.
func (f *fixture) messages(t *testing.T) []*supportv1.InboundMessage {
	t.Helper()
	ctx := context.Background()
	s, err := f.js.Stream(ctx, bus.StreamInbound)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*supportv1.InboundMessage
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		raw, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		if raw.Subject != "support.inbound.email" {
			continue
		}
		m := &supportv1.InboundMessage{}
		if err := proto.Unmarshal(raw.Data, m); err != nil {
			t.Fatal(err)
		}
		if raw.Header.Get("Nats-Msg-Id") != m.GetId() {
			t.Fatalf("Nats-Msg-Id %q != id %q", raw.Header.Get("Nats-Msg-Id"), m.GetId())
		}
		out = append(out, m)
	}
	return out
}

func eml(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("internal/mailparse/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestInboundHTTP(t *testing.T) {
	f := newFixture(t, Config{HMACSecret: "hmac-secret", StaffDomains: []string{"example.com"}})
	auth := map[string]string{"Authorization": "Bearer " + token}

	if code := f.post(t, eml(t, "plain.eml"), map[string]string{"Authorization": "Bearer wrong"}); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", code)
	}
	if code := f.post(t, eml(t, "plain.eml"), nil); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", code)
	}
	if code := f.post(t, []byte("Subject: no sender\r\n\r\nhi"), auth); code != http.StatusBadRequest {
		t.Fatalf("malformed: %d", code)
	}
	if code := f.post(t, bytes.Repeat([]byte("x"), 2<<20), auth); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("too large: %d", code)
	}
	if n := len(f.messages(t)); n != 0 {
		t.Fatalf("rejected input published %d messages", n)
	}

	if code := f.post(t, eml(t, "plain.eml"), auth); code != http.StatusOK {
		t.Fatalf("valid: %d", code)
	}
	// A relay retrying the same message: stored once.
	if code := f.post(t, eml(t, "plain.eml"), auth); code != http.StatusOK {
		t.Fatalf("retry: %d", code)
	}
	// HMAC-signed reply with an attachment.
	body := eml(t, "reply-attachment.eml")
	mac := hmac.New(sha256.New, []byte("hmac-secret"))
	mac.Write(body)
	if code := f.post(t, body, map[string]string{"X-Sidekick-Signature": "sha256=" + hex.EncodeToString(mac.Sum(nil))}); code != http.StatusOK {
		t.Fatalf("hmac: %d", code)
	}
	if code := f.post(t, body, map[string]string{"X-Sidekick-Signature": "sha256=00"}); code != http.StatusUnauthorized {
		t.Fatalf("bad hmac: %d", code)
	}

	msgs := f.messages(t)
	if len(msgs) != 2 {
		t.Fatalf("want 2 messages (retry stored once), got %d", len(msgs))
	}
	first, reply := msgs[0], msgs[1]
	if first.GetId() != "email:CAF1234@mail.customer.io" || first.GetChannel() != supportv1.Channel_CHANNEL_EMAIL {
		t.Fatalf("first %v", first)
	}
	if first.GetAuthor().GetRole() != supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER || first.GetAuthor().GetEmail() != "jane@customer.io" {
		t.Fatalf("author %v", first.GetAuthor())
	}
	if reply.GetThreadKey() != first.GetThreadKey() {
		t.Fatalf("reply thread %q != original %q", reply.GetThreadKey(), first.GetThreadKey())
	}
	if reply.GetText() != "Still broken, screenshot attached." || reply.GetAttributes()["quoted_text"] == "" {
		t.Fatalf("reply text %q attrs %v", reply.GetText(), reply.GetAttributes())
	}
	if len(reply.GetAttachments()) != 1 || reply.GetAttachments()[0].GetName() != "screen.png" {
		t.Fatalf("attachments %v", reply.GetAttachments())
	}
}

func TestStrangersWithTheSameSubjectStayApart(t *testing.T) {
	f := newFixture(t, Config{})
	auth := map[string]string{"Authorization": "Bearer " + token}
	for _, from := range []string{"a@one.example", "b@two.example"} {
		raw := "From: " + from + "\r\nTo: hey@example.com\r\nSubject: Help\r\nMessage-ID: <" + from + ">\r\n\r\nhelp me"
		if code := f.post(t, []byte(raw), auth); code != http.StatusOK {
			t.Fatalf("post: %d", code)
		}
	}
	msgs := f.messages(t)
	if len(msgs) != 2 || msgs[0].GetThreadKey() == msgs[1].GetThreadKey() {
		t.Fatalf("two strangers' \"Help\" share a thread: %v", msgs)
	}
}

func TestAutomatedAndStaff(t *testing.T) {
	f := newFixture(t, Config{StaffDomains: []string{"customer.io"}})
	auth := map[string]string{"Authorization": "Bearer " + token}
	for _, name := range []string{"autoreply.eml", "plain.eml", "spoofed-html.eml"} {
		if code := f.post(t, eml(t, name), auth); code != http.StatusOK {
			t.Fatalf("%s: %d", name, code)
		}
	}
	msgs := f.messages(t)
	if msgs[0].GetKind() != supportv1.MessageKind_MESSAGE_KIND_AUTOMATED || msgs[0].GetAuthor().GetRole() != supportv1.AuthorRole_AUTHOR_ROLE_BOT {
		t.Fatalf("auto-reply: kind %v role %v", msgs[0].GetKind(), msgs[0].GetAuthor().GetRole())
	}
	if msgs[1].GetAuthor().GetRole() != supportv1.AuthorRole_AUTHOR_ROLE_STAFF {
		t.Fatalf("sender in a staff domain is %v", msgs[1].GetAuthor().GetRole())
	}
	if msgs[2].GetAttributes()["auth_failed"] != "true" {
		t.Fatalf("failed SPF/DMARC not kept as a signal: %v", msgs[2].GetAttributes())
	}
}

// startSMTP serves the fixture's SMTP listener on a loopback port.
func startSMTP(t testing.TB, f *fixture) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.svc.ServeSMTP(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("SMTP server did not stop")
		}
	})
	return lis.Addr().String()
}

func TestSMTP(t *testing.T) {
	f := newFixture(t, Config{Recipients: []string{"hey@example.com"}})
	addr := startSMTP(t, f)

	// A real SMTP client, as a sending mail server would talk.
	if err := smtp.SendMail(addr, nil, "jane@customer.io", []string{"hey@example.com"}, eml(t, "plain.eml")); err != nil {
		t.Fatalf("send to the support address: %v", err)
	}
	err := smtp.SendMail(addr, nil, "jane@customer.io", []string{"someone-else@example.com"}, eml(t, "plain.eml"))
	if err == nil || !strings.Contains(err.Error(), "550") {
		t.Fatalf("recipient outside the allow-list: want 550, got %v", err)
	}

	// While JetStream is unavailable the answer is 451, so the sender retries,
	// and nothing is published.
	f.fail = true
	err = smtp.SendMail(addr, nil, "jane@customer.io", []string{"hey@example.com"}, eml(t, "reply-attachment.eml"))
	if err == nil || !strings.Contains(err.Error(), "451") {
		t.Fatalf("publish failure: want 451, got %v", err)
	}
	f.fail = false
	if err := smtp.SendMail(addr, nil, "jane@customer.io", []string{"hey@example.com"}, eml(t, "reply-attachment.eml")); err != nil {
		t.Fatalf("retry after the failure: %v", err)
	}

	msgs := f.messages(t)
	if len(msgs) != 2 {
		t.Fatalf("want 2 messages, got %d", len(msgs))
	}
	if msgs[1].GetAttributes()["envelope_from"] != "jane@customer.io" || msgs[1].GetAttributes()["recipients"] != "hey@example.com" {
		t.Fatalf("envelope not recorded: %v", msgs[1].GetAttributes())
	}
}

// TestSMTPRaw8Bit: mail from an old mailer with raw Latin-1 bytes and no
// charset is accepted and published as readable UTF-8. Before, the
// InboundMessage could not be encoded, so the listener answered 451 and
// the sending server retried until it bounced the mail.
func TestSMTPRaw8Bit(t *testing.T) {
	f := newFixture(t, Config{Recipients: []string{"hey@example.com"}})
	addr := startSMTP(t, f)
	if err := smtp.SendMail(addr, nil, "jose@cafe.example", []string{"hey@example.com"}, eml(t, "raw-8bit.eml")); err != nil {
		t.Fatalf("send: %v", err)
	}
	msgs := f.messages(t)
	if len(msgs) != 1 {
		t.Fatalf("want 1 message, got %d", len(msgs))
	}
	if m := msgs[0]; m.GetSubject() != "Café crème: export échoue" || m.GetAuthor().GetName() != "José Martínez" {
		t.Fatalf("published subject %q, author %q", m.GetSubject(), m.GetAuthor().GetName())
	}
}

func TestSMTPSizeLimit(t *testing.T) {
	f := newFixture(t, Config{MaxBytes: 1024})
	addr := startSMTP(t, f)
	big := append(eml(t, "plain.eml"), bytes.Repeat([]byte("more text\r\n"), 400)...)
	err := smtp.SendMail(addr, nil, "jane@customer.io", []string{"hey@example.com"}, big)
	if err == nil || !strings.Contains(err.Error(), "552") {
		t.Fatalf("oversized message: want 552, got %v", err)
	}
	if n := len(f.messages(t)); n != 0 {
		t.Fatalf("oversized message published %d", n)
	}
}

// TestUnauthenticatedBodyIsNotRead: a post without valid credentials is
// refused before its body is read, so strangers' 25 MB posts cost no
// memory. Before, the body was read whole and then refused.
func TestUnauthenticatedBodyIsNotRead(t *testing.T) {
	f := newFixture(t, Config{HMACSecret: "hmac-secret", MaxBytes: 25 << 20})
	for name, hdr := range map[string]map[string]string{
		"no credentials":      nil,
		"wrong token":         {"Authorization": "Bearer wrong"},
		"not a bearer token":  {"Authorization": "Basic dXNlcjpwYXNz"},
		"malformed signature": {"X-Sidekick-Signature": "sha256=zz"},
		"short signature":     {"X-Sidekick-Signature": "sha256=00"},
	} {
		body := httpxtest.NewBody(25 << 20)
		if code := httpxtest.Post(f.mux, "/email/inbound", body, hdr); code != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", name, code)
		}
		if n := body.BytesRead(); n != 0 {
			t.Errorf("%s: read %d bytes of the body before answering 401", name, n)
		}
	}
	// A well-formed signature is checked against the body, so that body
	// is read (within the limit); a wrong one is still refused.
	body := httpxtest.NewBody(1 << 20)
	code := httpxtest.Post(f.mux, "/email/inbound", body, map[string]string{"X-Sidekick-Signature": "sha256=" + strings.Repeat("00", 32)})
	if code != http.StatusUnauthorized || body.BytesRead() != 1<<20 {
		t.Fatalf("wrong signature: status %d after reading %d bytes", code, body.BytesRead())
	}
}

// TestFromKitNeedsRecipients: outside dev mode the SMTP listener needs its
// allow-list of support addresses; before, it started without one and
// accepted mail for any recipient.
func TestFromKitNeedsRecipients(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an embedded NATS server")
	}
	_, js := bustest.StartJetStream(t)
	kit := func(dev bool, env ...string) *app.Kit {
		return &app.Kit{
			Name: "ingest-email", JS: js, Registry: prometheus.NewRegistry(), Common: app.Common{Dev: dev},
			Environ: append([]string{"SIDEKICK_EMAIL_INBOUND_TOKEN=" + token, "SIDEKICK_SMTP_ADDR=127.0.0.1:0"}, env...),
		}
	}
	if _, err := FromKit(context.Background(), kit(false)); err == nil || !strings.Contains(err.Error(), "SIDEKICK_EMAIL_RECIPIENTS") {
		t.Fatalf("production without recipients: %v", err)
	}
	for name, k := range map[string]*app.Kit{
		"production with recipients": kit(false, "SIDEKICK_EMAIL_RECIPIENTS=support@acme.example"),
		"production without SMTP":    kit(false, "SIDEKICK_SMTP_ADDR=off"),
		"dev without recipients":     kit(true),
	} {
		if _, err := FromKit(context.Background(), k); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestSMTPPortOpenOnceBuilt: the SMTP port accepts connections as soon as
// FromKit returns, before Run, because a host reports ready between the
// two. Before, Run bound it, and a relay (or the end-to-end test) that
// connected when the dev stack said ready was sometimes refused. The
// connection made before Run gets its greeting once Run serves.
func TestSMTPPortOpenOnceBuilt(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an embedded NATS server")
	}
	_, js := bustest.StartJetStream(t)
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := free.Addr().String()
	_ = free.Close()
	svc, err := FromKit(context.Background(), &app.Kit{
		Name: "ingest-email", JS: js, Registry: prometheus.NewRegistry(), Common: app.Common{Dev: true},
		Environ: []string{"SIDEKICK_EMAIL_INBOUND_TOKEN=" + token, "SIDEKICK_SMTP_ADDR=" + addr},
	})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("SMTP port after FromKit, before Run: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() {
		_ = conn.Close() // an open session would hold Shutdown
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	greeting, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(greeting, "220 ") {
		t.Fatalf("greeting on the connection made before Run: %q, %v", greeting, err)
	}
}

// bigEmail is an email of about size bytes: a plain-text body of text
// bytes, and an attachment making up the rest.
func bigEmail(id string, text, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Jane <jane@customer.io>\r\nTo: hey@example.com\r\nSubject: logs\r\nMessage-ID: <%s>\r\n", id)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n")
	b.WriteString("--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	line := "the export still fails, here is the whole log ...........\r\n"
	for n := 0; n < text; n += len(line) {
		b.WriteString(line)
	}
	b.WriteString("--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"dump.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	chunk := strings.Repeat("QUJD", 19) + "\r\n"
	for b.Len() < size-16 {
		b.WriteString(chunk)
	}
	b.WriteString("--b--\r\n")
	return b.Bytes()
}

// TestLargeEmailsAreStored: with NATS at its default max_payload (1 MB),
// emails the size limit admits are stored with their content (the text in
// the message, whole once resolved; the raw email, attachments and all,
// in the object store), and one over the limit is refused for good.
// Before, a 2.4 MB email got 451 on every attempt: its InboundMessage was
// over max_payload, and the sender was told to retry forever.
func TestLargeEmailsAreStored(t *testing.T) {
	f := newFixture(t, Config{MaxBytes: 25 << 20, Recipients: []string{"hey@example.com"}})
	addr := startSMTP(t, f)
	small := bigEmail("small@customer.io", 2_400_000, 2_400_000)
	large := bigEmail("large@customer.io", 1_000_000, 20_000_000)
	over := bigEmail("over@customer.io", 1_000, 30_000_000)
	for name, raw := range map[string][]byte{"2.4 MB": small, "20 MB": large} {
		if err := smtp.SendMail(addr, nil, "jane@customer.io", []string{"hey@example.com"}, raw); err != nil {
			t.Fatalf("%s email over SMTP: %v", name, err)
		}
	}
	err := smtp.SendMail(addr, nil, "jane@customer.io", []string{"hey@example.com"}, over)
	if err == nil || !strings.Contains(err.Error(), "552") {
		t.Fatalf("30 MB email over SMTP: want a permanent 552, got %v", err)
	}
	auth := map[string]string{"Authorization": "Bearer " + token}
	if code := f.post(t, bigEmail("http@customer.io", 2_400_000, 2_400_000), auth); code != http.StatusOK {
		t.Fatalf("2.4 MB email over HTTP: %d", code)
	}
	if code := f.post(t, over, auth); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("30 MB email over HTTP: %d, want 413", code)
	}

	msgs := f.messages(t)
	if len(msgs) != 3 {
		t.Fatalf("want 3 messages stored, got %d", len(msgs))
	}
	for _, m := range msgs {
		raw := map[string][]byte{"email:small@customer.io": small, "email:large@customer.io": large}[m.GetId()]
		stubText := len(m.GetText())
		if err := content.Resolve(context.Background(), f.js, m); err != nil {
			t.Fatalf("resolve %s: %v", m.GetId(), err)
		}
		if len(m.GetText()) < 900_000 || len(m.GetText()) <= stubText {
			t.Errorf("%s: text of %d bytes after resolving (the stub had %d)", m.GetId(), len(m.GetText()), stubText)
		}
		if len(m.GetAttachments()) != 1 || m.GetAttachments()[0].GetName() != "dump.bin" {
			t.Errorf("%s: attachments %v", m.GetId(), m.GetAttachments())
		}
		if raw != nil {
			got, err := f.content.GetBytes(context.Background(), m.GetAttributes()[content.AttrRawRef])
			if err != nil || !bytes.Equal(got, raw) {
				t.Errorf("%s: raw email in the object store: %d bytes (%v), want the %d sent", m.GetId(), len(got), err, len(raw))
			}
		}
	}
}
