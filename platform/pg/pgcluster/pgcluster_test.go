package pgcluster_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	osexec "os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sidekickhq/sidekick/platform/pg/pgcluster"
)

func needServer(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	if _, err := pgcluster.FindBinDir(); err != nil {
		// Fail, not skip: a machine meant to run these tests lacks Postgres.
		t.Fatal(err)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, nil))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func start(t *testing.T, opts pgcluster.Options) *pgcluster.Cluster {
	t.Helper()
	began := time.Now()
	c, err := pgcluster.Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("Start took %s", time.Since(began).Round(time.Millisecond))
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	return c
}

func query[T any](t *testing.T, url, sql string, args ...any) T {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	defer conn.Close(ctx)
	var v T
	if err := conn.QueryRow(ctx, sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

func exec(t *testing.T, url, sql string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func TestFindBinDir(t *testing.T) {
	dir, err := pgcluster.FindBinDir()
	if err != nil {
		if !errors.Is(err, pgcluster.ErrNoBinaries) || !strings.Contains(err.Error(), "postgresql") {
			t.Fatalf("FindBinDir error %q should wrap ErrNoBinaries and name the postgresql package", err)
		}
		t.Skipf("no server binaries here: %v", err)
	}
	for _, name := range []string{"initdb", "postgres", "pg_ctl"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("FindBinDir = %s, which lacks %s", dir, name)
		}
	}
}

func TestStartStopTemp(t *testing.T) {
	needServer(t)
	ctx := context.Background()
	c, err := pgcluster.Start(ctx, pgcluster.Options{Fast: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	dataDir := c.DataDir()
	if want := "postgres://postgres@127.0.0.1:" + strconv.Itoa(c.Port()) + "/postgres?sslmode=disable"; c.URL("postgres") != want {
		t.Errorf("URL = %q, want %q", c.URL("postgres"), want)
	}

	// Fast mode settings, listen address and socket placement.
	url := c.URL("postgres")
	for setting, want := range map[string]string{
		"fsync":                   "off",
		"listen_addresses":        "127.0.0.1",
		"unix_socket_directories": dataDir,
		"data_directory":          dataDir,
	} {
		if got := query[string](t, url, `SELECT current_setting($1)`, setting); got != want {
			t.Errorf("%s = %q, want %q", setting, got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dataDir, ".s.PGSQL."+strconv.Itoa(c.Port()))); err != nil {
		t.Errorf("unix socket not in the data dir: %v", err)
	}
	if !query[bool](t, url, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`) {
		t.Error("postgres is not a superuser")
	}

	// As root, the server runs as the unprivileged user that owns the data.
	pid := query[int](t, url, `SELECT pg_backend_pid()`)
	uid := processUID(t, pid)
	st, err := os.Stat(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	owner := st.Sys().(*syscall.Stat_t).Uid
	if os.Geteuid() == 0 {
		if uid == 0 {
			t.Errorf("server backend runs as root")
		}
		if owner != uid {
			t.Errorf("data dir owned by uid %d, server runs as %d", owner, uid)
		}
		if u, err := user.LookupId(strconv.Itoa(int(uid))); err == nil {
			t.Logf("server runs as %s (uid %d)", u.Username, uid)
		}
	} else if uid != uint32(os.Geteuid()) {
		t.Errorf("server runs as uid %d, want ours %d", uid, os.Geteuid())
	}

	// CreateDatabase is idempotent, also when raced.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = c.CreateDatabase(ctx, "app") })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Errorf("CreateDatabase: %v", err)
		}
	}
	if got := query[string](t, c.URL("app"), `SELECT current_database()`); got != "app" {
		t.Errorf("current_database = %q", got)
	}

	began := time.Now()
	if err := c.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("Stop took %s", time.Since(began).Round(time.Millisecond))
	if err := c.Stop(ctx); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(dataDir)); !os.IsNotExist(err) {
		t.Errorf("temp dir still there after Stop: %v", err)
	}
	if conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port()))); err == nil {
		conn.Close()
		t.Errorf("port %d still accepts connections after Stop", c.Port())
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("backend %d still alive after Stop", pid)
	}
}

func processUID(t *testing.T, pid int) uint32 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Skipf("cannot read process owner: %v", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			f := strings.Fields(rest)
			uid, err := strconv.ParseUint(f[1], 10, 32) // effective uid
			if err != nil {
				t.Fatal(err)
			}
			return uint32(uid)
		}
	}
	t.Fatalf("no Uid line for pid %d", pid)
	return 0
}

// searchableTempDir is a temp dir the unprivileged server user can reach
// (t.TempDir is 0700, which is right for root-only data but not here).
func searchableTempDir(t *testing.T) string {
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestReuseDirKeepsData(t *testing.T) {
	needServer(t)
	ctx := context.Background()
	dir := filepath.Join(searchableTempDir(t), "pgdata")

	c := start(t, pgcluster.Options{Dir: dir})
	if got := query[string](t, c.URL("postgres"), `SELECT current_setting('fsync')`); got != "on" {
		t.Errorf("fsync = %s without Fast, want on", got)
	}
	exec(t, c.URL("postgres"), `CREATE TABLE kept (v text); INSERT INTO kept VALUES ('hello')`)
	if err := c.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err != nil {
		t.Fatalf("Stop removed a caller's Dir: %v", err)
	}

	c2 := start(t, pgcluster.Options{Dir: dir, Fast: true})
	if got := query[string](t, c2.URL("postgres"), `SELECT v FROM kept`); got != "hello" {
		t.Errorf("after restart kept.v = %q, want hello", got)
	}
}

func TestFixedPort(t *testing.T) {
	needServer(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	c := start(t, pgcluster.Options{Port: port, Fast: true})
	if c.Port() != port {
		t.Errorf("Port = %d, want %d", c.Port(), port)
	}
	// A second cluster on the same fixed port fails with the server's reason.
	c2, err := pgcluster.Start(context.Background(), pgcluster.Options{Port: port, Fast: true})
	if err == nil {
		_ = c2.Stop(context.Background())
		t.Fatal("second cluster on a taken port started")
	}
	t.Logf("second Start: %v", err)
	if !strings.Contains(err.Error(), "postgres log") {
		t.Errorf("error lacks the server log: %v", err)
	}
}

func TestStartRefusesForeignDir(t *testing.T) {
	needServer(t)
	dir := searchableTempDir(t)
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := pgcluster.Start(context.Background(), pgcluster.Options{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("Start in a non-empty non-cluster dir: %v, want a 'not empty' error", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "notes.txt")); err != nil {
		t.Errorf("Start touched the caller's files: %v", err)
	}
}

func TestStartBadBinDir(t *testing.T) {
	_, err := pgcluster.Start(context.Background(), pgcluster.Options{BinDir: filepath.Join(t.TempDir(), "nope")})
	if err == nil {
		t.Fatal("Start with a missing BinDir succeeded")
	}
}

func TestStartUnreachableDirAsRoot(t *testing.T) {
	needServer(t)
	if os.Geteuid() != 0 {
		t.Skip("only root hands the data dir to another user")
	}
	dir := t.TempDir() // 0700, owned by root
	_, err := pgcluster.Start(context.Background(), pgcluster.Options{Dir: filepath.Join(dir, "pgdata")})
	if err == nil || !strings.Contains(err.Error(), "not searchable") {
		t.Fatalf("Start under a 0700 root dir: %v, want a 'not searchable' error", err)
	}
}

// helperEnv makes the test binary act as a process that starts a cluster
// and then dies without stopping it.
const helperEnv = "PGCLUSTER_TEST_HELPER_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		c, err := pgcluster.Start(context.Background(), pgcluster.Options{Dir: dir, Fast: true})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("port:", c.Port())
		select {} // wait to be killed
	}
	os.Exit(m.Run())
}

func TestServerDiesWithParent(t *testing.T) {
	needServer(t)
	if runtime.GOOS != "linux" {
		t.Skip("parent-death signal is Linux only")
	}
	dir := filepath.Join(searchableTempDir(t), "pgdata")
	cmd := osexec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "port:") {
		_ = cmd.Process.Kill()
		t.Fatalf("helper: %q, %v", line, err)
	}
	pidFile, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.SplitN(string(pidFile), "\n", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	// The orphaned server shuts down on its own; postmaster.pid goes last.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		_, err := os.Stat(filepath.Join(dir, "postmaster.pid"))
		if os.IsNotExist(err) && syscall.Kill(pid, 0) != nil {
			break
		}
		select {
		case <-ctx.Done():
			_ = syscall.Kill(pid, syscall.SIGQUIT)
			t.Fatalf("postmaster %d still running after its parent was killed", pid)
		case <-time.After(20 * time.Millisecond):
		}
	}
	// And the data survives for the next start.
	c := start(t, pgcluster.Options{Dir: dir, Fast: true})
	if got := query[int](t, c.URL("postgres"), `SELECT 1`); got != 1 {
		t.Fatal("restart after orphaned shutdown failed")
	}
}
