package ingestemail

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/smtp"
	"strings"
	"sync/atomic"
	"testing"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/bus/bustest"
)

// benchMessage is a typical customer email of about 1 KB with a unique id.
func benchMessage(i int) []byte {
	return []byte(fmt.Sprintf("From: Jane Doe <jane@customer.io>\r\nTo: hey@example.com\r\nSubject: Dashboards stopped loading %d\r\n"+
		"Message-ID: <bench-%d@customer.io>\r\nDate: Tue, 03 Mar 2026 10:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s",
		i, i, strings.Repeat("Since the upgrade our dashboards do not load. Any idea?\r\n", 14)))
}

// BenchmarkSMTP sends emails over one SMTP connection, each answered after
// the JetStream PubAck.
func BenchmarkSMTP(b *testing.B) {
	_, js := bustest.StartJetStream(b)
	svc, err := New(Config{InboundToken: "x", MaxBytes: 1 << 20}, Deps{Publisher: bus.NewPublisher(js, "bench"), Registry: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	f := &fixture{js: js, svc: svc}
	c, err := smtp.Dial(startSMTP(b, f))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if err := sendOne(c, benchMessage(i)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawJetStreamPublish is the baseline: a synchronous JetStream
// publish of the same bytes.
func BenchmarkRawJetStreamPublish(b *testing.B) {
	_, js := bustest.StartJetStream(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := js.Publish(ctx, "support.inbound.email", benchMessage(i)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBareHTTP is the other baseline: a net/http handler answering
// 200 to a 1 KB POST over loopback.
func BenchmarkBareHTTP(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer srv.Close()
	client := srv.Client()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		resp, err := client.Post(srv.URL, "message/rfc822", strings.NewReader(string(benchMessage(i))))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// BenchmarkHTTPInbound posts emails to POST /email/inbound over loopback.
func BenchmarkHTTPInbound(b *testing.B) {
	_, js := bustest.StartJetStream(b)
	svc, err := New(Config{InboundToken: "x", MaxBytes: 1 << 20}, Deps{Publisher: bus.NewPublisher(js, "bench"), Registry: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := srv.Client()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/email/inbound", strings.NewReader(string(benchMessage(i))))
		req.Header.Set("Authorization", "Bearer x")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body) // drain, so the connection is reused
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// BenchmarkSMTPParallel sends over several SMTP connections at once, as a
// relay with a connection pool does.
func BenchmarkSMTPParallel(b *testing.B) {
	_, js := bustest.StartJetStream(b)
	svc, err := New(Config{InboundToken: "x", MaxBytes: 1 << 20}, Deps{Publisher: bus.NewPublisher(js, "bench"), Registry: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	addr := startSMTP(b, &fixture{js: js, svc: svc})
	var seq atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c, err := smtp.Dial(addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		for pb.Next() {
			if err := sendOne(c, benchMessage(int(seq.Add(1)))); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkBareSMTP is the SMTP baseline: go-smtp with a backend that
// discards the message, over one connection.
func BenchmarkBareSMTP(b *testing.B) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(*gosmtp.Conn) (gosmtp.Session, error) { return discard{}, nil }))
	srv.Domain = "localhost"
	go func() { _ = srv.Serve(lis) }()
	defer srv.Close()
	c, err := smtp.Dial(lis.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if err := sendOne(c, benchMessage(i)); err != nil {
			b.Fatal(err)
		}
	}
}

type discard struct{}

func (discard) Reset()                                 {}
func (discard) Logout() error                          { return nil }
func (discard) Mail(string, *gosmtp.MailOptions) error { return nil }
func (discard) Rcpt(string, *gosmtp.RcptOptions) error { return nil }
func (discard) Data(r io.Reader) error                 { _, err := io.Copy(io.Discard, r); return err }

func sendOne(c *smtp.Client, msg []byte) error {
	if err := c.Mail("jane@customer.io"); err != nil {
		return err
	}
	if err := c.Rcpt("hey@example.com"); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	return w.Close()
}
