package ingestemail

import (
	"crypto/tls"
	"crypto/x509"
	"net/smtp"
	"testing"

	"github.com/sidekickhq/sidekick/platform/tlstest"
)

// selfSigned makes a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	ca := tlstest.NewCA(t, "ingest-email test CA")
	return ca.Certificate(t, "ingest-email test", "127.0.0.1"), ca.Pool()
}

func TestSTARTTLSOfferedOnlyWithCertificate(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an embedded NATS server")
	}
	cert, pool := selfSigned(t)

	plain := newFixture(t, Config{})
	c, err := smtp.Dial(startSMTP(t, plain))
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Fatal("STARTTLS offered without a certificate")
	}
	_ = c.Quit()

	f := newFixture(t, Config{})
	f.svc.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	c, err = smtp.Dial(startSMTP(t, f))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Fatal("STARTTLS not offered with a certificate")
	}
	if err := c.StartTLS(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}); err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	if st, ok := c.TLSConnectionState(); !ok || !st.HandshakeComplete {
		t.Fatal("no TLS after STARTTLS")
	}
	if err := c.Mail("jane@customer.io"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("hey@example.com"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(eml(t, "plain.eml")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("DATA over TLS: %v", err)
	}
	if n := len(f.messages(t)); n != 1 {
		t.Fatalf("want the message published, got %d", n)
	}
}
