package content_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/sidekickhq/sidekick/platform/bus/bustest"
	"github.com/sidekickhq/sidekick/platform/content"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

func TestStubIsBoundedAndValidUTF8(t *testing.T) {
	refs := make([]string, 5000)
	for i := range refs {
		refs[i] = strings.Repeat("r", 200)
	}
	m := &supportv1.InboundMessage{
		Id: "email:x", Subject: strings.Repeat("é", 10_000), Text: strings.Repeat("ü", 1_000_000),
		Attributes: map[string]string{"quoted_text": strings.Repeat("q", 1_000_000), "recipients": "hey@example.com"},
		References: refs,
	}
	s := content.Stub(m)
	if proto.Size(s) > content.InlineBytes || !utf8.ValidString(s.GetText()) || !utf8.ValidString(s.GetSubject()) {
		t.Fatalf("stub of %d bytes, valid text %v", proto.Size(s), utf8.ValidString(s.GetText()))
	}
	if s.GetAttributes()["recipients"] != "hey@example.com" || s.GetAttributes()["quoted_text"] != "" || s.GetAttributes()[content.AttrTextBytes] != "2000000" {
		t.Fatalf("stub attributes %v", s.GetAttributes())
	}
	if m.GetText() == s.GetText() || len(m.GetReferences()) != 5000 {
		t.Fatal("Stub changed the message it was given")
	}
}

func TestOffloadAndResolve(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an embedded NATS server")
	}
	ctx := context.Background()
	_, js := bustest.StartJetStream(t)
	store, err := content.Ensure(ctx, js, content.Config{MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	small := &supportv1.InboundMessage{Id: "email:small", Text: "hello"}
	if got, err := content.Offload(ctx, store, small); err != nil || got != small {
		t.Fatalf("a small message is published as it is: %v", err)
	}
	large := &supportv1.InboundMessage{Id: "email:large", Text: strings.Repeat("log line\n", 300_000), Attributes: map[string]string{}}
	stub, err := content.Offload(ctx, store, large)
	if err != nil || stub.GetAttributes()[content.AttrRef] == "" {
		t.Fatalf("offload: %v %v", err, stub.GetAttributes())
	}
	if err := content.Resolve(ctx, js, stub); err != nil || !proto.Equal(stub, large) {
		t.Fatalf("resolve: %v; whole message back: %v", err, proto.Equal(stub, large))
	}
	if err := content.Resolve(ctx, js, small); err != nil {
		t.Fatalf("resolving a message without a reference: %v", err)
	}
	gone := content.Stub(large)
	gone.Attributes[content.AttrRef] = "nothing/here"
	if err := content.Resolve(ctx, js, gone); !errors.Is(err, content.ErrGone) || gone.GetText() == "" {
		t.Fatalf("a missing object: %v, text kept %v", err, gone.GetText() != "")
	}
}
