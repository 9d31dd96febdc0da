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

// TLS hands the files' current contents to TLS handshakes. The certificate
// and key are checked on every handshake and read again when either file
// changed (another inode, modification time or size), so certificates that
// cert-manager or a Kubernetes Secret volume rotate in place are used without
// a restart. The CA bundle is read once, by LoadTLS.
type TLS struct {
	files  TLSFiles
	pool   *x509.CertPool // nil: the system roots (client), no client certificates (server)
	pair   *keyPair       // nil without Cert and Key
	logger *slog.Logger
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
	t := &TLS{files: f, logger: logger}
	if (f.Cert == "") != (f.Key == "") {
		return nil, fmt.Errorf("%w: a certificate needs its private key and a key its certificate (cert %q, key %q)", ErrTLSKeyPair, f.Cert, f.Key)
	}
	if f.Cert != "" {
		t.pair = &keyPair{certFile: f.Cert, keyFile: f.Key, logger: logger}
		if _, err := t.pair.current(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrTLSKeyPair, err)
		}
	}
	if f.CA != "" {
		pem, err := os.ReadFile(f.CA)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrTLSCA, err)
		}
		t.pool = x509.NewCertPool()
		if !t.pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: no PEM certificate in %s", ErrTLSCA, f.CA)
		}
	}
	return t, nil
}

// HasCertificate reports whether a certificate and key are set: what a
// server needs to serve TLS.
func (t *TLS) HasCertificate() bool { return t != nil && t.pair != nil }

// ServerConfig is the server side: TLS 1.2 at least (1.3 when the client
// has it), the current certificate on each handshake, and with a CA bundle a
// verified client certificate required (mTLS).
func (t *TLS) ServerConfig() (*tls.Config, error) {
	if !t.HasCertificate() {
		return nil, fmt.Errorf("%w: a server needs a certificate and its key", ErrTLSKeyPair)
	}
	c := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return t.pair.current() },
	}
	if t.pool != nil {
		c.ClientCAs = t.pool
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// ClientConfig is the client side: the server verified against the CA
// bundle (or the system roots), and the current certificate presented when
// the server asks for one. Nil on a nil *TLS (plaintext).
func (t *TLS) ClientConfig() *tls.Config {
	if t == nil {
		return nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: t.pool, ServerName: t.files.ServerName}
	if t.pair != nil {
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return t.pair.current() }
	}
	return c
}

// keyPair is a certificate and key file pair, read again when it changes.
type keyPair struct {
	certFile, keyFile string
	logger            *slog.Logger

	mu       sync.Mutex
	cert     *tls.Certificate
	certStat os.FileInfo // of the files cert was read from
	keyStat  os.FileInfo
	// failed is the state of the files last found unusable, so that the
	// failure is logged once, not on every handshake.
	failed    [2]os.FileInfo
	hasFailed bool
}

// current returns the certificate, read again first if a file changed. A
// changed pair that cannot be used (say, a new certificate written before
// its key) leaves the previous one in use and is tried again on the next
// handshake; the error is returned only when there is no previous one.
func (p *keyPair) current() (*tls.Certificate, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cs, err := os.Stat(p.certFile)
	if err != nil {
		return p.keep(err, nil, nil)
	}
	ks, err := os.Stat(p.keyFile)
	if err != nil {
		return p.keep(err, cs, nil)
	}
	if p.cert != nil && same(p.certStat, cs) && same(p.keyStat, ks) {
		return p.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(p.certFile, p.keyFile)
	if err != nil {
		return p.keep(fmt.Errorf("load %s and %s: %w", p.certFile, p.keyFile, err), cs, ks)
	}
	if p.cert != nil && cert.Leaf != nil {
		p.logger.Info("grpc: TLS certificate reloaded", "cert", p.certFile, "not_after", cert.Leaf.NotAfter)
	}
	p.cert, p.certStat, p.keyStat, p.hasFailed = &cert, cs, ks, false
	return p.cert, nil
}

// keep returns the certificate in use after a failed reload, logging the
// failure once per state of the files.
func (p *keyPair) keep(err error, cs, ks os.FileInfo) (*tls.Certificate, error) {
	if p.cert == nil {
		return nil, err
	}
	if !p.hasFailed || !same(p.failed[0], cs) || !same(p.failed[1], ks) {
		p.logger.Warn("grpc: TLS certificate changed but cannot be used; keeping the previous one", "error", err)
		p.failed, p.hasFailed = [2]os.FileInfo{cs, ks}, true
	}
	return p.cert, nil
}

// same reports whether two stats describe the same file contents, as far
// as the inode, modification time and size tell.
func same(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size()
}
