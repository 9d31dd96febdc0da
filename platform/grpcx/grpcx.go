// Package grpcx builds the gRPC servers and clients every service uses:
// grpc.health.v1 and reflection (so grpcurl works), logging and
// panic-recovery interceptors, and bearer-token authentication outside dev
// mode.
package grpcx

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
)

// ServerOptions configures NewServer.
type ServerOptions struct {
	Logger *slog.Logger
	// Token is the bearer token every call must carry. Empty is allowed only
	// with Insecure (dev mode) or mTLS; health and reflection need no token.
	Token string
	// Insecure disables authentication (dev mode only).
	Insecure bool
	// TLS enables TLS (with ClientAuth tls.RequireAndVerifyClientCert for
	// mTLS); see TLS.ServerConfig.
	TLS *tls.Config
	// OnPanic is called with every recovered panic (e.g. to report to Sentry).
	OnPanic func(p any)
	// Metrics, when set, counts and times every call (go-grpc-middleware's
	// Prometheus provider); register it on the process's registry.
	Metrics *grpcprom.ServerMetrics
	// StatsHandler, when set, sees every call: otelgrpc's server handler,
	// which traces them.
	StatsHandler stats.Handler
}

// Server is a gRPC server with its health service.
type Server struct {
	*grpc.Server
	Health *health.Server
}

// ErrNoToken is returned when authentication is required but no token is set.
var ErrNoToken = errors.New("grpc: SIDEKICK_GRPC_TOKEN is required outside dev mode")

// NewServer builds the server. Register services on it, then Serve.
func NewServer(o ServerOptions) (*Server, error) {
	// TLS without client certificates authenticates only the server: it
	// does not replace the token.
	mTLS := o.TLS != nil && o.TLS.ClientAuth == tls.RequireAndVerifyClientCert
	if o.Token == "" && !o.Insecure && !mTLS {
		return nil, ErrNoToken
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	rec := recovery.WithRecoveryHandler(func(p any) error {
		logger.Error("grpc handler panicked", "panic", fmt.Sprint(p))
		if o.OnPanic != nil {
			o.OnPanic(p)
		}
		return status.Error(codes.Internal, "internal error")
	})
	// Successful calls log at debug: at a thousand WhoIsOnCall calls a
	// second an info line each costs more than the call. Failures stay at
	// info and above.
	logOpts := []logging.Option{
		logging.WithLogOnEvents(logging.FinishCall),
		logging.WithLevels(func(c codes.Code) logging.Level {
			if c == codes.OK {
				return logging.LevelDebug
			}
			return logging.DefaultServerCodeToLevel(c)
		}),
	}
	var unary []grpc.UnaryServerInterceptor
	var stream []grpc.StreamServerInterceptor
	if o.Metrics != nil {
		// First, so a refused token or a panic is counted too.
		unary = append(unary, o.Metrics.UnaryServerInterceptor())
		stream = append(stream, o.Metrics.StreamServerInterceptor())
	}
	unary = append(unary,
		logging.UnaryServerInterceptor(interceptorLogger(logger), logOpts...),
		recovery.UnaryServerInterceptor(rec),
	)
	stream = append(stream,
		logging.StreamServerInterceptor(interceptorLogger(logger), logOpts...),
		recovery.StreamServerInterceptor(rec),
	)
	if !o.Insecure && o.Token != "" {
		authFn := tokenAuth(o.Token)
		unary = append(unary, auth.UnaryServerInterceptor(authFn))
		stream = append(stream, auth.StreamServerInterceptor(authFn))
	}
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
	}
	if o.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(o.TLS)))
	}
	if o.StatsHandler != nil {
		opts = append(opts, grpc.StatsHandler(o.StatsHandler))
	}
	s := grpc.NewServer(opts...)
	h := health.NewServer()
	healthpb.RegisterHealthServer(s, h)
	reflection.Register(s)
	return &Server{Server: s, Health: h}, nil
}

// NewHealthServer builds a plaintext server that serves only
// grpc.health.v1, answered by h: given the main server's Health, both say
// the same. It is the port the kubelet probes when the main port requires
// client certificates.
func NewHealthServer(h *health.Server) *Server {
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, h)
	return &Server{Server: s, Health: h}
}

