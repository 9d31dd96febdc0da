package bustest

import (
	"crypto/tls"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/natsauth"
)

// Users holds an NKey per user of natsauth (every service and the admin),
// as production's Secrets do.
type Users struct{ *natsauth.Keys }

// NewUsers makes a key pair per user, with the seeds in t.TempDir().
func NewUsers(t testing.TB) *Users {
	t.Helper()
	k, err := natsauth.NewKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &Users{k}
}

// SeedFile is the file holding name's seed (SIDEKICK_NATS_NKEY_SEED).
func (u *Users) SeedFile(name string) string {
	f := u.Keys.SeedFile(name)
	if f == "" {
		panic("bustest: no NATS user " + name)
	}
	return f
}

// StartWithUsers starts a server on a random port, with its store in
// t.TempDir() and production's users and permissions (natsauth), provisions
// every Sidekick stream as the admin user, and returns it with the users.
// tlsConfig, when not nil, makes the client port TLS only.
func StartWithUsers(t testing.TB, tlsConfig *tls.Config) (*Server, *Users) {
	t.Helper()
	users := NewUsers(t)
	conf, err := users.WriteServerConfig()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{host: "127.0.0.1", port: -1, storeDir: t.TempDir(), config: conf, tls: tlsConfig}
	s.start(t)
	t.Cleanup(s.Shutdown)
	if tlsConfig == nil {
		_, js := s.ConnectAs(t, users, natsauth.Admin)
		provision(t, js)
	}
	return s, users
}

// ConnectAs connects as one of users (a service's name or natsauth.Admin)
// with its inbox prefix, as the service does; opts are added. The
// connection is closed when the test ends.
func (s *Server) ConnectAs(t testing.TB, users *Users, name string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	a := bus.ClientAuth{NKeySeedFile: users.SeedFile(name)}
	if name != natsauth.Admin {
		a.InboxPrefix = natsauth.InboxPrefix(name)
	}
	auth, err := a.Options()
	if err != nil {
		t.Fatal(err)
	}
	// Refusals are what the tests look for: keep them out of the log.
	quiet := nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})
	nc, js, err := dial(s.URL(), append(append(auth, nats.Name(name), quiet), opts...)...)
	if err != nil {
		t.Fatalf("connect to embedded nats as %s: %v", name, err)
	}
	t.Cleanup(nc.Close)
	return nc, js
}
