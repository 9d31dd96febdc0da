// Package content keeps what does not fit in a NATS message: the large
// parts of inbound messages and the raw sources they came from (an email
// with its attachments), in the JetStream object store
// SUPPORT_INBOUND_CONTENT, with a reference in the message.
//
// A NATS server refuses a message over its max_payload (1 MB by default),
// far below what an ingest service admits (25 MiB of email). Such a
// publish fails the same way every time, so without this a sender was
// asked to retry forever. Now an ingest service calls Offload before it
// publishes: a message over InlineBytes is stored whole as an object and
// published as a stub (its text cut to a preview, with AttrRef naming the
// object), and whoever needs the content calls Resolve, which puts the
// whole message back.
//
// Objects live as long as the messages that refer to them: the bucket's
// TTL is the inbound stream's max age, so both go together. Nothing
// deletes an object sooner, because the stream keeps the message (and any
// subscriber may read it) until then. An object is named after the
// message id, so a retried publish rewrites the same object.
package content

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

// Bucket is the object store of inbound content.
const Bucket = "SUPPORT_INBOUND_CONTENT"

// Attributes set on a stub message.
const (
	// AttrRef names the object holding the whole message.
	AttrRef = "content_ref"
	// AttrTextBytes is the size of the whole text, of which the stub
	// carries a preview.
	AttrTextBytes = "text_bytes"
	// AttrRawRef names the object holding the raw source (an email's
	// RFC 5322 bytes, attachments included).
	AttrRawRef = "raw_ref"
)

// InlineBytes is the largest encoded message published as it is, well
// below NATS's default max_payload of 1 MiB (headers ride along).
const InlineBytes = 256 << 10

// Limits of a stub.
const (
	previewBytes   = 16 << 10
	maxStubAttr    = 1 << 10
	maxStubRefs    = 100
	maxStubAttach  = 100
	maxStubSubject = 1 << 10
)

// ErrTooLarge marks a message that is still over the limit after its
// content went to the object store: it can never be published, so the
// sender is told so (413, 552) rather than asked to retry.
var ErrTooLarge = errors.New("message too large to publish even with its content in the object store")

// Config configures the bucket.
type Config struct {
	// Replicas of the bucket, as for the streams.
	Replicas int
	// MaxAge is how long an object is kept: the inbound stream's max age.
	MaxAge time.Duration
	// MaxBytes bounds the bucket; 0 is unlimited. A full bucket refuses
	// new objects, and the sender is asked to retry.
	MaxBytes int64
}

// Ensure creates or updates the bucket.
func Ensure(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.ObjectStore, error) {
	maxBytes := cfg.MaxBytes
	if maxBytes <= 0 {
		maxBytes = -1
	}
	store, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      Bucket,
		Description: "Large inbound message content and raw sources, referred to from support.inbound messages",
		TTL:         cfg.MaxAge,
		MaxBytes:    maxBytes,
		Storage:     jetstream.FileStorage,
		Replicas:    max(cfg.Replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("create object store %s: %w", Bucket, err)
	}
	return store, nil
}

// Open opens the bucket, creating it when it is missing: where the NATS
// user may (dev mode); a service user may not, and its provision step made
// it with Ensure.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.ObjectStore, error) {
	store, err := js.ObjectStore(ctx, Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return Ensure(ctx, js, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("open object store %s: %w", Bucket, err)
	}
	return store, nil
}

// objectName is the name of one of a message's objects; the message id
// is hashed, since it comes from outside.
func objectName(messageID, kind string) string {
	sum := sha256.Sum256([]byte(messageID))
	return hex.EncodeToString(sum[:16]) + "/" + kind
}

// PutRaw stores a message's raw source and returns the object's name, to
// set as AttrRawRef.
func PutRaw(ctx context.Context, store jetstream.ObjectStore, messageID string, raw []byte) (string, error) {
	name := objectName(messageID, "raw")
	if _, err := store.PutBytes(ctx, name, raw); err != nil {
		return "", fmt.Errorf("store raw source of %s in %s: %w", messageID, Bucket, err)
	}
	return name, nil
}

// Offload returns m as it is when it is small enough to publish; otherwise
// it stores m whole in store and returns a stub that refers to it. m itself
// is not changed.
func Offload(ctx context.Context, store jetstream.ObjectStore, m *supportv1.InboundMessage) (*supportv1.InboundMessage, error) {
	if proto.Size(m) <= InlineBytes {
		return m, nil
	}
	data, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", m.GetId(), err)
	}
	name := objectName(m.GetId(), "message")
	if _, err := store.PutBytes(ctx, name, data); err != nil {
		return nil, fmt.Errorf("store %s in %s: %w", m.GetId(), Bucket, err)
	}
	stub := Stub(m)
	stub.Attributes[AttrRef] = name
	if proto.Size(stub) > InlineBytes {
		return nil, fmt.Errorf("%s: %w", m.GetId(), ErrTooLarge)
	}
	return stub, nil
}

// Stub is m with its text cut to a preview and every field bounded, for a
// subscriber that does not resolve the reference.
func Stub(m *supportv1.InboundMessage) *supportv1.InboundMessage {
	s := proto.Clone(m).(*supportv1.InboundMessage)
	s.Text = cut(m.GetText(), previewBytes)
	s.Subject = cut(m.GetSubject(), maxStubSubject)
	s.Attributes = map[string]string{AttrTextBytes: strconv.Itoa(len(m.GetText()))}
	for k, v := range m.GetAttributes() {
		if len(k)+len(v) <= maxStubAttr {
			s.Attributes[k] = v
		}
	}
	if n := len(s.References); n > maxStubRefs {
		s.References = s.References[n-maxStubRefs:]
	}
	if len(s.Attachments) > maxStubAttach {
		s.Attachments = s.Attachments[:maxStubAttach]
	}
	return s
}

// cut returns s cut to at most n bytes, on a UTF-8 boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Resolve replaces a stub with the whole message it refers to; a message
// without a reference is left as it is. An object that is gone (it
// outlived the bucket's TTL, or the bucket was removed) leaves the stub:
// its preview is what there is, and ErrGone says so.
func Resolve(ctx context.Context, js jetstream.JetStream, m *supportv1.InboundMessage) error {
	name := m.GetAttributes()[AttrRef]
	if name == "" {
		return nil
	}
	store, err := js.ObjectStore(ctx, Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return fmt.Errorf("%s: %w", m.GetId(), ErrGone)
	}
	if err != nil {
		return fmt.Errorf("open object store %s: %w", Bucket, err)
	}
	data, err := store.GetBytes(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("%s: object %s: %w", m.GetId(), name, ErrGone)
	}
	if err != nil {
		return fmt.Errorf("read %s of %s from %s: %w", name, m.GetId(), Bucket, err)
	}
	var whole supportv1.InboundMessage
	if err := proto.Unmarshal(data, &whole); err != nil {
		return fmt.Errorf("decode %s of %s: %w", name, m.GetId(), err)
	}
	if whole.GetId() != m.GetId() {
		return fmt.Errorf("object %s holds %s, not %s", name, whole.GetId(), m.GetId())
	}
	proto.Reset(m)
	proto.Merge(m, &whole)
	return nil
}

// ErrGone marks a reference whose object no longer exists.
var ErrGone = errors.New("content no longer in the object store")
