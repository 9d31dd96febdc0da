package pgtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sidekickhq/sidekick/platform/pg/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func dbExists(t *testing.T, conn *pgx.Conn, name string) bool {
	t.Helper()
	var ok bool
	if err := conn.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestNewDatabaseIsolatedAndDropped(t *testing.T) {
	ctx := context.Background()
	var names [2]string
	var leftOpen *pgx.Conn
	t.Run("inner", func(t *testing.T) {
		var urls [2]string
		for i := range urls {
			began := time.Now()
			urls[i] = pgtest.NewDatabase(t)
			t.Logf("NewDatabase took %s", time.Since(began).Round(time.Millisecond))
		}
		if urls[0] == urls[1] {
			t.Fatalf("two NewDatabase calls returned the same URL %s", urls[0])
		}
		var conns [2]*pgx.Conn
		for i, u := range urls {
			c, err := pgx.Connect(ctx, u)
			if err != nil {
				t.Fatalf("connect %s: %v", u, err)
			}
			conns[i] = c
			if err := c.QueryRow(ctx, `SELECT current_database()`).Scan(&names[i]); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := conns[0].Exec(ctx, `CREATE TABLE only_here (v int); INSERT INTO only_here VALUES (1)`); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := conns[1].QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE tablename = 'only_here'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("table from database 1 visible in database 2")
		}
		conns[1].Close(ctx)
		// conns[0] stays open: the drop must still succeed.
		leftOpen = conns[0]
	})
	if leftOpen == nil {
		t.Skip("inner test skipped")
	}
	defer leftOpen.Close(ctx)

	admin := pgtest.NewDatabase(t)
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, name := range names {
		if name == "" {
			t.Fatal("inner test did not run")
		}
		if dbExists(t, conn, name) {
			t.Errorf("database %s still exists after its test ended", name)
		}
	}
}

func TestShortSkips(t *testing.T) {
	if !testing.Short() {
		t.Skip("checks -short behaviour")
	}
	pgtest.NewDatabase(t)
	t.Fatal("NewDatabase did not skip under -short")
}

// BenchmarkNewDatabase measures creating a database; the drops run in
// cleanup, after the timed loop.
func BenchmarkNewDatabase(b *testing.B) {
	for b.Loop() {
		pgtest.NewDatabase(b)
	}
}
