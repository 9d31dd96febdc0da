// Package replies_test sends replies through the three senders (ingest-slack,
// ingest-email, ingest-github) against the wire fakes of Slack, an SMTP
// relay with STARTTLS and GitHub's API, with real NATS: each sender's
// threading, failures and recovery, and a sending process killed with
// SIGKILL again and again while it sends.
package replies_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/bus/bustest"
	"github.com/sidekickhq/sidekick/platform/outbound"
	"github.com/sidekickhq/sidekick/platform/tlstest"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	ingestemail "github.com/sidekickhq/sidekick/services/ingest-email"
	ingestgithub "github.com/sidekickhq/sidekick/services/ingest-github"
	ingestslack "github.com/sidekickhq/sidekick/services/ingest-slack"
	"github.com/sidekickhq/sidekick/sidekick/fakes"
)

// childEnv, set in this test binary's environment, makes it run one
// sending service described by the variable's JSON (a spec) instead of the
// tests, until it is killed or its standard input closes.
const childEnv = "SIDEKICK_REPLIES_CHILD"

func TestMain(m *testing.M) {
	if raw := os.Getenv(childEnv); raw != "" {
		os.Exit(runChild(raw))
	}
	os.Exit(m.Run())
}

// The fixed facts of the fakes.
const (
	botToken    = "xoxb-replies-test"
	githubToken = "ghp_repliestest"
	supportFrom = "Acme Support <support@acme.test>"
	supportAddr = "support@acme.test"
)

// spec says which sending service to run and where everything is.
type spec struct {
	Channel     string        `json:"channel"`
	NATSURL     string        `json:"nats_url"`
	SlackAPI    string        `json:"slack_api,omitempty"`
	GitHubAPI   string        `json:"github_api,omitempty"`
	SMTPAddr    string        `json:"smtp_addr,omitempty"`
	CAPEM       []byte        `json:"ca_pem,omitempty"`
	AckWait     time.Duration `json:"ack_wait"`
	Settle      time.Duration `json:"settle"`
	Concurrency int           `json:"concurrency"`
	// AppID, InstallationID and KeyFile make ingest-github a GitHub App.
	AppID          string `json:"app_id,omitempty"`
	InstallationID int64  `json:"installation_id,omitempty"`
	KeyFile        string `json:"key_file,omitempty"`
}

// runService builds the service of s and runs it until ctx is done.
func runService(ctx context.Context, s spec, logger *slog.Logger) error {
	nc, err := nats.Connect(s.NATSURL, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond), nats.Name("replies-"+s.Channel))
	if err != nil {
		return fmt.Errorf("connect nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	var svc interface{ Run(context.Context) error }
	switch s.Channel {
	case "slack":
		svc, err = ingestslack.New(ingestslack.Config{
			SigningSecret: "unused", BotToken: botToken, APIURL: s.SlackAPI, WorkspaceURL: "https://acme.slack.com",
			ReplyConcurrency: s.Concurrency, ReplyAckWait: s.AckWait, ReplySettle: s.Settle,
		}, ingestslack.Deps{Logger: logger, JS: js, Publisher: bus.NewPublisher(js, ingestslack.Source)})
	case "github":
		svc, err = ingestgithub.New(ingestgithub.Config{
			WebhookSecret: "unused", Token: githubToken, APIURL: s.GitHubAPI,
			AppID: s.AppID, AppInstallationID: s.InstallationID, AppPrivateKeyFile: s.KeyFile,
			ReplyConcurrency: s.Concurrency, ReplyAckWait: s.AckWait, ReplySettle: s.Settle,
		}, ingestgithub.Deps{Logger: logger, JS: js, Publisher: bus.NewPublisher(js, ingestgithub.Source),
			DeadLetter: func(context.Context, string, []byte, nats.Header, error) error { return nil }})
	case "email":
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(s.CAPEM)
		svc, err = ingestemail.New(ingestemail.Config{
			InboundToken: "unused", Relay: s.SMTPAddr, RelayTLS: "starttls", From: supportFrom,
			ReplyConcurrency: s.Concurrency, ReplyAckWait: s.AckWait,
		}, ingestemail.Deps{Logger: logger, JS: js, Publisher: bus.NewPublisher(js, ingestemail.Source),
			RelayTLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}})
	default:
		return fmt.Errorf("no sending service for channel %q", s.Channel)
	}
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}

