// Package pgcluster runs a throwaway PostgreSQL server from the local server
// binaries, for `sidekick dev` and for tests (through pgtest).
//
// The server listens on 127.0.0.1 only, keeps its unix socket inside the
// data directory, trusts local connections as superuser "postgres", and is
// a child of the calling process: it is stopped by Stop and, on Linux, also
// when the calling process dies, so a crashed test run leaves no server
// behind. As root (sessions and CI), initdb and postgres refuse to run, so
// they run as the "postgres" system user (falling back to "nobody") with
// the data directory chowned to that user.
package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Superuser is the cluster's superuser, trusted on 127.0.0.1.
const Superuser = "postgres"

// Options configure Start.
type Options struct {
	// Dir is the data directory; empty: a new temp dir removed on Stop.
	// Re-using a Dir that holds a cluster keeps its data.
	Dir string
	// Port to listen on at 127.0.0.1; 0: pick a free port.
	Port int
	// Logger receives start/stop events; nil discards them. The server's
	// own log goes to postgres.log in the data directory.
	Logger *slog.Logger
	// BinDir holds initdb, postgres and pg_ctl; empty: FindBinDir.
	BinDir string
	// Fast turns off fsync, synchronous_commit and full_page_writes: a crash
	// of the machine may corrupt the data. For tests and ephemeral dev runs.
	Fast bool
	// RunAs is the system user to run the server as when the process is
	// root; empty: "postgres", falling back to "nobody". Ignored otherwise.
	RunAs string
	// StartTimeout bounds waiting for the server to accept connections
	// when ctx has no earlier deadline; 0: one minute.
	StartTimeout time.Duration
}

// Cluster is a running PostgreSQL server started by Start.
type Cluster struct {
	binDir    string
	dataDir   string
	tempRoot  string // removed on Stop; empty when the caller chose Dir
	socketDir string
	port      int
	logger    *slog.Logger
	runAs     *osUser // nil: run as ourselves
	env       []string

	cmd    *exec.Cmd
	exited chan struct{} // closed once the server process is reaped
	logf   *os.File

	stopOnce sync.Once
	stopErr  error
}

// osUser is the unprivileged account the server runs as under root.
type osUser struct {
	name     string
	uid, gid uint32
}

// Start runs initdb (if Dir has no cluster yet; trust auth on 127.0.0.1
// only, superuser "postgres"), then starts the server listening on
// 127.0.0.1:Port with its unix socket inside the data dir, fsync=off only
// when Options.Fast is set, and waits until it accepts connections.
// Re-using an existing Dir keeps the data.
//
// The server does not stop when ctx ends; call Stop.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	began := time.Now()
	c := &Cluster{logger: opts.Logger}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	defer func() {
		if err != nil {
			c.cleanupFailedStart()
		}
	}()

	c.binDir = opts.BinDir
	if c.binDir == "" {
		if c.binDir, err = FindBinDir(); err != nil {
			return nil, err
		}
	}
	c.env = []string{"PATH=" + c.binDir + ":/usr/local/bin:/usr/bin:/bin", "LC_ALL=C", "LANG=C"}
	if os.Geteuid() == 0 {
		if c.runAs, err = lookupRunAs(opts.RunAs); err != nil {
			return nil, err
		}
	}
	if err := c.prepareDir(opts.Dir); err != nil {
		return nil, err
	}

	initialized, err := c.initdbIfNeeded(ctx)
	if err != nil {
		return nil, err
	}

	c.socketDir = c.dataDir
	if len(filepath.Join(c.socketDir, ".s.PGSQL.65535")) > 100 { // sun_path holds 108 bytes
		if c.socketDir, err = os.MkdirTemp("", "pgsock-"); err != nil {
			return nil, fmt.Errorf("start postgres: socket dir: %w", err)
		}
		if err := c.chown(c.socketDir); err != nil {
			return nil, err
		}
	}

	timeout := opts.StartTimeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	// A picked free port can be taken by someone else before the server
	// binds it; pick again a few times.
	for attempt := 1; ; attempt++ {
		c.port = opts.Port
		if c.port == 0 {
			if c.port, err = freePort(); err != nil {
				return nil, fmt.Errorf("start postgres: %w", err)
			}
		}
		err = c.startServer(ctx, opts.Fast)
		if err == nil {
			break
		}
		if opts.Port != 0 || attempt == 3 || !errors.Is(err, errPortInUse) {
			return nil, err
		}
		c.logger.Debug("postgres port taken, retrying", "port", c.port)
	}
	c.logger.Info("postgres started", "url", c.URL("postgres"), "data_dir", c.dataDir,
		"initdb", initialized, "fast", opts.Fast, "duration", time.Since(began).Round(time.Millisecond))
	return c, nil
}

