package app

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/bus/bustest"
	"github.com/sidekickhq/sidekick/platform/natsauth"
)

// blocks is a service that runs until it is stopped.
type blocks struct{}

func (blocks) Run(ctx context.Context) error { <-ctx.Done(); return nil }

// TestNATSNeedsAuthenticationOutsideDev: a service refuses to connect to
// NATS anonymously unless in dev mode, naming the variable; a NATS TLS
// mistake is named too. Neither gets as far as connecting.
func TestNATSNeedsAuthenticationOutsideDev(t *testing.T) {
	spec := Spec{Name: "ingest-test", Build: never}
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{nil, "SIDEKICK_NATS_NKEY_SEED"},
		{[]string{"SIDEKICK_NATS_NKEY_SEED=/s", "SIDEKICK_NATS_CREDS=/c"}, "SIDEKICK_NATS_CREDS"},
		{[]string{"SIDEKICK_NATS_NKEY_SEED=/s", "SIDEKICK_NATS_TLS_CERT=/tls.crt"}, "SIDEKICK_NATS_TLS_KEY"},
		{[]string{"SIDEKICK_NATS_NKEY_SEED=/s", "SIDEKICK_NATS_TLS_CA=/missing.crt"}, "SIDEKICK_NATS_TLS_CA"},
	} {
		env := append([]string{"SIDEKICK_NATS_URL=nats://127.0.0.1:1"}, tc.env...)
		err := MainIO(context.Background(), spec, nil, env, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: want an error naming %s, got %v", tc.env, tc.want, err)
		}
	}
}

// TestServiceUserStartsOnProvisionedStreams: a service connecting as its
// own NATS user, which may not create streams, refuses to start while a
// stream is missing and says to run its provision step; `provision` as the
// admin user makes the streams and the service's own (Spec.Provision);
// the service then starts under its own user.
func TestServiceUserStartsOnProvisionedStreams(t *testing.T) {
	srv, users := bustest.StartWithUsers(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, admin := srv.ConnectAs(t, users, natsauth.Admin)
	if err := admin.DeleteStream(ctx, bus.StreamConversations); err != nil {
		t.Fatal(err)
	}
	provisioned := false
	spec := Spec{Name: "ingest-slack", Build: func(context.Context, *Kit) (Service, error) { return blocks{}, nil },
		Provision: func(ctx context.Context, k *Kit) error {
			provisioned = k.Name == "ingest-slack" && k.JS != nil
			return nil
		}}
	base := []string{"SIDEKICK_NATS_URL=" + srv.URL(), "SIDEKICK_HTTP_ADDR=127.0.0.1:0", "SIDEKICK_SHUTDOWN_TIMEOUT=1s"}
	asService := append([]string{"SIDEKICK_NATS_NKEY_SEED=" + users.SeedFile("ingest-slack")}, base...)

	err := (&Host{Specs: []Spec{spec}, Environ: asService, Logs: &bytes.Buffer{}}).Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "SUPPORT_CONVERSATIONS is missing") || !strings.Contains(err.Error(), "ingest-slack provision") {
		t.Fatalf("start with a stream missing: want an error naming it and the provision step, got %v", err)
	}
	short, stop := context.WithTimeout(ctx, 2*time.Second)
	defer stop()
	if err := MainIO(short, spec, []string{"provision"}, asService, &bytes.Buffer{}); err == nil {
		t.Fatal("provision as the service's own user: succeeded, want refused")
	}
	asAdmin := append([]string{"SIDEKICK_NATS_NKEY_SEED=" + users.SeedFile(natsauth.Admin)}, base...)
	if err := MainIO(ctx, spec, []string{"provision"}, asAdmin, &bytes.Buffer{}); err != nil {
		t.Fatalf("provision as the admin user: %v", err)
	}
	if !provisioned {
		t.Error("provision did not run the spec's own Provision")
	}
	ready := make(chan struct{})
	h := &Host{Specs: []Spec{spec}, Environ: asService, Logs: &bytes.Buffer{}, Ready: func() { close(ready) }}
	done := runHost(t, h)
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("start after provisioning: %v", err)
	case <-ctx.Done():
		t.Fatal("the service did not start after provisioning")
	}
}