// runChild runs the service in this process until its standard input
// closes (or it is killed, the point of the exercise).
func runChild(raw string) int {
	var s spec
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		fmt.Fprintln(os.Stderr, "replies child:", err)
		return 2
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := runService(ctx, s, logger); err != nil {
		fmt.Fprintln(os.Stderr, "replies child:", err)
		return 1
	}
	return 0
}

// rig is NATS, the three fakes, and a way to publish replies and read
// their receipts.
type rig struct {
	t     *testing.T
	nats  *bustest.Server
	js    jetstream.JetStream
	pub   *bus.Publisher
	slack *fakes.Slack
	gh    *fakes.GitHubAPI
	smtp  *fakes.SMTP
	caPEM []byte

	mu       sync.Mutex
	receipts map[string]*supportv1.OutboundReceipt // by outbound id
	copies   map[string]int                        // receipts seen per outbound id
}

func newRig(t *testing.T) *rig {
	t.Helper()
	srv := bustest.Start(t)
	_, js := srv.Connect(t)
	if err := bus.Provision(context.Background(), js, bus.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	ca := tlstest.NewCA(t, "replies test CA")
	relay, err := fakes.NewSMTPStartTLS(ca.Certificate(t, "smtp.fake.test", "127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = relay.Close() })
	r := &rig{
		t: t, nats: srv, js: js, pub: bus.NewPublisher(js, "sidekick/triage"),
		slack: fakes.NewSlack("acme", "T0ACME"), gh: fakes.NewGitHubAPI(githubToken), smtp: relay,
		receipts: map[string]*supportv1.OutboundReceipt{}, copies: map[string]int{},
	}
	t.Cleanup(r.slack.Close)
	t.Cleanup(r.gh.Close)
	// The CA's certificate, for the child's RootCAs.
	r.caPEM = ca.PEM
	r.watchReceipts()
	return r
}

// spec is the service spec of channel on this rig.
func (r *rig) spec(channel string) spec {
	return spec{
		Channel: channel, NATSURL: r.nats.URL(), SlackAPI: r.slack.APIURL(), GitHubAPI: r.gh.URL(),
		SMTPAddr: r.smtp.Addr(), CAPEM: r.caPEM, AckWait: time.Second, Settle: 200 * time.Millisecond, Concurrency: 4,
	}
}

// serve runs a service in this process until the test ends.
func (r *rig) serve(s spec) {
	r.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runService(ctx, s, slog.New(slog.DiscardHandler)) }()
	r.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			r.t.Errorf("%s service: %v", s.Channel, err)
		}
	})
}

// watchReceipts records every receipt on the stream.
func (r *rig) watchReceipts() {
	t := r.t
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cons, err := r.js.OrderedConsumer(ctx, bus.StreamOutbound, jetstream.OrderedConsumerConfig{FilterSubjects: []string{bus.AllOutboundReceipts}})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		rc := new(supportv1.OutboundReceipt)
		if err := proto.Unmarshal(msg.Data(), rc); err != nil {
			t.Errorf("decode receipt: %v", err)
			return
		}
		if want := outbound.ReceiptID(rc.GetOutboundId(), rc.GetRetry()); msg.Headers().Get(bus.HeaderID) != want {
			t.Errorf("receipt ce-id %q, want %q", msg.Headers().Get(bus.HeaderID), want)
		}
		r.mu.Lock()
		r.receipts[rc.GetOutboundId()] = rc
		r.copies[rc.GetOutboundId()]++
		r.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
}