// prepareDir creates the data directory (or a temp root holding it) and,
// under root, hands it to the unprivileged user.
func (c *Cluster) prepareDir(dir string) error {
	if dir == "" {
		root, err := os.MkdirTemp("", "sidekick-pg-")
		if err != nil {
			return fmt.Errorf("start postgres: temp dir: %w", err)
		}
		c.tempRoot = root
		c.dataDir = filepath.Join(root, "data")
		if err := c.chown(root); err != nil {
			return err
		}
	} else {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return fmt.Errorf("start postgres: data dir: %w", err)
		}
		c.dataDir = abs
	}
	if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
		return fmt.Errorf("start postgres: data dir: %w", err)
	}
	// The server insists on 0700 (or 0750) for its data directory.
	if err := os.Chmod(c.dataDir, 0o700); err != nil {
		return fmt.Errorf("start postgres: data dir: %w", err)
	}
	if c.runAs == nil {
		return nil
	}
	if err := checkSearchable(filepath.Dir(c.dataDir), c.runAs); err != nil {
		return fmt.Errorf("start postgres: data dir %s: %w", c.dataDir, err)
	}
	return c.chownTree(c.dataDir)
}

// initdbIfNeeded creates the cluster unless the data dir holds one, and
// writes the access rules. It reports whether it ran initdb.
func (c *Cluster) initdbIfNeeded(ctx context.Context) (bool, error) {
	if _, err := os.Stat(filepath.Join(c.dataDir, "PG_VERSION")); err == nil {
		return false, nil
	}
	entries, err := os.ReadDir(c.dataDir)
	if err != nil {
		return false, fmt.Errorf("start postgres: data dir: %w", err)
	}
	if len(entries) > 0 {
		return false, fmt.Errorf("start postgres: data dir %s is not empty and holds no cluster (no PG_VERSION); use an empty or new directory", c.dataDir)
	}
	began := time.Now()
	cmd := c.command(ctx, "initdb",
		"--pgdata="+c.dataDir, "--username="+Superuser, "--auth=trust",
		"--encoding=UTF8", "--no-locale", "--no-sync", "--no-instructions")
	if out, err := cmd.CombinedOutput(); err != nil {
		return false, fmt.Errorf("start postgres: initdb in %s: %w\n%s", c.dataDir, err, bytes.TrimSpace(out))
	}
	// initdb -A trust also trusts ::1 and replication; allow exactly the
	// socket (inside the 0700 data dir) and 127.0.0.1.
	hba := "# Written by sidekick pgcluster: local throwaway server.\n" +
		"local all all trust\n" +
		"host  all all 127.0.0.1/32 trust\n"
	hbaPath := filepath.Join(c.dataDir, "pg_hba.conf")
	if err := os.WriteFile(hbaPath, []byte(hba), 0o600); err != nil {
		return false, fmt.Errorf("start postgres: write pg_hba.conf: %w", err)
	}
	if err := c.chown(hbaPath); err != nil {
		return false, err
	}
	c.logger.Debug("postgres initdb done", "data_dir", c.dataDir, "duration", time.Since(began).Round(time.Millisecond))
	return true, nil
}

// errPortInUse marks a start that failed because the port was taken.
var errPortInUse = errors.New("port in use")

