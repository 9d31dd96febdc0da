package pg_test

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sidekickhq/sidekick/platform/pg"
	"github.com/sidekickhq/sidekick/platform/pg/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

//go:embed testdata/migrations/*.sql
var testdata embed.FS

func migrations(t testing.TB) fs.FS {
	t.Helper()
	sub, err := fs.Sub(testdata, "testdata/migrations")
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func connect(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

type versionRow struct {
	ID        int64
	VersionID int64
	IsApplied bool
	Tstamp    time.Time
}

func versionRows(t testing.TB, conn *pgx.Conn, schema string) []versionRow {
	t.Helper()
	rows, err := conn.Query(context.Background(),
		`SELECT id, version_id, is_applied, tstamp FROM `+pgx.Identifier{schema, pg.VersionTable}.Sanitize()+` ORDER BY id`)
	if err != nil {
		t.Fatalf("read version table: %v", err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[versionRow])
	if err != nil {
		t.Fatalf("read version table: %v", err)
	}
	return got
}

func countObjects(t testing.TB, conn *pgx.Conn, schema string) map[string]int {
	t.Helper()
	rows, err := conn.Query(context.Background(), `
		SELECT c.relname, count(*)::int FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 GROUP BY c.relname
		UNION ALL
		SELECT t.typname, count(*)::int FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
		WHERE n.nspname = $1 AND t.typtype = 'e' GROUP BY t.typname
		UNION ALL
		SELECT p.proname, count(*)::int FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE n.nspname = $1 GROUP BY p.proname`, schema)
	if err != nil {
		t.Fatalf("count objects: %v", err)
	}
	got := map[string]int{}
	for rows.Next() {
		var name string
		var n int
		if err := rows.Scan(&name, &n); err != nil {
			t.Fatal(err)
		}
		got[name] += n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestMigrateTwiceIsNoop(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	if err := pg.Migrate(ctx, url, "svc", migrations(t), testLogger(t)); err != nil {
		t.Fatalf("first Migrate: %v", err)
	}
	conn := connect(t, url)
	before := versionRows(t, conn, "svc")
	if len(before) != 3 { // goose's version 0 plus two migrations
		t.Fatalf("version rows after first Migrate = %+v, want versions 0, 1, 2", before)
	}
	for i, r := range before {
		if r.VersionID != int64(i) || !r.IsApplied {
			t.Fatalf("version row %d = %+v, want version %d applied", i, r, i)
		}
	}
	objsBefore := countObjects(t, conn, "svc")
	for _, name := range []string{"items", "item_names", "item_kind", "item_count", pg.VersionTable} {
		if objsBefore[name] != 1 {
			t.Errorf("after first Migrate, %s exists %d times, want once (objects: %v)", name, objsBefore[name], objsBefore)
		}
	}

	if err := pg.Migrate(ctx, url, "svc", migrations(t), testLogger(t)); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	after := versionRows(t, conn, "svc")
	if len(after) != len(before) {
		t.Fatalf("version rows changed: before %+v, after %+v", before, after)
	}
	for i := range before {
		if !before[i].Tstamp.Equal(after[i].Tstamp) || before[i] != after[i] {
			t.Errorf("version row %d changed: %+v -> %+v", i, before[i], after[i])
		}
	}
	objsAfter := countObjects(t, conn, "svc")
	if len(objsAfter) != len(objsBefore) {
		t.Errorf("objects changed: before %v, after %v", objsBefore, objsAfter)
	}
	for name, n := range objsBefore {
		if objsAfter[name] != n {
			t.Errorf("object %s: %d before, %d after", name, n, objsAfter[name])
		}
	}

	// Nothing landed outside the schema.
	var public int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&public); err != nil {
		t.Fatal(err)
	}
	if public != 0 {
		t.Errorf("%d tables in public, want 0", public)
	}
}

func TestMigrateConcurrent(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	const replicas = 4
	var wg sync.WaitGroup
	errs := make([]error, replicas)
	start := make(chan struct{})
	for i := range replicas {
		wg.Go(func() {
			<-start
			errs[i] = pg.Migrate(ctx, url, "svc", migrations(t), nil)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: Migrate: %v", i, err)
		}
	}
	conn := connect(t, url)
	rows := versionRows(t, conn, "svc")
	if len(rows) != 3 {
		t.Fatalf("version rows = %+v, want exactly versions 0, 1, 2 once each", rows)
	}
	if n := countObjects(t, conn, "svc")["items"]; n != 1 {
		t.Errorf("items exists %d times", n)
	}
}

func TestMigrateDifferentSchemasConcurrently(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	schemas := []string{"alpha", "beta", "gamma"}
	errs := make([]error, len(schemas))
	for i, s := range schemas {
		wg.Go(func() { errs[i] = pg.Migrate(ctx, url, s, migrations(t), nil) })
	}
	wg.Wait()
	conn := connect(t, url)
	for i, s := range schemas {
		if errs[i] != nil {
			t.Errorf("Migrate %s: %v", s, errs[i])
			continue
		}
		if got := len(versionRows(t, conn, s)); got != 3 {
			t.Errorf("%s: %d version rows, want 3", s, got)
		}
	}
}

func TestMigrateFailureNamesFile(t *testing.T) {
	url := pgtest.NewDatabase(t)
	bad := fstest.MapFS{
		"00001_ok.sql":  {Data: []byte("-- +goose Up\nCREATE TABLE ok (id int);\n")},
		"00002_bad.sql": {Data: []byte("-- +goose Up\nCREATE TABLE nope (id no_such_type);\n")},
	}
	err := pg.Migrate(context.Background(), url, "svc", bad, nil)
	if err == nil {
		t.Fatal("Migrate with a broken migration succeeded")
	}
	if !strings.Contains(err.Error(), "00002_bad.sql") {
		t.Errorf("error %q does not name the failing file", err)
	}
	conn := connect(t, url)
	rows := versionRows(t, conn, "svc")
	if len(rows) != 2 || rows[1].VersionID != 1 {
		t.Errorf("version rows = %+v, want 0 and 1 (the good migration stays applied)", rows)
	}
}

func TestConnectSearchPath(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	if err := pg.Migrate(ctx, url, "svc", migrations(t), nil); err != nil {
		t.Fatal(err)
	}
	// A same-named table elsewhere must not be what unqualified names hit.
	admin := connect(t, url)
	if _, err := admin.Exec(ctx, `CREATE TABLE public.items (name text)`); err != nil {
		t.Fatal(err)
	}

	pool, err := pg.Connect(ctx, url, "svc")
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer pool.Close()
	var sp string
	if err := pool.QueryRow(ctx, `SHOW search_path`).Scan(&sp); err != nil {
		t.Fatal(err)
	}
	if sp != "svc" && sp != `"svc"` {
		t.Errorf("search_path = %q, want svc", sp)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO items (name, kind) VALUES ('a', 'gadget')`); err != nil {
		t.Fatalf("unqualified insert: %v", err)
	}
	var n int64
	if err := pool.QueryRow(ctx, `SELECT item_count()`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("item_count() = %d, %v; want 1", n, err)
	}
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM svc.items`).Scan(&n); err != nil || n != 1 {
		t.Errorf("svc.items has %d rows (%v), want 1", n, err)
	}
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM public.items`).Scan(&n); err != nil || n != 0 {
		t.Errorf("public.items has %d rows (%v), want 0", n, err)
	}

	// Every pooled connection gets the setting, not just the first.
	var conns []*pgxpool.Conn
	for range 3 {
		c, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		var sp string
		if err := c.QueryRow(ctx, `SELECT current_schema()`).Scan(&sp); err != nil || sp != "svc" {
			t.Errorf("current_schema() = %q, %v; want svc", sp, err)
		}
	}
	for _, c := range conns {
		c.Release()
	}

	// The helpers recognise real errors.
	_, err = pool.Exec(ctx, `INSERT INTO items (name) VALUES ('a')`)
	if !pg.IsUniqueViolation(err) {
		t.Errorf("duplicate insert: IsUniqueViolation(%v) = false", err)
	}
	if got := pg.ConstraintName(err); got != "items_name_key" {
		t.Errorf("ConstraintName = %q, want items_name_key", got)
	}

	if err := pg.Ready(pool)(ctx); err != nil {
		t.Errorf("Ready: %v", err)
	}
}

// TestConnectWithSettings: the pool's connections have the settings
// (triage's jit = off; every connection gets its startup parameters, as
// TestConnectSearchPath shows), and a parameter the URL sets wins.
func TestConnectWithSettings(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	if err := pg.Migrate(ctx, url, "svc", migrations(t), nil); err != nil {
		t.Fatal(err)
	}
	pool, err := pg.ConnectWith(ctx, url, "svc", map[string]string{"jit": "off", "work_mem": "8MB"}, 7)
	if err != nil {
		t.Fatalf("ConnectWith: %v", err)
	}
	defer pool.Close()
	var jit, mem, sp string
	if err := pool.QueryRow(ctx, `SELECT current_setting('jit'), current_setting('work_mem'), current_schema()`).Scan(&jit, &mem, &sp); err != nil {
		t.Fatal(err)
	}
	if jit != "off" || mem != "8MB" || sp != "svc" {
		t.Errorf("jit %q, work_mem %q, schema %q; want off, 8MB, svc", jit, mem, sp)
	}
	if n := pool.Config().MaxConns; n != 7 {
		t.Errorf("pool size %d, want the 7 asked for", n)
	}

	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	operator, err := pg.ConnectWith(ctx, url+sep+"jit=on&pool_max_conns=3", "svc", map[string]string{"jit": "off"}, 7)
	if err != nil {
		t.Fatalf("ConnectWith a URL setting jit: %v", err)
	}
	defer operator.Close()
	if err := operator.QueryRow(ctx, `SELECT current_setting('jit')`).Scan(&jit); err != nil || jit != "on" {
		t.Errorf("jit %q (%v) with ?jit=on in the URL, want the URL's on", jit, err)
	}
	if n := operator.Config().MaxConns; n != 3 {
		t.Errorf("pool size %d with pool_max_conns=3 in the URL, want the URL's 3", n)
	}
}

func TestConnectMissingSchema(t *testing.T) {
	url := pgtest.NewDatabase(t)
	_, err := pg.Connect(context.Background(), url, "absent")
	if err == nil || !strings.Contains(err.Error(), "run migrations first") {
		t.Fatalf("Connect to a missing schema: %v, want an error saying to run migrations", err)
	}
}

func TestReadyFailsWhenClosed(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	if err := pg.Migrate(ctx, url, "svc", migrations(t), nil); err != nil {
		t.Fatal(err)
	}
	pool, err := pg.Connect(ctx, url, "svc")
	if err != nil {
		t.Fatal(err)
	}
	pool.Close()
	if err := pg.Ready(pool)(ctx); err == nil {
		t.Error("Ready on a closed pool succeeded")
	}
}

func randomSuffix(t testing.TB) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

func TestEnsureServiceRole(t *testing.T) {
	adminURL := pgtest.NewDatabase(t)
	ctx := context.Background()
	admin := connect(t, adminURL)
	// Roles are cluster-wide; make names unique to this run.
	sfx := randomSuffix(t)
	svcA, svcB := "svc-a-"+sfx, "svc-b-"+sfx
	t.Cleanup(func() { dropRoles(t, adminURL, pg.RoleName(svcA), pg.RoleName(svcB)) })

	// As in `sidekick dev`: the admin migrates, then hands each schema to
	// its service role.
	for _, s := range []string{"alpha", "beta"} {
		if err := pg.Migrate(ctx, adminURL, s, migrations(t), nil); err != nil {
			t.Fatalf("Migrate %s: %v", s, err)
		}
	}
	urlA, err := pg.EnsureServiceRole(ctx, adminURL, svcA, "alpha", "pw-a")
	if err != nil {
		t.Fatalf("EnsureServiceRole A: %v", err)
	}
	// Idempotent, and a new password applies.
	if urlA, err = pg.EnsureServiceRole(ctx, adminURL, svcA, "alpha", "pw-a2"); err != nil {
		t.Fatalf("EnsureServiceRole A again: %v", err)
	}
	if !strings.Contains(urlA, pg.RoleName(svcA)+":pw-a2@") {
		t.Errorf("service URL %q does not carry the role and password", urlA)
	}
	if _, err := pg.EnsureServiceRole(ctx, adminURL, svcB, "beta", "pw-b"); err != nil {
		t.Fatalf("EnsureServiceRole B: %v", err)
	}

	poolA, err := pg.Connect(ctx, urlA, "alpha")
	if err != nil {
		t.Fatalf("Connect as A: %v", err)
	}
	defer poolA.Close()
	var who string
	if err := poolA.QueryRow(ctx, `SELECT current_user`).Scan(&who); err != nil || who != pg.RoleName(svcA) {
		t.Fatalf("current_user = %q, %v; want %s", who, err, pg.RoleName(svcA))
	}
	// Its own schema: full use of what the admin's migrations created.
	if _, err := poolA.Exec(ctx, `INSERT INTO items (name) VALUES ('mine')`); err != nil {
		t.Fatalf("A writes its own table: %v", err)
	}
	if _, err := poolA.Exec(ctx, `SELECT item_count(), (SELECT count(*) FROM item_names)`); err != nil {
		t.Fatalf("A uses its own function and view: %v", err)
	}
	// It can run its own migrations (production: services migrate as themselves).
	if err := pg.Migrate(ctx, urlA, "alpha", migrations(t), nil); err != nil {
		t.Fatalf("A migrates its own schema: %v", err)
	}
	if _, err := poolA.Exec(ctx, `CREATE TABLE extra (id int)`); err != nil {
		t.Fatalf("A creates a table in its own schema: %v", err)
	}

	// Another service's schema: permission denied.
	_, err = poolA.Exec(ctx, `SELECT * FROM beta.items`)
	assertPermissionDenied(t, "A reads beta.items", err)
	_, err = poolA.Exec(ctx, `INSERT INTO beta.items (name) VALUES ('theirs')`)
	assertPermissionDenied(t, "A writes beta.items", err)
	_, err = poolA.Exec(ctx, `CREATE TABLE public.sneaky (id int)`)
	assertPermissionDenied(t, "A creates in public", err)
	_, err = poolA.Exec(ctx, `CREATE SCHEMA sneaky`)
	assertPermissionDenied(t, "A creates a schema", err)

	// Ownership: the schema and everything in it belong to A now.
	var owners []string
	rows, err := admin.Query(ctx, `
		SELECT DISTINCT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'alpha'
		UNION SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class WHERE relnamespace = 'alpha'::regnamespace
		UNION SELECT DISTINCT pg_get_userbyid(proowner) FROM pg_proc WHERE pronamespace = 'alpha'::regnamespace
		UNION SELECT DISTINCT pg_get_userbyid(typowner) FROM pg_type WHERE typnamespace = 'alpha'::regnamespace`)
	if err != nil {
		t.Fatal(err)
	}
	if owners, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	if len(owners) != 1 || owners[0] != pg.RoleName(svcA) {
		t.Errorf("owners of alpha and its objects = %v, want only %s", owners, pg.RoleName(svcA))
	}

	// The role is not privileged.
	var super, createDB, createRole bool
	if err := admin.QueryRow(ctx, `SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = $1`, pg.RoleName(svcA)).
		Scan(&super, &createDB, &createRole); err != nil {
		t.Fatal(err)
	}
	if super || createDB || createRole {
		t.Errorf("role %s: super=%v createdb=%v createrole=%v, want none", pg.RoleName(svcA), super, createDB, createRole)
	}
}

func TestEnsureServiceRoleCreatesSchema(t *testing.T) {
	adminURL := pgtest.NewDatabase(t)
	ctx := context.Background()
	svc := "fresh-" + randomSuffix(t)
	t.Cleanup(func() { dropRoles(t, adminURL, pg.RoleName(svc)) })
	url, err := pg.EnsureServiceRole(ctx, adminURL, svc, "fresh", "pw")
	if err != nil {
		t.Fatalf("EnsureServiceRole: %v", err)
	}
	// Now the service migrates its own, empty schema without any admin help.
	if err := pg.Migrate(ctx, url, "fresh", migrations(t), nil); err != nil {
		t.Fatalf("Migrate as the service: %v", err)
	}
	pool, err := pg.Connect(ctx, url, "fresh")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `INSERT INTO items (name) VALUES ('x')`); err != nil {
		t.Fatal(err)
	}
}

func TestEnsureServiceRoleRefusesSuperuser(t *testing.T) {
	adminURL := pgtest.NewDatabase(t)
	conn := connect(t, adminURL)
	var admin string
	if err := conn.QueryRow(context.Background(), `SELECT current_user`).Scan(&admin); err != nil {
		t.Fatal(err)
	}
	if _, err := pg.EnsureServiceRole(context.Background(), adminURL, admin, "svc", "x"); err == nil {
		t.Fatalf("EnsureServiceRole(%s) succeeded; it must refuse to demote the admin", admin)
	}
}

func TestEnsureServiceRoleConcurrent(t *testing.T) {
	adminURL := pgtest.NewDatabase(t)
	ctx := context.Background()
	sfx := randomSuffix(t)
	svcs := []string{"c1-" + sfx, "c2-" + sfx, "c3-" + sfx}
	t.Cleanup(func() { dropRoles(t, adminURL, pg.RoleName(svcs[0]), pg.RoleName(svcs[1]), pg.RoleName(svcs[2])) })
	var wg sync.WaitGroup
	errs := make([]error, len(svcs)*2)
	for i := range errs {
		svc := svcs[i%len(svcs)]
		wg.Go(func() {
			_, errs[i] = pg.EnsureServiceRole(ctx, adminURL, svc, "s_"+pg.RoleName(svc), "pw")
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
}

func assertPermissionDenied(t *testing.T, what string, err error) {
	t.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		t.Errorf("%s: got %v, want permission denied (42501)", what, err)
	}
}

// dropRoles removes test roles, which outlive the test's database.
func dropRoles(t testing.TB, adminURL string, roles ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		t.Errorf("drop roles: %v", err)
		return
	}
	defer conn.Close(ctx)
	for _, r := range roles {
		id := pgx.Identifier{r}.Sanitize()
		// Objects in the test database go with it; drop what this database holds.
		for _, q := range []string{`REASSIGN OWNED BY ` + id + ` TO CURRENT_USER`, `DROP OWNED BY ` + id, `DROP ROLE IF EXISTS ` + id} {
			if _, err := conn.Exec(ctx, q); err != nil {
				var pgErr *pgconn.PgError
				if errors.As(err, &pgErr) && pgErr.Code == "42704" { // role already gone
					break
				}
				t.Errorf("drop role %s: %s: %v", r, q, err)
				break
			}
		}
	}
}
