package ingestemail

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"net/textproto"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/bus/bustest"
	"github.com/sidekickhq/sidekick/platform/loadgen"
)

// pipeClient talks SMTP the way a relay using PIPELINING (RFC 2920) does:
// the commands of a transaction leave in one write. With bdat it sends
// the message in the same write as "BDAT <size> LAST" (CHUNKING, RFC
// 3030), so a transaction is one round trip; without, it waits for DATA's
// 354 before the message, two round trips. net/smtp, which does neither,
// takes four (MAIL, RCPT, DATA, the message).
type pipeClient struct {
	conn net.Conn
	r    *textproto.Reader
	w    *bufio.Writer
	bdat bool
}

func dialPipe(addr string, bdat bool) (*pipeClient, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &pipeClient{conn: conn, r: textproto.NewReader(bufio.NewReader(conn)), w: bufio.NewWriter(conn), bdat: bdat}
	if err := c.hello(); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

func (c *pipeClient) hello() error {
	if _, _, err := c.r.ReadResponse(220); err != nil {
		return err
	}
	if _, err := c.w.WriteString("EHLO relay.example\r\n"); err != nil {
		return err
	}
	if err := c.w.Flush(); err != nil {
		return err
	}
	_, ext, err := c.r.ReadResponse(250)
	if err != nil {
		return err
	}
	if !strings.Contains(ext, "PIPELINING") || (c.bdat && !strings.Contains(ext, "CHUNKING")) {
		return fmt.Errorf("server offers neither PIPELINING nor CHUNKING: %q", ext)
	}
	return nil
}

// send delivers msg in one transaction. After an error the connection's
// state is unknown: close it.
func (c *pipeClient) send(from, to string, msg []byte) error {
	fmt.Fprintf(c.w, "MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\n", from, to)
	if c.bdat {
		fmt.Fprintf(c.w, "BDAT %d LAST\r\n", len(msg))
		_, _ = c.w.Write(msg)
	} else {
		_, _ = c.w.WriteString("DATA\r\n")
	}
	if err := c.w.Flush(); err != nil {
		return err
	}
	// Every pipelined command gets its answer, in order.
	var errs []error
	for _, code := range []int{250, 250} {
		if _, _, err := c.r.ReadResponse(code); err != nil {
			errs = append(errs, err)
		}
	}
	if c.bdat {
		_, _, err := c.r.ReadResponse(250)
		return errors.Join(append(errs, err)...)
	}
	if _, _, err := c.r.ReadResponse(354); err != nil {
		return errors.Join(append(errs, err)...)
	}
	dw := textproto.NewWriter(c.w).DotWriter()
	if _, err := dw.Write(msg); err != nil {
		return err
	}
	if err := dw.Close(); err != nil {
		return err
	}
	_, _, err := c.r.ReadResponse(250)
	return err
}

func (c *pipeClient) Close() error { return c.conn.Close() }

// conns keeps idle connections, as a relay's pool does, and dials a new
// one when none is idle; the load generators send through it.
type conns[C io.Closer] struct {
	dial func() (C, error)
	idle chan C
}

func newConns[C io.Closer](dial func() (C, error)) *conns[C] {
	return &conns[C]{dial: dial, idle: make(chan C, 1024)}
}

// with runs f on an idle or new connection, keeping it if f succeeded.
func (p *conns[C]) with(f func(C) error) error {
	var c C
	select {
	case c = <-p.idle:
	default:
		var err error
		if c, err = p.dial(); err != nil {
			return err
		}
	}
	if err := f(c); err != nil {
		c.Close()
		return err
	}
	select {
	case p.idle <- c:
	default:
		c.Close()
	}
	return nil
}

func (p *conns[C]) close() {
	for {
		select {
		case c := <-p.idle:
			c.Close()
		default:
			return
		}
	}
}

// TestSMTPPipelining: the listener takes a relay's pipelined transactions,
// with DATA and with BDAT, and publishes each message once.
func TestSMTPPipelining(t *testing.T) {
	f := newFixture(t, Config{Recipients: []string{"hey@example.com"}})
	addr := startSMTP(t, f)
	for i, bdat := range []bool{false, true, true} {
		c, err := dialPipe(addr, bdat)
		if err != nil {
			t.Fatal(err)
		}
		// Two transactions on one connection.
		for j := range 2 {
			if err := c.send("jane@customer.io", "hey@example.com", benchMessageFor("pipe", 10*i+j)); err != nil {
				t.Fatalf("bdat %v, transaction %d: %v", bdat, j, err)
			}
		}
		c.Close()
	}
	// A refused recipient fails the transaction and publishes nothing; the
	// chunk that followed in the same write is discarded, not taken for
	// commands.
	c, err := dialPipe(addr, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.send("jane@customer.io", "someone-else@example.com", benchMessageFor("pipe", 99)); err == nil || !strings.Contains(err.Error(), "550") {
		t.Fatalf("recipient outside the allow-list: %v", err)
	}
	if err := c.send("jane@customer.io", "hey@example.com", benchMessageFor("pipe", 100)); err != nil {
		t.Fatalf("next transaction on the same connection: %v", err)
	}
	c.Close()
	msgs := f.messages(t)
	if len(msgs) != 7 {
		t.Fatalf("want 7 messages, got %d", len(msgs))
	}
	for _, m := range msgs {
		if !strings.HasPrefix(m.GetSubject(), "Dashboards stopped loading pipe-") || !strings.Contains(m.GetText(), "Any idea?") {
			t.Fatalf("message %q: %.60q", m.GetSubject(), m.GetText())
		}
	}
}

// emailCompare is what BenchmarkEmailVsBare's child process measures.
type emailCompare struct {
	SMTP, BareSMTP, BareSMTPPublish, HTTP, BareHTTP, NATS string
	Rounds, Workers                                       int
	Round                                                 time.Duration
}

// generatorEmailCompare runs BenchmarkEmailVsBare's rounds in the child.
const generatorEmailCompare = "email-compare"

func generateEmailCompare(ctx context.Context, in emailCompare) (any, error) {
	nc, js, err := bustest.Dial(in.NATS)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	var pools []interface{ close() }
	defer func() {
		for _, p := range pools {
			p.close()
		}
	}()
	netSMTP := func(addr, tag string) loadgen.Call {
		p := newConns(func() (*smtp.Client, error) { return smtp.Dial(addr) })
		pools = append(pools, p)
		return func(_ context.Context, i int) error {
			return p.with(func(c *smtp.Client) error { return sendOne(c, benchMessageFor(tag, i)) })
		}
	}
	pipelined := func(addr, tag string, bdat bool) loadgen.Call {
		p := newConns(func() (*pipeClient, error) { return dialPipe(addr, bdat) })
		pools = append(pools, p)
		return func(_ context.Context, i int) error {
			return p.with(func(c *pipeClient) error {
				return c.send("jane@customer.io", "hey@example.com", benchMessageFor(tag, i))
			})
		}
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512}}
	post := func(url, tag string) loadgen.Call {
		return func(_ context.Context, i int) error {
			req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(string(benchMessageFor(tag, i))))
			if err != nil {
				return err
			}
			req.Header.Set("Authorization", "Bearer x")
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return nil
		}
	}
	raw := func(_ context.Context, i int) error {
		_, err := js.Publish(ctx, bus.InboundSubject("email"), benchMessageFor("raw", i), jetstream.WithMsgID(fmt.Sprintf("raw-%d", i)))
		return err
	}
	return loadgen.Interleave(ctx, in.Rounds, in.Workers, in.Round,
		loadgen.Subject{Name: "smtp-bdat", Call: pipelined(in.SMTP, "bdat", true)},
		loadgen.Subject{Name: "smtp-pipelined", Call: pipelined(in.SMTP, "pipelined", false)},
		loadgen.Subject{Name: "smtp", Call: netSMTP(in.SMTP, "smtp")},
		loadgen.Subject{Name: "bare-smtp-bdat", Call: pipelined(in.BareSMTP, "bare-bdat", true)},
		loadgen.Subject{Name: "bare-smtp-publish-bdat", Call: pipelined(in.BareSMTPPublish, "bare-publish-bdat", true)},
		loadgen.Subject{Name: "http", Call: post(in.HTTP, "http")},
		loadgen.Subject{Name: "bare-http", Call: post(in.BareHTTP, "bare-http")},
		loadgen.Subject{Name: "raw", Call: raw},
	)
}

