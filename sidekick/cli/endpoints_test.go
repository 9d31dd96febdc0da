package cli

import (
	"strings"
	"testing"

	"github.com/sidekickhq/sidekick/platform/bus/bustest"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
)

// TestFindsTheDevStackFromItsVariables: with the variables `sidekick dev`
// was started with (SIDEKICK_GRPC_ADDR, SIDEKICK_NATS_ADDR) and no
// --addr, --nats, SIDEKICK_ADDR or SIDEKICK_NATS_URL, the CLI reaches gRPC
// and NATS where the stack listens.
func TestFindsTheDevStackFromItsVariables(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an embedded NATS server")
	}
	h := newHarness(t)
	h.respond("ListConversations", &triagev1.ListConversationsResponse{})
	env := append(without(h.env, "SIDEKICK_ADDR"), "SIDEKICK_GRPC_ADDR="+h.addr)
	if _, err := runEnv(t, env, "", "conversations", "list"); err != nil {
		t.Fatalf("conversations list through SIDEKICK_GRPC_ADDR=%s: %v", h.addr, err)
	}
	if got := h.calls("ListConversations"); got != 1 {
		t.Fatalf("the fake served %d ListConversations calls, want 1", got)
	}

	srv, _ := bustest.StartJetStream(t)
	env = append(env, "SIDEKICK_NATS_ADDR="+strings.TrimPrefix(srv.URL(), "nats://"))
	if _, err := runEnv(t, env, "", "dlq", "list"); err != nil {
		t.Fatalf("dlq list through SIDEKICK_NATS_ADDR: %v", err)
	}
	// Nothing listens at the default NATS port in this test: without the
	// variable the same command fails, so the one above did use it.
	env = append(without(env, "SIDEKICK_NATS_ADDR"), "SIDEKICK_NATS_ADDR=127.0.0.1:1")
	if _, err := runEnv(t, env, "", "dlq", "list"); err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("dlq list against a NATS address nothing listens on: %v", err)
	}
}
