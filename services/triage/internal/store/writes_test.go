package store

import (
	"context"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sidekickhq/sidekick/platform/pg/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestArrayLiteral checks that PostgreSQL reads arrayLiteral back as the
// same list, whatever the elements hold.
func TestArrayLiteral(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	for _, want := range [][]string{
		{},
		{""},
		{"performance"},
		{"deployments/scaling", "api"},
		{`say "hi"`, `back\slash`, `trailing\`, "a,b", "{braces}", " spaced ", "NULL", "null", "émoji 🎉", "tab\tnewline\n"},
	} {
		var got []string
		if err := conn.QueryRow(ctx, `SELECT $1::text::text[]`, arrayLiteral(want)).Scan(&got); err != nil {
			t.Fatalf("%q as %s: %v", want, arrayLiteral(want), err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%q as %s read back as %q", want, arrayLiteral(want), got)
		}
	}
}
