package bus_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/sidekickhq/sidekick/platform/bus"
)

// An ingest service publishes a normalized message and answers its sender
// only after the PubAck.
func ExamplePublisher_Publish() {
	ctx := context.Background()
	_, js, err := bus.Connect(ctx, "nats://127.0.0.1:4222", "ingest-slack", slog.Default())
	if err != nil {
		return
	}
	p := bus.NewPublisher(js, "sidekick/ingest-slack", bus.WithRegisterer(prometheus.NewRegistry()))
	ack, err := p.Publish(ctx, bus.Event{
		Subject: bus.InboundSubject("slack"),
		ID:      "slack-Ev0123456", // from the provider's delivery id
		Message: wrapperspb.String("normalized message"),
	})
	if err != nil {
		return // answer 5xx: the sender retries, the duplicate window absorbs it
	}
	fmt.Println(ack.Duplicate)
}

// A service consumes a stream; errors are retried with backoff and end in
// support.deadletter.triage, with their reason, after MaxDeliver attempts.
func ExampleConsumer_Run() {
	ctx := context.Background()
	_, js, err := bus.Connect(ctx, "nats://127.0.0.1:4222", "triage", slog.Default())
	if err != nil {
		return
	}
	c, err := bus.NewConsumer(js, bus.ConsumerConfig{
		Service:        "triage",
		Stream:         bus.StreamInbound,
		Durable:        "triage-inbound",
		FilterSubjects: []string{bus.InboundSubject("slack"), bus.InboundSubject("email")},
	}, slog.Default(), prometheus.NewRegistry())
	if err != nil {
		return
	}
	_ = c.Run(ctx, func(ctx context.Context, msg jetstream.Msg) error {
		var in wrapperspb.StringValue
		if err := bus.Decode(msg, &in); err != nil {
			return err // permanent: dead-lettered at once
		}
		if err := apply(ctx, &in); err != nil {
			return bus.AtLocation("store.apply", err) // retried
		}
		return nil
	})
}

func apply(context.Context, *wrapperspb.StringValue) error { return nil }