// send publishes m as triage's outbox would.
func (r *rig) send(m *supportv1.OutboundMessage) {
	r.t.Helper()
	if m.CreatedAt == nil {
		m.CreatedAt = timestamppb.Now()
	}
	channel := strings.TrimPrefix(strings.ToLower(m.GetChannel().String()), "channel_")
	if _, err := r.pub.Publish(context.Background(), bus.Event{Subject: bus.OutboundSubject(channel), ID: outbound.RequestID(m), Message: m}); err != nil {
		r.t.Fatalf("publish %s: %v", m.GetId(), err)
	}
}

// receipt waits for the receipt of id.
func (r *rig) receipt(id string) *supportv1.OutboundReceipt {
	r.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		rc := r.receipts[id]
		r.mu.Unlock()
		if rc != nil {
			return rc
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatalf("no receipt for %s within a minute", id)
	return nil
}

// receiptCount is how many replies have a receipt.
func (r *rig) receiptCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.receipts)
}

// seedReached writes what a sender that died just after reaching the
// provider leaves in its ledger.
func (r *rig) seedReached(channel, id string) {
	r.t.Helper()
	ctx := context.Background()
	bucket := "OUTBOUND_" + strings.ToUpper(channel)
	var kv jetstream.KeyValue
	var err error
	for range 100 { // the service creates the bucket as it starts
		if kv, err = r.js.KeyValue(ctx, bucket); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatalf("ledger %s: %v", bucket, err)
	}
	rec, _ := json.Marshal(map[string]any{"state": "reached", "retry": 0, "reached": time.Now().Add(-time.Second)})
	if _, err := kv.Create(ctx, id, rec); err != nil {
		r.t.Fatal(err)
	}
}

func slackReply(id, channel string) *supportv1.OutboundMessage {
	return &supportv1.OutboundMessage{
		Id: id, ConversationId: "conv-" + id, Channel: supportv1.Channel_CHANNEL_SLACK,
		Text:   "Thanks for waiting: fixed in 1.2.3",
		Author: &supportv1.OutboundAuthor{PersonId: "farah", DisplayName: "Farah", AvatarUrl: "https://acme.test/farah.png"},
		Target: &supportv1.OutboundMessage_Slack{Slack: &supportv1.SlackTarget{TeamId: "T0CUSTOMER", Channel: channel, ThreadTs: "1700000000.000100"}},
	}
}

func githubReply(id, repo string, number int64, kind supportv1.GitHubTarget_Kind) *supportv1.OutboundMessage {
	return &supportv1.OutboundMessage{
		Id: id, ConversationId: "conv-" + id, Channel: supportv1.Channel_CHANNEL_GITHUB,
		Text:   "Thanks for the report: fixed in 1.2.3.",
		Author: &supportv1.OutboundAuthor{PersonId: "farah", DisplayName: "Farah"},
		Target: &supportv1.OutboundMessage_Github{Github: &supportv1.GitHubTarget{Repository: repo, Kind: kind, Number: number}},
	}
}

func emailReply(id string) *supportv1.OutboundMessage {
	return &supportv1.OutboundMessage{
		Id: id, ConversationId: "conv-" + id, Channel: supportv1.Channel_CHANNEL_EMAIL,
		Text:   "Hi Ana,\n\nThanks for waiting: see [the release notes](https://acme.test/notes?v=1.2.3&x=1).\n\nFarah",
		Author: &supportv1.OutboundAuthor{PersonId: "farah", DisplayName: "Farah", Email: "farah@acme.test"},
		Target: &supportv1.OutboundMessage_Email{Email: &supportv1.EmailTarget{
			To: []string{"Ana <ana@customer.test>"}, Cc: []string{"ops@customer.test", supportAddr},
			Subject: "Recordings stopped", InReplyTo: "<ana-2@customer.test>",
			References: []string{"<ana-1@customer.test>", "<ana-2@customer.test>"},
		}},
	}
}