// exempt lists services callable without a token: health probes from the
// kubelet and reflection for grpcurl.
func exempt(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/grpc.health.v1.Health/") ||
		strings.HasPrefix(fullMethod, "/grpc.reflection.")
}

func tokenAuth(want string) auth.AuthFunc {
	return func(ctx context.Context) (context.Context, error) {
		if method, ok := grpc.Method(ctx); ok && exempt(method) {
			return ctx, nil
		}
		got, err := auth.AuthFromMD(ctx, "bearer")
		if err != nil {
			return nil, err
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			return nil, status.Error(codes.Unauthenticated, "invalid bearer token")
		}
		return ctx, nil
	}
}

func interceptorLogger(l *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		l.Log(ctx, slog.Level(lvl), msg, fields...)
	})
}

// Serve runs s on lis until ctx is done, then stops gracefully within grace
// (forcing a stop after that).
func (s *Server) Serve(ctx context.Context, lis net.Listener, grace time.Duration, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Server.Serve(lis) }()
	logger.Info("grpc listening", "addr", lis.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("grpc serve: %w", err)
	case <-ctx.Done():
	}
	s.Health.Shutdown()
	done := make(chan struct{})
	go func() { s.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		s.Stop()
	}
	return nil
}

// DialOptions configures Dial.
type DialOptions struct {
	Token string
	// TLS, when set, is the client side of TLS (see TLS.ClientConfig). Its
	// ServerName, when set, replaces the host part of addr as the name the
	// server's certificate must carry.
	TLS *tls.Config
	// Roots, when set with TLS, gives the CA bundle to verify the server
	// against at each handshake, instead of TLS.RootCAs: a reconnection
	// after the bundle changed uses the new one (see TLS.ClientRoots).
	Roots func() (*x509.CertPool, error)
	// Metrics, when set, counts and times every call this connection makes.
	Metrics *grpcprom.ClientMetrics
	// StatsHandler, when set, sees every call: otelgrpc's client handler,
	// which traces them and sends the trace context along.
	StatsHandler stats.Handler
}

// Dial creates a client connection that sends the bearer token (if any) on
// every call. It does not block; the first call connects.
func Dial(addr string, o DialOptions) (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if o.TLS != nil {
		creds = credentials.NewTLS(o.TLS)
		if o.Roots != nil {
			creds = reloadingRoots{TransportCredentials: creds, config: o.TLS, roots: o.Roots}
		}
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if o.TLS != nil && o.TLS.ServerName != "" {
		// grpc sets the TLS server name from the authority, overriding
		// the config's: the override has to be the authority.
		opts = append(opts, grpc.WithAuthority(o.TLS.ServerName))
	}
	if o.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer{token: o.Token, secure: o.TLS != nil}))
	}
	if o.Metrics != nil {
		opts = append(opts, grpc.WithChainUnaryInterceptor(o.Metrics.UnaryClientInterceptor()),
			grpc.WithChainStreamInterceptor(o.Metrics.StreamClientInterceptor()))
	}
	if o.StatsHandler != nil {
		opts = append(opts, grpc.WithStatsHandler(o.StatsHandler))
	}
	cc, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("grpc dial %s: %w", addr, err)
	}
	return cc, nil
}

// reloadingRoots are TLS client credentials that verify each new
// connection's server against the roots as they are at its handshake;
// crypto/tls does the verification, name check included.
type reloadingRoots struct {
	credentials.TransportCredentials
	config *tls.Config
	roots  func() (*x509.CertPool, error)
}

func (r reloadingRoots) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	pool, err := r.roots()
	if err != nil {
		return nil, nil, err
	}
	c := r.config.Clone()
	c.RootCAs = pool
	return credentials.NewTLS(c).ClientHandshake(ctx, authority, raw)
}

func (r reloadingRoots) Clone() credentials.TransportCredentials {
	r.TransportCredentials = r.TransportCredentials.Clone()
	return r
}

type bearer struct {
	token  string
	secure bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearer) RequireTransportSecurity() bool { return b.secure }
