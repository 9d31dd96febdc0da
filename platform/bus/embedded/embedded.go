// Package embedded starts an in-process NATS server with JetStream, for
// the all-in-one dev stack and for tests.
package embedded

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Config describes the server to start.
type Config struct {
	// Host to listen on; default 127.0.0.1.
	Host string
	// Port to listen on: -1 picks a random free port, 0 means NATS's
	// default 4222.
	Port int
	// StoreDir holds JetStream's files; required.
	StoreDir string
	// ServerName names the server; default "sidekick-embedded". Each
	// member of a cluster needs its own.
	ServerName string
	// Cluster joins other servers; nil runs standalone.
	Cluster *Cluster
	// MaxMemory and MaxStore limit JetStream's memory and file use in
	// bytes; 0 lets the server choose.
	MaxMemory, MaxStore int64
	// ReadyTimeout bounds the wait for the server to accept clients;
	// default 10s.
	ReadyTimeout time.Duration
	// Logger receives the server's log; nil discards it.
	Logger *slog.Logger
	// ConfigFile is a nats-server configuration file applied over the
	// settings above: natsauth's users (Keys.WriteServerConfig), say.
	ConfigFile string
	// TLS, when set, makes the client port speak only TLS; with ClientCAs
	// set, it requires client certificates.
	TLS *tls.Config
}

// Cluster is the clustering part of Config.
type Cluster struct {
	// Name of the cluster, the same on every member; required.
	Name string
	// Host and Port to listen for routes on; Port -1 picks a random one.
	Host string
	Port int
	// Routes are the other members, e.g. "nats-route://127.0.0.1:6222".
	Routes []string
}

// Options translates cfg into nats-server options.
func Options(cfg Config) (*server.Options, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("embedded nats: StoreDir is required")
	}
	o := &server.Options{
		ServerName:         cfg.ServerName,
		Host:               cfg.Host,
		Port:               cfg.Port,
		JetStream:          true,
		StoreDir:           cfg.StoreDir,
		JetStreamMaxMemory: cfg.MaxMemory,
		JetStreamMaxStore:  cfg.MaxStore,
		NoSigs:             true,
		NoLog:              cfg.Logger == nil,
	}
	if cfg.ConfigFile != "" {
		if err := o.ProcessConfigFile(cfg.ConfigFile); err != nil {
			return nil, fmt.Errorf("embedded nats: configuration: %w", err)
		}
	}
	if cfg.TLS != nil {
		o.TLS, o.TLSConfig, o.TLSTimeout = true, cfg.TLS, 5
		o.TLSVerify = cfg.TLS.ClientAuth == tls.RequireAndVerifyClientCert
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.ServerName == "" {
		o.ServerName = "sidekick-embedded"
	}
	if c := cfg.Cluster; c != nil {
		if c.Name == "" {
			return nil, errors.New("embedded nats: Cluster.Name is required")
		}
		o.Cluster = server.ClusterOpts{Name: c.Name, Host: c.Host, Port: c.Port}
		if o.Cluster.Host == "" {
			o.Cluster.Host = o.Host
		}
		for _, r := range c.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("embedded nats: route %q: %w", r, err)
			}
			o.Routes = append(o.Routes, u)
		}
	}
	return o, nil
}

// Start starts a server with JetStream enabled and returns once it accepts
// clients. Stop it with Shutdown and WaitForShutdown.
func Start(cfg Config) (*server.Server, error) {
	opts, err := Options(cfg)
	if err != nil {
		return nil, err
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: new server: %w", err)
	}
	if cfg.Logger != nil {
		l := cfg.Logger.With("component", "nats-server")
		s.SetLoggerV2(logAdapter{l}, l.Enabled(context.Background(), slog.LevelDebug), false, false)
	}
	go s.Start()
	timeout := cfg.ReadyTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	if !s.ReadyForConnections(timeout) {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, fmt.Errorf("embedded nats: not ready for connections on %s:%d after %s", opts.Host, opts.Port, timeout)
	}
	if !s.JetStreamEnabled() {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, fmt.Errorf("embedded nats: JetStream did not start (store %s)", cfg.StoreDir)
	}
	return s, nil
}

// logAdapter sends the server's log to slog.
type logAdapter struct{ l *slog.Logger }

func (a logAdapter) Noticef(format string, v ...any) { a.l.Info(fmt.Sprintf(format, v...)) }
func (a logAdapter) Warnf(format string, v ...any)   { a.l.Warn(fmt.Sprintf(format, v...)) }
func (a logAdapter) Fatalf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a logAdapter) Errorf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a logAdapter) Debugf(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a logAdapter) Tracef(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }
