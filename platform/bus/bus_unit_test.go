package bus

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestSubjects(t *testing.T) {
	cases := map[string]string{
		InboundSubject("slack"):           "support.inbound.slack",
		ConversationSubject("opened"):     "support.conversation.opened",
		ActionSubject("ack"):              "support.action.ack",
		RotationSubject("shift_started"):  "support.rotation.shift_started",
		NotifySubject("delivered"):        "support.notify.delivered",
		DeadLetterSubject("ingest-slack"): "support.deadletter.ingest-slack",
		InboundSubject("a.b*c> d"):        "support.inbound.a_b_c__d",
		DeadLetterSubject(""):             "support.deadletter._",
		OutboundSubject("email"):          "support.outbound.email",
		OutboundReceiptSubject("github"):  "support.outbound.github.receipt",
	}
	for got, want := range cases {
		if got != want {
			t.Errorf("subject %q, want %q", got, want)
		}
	}
}

func TestStreamConfigsDefaults(t *testing.T) {
	cfgs := StreamConfigs(StreamsConfig{})
	if len(cfgs) != 7 {
		t.Fatalf("%d streams, want 7", len(cfgs))
	}
	byName := map[string]jetstream.StreamConfig{}
	for _, c := range cfgs {
		byName[c.Name] = c
		if c.Replicas != 1 || c.Storage != jetstream.FileStorage || c.Discard != jetstream.DiscardNew ||
			c.Duplicates != DefaultDuplicateWindow || c.MaxBytes != -1 || c.Retention != jetstream.LimitsPolicy {
			t.Errorf("%s: unexpected defaults %+v", c.Name, c)
		}
	}
	if got := byName[StreamInbound].Subjects; len(got) != 1 || got[0] != "support.inbound.>" {
		t.Errorf("inbound subjects %v", got)
	}
	if got := byName[StreamOutbound].Subjects; len(got) != 1 || got[0] != "support.outbound.>" {
		t.Errorf("outbound subjects %v", got)
	}
	if got := byName[StreamConversations].MaxAge; got != 30*24*time.Hour {
		t.Errorf("conversations max age %v", got)
	}
	if got := byName[StreamDeadLetter].MaxAge; got != 90*24*time.Hour {
		t.Errorf("dead letter max age %v", got)
	}

	tuned := StreamConfigs(StreamsConfig{Replicas: 3, DuplicateWindow: time.Hour, MaxAge: 30 * time.Minute, MaxBytes: 1 << 30})
	for _, c := range tuned {
		if c.Replicas != 3 || c.MaxAge != 30*time.Minute || c.MaxBytes != 1<<30 {
			t.Errorf("%s: tuning not applied: %+v", c.Name, c)
		}
		if c.Duplicates != 30*time.Minute {
			t.Errorf("%s: duplicate window %v exceeds max age", c.Name, c.Duplicates)
		}
	}
}

func TestPermanentAndLocation(t *testing.T) {
	if Permanent(nil) != nil || AtLocation("x", nil) != nil {
		t.Fatal("nil errors must stay nil")
	}
	base := errors.New("bad payload")
	err := fmt.Errorf("handle: %w", AtLocation("normalize", Permanent(base)))
	if !IsPermanent(err) {
		t.Error("wrapped permanent error not recognised")
	}
	if !errors.Is(err, base) {
		t.Error("Permanent/AtLocation must unwrap to the cause")
	}
	if got := ErrorLocation(err); got != "normalize" {
		t.Errorf("location %q", got)
	}
	if err.Error() != "handle: bad payload" {
		t.Errorf("message %q", err.Error())
	}
	if IsPermanent(base) || ErrorLocation(base) != "" {
		t.Error("plain error is neither permanent nor located")
	}
}

// vtString is a StringValue with a MarshalVT of its own, which encodes a
// different value, so the test sees which encoder the publisher took.
type vtString struct{ *wrapperspb.StringValue }

func (v vtString) MarshalVT() ([]byte, error) {
	return proto.Marshal(wrapperspb.String("vt:" + v.Value))
}

func TestPublisherEncodesWithMarshalVT(t *testing.T) {
	p := NewPublisher(nil, "sidekick/test")
	for _, c := range []struct {
		msg  proto.Message
		want string
	}{
		{vtString{wrapperspb.String("hi")}, "vt:hi"},
		{wrapperspb.String("hi"), "hi"},
	} {
		m, err := p.Msg(Event{Subject: "support.inbound.slack", ID: "Ev1", Message: c.msg})
		if err != nil {
			t.Fatal(err)
		}
		var got wrapperspb.StringValue
		if err := proto.Unmarshal(m.Data, &got); err != nil || got.Value != c.want {
			t.Errorf("%T encoded as %q (%v), want %q", c.msg, got.Value, err, c.want)
		}
	}
}

