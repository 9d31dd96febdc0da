package bus_test

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/bus/bustest"
)

// benchPayload is a ~300-byte protobuf message, the size of a small
// normalized inbound message.
func benchPayload(b *testing.B) (proto.Message, []byte) {
	b.Helper()
	m := wrapperspb.Bytes(bytes.Repeat([]byte("x"), 297))
	data, err := proto.Marshal(m)
	if err != nil {
		b.Fatal(err)
	}
	return m, data
}

func benchJetStream(b *testing.B) jetstream.JetStream {
	b.Helper()
	if testing.Short() {
		b.Skip("starts an embedded NATS server")
	}
	_, js := bustest.StartJetStream(b)
	return js
}

// BenchmarkPublisher: Publisher.Publish, CloudEvents headers and
// Nats-Msg-Id, waiting for each PubAck.
func BenchmarkPublisher(b *testing.B) {
	js := benchJetStream(b)
	m, data := benchPayload(b)
	p := bus.NewPublisher(js, "sidekick/bench")
	ctx := context.Background()
	subject := bus.InboundSubject("slack")
	b.SetBytes(int64(len(data)))
	for i := 0; b.Loop(); i++ {
		if _, err := p.Publish(ctx, bus.Event{Subject: subject, ID: "bench-" + strconv.Itoa(i), Message: m}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawJetStreamPublish: js.Publish of the same bytes, no headers,
// waiting for each PubAck.
func BenchmarkRawJetStreamPublish(b *testing.B) {
	js := benchJetStream(b)
	_, data := benchPayload(b)
	ctx := context.Background()
	subject := bus.InboundSubject("slack")
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := js.Publish(ctx, subject, data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawJetStreamPublishMsgID: js.Publish with a Nats-Msg-Id, to
// separate the cost of duplicate tracking from that of the headers.
func BenchmarkRawJetStreamPublishMsgID(b *testing.B) {
	js := benchJetStream(b)
	_, data := benchPayload(b)
	ctx := context.Background()
	subject := bus.InboundSubject("slack")
	b.SetBytes(int64(len(data)))
	for i := 0; b.Loop(); i++ {
		if _, err := js.Publish(ctx, subject, data, jetstream.WithMsgID("bench-"+strconv.Itoa(i))); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawJetStreamPublishAsync: js.PublishAsync of the same bytes,
// then a wait for every PubAck.
func BenchmarkRawJetStreamPublishAsync(b *testing.B) {
	js := benchJetStream(b)
	_, data := benchPayload(b)
	subject := bus.InboundSubject("slack")
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := js.PublishAsync(subject, data); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("async acks did not complete")
	}
}

// BenchmarkPublisherPublishAll: Publisher.PublishAll in batches of 100,
// as an outbox relay would.
func BenchmarkPublisherPublishAll(b *testing.B) {
	js := benchJetStream(b)
	m, data := benchPayload(b)
	p := bus.NewPublisher(js, "sidekick/bench")
	ctx := context.Background()
	subject := bus.InboundSubject("slack")
	const batch = 100
	events := make([]bus.Event, 0, batch)
	flush := func() {
		if _, err := p.PublishAll(ctx, events); err != nil {
			b.Fatal(err)
		}
		events = events[:0]
	}
	b.SetBytes(int64(len(data)))
	for i := 0; b.Loop(); i++ {
		events = append(events, bus.Event{Subject: subject, ID: "bench-" + strconv.Itoa(i), Message: m})
		if len(events) == batch {
			flush()
		}
	}
	if len(events) > 0 {
		flush()
	}
}
