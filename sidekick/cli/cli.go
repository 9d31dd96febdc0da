// Package cli is the `sidekick` operator command: the all-in-one dev stack
// and the commands people and scripts use against a running Sidekick.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/sidekickhq/sidekick/platform/buildinfo"
	"github.com/sidekickhq/sidekick/platform/config"
	"github.com/sidekickhq/sidekick/platform/grpcx"
	"github.com/sidekickhq/sidekick/sidekick/devstack"
)

// Env is the slice of the environment the CLI reads. Addr and NATSURL,
// when unset, come from the variables `sidekick dev` listens on
// (devstack.ClientEndpoints), so a dev stack moved to other ports is found
// with the same environment.
type Env struct {
	Addr         string `env:"SIDEKICK_ADDR"`
	TriageAddr   string `env:"SIDEKICK_TRIAGE_ADDR"`
	RotationAddr string `env:"SIDEKICK_ROTATION_ADDR"`
	NotifierAddr string `env:"SIDEKICK_NOTIFIER_ADDR"`
	Token        string `env:"SIDEKICK_GRPC_TOKEN"`
	NATSURL      string `env:"SIDEKICK_NATS_URL"`
	// NATS authentication and TLS, as the services read them: outside dev
	// mode the admin user's NKey seed (or a credentials file), and the CA
	// bundle of servers that speak TLS.
	NATSNKeySeed string `env:"SIDEKICK_NATS_NKEY_SEED"`
	NATSCreds    string `env:"SIDEKICK_NATS_CREDS"`
	NATSTLSCA    string `env:"SIDEKICK_NATS_TLS_CA"`
	// gRPC TLS, as the services read it (see platform/app.Common).
	TLSCert       string `env:"SIDEKICK_GRPC_TLS_CERT"`
	TLSKey        string `env:"SIDEKICK_GRPC_TLS_KEY"`
	TLSCA         string `env:"SIDEKICK_GRPC_TLS_CA"`
	TLSServerName string `env:"SIDEKICK_GRPC_TLS_SERVER_NAME"`
}

// IO carries the streams and the environment, so commands never read the
// process's globals.
type IO struct {
	Stdout  io.Writer
	Stderr  io.Writer
	Stdin   io.Reader
	Environ []string
}

// root holds what every subcommand shares.
type root struct {
	io      IO
	env     Env
	addr    string
	token   string
	natsURL string
	timeout time.Duration
	tls     grpcx.TLSFiles
}

// Run executes the command line args (without the program name).
func Run(ctx context.Context, args []string, io IO) error {
	var env Env
	if err := config.Load(&env, io.Environ); err != nil {
		return err
	}
	ends := devstack.ClientEndpoints(config.Map(io.Environ))
	env.Addr, env.NATSURL = ends.GRPCAddr, ends.NATSURL
	r := &root{io: io, env: env}
	cmd := &cobra.Command{
		Use:   "sidekick",
		Short: "Sidekick routes customer support to the engineer on duty",
		Long: `Sidekick routes customer support to the engineer on duty.

Run the whole system locally with 'sidekick dev'. The other commands talk to
a running Sidekick over gRPC (--addr, SIDEKICK_ADDR) with the bearer token in
SIDEKICK_GRPC_TOKEN (and TLS when the servers use it: --tls-ca, --tls-cert,
--tls-key), or to NATS (--nats, SIDEKICK_NATS_URL). Without those, they
find 'sidekick dev' where it listens: SIDEKICK_GRPC_ADDR and
SIDEKICK_NATS_ADDR, or their defaults 127.0.0.1:9090 and 127.0.0.1:4222.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildinfo.String(),
	}
	cmd.SetArgs(args)
	cmd.SetOut(io.Stdout)
	cmd.SetErr(io.Stderr)
	cmd.SetIn(io.Stdin)
	cmd.PersistentFlags().StringVar(&r.addr, "addr", env.Addr, "gRPC address of Sidekick (env SIDEKICK_ADDR, else SIDEKICK_GRPC_ADDR)")
	cmd.PersistentFlags().StringVar(&r.natsURL, "nats", env.NATSURL, "NATS URL (env SIDEKICK_NATS_URL, else nats://SIDEKICK_NATS_ADDR)")
	cmd.PersistentFlags().DurationVar(&r.timeout, "rpc-timeout", 10*time.Second, "timeout of each gRPC call")
	cmd.PersistentFlags().StringVar(&r.tls.CA, "tls-ca", env.TLSCA, "CA bundle (PEM) that verifies the gRPC servers; turns TLS on (env SIDEKICK_GRPC_TLS_CA)")
	cmd.PersistentFlags().StringVar(&r.tls.Cert, "tls-cert", env.TLSCert, "client certificate (PEM) for servers that require one (mTLS); with --tls-key (env SIDEKICK_GRPC_TLS_CERT)")
	cmd.PersistentFlags().StringVar(&r.tls.Key, "tls-key", env.TLSKey, "private key (PEM) of --tls-cert (env SIDEKICK_GRPC_TLS_KEY)")
	cmd.PersistentFlags().StringVar(&r.tls.ServerName, "tls-server-name", env.TLSServerName, "name expected in the server's certificate instead of the --addr host, e.g. through a port-forward (env SIDEKICK_GRPC_TLS_SERVER_NAME)")
	r.token = env.Token
	cmd.AddCommand(
		r.devCmd(),
		r.consoleCmd(),
		r.conversationsCmd(),
		r.oncallCmd(),
		r.applyCmd(),
		r.eventsCmd(),
		r.dlqCmd(),
		r.customersCmd(),
		r.reportCmd(),
		r.shiftsCmd(),
		r.overrideCmd(),
		r.overridesCmd(),
		r.swapCmd(),
		r.peopleCmd(),
		r.teamsCmd(),
		r.ackCmd(),
		r.notifyCmd(),
		r.notificationCmd(),
		r.githubCmd(),
		r.natsKeysCmd(),
	)
	return cmd.ExecuteContext(ctx)
}

// dial returns a connection that sends each call to the address of the
// service serving it (see router). Connections open on first use.
func (r *root) dial() (*router, error) {
	tl, err := grpcx.LoadTLS(r.tls, nil)
	switch {
	case errors.Is(err, grpcx.ErrTLSKeyPair):
		return nil, fmt.Errorf("--tls-cert and --tls-key (SIDEKICK_GRPC_TLS_CERT, SIDEKICK_GRPC_TLS_KEY): %w", err)
	case errors.Is(err, grpcx.ErrTLSCA):
		return nil, fmt.Errorf("--tls-ca (SIDEKICK_GRPC_TLS_CA): %w", err)
	case err != nil:
		return nil, err
	}
	rt := &router{token: r.token, tls: tl.ClientConfig(), fallback: r.addr, addrs: map[string]string{}}
	if r.addr == r.env.Addr { // --addr not given on the command line
		rt.addrs["sidekick.triage.v1"] = r.env.TriageAddr
		rt.addrs["sidekick.rotation.v1"] = r.env.RotationAddr
		rt.addrs["sidekick.notify.v1"] = r.env.NotifierAddr
	}
	return rt, nil
}

// call bounds one RPC.
func (r *root) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.timeout)
}

// protoJSON renders a message as compact protobuf JSON.
func protoJSON(m proto.Message) json.RawMessage {
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return json.RawMessage(fmt.Sprintf("{\"error\":%q}", err.Error()))
	}
	return b
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
