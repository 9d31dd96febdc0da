package bus

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Connect dials NATS and returns the connection and a JetStream handle.
//
// The connection reconnects forever and logs disconnects, reconnects and
// asynchronous errors on logger, naming servers by their redacted URL, never
// credentials. While no server answers the first dial, Connect keeps trying
// until ctx is done; other failures (bad credentials, a malformed URL)
// return at once. opts are applied after Connect's own and may override
// them.
func Connect(ctx context.Context, url, name string, logger *slog.Logger, opts ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("nats_name", name)
	all := append([]nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err != nil {
				logger.Warn("nats disconnected", "error", err)
				return
			}
			logger.Info("nats disconnected")
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			logger.Info("nats reconnected", "server", nc.ConnectedUrlRedacted())
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			logger.Info("nats connection closed")
		}),
		nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
			attrs := []any{"error", err}
			if sub != nil {
				attrs = append(attrs, "subject", sub.Subject)
			}
			logger.Error("nats async error", attrs...)
		}),
	}, opts...)

	shown := RedactURL(url)
	wait := 250 * time.Millisecond
	for {
		nc, err := nats.Connect(url, all...)
		if err == nil {
			js, err := jetstream.New(nc)
			if err != nil {
				nc.Close()
				return nil, nil, fmt.Errorf("jetstream for %s: %w", shown, err)
			}
			logger.Info("nats connected", "server", nc.ConnectedUrlRedacted())
			return nc, js, nil
		}
		if !retryableDial(err) {
			return nil, nil, fmt.Errorf("connect to nats %s: %w", shown, err)
		}
		logger.Warn("nats not reachable, retrying", "server", shown, "error", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, fmt.Errorf("connect to nats %s: %w (%w)", shown, ctx.Err(), err)
		case <-t.C:
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// ClientAuth is how a process proves who it is to NATS, and the TLS it
// speaks there. The zero value is an anonymous plaintext client (dev mode).
type ClientAuth struct {
	// NKeySeedFile is a file holding the user's NKey seed ("SU…"). It is
	// read at every connection; the public key is fixed at start, so a new
	// key needs a restart.
	NKeySeedFile string
	// CredsFile is a credentials file (a user JWT and its seed) for servers
	// in operator mode; read at every connection, so a renewed JWT is used
	// without a restart.
	CredsFile string
	// InboxPrefix replaces _INBOX in reply subjects: a service user may
	// subscribe only to its own (natsauth.InboxPrefix).
	InboxPrefix string
	// TLS, when set, makes every connection TLS with this configuration
	// (its GetClientCertificate may load the current certificate at each
	// handshake).
	TLS *tls.Config
	// RootCAs, when set, is asked for the CA bundle at every connection, so
	// a connection made after the bundle changed verifies against the new
	// one.
	RootCAs func() (*x509.CertPool, error)
}

// Options turns a into nats.go options.
func (a ClientAuth) Options() ([]nats.Option, error) {
	var opts []nats.Option
	switch {
	case a.NKeySeedFile != "" && a.CredsFile != "":
		return nil, errors.New("nats: an NKey seed and a credentials file are both set: use one")
	case a.NKeySeedFile != "":
		o, err := nats.NkeyOptionFromSeed(a.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("nats: NKey seed %s: %w", a.NKeySeedFile, err)
		}
		opts = append(opts, o)
	case a.CredsFile != "":
		opts = append(opts, nats.UserCredentials(a.CredsFile))
	}
	if a.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(a.InboxPrefix))
	}
	if a.TLS != nil {
		opts = append(opts, nats.Secure(a.TLS))
	}
	if a.RootCAs != nil {
		opts = append(opts, func(o *nats.Options) error {
			o.Secure, o.RootCAsCB = true, a.RootCAs
			return nil
		})
	}
	return opts, nil
}

// retryableDial reports whether a failed first dial may succeed later.
func retryableDial(err error) bool {
	return errors.Is(err, nats.ErrNoServers) || errors.Is(err, nats.ErrTimeout)
}

// RedactURL returns a NATS server list (comma-separated URLs) with any
// password replaced, fit for logs and error messages.
func RedactURL(servers string) string {
	parts := strings.Split(servers, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if !strings.Contains(p, "@") {
			parts[i] = p
			continue
		}
		raw := p
		if !strings.Contains(raw, "://") {
			raw = "nats://" + raw
		}
		u, err := url.Parse(raw)
		if err != nil || u.User == nil {
			parts[i] = "<redacted>"
			continue
		}
		if _, has := u.User.Password(); !has {
			// A lone user part may be a token or an nkey seed.
			u.User = url.User("redacted")
		}
		parts[i] = u.Redacted()
	}
	return strings.Join(parts, ",")
}
