package bus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// maxErrorHeader bounds the error header; a stack of wrapped errors can be
// long and headers count against the message size limit.
const maxErrorHeader = 4096

// DeadLetter publishes data and hdr to support.deadletter.<service> with the
// error_location and error headers, and waits for the stream to store it.
// Ingest services call it directly for input they accepted but cannot
// normalize; the Consumer calls it for messages it gives up on.
//
// The original headers travel along (the CloudEvents ones included, so a
// dead letter can be replayed as it was) except NATS's own Nats-* headers.
// original_subject is set from subject. If the original is too large to
// carry with the added headers, the dead letter is stored without its data
// and with data_omitted set to the original size. The Nats-Msg-Id is derived from
// service, location and the original (its stream and sequence when hdr has
// original_stream and original_sequence, else its Nats-Msg-Id or ce-id, else
// subject and data), so dead-lettering the same input twice stores it once.
func DeadLetter(ctx context.Context, js jetstream.JetStream, service, location string, subject string, data []byte, hdr nats.Header, cause error) error {
	if cause == nil {
		cause = errors.New("unknown error")
	}
	h := make(nats.Header, len(hdr)+6)
	for k, v := range hdr {
		if strings.HasPrefix(strings.ToLower(k), "nats-") {
			continue
		}
		h[k] = append([]string(nil), v...)
	}
	h.Set(HeaderErrorLocation, headerValue(location, 512))
	h.Set(HeaderError, headerValue(cause.Error(), maxErrorHeader))
	if subject != "" {
		h.Set(HeaderOriginalSubject, subject)
	}
	id := deadLetterID(service, location, subject, data, hdr)
	h.Set(jetstream.MsgIDHeader, id)

	msg := &nats.Msg{Subject: DeadLetterSubject(service), Header: h, Data: data}
	_, err := js.PublishMsg(ctx, msg)
	if errors.Is(err, nats.ErrMaxPayload) {
		// The original with our headers no longer fits: keep the reason
		// rather than retry forever.
		h.Set(HeaderDataOmitted, strconv.Itoa(len(data)))
		msg.Data = nil
		_, err = js.PublishMsg(ctx, msg)
	}
	if err != nil {
		return fmt.Errorf("dead-letter %s from %s: %w", subject, location, err)
	}
	return nil
}

// DeadLetterDelivery dead-letters a message a durable consumer gives up
// on: its location is "<service>/<durable>" plus the cause's AtLocation,
// and original_stream, original_sequence (when known) and delivery_count
// say which delivery it was. It returns the location; the caller acks the
// message once it is stored, and retries it later when it is not.
func DeadLetterDelivery(ctx context.Context, js jetstream.JetStream, service, durable string, msg jetstream.Msg, stream string, seq, attempt uint64, cause error) (string, error) {
	location := service + "/" + durable
	if l := ErrorLocation(cause); l != "" {
		location += "/" + l
	}
	hdr := make(nats.Header, len(msg.Headers())+3)
	for k, v := range msg.Headers() {
		hdr[k] = v
	}
	hdr.Set(HeaderOriginalStream, stream)
	if seq > 0 {
		hdr.Set(HeaderOriginalSequence, strconv.FormatUint(seq, 10))
	}
	hdr.Set(HeaderDeliveryCount, strconv.FormatUint(attempt, 10))
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return location, DeadLetter(ctx, js, service, location, msg.Subject(), msg.Data(), hdr, cause)
}

// Nak hands msg back for redelivery after delay (at once when delay is 0).
func Nak(msg jetstream.Msg, delay time.Duration) error {
	if delay > 0 {
		return msg.NakWithDelay(delay)
	}
	return msg.Nak()
}

// deadLetterID names a dead letter after what failed where.
func deadLetterID(service, location, subject string, data []byte, hdr nats.Header) string {
	sum := sha256.New()
	for _, s := range []string{service, location} {
		sum.Write([]byte(s))
		sum.Write([]byte{0})
	}
	switch {
	case hdr.Get(HeaderOriginalStream) != "" && hdr.Get(HeaderOriginalSequence) != "":
		fmt.Fprintf(sum, "seq\x00%s\x00%s", hdr.Get(HeaderOriginalStream), hdr.Get(HeaderOriginalSequence))
	case hdr.Get(jetstream.MsgIDHeader) != "":
		fmt.Fprintf(sum, "id\x00%s\x00%s", subject, hdr.Get(jetstream.MsgIDHeader))
	case hdr.Get(HeaderID) != "":
		fmt.Fprintf(sum, "id\x00%s\x00%s", subject, hdr.Get(HeaderID))
	default:
		fmt.Fprintf(sum, "data\x00%s\x00", subject)
		sum.Write(data)
	}
	return "dl-" + hex.EncodeToString(sum.Sum(nil)[:16])
}

// headerValue makes s fit in one header line: no CR or LF, at most max
// bytes, cut at a rune boundary.
func headerValue(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
	if len(s) <= max {
		return s
	}
	cut := max - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
