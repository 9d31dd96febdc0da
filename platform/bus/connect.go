package bus

import (
	"context"
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