// startServer runs postgres as a child process and waits until it accepts
// connections, exits, or ctx ends.
func (c *Cluster) startServer(ctx context.Context, fast bool) error {
	logPath := filepath.Join(c.dataDir, "postgres.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("start postgres: log file: %w", err)
	}
	if err := c.chown(logPath); err != nil {
		logf.Close()
		return err
	}
	args := []string{
		"-D", c.dataDir,
		"-p", strconv.Itoa(c.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + c.socketDir,
		"-c", "logging_collector=off",
	}
	if fast {
		args = append(args,
			"-c", "fsync=off",
			"-c", "synchronous_commit=off",
			"-c", "full_page_writes=off",
		)
	}
	// Not CommandContext: the server outlives ctx until Stop.
	cmd := exec.Command(filepath.Join(c.binDir, "postgres"), args...)
	cmd.Dir = c.dataDir
	cmd.Env = c.env
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = c.sysProcAttr(true)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	c.cmd, c.exited, c.logf = cmd, exited, logf

	if err := c.waitReady(ctx); err != nil {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Signal(syscall.SIGQUIT)
			<-exited
		}
		logf.Close()
		c.cmd, c.exited, c.logf = nil, nil, nil
		tail := logTail(logPath, 20)
		if strings.Contains(tail, "could not bind") || strings.Contains(tail, "Address already in use") {
			err = fmt.Errorf("%w: %w", errPortInUse, err)
		}
		return fmt.Errorf("start postgres on 127.0.0.1:%d: %w\n%s", c.port, err, tail)
	}
	return nil
}

// waitReady polls our own unix socket until the server accepts a
// connection, then checks that the TCP address reaches the same server
// (not another one that holds the port while ours fails to bind).
func (c *Cluster) waitReady(ctx context.Context) error {
	quote := func(v string) string { return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'" }
	sockCfg, err := pgconn.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=postgres connect_timeout=1",
		quote(c.socketDir), c.port, Superuser))
	if err != nil {
		return fmt.Errorf("parse socket address: %w", err)
	}
	delay := 5 * time.Millisecond
	for {
		select {
		case <-c.exited:
			return fmt.Errorf("server exited during startup (%s)", c.cmd.ProcessState)
		default:
		}
		conn, err := pgconn.ConnectConfig(ctx, sockCfg)
		if err == nil {
			_ = conn.Close(ctx)
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for server: %w (last: %w)", ctx.Err(), err)
		case <-c.exited:
		case <-time.After(delay):
		}
		delay = min(delay*2, 100*time.Millisecond)
	}

	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("connect over tcp: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var dataDir string
	if err := conn.QueryRow(ctx, `SELECT current_setting('data_directory')`).Scan(&dataDir); err != nil {
		return fmt.Errorf("connect over tcp: %w", err)
	}
	if dataDir != c.dataDir {
		return fmt.Errorf("%w: 127.0.0.1:%d is served by another cluster (data directory %s)", errPortInUse, c.port, dataDir)
	}
	return nil
}

// URL returns the superuser URL of database:
// postgres://postgres@127.0.0.1:port/db?sslmode=disable.
func (c *Cluster) URL(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(Superuser),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Port is the TCP port the server listens on at 127.0.0.1.
func (c *Cluster) Port() int { return c.port }

// DataDir is the cluster's data directory.
func (c *Cluster) DataDir() string { return c.dataDir }

// LogPath is the server's log file.
func (c *Cluster) LogPath() string { return filepath.Join(c.dataDir, "postgres.log") }

// CreateDatabase creates database name unless it exists.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) error {
	return CreateDatabase(ctx, c.URL("postgres"), name)
}

