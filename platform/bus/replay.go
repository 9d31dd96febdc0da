package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Replaying ingest-level dead letters.
//
// An ingest service that accepted a provider's request but could not turn
// it into a message dead-letters the request itself (the Slack event JSON,
// the GitHub or Sentry webhook body, the raw email), with
// HeaderRawRequest naming the service. Publishing that again on
// support.inbound.<channel> would only have triage dead-letter it once
// more: it is not an InboundMessage. It is replayed through the ingest
// service that wrote it instead: a core NATS request on
// ReplaySubject(service), which every running replica serves
// ([ServeReplay]); the service runs the request through its normaliser
// with its own configuration and publishes the result as it would have,
// or answers why it cannot ([RequestReplay] returns that reason).

const (
	// HeaderRawRequest on a dead letter names the ingest service whose
	// normaliser replays its data, a provider's raw request.
	HeaderRawRequest = "raw_request"
	// HeaderReplayRefused on the answer to a replay request says why the
	// service could not replay it; absent when it did.
	HeaderReplayRefused = "replay_refused"
)

// ReplaySubject is the core NATS subject on which service replays raw
// requests.
func ReplaySubject(service string) string { return "sidekick.replay." + service }

// ReplayFunc runs one raw request (a dead letter's data and headers)
// through a service's normaliser and publishes what it makes; the error
// says why it cannot.
type ReplayFunc func(ctx context.Context, data []byte, hdr nats.Header) error

// ServeReplay answers replay requests for service on nc, each within
// timeout of ctx, until the returned subscription is drained. Replicas
// share the work (one queue group per service).
func ServeReplay(ctx context.Context, nc *nats.Conn, service string, timeout time.Duration, replay ReplayFunc) (*nats.Subscription, error) {
	sub, err := nc.QueueSubscribe(ReplaySubject(service), service, func(m *nats.Msg) {
		rctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		resp := nats.NewMsg(m.Reply)
		if err := replay(rctx, m.Data, m.Header); err != nil {
			resp.Header.Set(HeaderReplayRefused, headerValue(err.Error(), maxErrorHeader))
		}
		_ = m.RespondMsg(resp)
	})
	if err != nil {
		return nil, fmt.Errorf("serve replays of %s: %w", service, err)
	}
	// The server knows the subscription once the flush returns: a replay
	// requested from another connection right after finds a responder.
	if err := nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("serve replays of %s: %w", service, err)
	}
	return sub, nil
}

// ErrNoReplayer is returned (wrapped) by RequestReplay when no replica of
// the service is running to replay through.
var ErrNoReplayer = errors.New("no replica of the service is running to replay it through")

// ErrReplayRefused is returned (wrapped, with the service's reason) by
// RequestReplay when the service could not replay the request.
var ErrReplayRefused = errors.New("replay refused")

// RequestReplay asks service to replay a raw request and waits for its
// answer (bounded by ctx).
func RequestReplay(ctx context.Context, nc *nats.Conn, service string, data []byte, hdr nats.Header) error {
	h := nats.Header{}
	for k, v := range hdr {
		if !strings.HasPrefix(strings.ToLower(k), "nats-") {
			h[k] = v
		}
	}
	resp, err := nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: ReplaySubject(service), Header: h, Data: data})
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("%s: %w", service, ErrNoReplayer)
	case err != nil:
		return fmt.Errorf("replay through %s: %w", service, err)
	}
	if reason := resp.Header.Get(HeaderReplayRefused); reason != "" {
		return fmt.Errorf("%s: %w: %s", service, ErrReplayRefused, reason)
	}
	return nil
}
