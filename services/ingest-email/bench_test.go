package ingestemail

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/smtp"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/bus/bustest"
	"github.com/sidekickhq/sidekick/platform/loadgen"
)

// The benchmarks (go test -run '^$' -bench . ./services/ingest-email/)
// measure throughput with many senders at once, as relays with connection
// pools send, beside the parts an email goes through, in the same run:
//
//   - BenchmarkSMTP: a ~1 KB email over SMTP (MAIL, RCPT, DATA), answered
//     250 after the JetStream PubAck, benchParallelism connections per CPU;
//   - BenchmarkBareSMTP: the same SMTP conversation with a go-smtp server
//     that discards the message (the transport's own cost);
//   - BenchmarkHTTPInbound: the same email through POST /email/inbound;
//   - BenchmarkBareHTTP: a net/http handler that reads the body and
//     answers 200;
//   - BenchmarkRawJetStreamPublish: a synchronous js.Publish of the email;
//   - BenchmarkSMTPLatencyAtHalfLoad: from a load generator in a child
//     process, the SMTP path's capacity, then latency percentiles at half
//     of it on an open loop;
//   - BenchmarkEmailVsBare (compare_test.go): these paths and the ceiling
//     a publish sets, in one-second turns from a child process, with a
//     pipelining client as relays use; the figures to quote.

// benchParallelism is RunParallel's senders per GOMAXPROCS.
const benchParallelism = 16

// TestMain lets BenchmarkSMTPLatencyAtHalfLoad run its load generator in a
// child process (loadgen.Spawn).
func TestMain(m *testing.M) {
	bustest.ServeChild()
	loadgen.Register(generatorSMTP, generateSMTP)
	loadgen.Register(generatorEmailCompare, generateEmailCompare)
	loadgen.RunChild()
	os.Exit(m.Run())
}

// benchMessage is a typical customer email of about 1 KB with a unique id.
func benchMessage(i int) []byte { return benchMessageFor("", i) }

// benchMessageFor is benchMessage with tag in its id and subject, so that
// paths measured side by side never send the same Message-ID.
func benchMessageFor(tag string, i int) []byte {
	id := fmt.Sprint(i)
	if tag != "" {
		id = tag + "-" + id
	}
	return []byte(fmt.Sprintf("From: Jane Doe <jane@customer.io>\r\nTo: hey@example.com\r\nSubject: Dashboards stopped loading %s\r\n"+
		"Message-ID: <bench-%s@customer.io>\r\nDate: Tue, 03 Mar 2026 10:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s",
		id, id, strings.Repeat("Since the upgrade our dashboards do not load. Any idea?\r\n", 14)))
}

// benchSMTPService starts NATS (embedded) and the service's SMTP listener.
func benchSMTPService(b *testing.B) string {
	_, js := bustest.StartJetStream(b)
	return smtpOn(b, js)
}

// smtpOn starts the service's SMTP listener publishing to js.
func smtpOn(b *testing.B, js jetstream.JetStream) string {
	return startSMTP(b, &fixture{js: js, svc: benchService(b, js)})
}

// parallelSMTP sends b.N emails over benchParallelism connections per CPU.
func parallelSMTP(b *testing.B, addr string) {
	var seq atomic.Int64
	b.SetParallelism(benchParallelism)
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
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "emails/s")
}

func BenchmarkSMTP(b *testing.B) { parallelSMTP(b, benchSMTPService(b)) }

func BenchmarkBareSMTP(b *testing.B) { parallelSMTP(b, bareSMTP(b)) }

// bareSMTP starts a go-smtp server that discards every message: the
// transport's own cost.
func bareSMTP(b *testing.B) string {
	return bareSMTPWith(b, func(io.Reader) error { return nil })
}

// bareSMTPPublish starts a go-smtp server that publishes every message as
// it came (no parsing) and answers after the PubAck: the most an SMTP
// ingest could reach with the publish it has to make.
func bareSMTPPublish(b *testing.B, js jetstream.JetStream) string {
	var n atomic.Int64
	return bareSMTPWith(b, func(r io.Reader) error {
		raw, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		_, err = js.Publish(context.Background(), bus.InboundSubject("email"), raw, jetstream.WithMsgID(fmt.Sprintf("bare-%d", n.Add(1))))
		return err
	})
}

// bareSMTPWith starts a go-smtp server that accepts every sender and
// recipient and hands each message to data.
func bareSMTPWith(b *testing.B, data func(io.Reader) error) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(*gosmtp.Conn) (gosmtp.Session, error) { return discard{data: data}, nil }))
	srv.Domain = "localhost"
	go func() { _ = srv.Serve(lis) }()
	b.Cleanup(func() { srv.Close() })
	return lis.Addr().String()
}