func TestPublisherMsgHeaders(t *testing.T) {
	at := time.Date(2025, 3, 4, 5, 6, 7, 890, time.FixedZone("CET", 3600))
	p := NewPublisher(nil, "sidekick/test", WithClock(func() time.Time { return at }))
	m, err := p.Msg(Event{Subject: "support.inbound.slack", ID: "Ev123", Message: wrapperspb.String("hi"),
		Header: nats.Header{"x-extra": {"1"}, HeaderSource: {"spoofed"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		HeaderSpecVersion:     "1.0",
		HeaderType:            "google.protobuf.StringValue",
		HeaderSource:          "sidekick/test",
		HeaderID:              "Ev123",
		HeaderTime:            "2025-03-04T04:06:07.00000089Z",
		HeaderContentType:     "application/protobuf",
		jetstream.MsgIDHeader: "Ev123",
		"x-extra":             "1",
	}
	for k, v := range want {
		if got := m.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	var s wrapperspb.StringValue
	if err := proto.Unmarshal(m.Data, &s); err != nil || s.GetValue() != "hi" {
		t.Errorf("payload %v %v", s.GetValue(), err)
	}

	if _, err := p.Msg(Event{Subject: "s", Message: wrapperspb.String("x")}); err == nil {
		t.Error("missing id accepted")
	}
	if _, err := p.Msg(Event{ID: "1", Message: wrapperspb.String("x")}); err == nil {
		t.Error("missing subject accepted")
	}
	if _, err := p.Msg(Event{Subject: "s", ID: "1", Data: []byte{1}}); err == nil {
		t.Error("raw data without type accepted")
	}
	raw, err := p.Msg(Event{Subject: "s", ID: "1", Type: "t.v1.X", Data: []byte{1}, Time: at})
	if err != nil || raw.Header.Get(HeaderType) != "t.v1.X" || string(raw.Data) != "\x01" {
		t.Errorf("raw event: %v %v", raw, err)
	}
}

func TestConsumerConfigDefaults(t *testing.T) {
	c, err := ConsumerConfig{Service: "triage", Stream: StreamInbound, Durable: "triage-inbound"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxDeliver != 5 || c.AckWait != DefaultAckWait || c.MaxAckPending != 1000 || c.Concurrency != 1 ||
		len(c.Backoff) != 4 || c.Backoff[3] != 2*time.Minute || c.Prefetch != 2 || c.DrainTimeout != DefaultAckWait ||
		c.DeliverPolicy != jetstream.DeliverAllPolicy || c.Batch != 1 || c.Linger != time.Millisecond {
		t.Errorf("defaults: %+v", c)
	}
	// Batches are prefetched whole, and the server lets them all be in
	// flight.
	for _, tc := range []struct{ batch, concurrency, prefetch, pending int }{{200, 1, 400, 1000}, {500, 2, 2000, 4000}} {
		c, err := ConsumerConfig{Service: "triage", Stream: StreamInbound, Durable: "triage-inbound", Batch: tc.batch, Concurrency: tc.concurrency}.withDefaults()
		if err != nil || c.Prefetch != tc.prefetch || c.MaxAckPending != tc.pending {
			t.Errorf("batch %d × %d: prefetch %d, max ack pending %d (%v); want %d, %d", tc.batch, tc.concurrency, c.Prefetch, c.MaxAckPending, err, tc.prefetch, tc.pending)
		}
	}
	for _, bad := range []ConsumerConfig{
		{Stream: "S", Durable: "d"},
		{Service: "s", Durable: "d"},
		{Service: "s", Stream: "S"},
		{Service: "s", Stream: "S", Durable: "a.b"},
		{Service: "s", Stream: "S", Durable: "d", Backoff: []time.Duration{-1}},
	} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
}

func TestDeadLetterIDAndHeaderValue(t *testing.T) {
	h1 := nats.Header{HeaderOriginalStream: {"S"}, HeaderOriginalSequence: {"7"}}
	a := deadLetterID("svc", "svc/d", "subj", []byte("x"), h1)
	if a != deadLetterID("svc", "svc/d", "subj", []byte("other data"), h1) {
		t.Error("id by stream sequence must not depend on data")
	}
	if a == deadLetterID("svc", "svc/other", "subj", []byte("x"), h1) {
		t.Error("different location must give a different id")
	}
	byData := deadLetterID("svc", "loc", "subj", []byte("x"), nil)
	if byData != deadLetterID("svc", "loc", "subj", []byte("x"), nil) || byData == deadLetterID("svc", "loc", "subj", []byte("y"), nil) {
		t.Error("id by data must be stable and data-dependent")
	}
	byID := deadLetterID("svc", "loc", "subj", []byte("x"), nats.Header{jetstream.MsgIDHeader: {"m1"}})
	if byID != deadLetterID("svc", "loc", "subj", []byte("y"), nats.Header{jetstream.MsgIDHeader: {"m1"}}) {
		t.Error("id by message id must not depend on data")
	}

	if got := headerValue("a\r\nb", 100); got != "a  b" {
		t.Errorf("newlines: %q", got)
	}
	long := strings.Repeat("é", 100)
	got := headerValue(long, 51)
	if len(got) > 51 || !strings.HasSuffix(got, "…") || !strings.HasPrefix(long, strings.TrimSuffix(got, "…")) {
		t.Errorf("cut: %q (%d bytes)", got, len(got))
	}
}

func TestRedactURL(t *testing.T) {
	cases := map[string]string{
		"nats://127.0.0.1:4222":                          "nats://127.0.0.1:4222",
		"nats://user:s3cret@nats:4222":                   "nats://user:xxxxx@nats:4222",
		"nats://tok3n@nats:4222, nats://a:b3@other:4222": "nats://redacted@nats:4222,nats://a:xxxxx@other:4222",
		"u:pw@host:4222":                                 "nats://u:xxxxx@host:4222",
	}
	for in, want := range cases {
		got := RedactURL(in)
		if got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
		for _, secret := range []string{"s3cret", "tok3n", "b3@", "pw"} {
			if strings.Contains(got, secret) {
				t.Errorf("RedactURL(%q) leaks %q", in, secret)
			}
		}
	}
}