// BenchmarkEmailVsBare ignores b.N (run it with -benchtime 1x). From a
// child process (mail relays are not in our process), it measures in
// turns of -email.round, for -email.rounds rounds, with 16 senders per
// CPU each on pooled connections:
//
//   - smtp-bdat: the SMTP listener, each email one pipelined round trip
//     (MAIL, RCPT, BDAT LAST and the message in one write), as relays
//     that use CHUNKING send;
//   - smtp-pipelined: the same with DATA (two round trips: the 354 comes
//     between), as relays that pipeline without CHUNKING send;
//   - smtp: net/smtp, four round trips;
//   - bare-smtp-bdat: a go-smtp server that discards the message, sent to
//     like smtp-bdat; bare-smtp-publish-bdat: one that publishes it as it
//     came, unparsed, and answers after the PubAck (the ceiling the
//     publish sets);
//   - http: POST /email/inbound; bare-http: a net/http handler reading
//     the body; raw: a synchronous JetStream publish of the email.
//
// It reports the median rates and the per-round ratios. The target
// is half the bare HTTP handler's rate.
func BenchmarkEmailVsBare(b *testing.B) {
	srv, js := bustest.StartJetStream(b)
	svc := benchService(b, js)
	in := emailCompare{
		SMTP: startSMTP(b, &fixture{js: js, svc: svc}), BareSMTP: bareSMTP(b), BareSMTPPublish: bareSMTPPublish(b, js), HTTP: inboundOn(b, svc), BareHTTP: loadgen.BareHTTP(b),
		NATS: srv.URL(), Rounds: *compareRounds, Round: *compareRound, Workers: benchParallelism * runtime.GOMAXPROCS(0),
	}
	var r loadgen.Rounds
	if err := loadgen.Spawn(context.Background(), generatorEmailCompare, in, &r); err != nil {
		b.Fatal(err)
	}
	r.ReportRates(b)
	for _, pair := range [][2]string{{"smtp-bdat", "bare-http"}, {"smtp-pipelined", "bare-http"}, {"smtp", "bare-http"}, {"smtp-bdat", "bare-smtp-bdat"}, {"bare-smtp-publish-bdat", "bare-http"}, {"smtp-bdat", "bare-smtp-publish-bdat"}, {"http", "bare-http"}} {
		r.ReportRatio(b, pair[0], pair[1])
	}
	b.Logf("\n%s", &r)
}