// parallelHTTP posts b.N emails to url, many at once.
func parallelHTTP(b *testing.B, url string) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512}}
	var seq atomic.Int64
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(string(benchMessage(int(seq.Add(1))))))
			req.Header.Set("Authorization", "Bearer x")
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body) // drain, so the connection is reused
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "emails/s")
}

func BenchmarkHTTPInbound(b *testing.B) {
	_, js := bustest.StartJetStream(b)
	parallelHTTP(b, inboundOn(b, benchService(b, js)))
}

// benchService is the service publishing to js.
func benchService(b *testing.B, js jetstream.JetStream) *Service {
	svc, err := New(Config{InboundToken: "x", MaxBytes: 1 << 20}, Deps{Publisher: bus.NewPublisher(js, "bench"), Registry: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	return svc
}

// inboundOn serves svc's POST /email/inbound and returns its URL.
func inboundOn(b *testing.B, svc *Service) string {
	mux := http.NewServeMux()
	svc.Register(mux)
	srv := httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	return srv.URL + "/email/inbound"
}

func BenchmarkBareHTTP(b *testing.B) { parallelHTTP(b, loadgen.BareHTTP(b)) }

func BenchmarkRawJetStreamPublish(b *testing.B) {
	_, js := bustest.StartJetStream(b)
	ctx := context.Background()
	var seq atomic.Int64
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := js.Publish(ctx, "support.inbound.email", benchMessage(int(seq.Add(1)))); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "emails/s")
}

var (
	measureFor    = flag.Duration("email.measure", 10*time.Second, "BenchmarkSMTPLatencyAtHalfLoad: how long to measure at half load")
	compareRounds = flag.Int("email.rounds", 10, "BenchmarkEmailVsBare: rounds")
	compareRound  = flag.Duration("email.round", time.Second, "BenchmarkEmailVsBare: how long each path runs in a round")
)

// BenchmarkSMTPLatencyAtHalfLoad ignores b.N (run it with -benchtime 1x):
// a load generator in a child process saturates the SMTP listener for
// three seconds with 64 senders (one connection each), then offers half
// that rate on an open loop (an email leaves on schedule whether or not
// earlier ones are done, on an idle pooled connection or a new one; its
// latency counts from the scheduled time, MAIL to the 250 after DATA) for
// a two-second warm-up and the measurement.
func BenchmarkSMTPLatencyAtHalfLoad(b *testing.B) { smtpLatency(b, benchSMTPService(b)) }

// BenchmarkSMTPLatencyAtHalfLoadNATSProcess is the same with NATS in a
// process of its own (bustest.StartProcess), as deployed.
func BenchmarkSMTPLatencyAtHalfLoadNATSProcess(b *testing.B) {
	smtpLatency(b, smtpOn(b, bustest.StartProcess(b)))
}

func smtpLatency(b *testing.B, addr string) {
	p := loadgen.Profile{Workers: 64, Saturate: 3 * time.Second, Share: 0.5, Warmup: 2 * time.Second, Measure: *measureFor}
	loadgen.MeasureInChild(b, generatorSMTP, smtpLoad{Addr: addr, Profile: p}, "emails")
}

// generatorSMTP sends emails over pooled SMTP connections under a
// loadgen.Profile, from a child process.
const generatorSMTP = "smtp"

type smtpLoad struct {
	Addr    string
	Profile loadgen.Profile
}

func generateSMTP(ctx context.Context, in smtpLoad) (any, error) {
	pool := newConns(func() (*smtp.Client, error) { return smtp.Dial(in.Addr) })
	defer pool.close()
	return in.Profile.Run(ctx, func(_ context.Context, i int) error {
		return pool.with(func(c *smtp.Client) error { return sendOne(c, benchMessage(i)) })
	})
}

// discard is a session that accepts everything and hands the message to
// data, then reads what data left.
type discard struct{ data func(io.Reader) error }

func (discard) Reset()                                 {}
func (discard) Logout() error                          { return nil }
func (discard) Mail(string, *gosmtp.MailOptions) error { return nil }
func (discard) Rcpt(string, *gosmtp.RcptOptions) error { return nil }
func (d discard) Data(r io.Reader) error {
	if err := d.data(r); err != nil {
		return err
	}
	_, err := io.Copy(io.Discard, r)
	return err
}

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
