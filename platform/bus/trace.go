package bus

import (
	"context"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Trace context rides in NATS headers (traceparent, tracestate, W3C), so
// that one trace follows a message from the webhook that brought it in,
// through every consumer and outbox, to what was sent out. The tracer
// provider and propagator are the process's (platform/telemetry): with
// tracing off, both do nothing.

const tracerName = "github.com/sidekickhq/sidekick/platform/bus"

// headerCarrier reads and writes NATS headers as they are: NATS header
// names are case-sensitive, and traceparent stays lower-case.
type headerCarrier nats.Header

func (c headerCarrier) Get(key string) string { return nats.Header(c).Get(key) }
func (c headerCarrier) Set(key, value string) { nats.Header(c).Set(key, value) }
func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

func messagingAttrs(subject string) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("messaging.system", "nats"),
		attribute.String("messaging.destination.name", subject),
	}
}

// startPublish starts the producer span of msg and writes its context
// into msg's headers. Its parent is the trace context msg already carries
// (an outbox row's, written when the row was queued), else ctx's.
func startPublish(ctx context.Context, msg *nats.Msg) trace.Span {
	prop := otel.GetTextMapPropagator()
	hc := headerCarrier(msg.Header)
	if hc.Get("traceparent") != "" {
		ctx = prop.Extract(ctx, hc)
	}
	ctx, span := otel.Tracer(tracerName).Start(ctx, "publish "+msg.Subject,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(append(messagingAttrs(msg.Subject), attribute.String("messaging.operation.type", "send"))...))
	prop.Inject(ctx, hc)
	return span
}

// MessageContext is ctx carrying the trace context of msg's headers: the
// parent for work done on msg's behalf.
func MessageContext(ctx context.Context, msg jetstream.Msg) context.Context {
	if msg.Headers() == nil {
		return ctx
	}
	return otel.GetTextMapPropagator().Extract(ctx, headerCarrier(msg.Headers()))
}

// startProcess starts the consumer span of msgs: a child of the first
// message's trace (one message: its own), linked to every message's, so a
// batch's effects (an outbox row queued for it) continue that trace.
func startProcess(ctx context.Context, durable string, msgs []jetstream.Msg) (context.Context, trace.Span) {
	parent := MessageContext(ctx, msgs[0])
	opts := []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(append(messagingAttrs(msgs[0].Subject()),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.consumer.group.name", durable),
			attribute.Int("messaging.batch.message_count", len(msgs)))...),
	}
	if len(msgs) > 1 {
		for _, m := range msgs {
			if sc := trace.SpanContextFromContext(MessageContext(ctx, m)); sc.IsValid() {
				opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
			}
		}
	}
	return otel.Tracer(tracerName).Start(parent, "process "+msgs[0].Subject(), opts...)
}

// endSpan ends span, marking it failed when err is not nil.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
