package cli

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sidekickhq/sidekick/platform/grpcx"
	"github.com/sidekickhq/sidekick/platform/tlstest"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
)

// TestTLS: against servers that require client certificates, the CLI
// connects with the same SIDEKICK_GRPC_TLS_* variables as the services, or
// the --tls-* flags, and says what is wrong when TLS fails.
func TestTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "sidekick CA")
	srv := ca.WriteFiles(t, "rotation", "rotation.sidekick.svc")
	tl, err := grpcx.LoadTLS(grpcx.TLSFiles{Cert: srv.Cert, Key: srv.Key, CA: srv.CAFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := tl.ServerConfig()
	if err != nil {
		t.Fatal(err)
	}
	s, err := grpcx.NewServer(grpcx.ServerOptions{Token: "s3cret", TLS: cfg})
	if err != nil {
		t.Fatal(err)
	}
	rotationv1.RegisterRotationServiceServer(s, &teamsOnly{teams: []*rotationv1.Team{{Id: "platform", Name: "Platform"}}})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Serve(ctx, lis, time.Second, nil); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	// Through a port-forward: the address is 127.0.0.1, the certificate
	// names the service.
	cli := ca.WriteFiles(t, "operator")
	base := []string{"SIDEKICK_ADDR=" + lis.Addr().String(), "SIDEKICK_GRPC_TOKEN=s3cret", "USER=test"}
	run := func(env []string, args ...string) (string, error) {
		var out bytes.Buffer
		err := Run(context.Background(), append(args, "--rpc-timeout", "5s"), IO{Stdout: &out, Stderr: &discardWriter{}, Environ: append(base, env...)})
		return out.String(), err
	}

	out, err := run([]string{
		"SIDEKICK_GRPC_TLS_CERT=" + cli.Cert, "SIDEKICK_GRPC_TLS_KEY=" + cli.Key,
		"SIDEKICK_GRPC_TLS_CA=" + cli.CAFile, "SIDEKICK_GRPC_TLS_SERVER_NAME=rotation.sidekick.svc",
	}, "teams")
	if err != nil || !strings.Contains(out, "Platform") {
		t.Fatalf("teams with the SIDEKICK_GRPC_TLS_* variables: %v\n%s", err, out)
	}
	out, err = run(nil, "teams", "--tls-cert", cli.Cert, "--tls-key", cli.Key, "--tls-ca", cli.CAFile, "--tls-server-name", "rotation.sidekick.svc")
	if err != nil || !strings.Contains(out, "Platform") {
		t.Fatalf("teams with the --tls-* flags: %v\n%s", err, out)
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no client certificate", []string{"--tls-ca", cli.CAFile, "--tls-server-name", "rotation.sidekick.svc"}, "unavailable"},
		{"wrong server name", []string{"--tls-cert", cli.Cert, "--tls-key", cli.Key, "--tls-ca", cli.CAFile}, "TLS failed: see --tls-ca"},
		{"plaintext", nil, "if the servers use TLS, set --tls-ca"},
		{"certificate without key", []string{"--tls-cert", cli.Cert, "--tls-ca", cli.CAFile}, "--tls-cert and --tls-key (SIDEKICK_GRPC_TLS_CERT, SIDEKICK_GRPC_TLS_KEY)"},
		{"CA bundle missing", []string{"--tls-ca", cli.CAFile + ".missing"}, "--tls-ca (SIDEKICK_GRPC_TLS_CA)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := run(nil, append([]string{"teams"}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error with %q, got %v", tc.want, err)
			}
		})
	}
}
