package bus

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
)

// Event is one message to publish.
type Event struct {
	// Subject, such as InboundSubject("slack"); required.
	Subject string
	// ID is the CloudEvents id and the Nats-Msg-Id; required. Derive it from
	// the source's own delivery id so a retried delivery is dropped as a
	// duplicate.
	ID string
	// Type is ce-type; default: the proto full name of Message.
	Type string
	// Time is ce-time; default: the publisher's clock.
	Time time.Time
	// Message is encoded with proto.Marshal.
	Message proto.Message
	// Data is an already encoded protobuf payload, used when Message is nil
	// (by an outbox relay, say); Type is then required.
	Data []byte
	// Header holds optional extra headers; the CloudEvents headers and
	// Nats-Msg-Id set by the publisher take precedence.
	Header nats.Header
}

// Publisher publishes Events with CloudEvents binary-mode headers and waits
// for JetStream's acknowledgement. It is safe for concurrent use.
type Publisher struct {
	js      jetstream.JetStream
	source  string
	now     func() time.Time
	reg     prometheus.Registerer
	metrics *publishMetrics
}

// PublisherOption configures a Publisher.
type PublisherOption func(*Publisher)

// WithClock sets the clock that stamps ce-time when an Event has no Time.
func WithClock(now func() time.Time) PublisherOption {
	return func(p *Publisher) { p.now = now }
}

// WithRegisterer registers the publisher's metrics on reg. Publishers may
// share a registry.
func WithRegisterer(reg prometheus.Registerer) PublisherOption {
	return func(p *Publisher) { p.reg = reg }
}

// NewPublisher returns a Publisher; source is the ce-source, such as
// "sidekick/ingest-slack". It panics if the metrics conflict with other
// collectors already on the registry, which is a programming error.
func NewPublisher(js jetstream.JetStream, source string, opts ...PublisherOption) *Publisher {
	p := &Publisher{js: js, source: source, now: time.Now}
	for _, o := range opts {
		o(p)
	}
	m, err := newPublishMetrics(p.reg)
	if err != nil {
		panic(err)
	}
	p.metrics = m
	return p
}

// Msg builds the NATS message Publish would send for e: payload, the
// CloudEvents headers and Nats-Msg-Id.
func (p *Publisher) Msg(e Event) (*nats.Msg, error) {
	if e.Subject == "" {
		return nil, errors.New("event has no subject")
	}
	if e.ID == "" {
		return nil, fmt.Errorf("event on %s has no id", e.Subject)
	}
	data, typ := e.Data, e.Type
	if e.Message != nil {
		var err error
		if data, err = proto.Marshal(e.Message); err != nil {
			return nil, fmt.Errorf("encode %s event %s: %w", e.Subject, e.ID, err)
		}
		if typ == "" {
			typ = string(proto.MessageName(e.Message))
		}
	} else if typ == "" {
		return nil, fmt.Errorf("event %s on %s has neither a message nor a type", e.ID, e.Subject)
	}
	at := e.Time
	if at.IsZero() {
		at = p.now()
	}
	h := make(nats.Header, len(e.Header)+7)
	for k, v := range e.Header {
		h[k] = append([]string(nil), v...)
	}
	// The seven values share one array: one allocation instead of seven.
	vals := [...]string{SpecVersion, typ, p.source, e.ID, at.UTC().Format(time.RFC3339Nano), ContentTypeProtobuf, e.ID}
	for i, k := range [...]string{HeaderSpecVersion, HeaderType, HeaderSource, HeaderID, HeaderTime, HeaderContentType, jetstream.MsgIDHeader} {
		h[k] = vals[i : i+1 : i+1]
	}
	return &nats.Msg{Subject: e.Subject, Header: h, Data: data}, nil
}

// Publish sends e and returns only after JetStream stored it (or
// recognised it as a duplicate: ack.Duplicate). An error means the event
// may not be stored; publishing it again with the same ID is safe.
func (p *Publisher) Publish(ctx context.Context, e Event) (*jetstream.PubAck, error) {
	msg, err := p.Msg(e)
	if err != nil {
		p.metrics.errors.WithLabelValues(e.Subject).Inc()
		return nil, fmt.Errorf("publish: %w", err)
	}
	ack, err := p.js.PublishMsg(ctx, msg)
	if err != nil {
		p.metrics.errors.WithLabelValues(e.Subject).Inc()
		return nil, fmt.Errorf("publish %s event %s: %w", e.Subject, e.ID, err)
	}
	p.metrics.published.WithLabelValues(e.Subject).Inc()
	return ack, nil
}

// DefaultPublishTimeout bounds a batch publish whose context has no
// deadline.
const DefaultPublishTimeout = 10 * time.Second

// PublishAll sends events without waiting between them and then waits for
// every acknowledgement; acks[i] belongs to events[i] and is nil where that
// event failed. The error joins every failure. Use it to relay a batch, as
// an outbox does: it costs one round trip instead of one per event.
func (p *Publisher) PublishAll(ctx context.Context, events []Event) ([]*jetstream.PubAck, error) {
	// An ack lost in a leader change never arrives: without a deadline
	// the caller (an outbox relay holding a transaction) would wait forever.
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultPublishTimeout)
		defer cancel()
	}
	acks := make([]*jetstream.PubAck, len(events))
	futures := make([]jetstream.PubAckFuture, len(events))
	var errs []error
	fail := func(i int, err error) {
		p.metrics.errors.WithLabelValues(events[i].Subject).Inc()
		errs = append(errs, fmt.Errorf("publish %s event %s: %w", events[i].Subject, events[i].ID, err))
	}
	for i, e := range events {
		msg, err := p.Msg(e)
		if err != nil {
			fail(i, err)
			continue
		}
		if futures[i], err = p.js.PublishMsgAsync(msg); err != nil {
			fail(i, err)
		}
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case ack := <-f.Ok():
			acks[i] = ack
			p.metrics.published.WithLabelValues(events[i].Subject).Inc()
		case err := <-f.Err():
			fail(i, err)
		case <-ctx.Done():
			fail(i, ctx.Err())
		}
	}
	return acks, errors.Join(errs...)
}

// ErrContentType is returned by Decode for a message that is not
// application/protobuf.
var ErrContentType = errors.New("unexpected content-type")

// Decode unmarshals msg's data into m after checking that its content-type
// is application/protobuf. Its errors are Permanent: a payload that does
// not decode now never will, so the consumer dead-letters it at once.
func Decode(msg jetstream.Msg, m proto.Message) error {
	ct := msg.Headers().Get(HeaderContentType)
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != ContentTypeProtobuf {
		return Permanent(fmt.Errorf("decode %s: %w %q, want %s", msg.Subject(), ErrContentType, ct, ContentTypeProtobuf))
	}
	if err := proto.Unmarshal(msg.Data(), m); err != nil {
		return Permanent(fmt.Errorf("decode %s as %s: %w", msg.Subject(), proto.MessageName(m), err))
	}
	return nil
}