// CreateDatabase creates database name on the server adminURL points at,
// unless it exists. It is safe to call concurrently for the same name.
func CreateDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("create database %s: connect: %w", name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && (pgErr.Code == "42P04" || pgErr.Code == "23505") { // duplicate_database, or lost a race on the catalog
			return nil
		}
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// Stop shuts the server down (pg_ctl stop -m fast), waits for it to exit,
// and removes the data directory if Start created it. Later calls return
// the first result. If ctx ends first, the server is killed.
func (c *Cluster) Stop(ctx context.Context) error {
	c.stopOnce.Do(func() { c.stopErr = c.stop(ctx) })
	return c.stopErr
}

func (c *Cluster) stop(ctx context.Context) error {
	began := time.Now()
	var errs []error
	if c.cmd != nil {
		wait := 60
		if dl, ok := ctx.Deadline(); ok {
			wait = max(1, int(time.Until(dl).Seconds()))
		}
		out, err := c.command(ctx, "pg_ctl", "stop", "-D", c.dataDir, "-m", "fast", "-w", "-t", strconv.Itoa(wait)).CombinedOutput()
		if err != nil {
			// pg_ctl failed (or ctx ended): signal our child directly.
			c.logger.Warn("pg_ctl stop failed; signalling postgres", "error", err, "output", strings.TrimSpace(string(out)))
			_ = c.cmd.Process.Signal(syscall.SIGINT)
		}
		select {
		case <-c.exited:
		case <-ctx.Done():
			_ = c.cmd.Process.Kill()
			<-c.exited
			errs = append(errs, fmt.Errorf("stop postgres: %w; killed", ctx.Err()))
		}
		if st := c.cmd.ProcessState; len(errs) == 0 && !st.Success() {
			errs = append(errs, fmt.Errorf("stop postgres: server %s\n%s", st, logTail(c.LogPath(), 10)))
		}
		c.logf.Close()
	}
	if c.socketDir != "" && c.socketDir != c.dataDir {
		if err := os.RemoveAll(c.socketDir); err != nil {
			errs = append(errs, fmt.Errorf("stop postgres: remove socket dir: %w", err))
		}
	}
	if c.tempRoot != "" {
		if err := os.RemoveAll(c.tempRoot); err != nil {
			errs = append(errs, fmt.Errorf("stop postgres: remove data dir: %w", err))
		}
	}
	c.logger.Info("postgres stopped", "data_dir", c.dataDir, "removed", c.tempRoot != "", "duration", time.Since(began).Round(time.Millisecond))
	return errors.Join(errs...)
}

// cleanupFailedStart removes what a failed Start created.
func (c *Cluster) cleanupFailedStart() {
	if c.socketDir != "" && c.socketDir != c.dataDir {
		_ = os.RemoveAll(c.socketDir)
	}
	if c.tempRoot != "" {
		_ = os.RemoveAll(c.tempRoot)
	}
}

// command builds an exec.Cmd for one of the server binaries, run as the
// unprivileged user under root.
func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.binDir, name), args...)
	cmd.Dir = c.dataDir
	cmd.Env = c.env
	cmd.SysProcAttr = c.sysProcAttr(false)
	return cmd
}

func (c *Cluster) chown(path string) error {
	if c.runAs == nil {
		return nil
	}
	if err := os.Lchown(path, int(c.runAs.uid), int(c.runAs.gid)); err != nil {
		return fmt.Errorf("start postgres: hand %s to user %s: %w", path, c.runAs.name, err)
	}
	return nil
}

func (c *Cluster) chownTree(root string) error {
	return filepath.WalkDir(root, func(path string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return c.chown(path)
	})
}

// lookupRunAs finds the account to run the server as under root.
func lookupRunAs(name string) (*osUser, error) {
	names := []string{"postgres", "nobody"}
	if name != "" {
		names = []string{name}
	}
	var errs []error
	for _, n := range names {
		u, err := user.Lookup(n)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			errs = append(errs, fmt.Errorf("user %s: non-numeric uid/gid %s/%s", n, u.Uid, u.Gid))
			continue
		}
		if uid == 0 {
			errs = append(errs, fmt.Errorf("user %s is root", n))
			continue
		}
		return &osUser{name: n, uid: uint32(uid), gid: uint32(gid)}, nil
	}
	return nil, fmt.Errorf("start postgres: running as root, and no unprivileged user to run the server as (tried %s): %w", strings.Join(names, ", "), errors.Join(errs...))
}

// checkSearchable reports an error if u cannot reach into dir and each of
// its parents, which the server needs to open its data directory.
func checkSearchable(dir string, u *osUser) error {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if ok {
			mode := fi.Mode().Perm()
			var can bool
			switch {
			case st.Uid == u.uid:
				can = mode&0o100 != 0
			case st.Gid == u.gid:
				can = mode&0o010 != 0
			default:
				can = mode&0o001 != 0
			}
			if !can {
				return fmt.Errorf("%s (mode %s) is not searchable by user %s, which the server runs as under root; use a directory under /tmp or /var/lib, or chmod o+x %s", d, mode, u.name, d)
			}
		}
		if parent := filepath.Dir(d); parent == d {
			return nil
		}
	}
}

// freePort asks the kernel for a free TCP port on 127.0.0.1.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// logTail returns the last n lines of the file at path, for errors.
func logTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const maxRead = 16 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > maxRead {
		_, _ = f.Seek(-maxRead, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "postgres log:\n  " + strings.Join(lines, "\n  ")
}
