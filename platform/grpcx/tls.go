package grpcx

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
)

// TLSFiles names the PEM files of the gRPC TLS setup.
type TLSFiles struct {
	// Cert and Key are this process's certificate chain and private key:
	// the server's certificate, and the client certificate it presents when
	// dialing. Both or neither.
	Cert, Key string
	// CA is the bundle that verifies peers: a server requires a client
	// certificate signed by it (mTLS); a client verifies servers against it
	// instead of the system roots.
	CA string
	// ServerName, for a client, is the name expected in the server's
	// certificate instead of the host part of the address.
	ServerName string
}

// Enabled reports whether any file is set, i.e. whether TLS is on.
func (f TLSFiles) Enabled() bool { return f.Cert != "" || f.Key != "" || f.CA != "" }

// Errors of LoadTLS, so that callers can name the setting at fault.
var (
	ErrTLSKeyPair = errors.New("TLS certificate and key")
	ErrTLSCA      = errors.New("TLS CA bundle")
)

// TLS hands the files' current contents to TLS handshakes. The files are
// checked on every handshake and read again when one changed (another
// inode, modification time or size), so certificates and CA bundles that
// cert-manager or a Kubernetes Secret volume rotate in place are used
// without a restart.
type TLS struct {
	files TLSFiles
	ca    *reloading[*x509.CertPool]   // nil: the system roots (client), no client certificates (server)
	pair  *reloading[*tls.Certificate] // nil without Cert and Key
}

// LoadTLS reads the files once, so that a mistake shows at start. It returns
// nil, nil when no file is set (plaintext).
func LoadTLS(f TLSFiles, logger *slog.Logger) (*TLS, error) {
	if !f.Enabled() {
		return nil, nil
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	t := &TLS{files: f}
	if (f.Cert == "") != (f.Key == "") {
		return nil, fmt.Errorf("%w: a certificate needs its private key and a key its certificate (cert %q, key %q)", ErrTLSKeyPair, f.Cert, f.Key)
	}
	if f.Cert != "" {
		t.pair = &reloading[*tls.Certificate]{
			what: "certificate", files: []string{f.Cert, f.Key}, logger: logger,
			load: func() (*tls.Certificate, error) {
				cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
				if err != nil {
					return nil, fmt.Errorf("load %s and %s: %w", f.Cert, f.Key, err)
				}
				return &cert, nil
			},
			reloaded: func(c *tls.Certificate) {
				logger.Info("grpc: TLS certificate reloaded", "cert", f.Cert, "not_after", c.Leaf.NotAfter)
			},
		}
		if _, err := t.pair.current(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrTLSKeyPair, err)
		}
	}
	if f.CA != "" {
		t.ca = &reloading[*x509.CertPool]{
			what: "CA bundle", files: []string{f.CA}, logger: logger,
			load: func() (*x509.CertPool, error) {
				pem, err := os.ReadFile(f.CA)
				if err != nil {
					return nil, err
				}
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pem) {
					return nil, fmt.Errorf("no PEM certificate in %s", f.CA)
				}
				return pool, nil
			},
			reloaded: func(*x509.CertPool) { logger.Info("grpc: TLS CA bundle reloaded", "ca", f.CA) },
		}
		if _, err := t.ca.current(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrTLSCA, err)
		}
	}
	return t, nil
}

// HasCertificate reports whether a certificate and key are set: what a
// server needs to serve TLS.
func (t *TLS) HasCertificate() bool { return t != nil && t.pair != nil }

// ServerConfig is the server side: TLS 1.2 at least (1.3 when the client
// has it), the current certificate on each handshake, and with a CA bundle a
// client certificate required and verified against the current bundle
// (mTLS).
func (t *TLS) ServerConfig() (*tls.Config, error) {
	if !t.HasCertificate() {
		return nil, fmt.Errorf("%w: a server needs a certificate and its key", ErrTLSKeyPair)
	}
	c := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return t.pair.current() },
	}
	if t.ca != nil {
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.ClientCAs, _ = t.ca.current()
		base := c.Clone()
		// Each handshake gets the bundle as it is now.
		c.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
			pool, err := t.ca.current()
			if err != nil {
				return nil, err
			}
			hc := base.Clone()
			hc.ClientCAs = pool
			return hc, nil
		}
	}
	return c, nil
}

// ClientConfig is the client side: the server verified against the CA
// bundle as it is now (or the system roots), and the current certificate
// presented when the server asks for one. Nil on a nil *TLS (plaintext).
// A long-lived client also passes ClientRoots to Dial, so that a
// connection made after the bundle changed verifies against the new one.
func (t *TLS) ClientConfig() *tls.Config {
	if t == nil {
		return nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.files.ServerName}
	if t.ca != nil {
		c.RootCAs, _ = t.ca.current()
	}
	if t.pair != nil {
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return t.pair.current() }
	}
	return c
}

// ClientRoots returns the CA bundle as it is at each call, for
// DialOptions.Roots; nil without a bundle (the system roots).
func (t *TLS) ClientRoots() func() (*x509.CertPool, error) {
	if t == nil || t.ca == nil {
		return nil
	}
	return t.ca.current
}

// reloading is what was loaded from some files, loaded again when one of
// them changes.
type reloading[T any] struct {
	what     string // for the log: "certificate", "CA bundle"
	files    []string
	load     func() (T, error)
	reloaded func(T) // after a reload (not the first load)
	logger   *slog.Logger

	mu     sync.Mutex
	val    T
	ok     bool
	stats  []os.FileInfo // of the files val was loaded from
	failed []os.FileInfo // the files' state last found unusable, so that the failure is logged once, not on every handshake
}

// current returns the value, loaded again first if a file changed. A
// change that cannot be used (say, a new certificate written before its
// key) leaves the previous value in use and is tried again on the next
// handshake; the error is returned only when there is no previous value.
func (r *reloading[T]) current() (T, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	stats := make([]os.FileInfo, len(r.files))
	for i, f := range r.files {
		st, err := os.Stat(f)
		if err != nil {
			return r.keep(err, stats)
		}
		stats[i] = st
	}
	if r.ok && sameFiles(r.stats, stats) {
		return r.val, nil
	}
	v, err := r.load()
	if err != nil {
		return r.keep(err, stats)
	}
	if r.ok && r.reloaded != nil {
		r.reloaded(v)
	}
	r.val, r.stats, r.ok, r.failed = v, stats, true, nil
	return v, nil
}

// keep returns the value in use after a failed reload, logging the failure
// once per state of the files.
func (r *reloading[T]) keep(err error, stats []os.FileInfo) (T, error) {
	if !r.ok {
		var zero T
		return zero, err
	}
	if r.failed == nil || !sameFiles(r.failed, stats) {
		r.logger.Warn("grpc: TLS "+r.what+" changed but cannot be used; keeping the previous one", "error", err)
		r.failed = stats
	}
	return r.val, nil
}

func sameFiles(a, b []os.FileInfo) bool {
	for i := range a {
		if !same(a[i], b[i]) {
			return false
		}
	}
	return len(a) == len(b)
}

// same reports whether two stats describe the same file contents, as far
// as the inode, modification time and size tell.
func same(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size()
}
