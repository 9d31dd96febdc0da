// Package pgtest gives each test its own PostgreSQL database on one
// throwaway server per test binary.
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestStore(t *testing.T) {
//		url := pgtest.NewDatabase(t) // skipped under -short
//		...
//	}
//
// Main starts a cluster from the local server binaries with fsync off (see
// pgcluster), or with fsync on when SIDEKICK_TEST_FSYNC=on (benchmarks
// whose figures must count durable commits, as deployed), or, when
// SIDEKICK_TEST_DATABASE_URL is set, uses that server (a superuser URL;
// databases are created in it and dropped after each test).
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sidekickhq/sidekick/platform/pg/pgcluster"
)

// EnvURL names the environment variable that points tests at an existing
// server instead of a throwaway cluster.
const EnvURL = "SIDEKICK_TEST_DATABASE_URL"

// EnvFsync set to "on" starts the throwaway cluster with fsync,
// synchronous_commit and full_page_writes on (PostgreSQL's defaults),
// for benchmarks; tests keep them off for speed.
const EnvFsync = "SIDEKICK_TEST_FSYNC"

// server is the admin URL Main set up for this test binary. TestMain and
// NewDatabase(t) have no other way to share it, so it is the package's one
// piece of state, set once before any test runs.
var server struct {
	mu       sync.Mutex
	adminURL string // a database on the server, as a superuser
	reason   string // why there is no server, when adminURL is ""
}

// Main starts one throwaway cluster for the test binary (fsync off), runs
// the tests, stops it, and exits. When SIDEKICK_TEST_DATABASE_URL is set it
// uses that server instead (creating databases in it). When the binaries
// are missing it fails loudly (not skip) unless -short.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if !flag.Parsed() {
		flag.Parse()
	}
	if testing.Short() {
		setServer("", "pgtest: -short")
		return m.Run()
	}
	if u := os.Getenv(EnvURL); u != "" {
		setServer(u, "")
		return m.Run()
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	began := time.Now()
	durable := os.Getenv(EnvFsync) == "on"
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{Fast: !durable})
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: cannot start a throwaway PostgreSQL for these tests: %v\n"+
			"pgtest: install the server binaries, set %s to a server to use, or run with -short to skip database tests\n", err, EnvURL)
		return 1
	}
	if testing.Verbose() || durable {
		fsync := "off"
		if durable {
			fsync = "on"
		}
		// Said on every benchmark run with fsync on, so its log says which.
		fmt.Fprintf(os.Stderr, "pgtest: postgres on port %d (fsync %s) ready in %s\n", cluster.Port(), fsync, time.Since(began).Round(time.Millisecond))
	}
	setServer(cluster.URL("postgres"), "")

	code := m.Run()

	ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cluster.Stop(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

func setServer(adminURL, reason string) {
	server.mu.Lock()
	defer server.mu.Unlock()
	server.adminURL, server.reason = adminURL, reason
}

// NewDatabase creates a fresh, uniquely named database for one test and
// drops it in t.Cleanup; returns its URL. Skips the test under
// testing.Short().
//
// The URL is a superuser's: tests can create schemas and roles (see
// pg.EnsureServiceRole). Connections left open when the test ends are
// terminated by the drop.
func NewDatabase(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("pgtest: skipping database test under -short")
	}
	server.mu.Lock()
	adminURL, reason := server.adminURL, server.reason
	server.mu.Unlock()
	if adminURL == "" {
		if reason == "" {
			reason = "pgtest.Main was not called; add func TestMain(m *testing.M) { pgtest.Main(m) }"
		}
		t.Fatalf("pgtest: no database server: %s", reason)
	}

	name := databaseName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		t.Fatalf("pgtest: connect to server: %v", err)
	}
	defer conn.Close(context.Background())
	create := `CREATE DATABASE ` + pgx.Identifier{name}.Sanitize()
	if serverMajor(conn.PgConn().ParameterStatus("server_version")) >= 15 {
		// FILE_COPY copies the small template's files instead of writing
		// them all to WAL (the default since 15); measurably faster for
		// throwaway databases on a server with fsync off.
		create += ` STRATEGY FILE_COPY`
	}
	if _, err := conn.Exec(ctx, create); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			t.Errorf("pgtest: drop database %s: connect: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	dbURL, err := withDatabase(adminURL, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return dbURL
}

// databaseName makes a unique database name that still says which test
// it belongs to: t_<test name, sanitised and cut>_<random>.
func databaseName(testName string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(testName) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	base := b.String()
	if len(base) > 40 {
		base = base[:40]
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	return "t_" + base + "_" + hex.EncodeToString(rnd[:])
}

// withDatabase returns serverURL pointing at database name instead.
func withDatabase(serverURL, name string) (string, error) {
	if strings.HasPrefix(serverURL, "postgres://") || strings.HasPrefix(serverURL, "postgresql://") {
		u, err := url.Parse(serverURL)
		if err != nil {
			return "", fmt.Errorf("parse %s: %w", EnvURL, err)
		}
		u.Path = "/" + name
		u.RawPath = ""
		return u.String(), nil
	}
	// keyword/value: later settings override earlier ones.
	return serverURL + " dbname=" + name, nil
}

// serverMajor parses the major version from server_version ("15.18 (Debian …)").
func serverMajor(v string) int {
	end := strings.IndexFunc(v, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(v)
	}
	n, _ := strconv.Atoi(v[:end])
	return n
}
