package pg

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestValidateSchema(t *testing.T) {
	for _, ok := range []string{"triage", "rotation", "notifier", "_x", "a1_b2"} {
		if err := ValidateSchema(ok); err != nil {
			t.Errorf("ValidateSchema(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "Triage", "1abc", "ingest-slack", "a.b", `a"b`, "pg_catalog", "public",
		"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd"} {
		if err := ValidateSchema(bad); err == nil {
			t.Errorf("ValidateSchema(%q) accepted", bad)
		}
	}
}

func TestRoleName(t *testing.T) {
	if got := RoleName("ingest-slack"); got != "ingest_slack" {
		t.Errorf("RoleName = %q", got)
	}
}

func TestWithUser(t *testing.T) {
	for _, c := range []struct{ in, user, pw, want string }{
		{"postgres://postgres@127.0.0.1:5432/sidekick?sslmode=disable", "triage", "s3cr/t@", "postgres://triage:s3cr%2Ft%40@127.0.0.1:5432/sidekick?sslmode=disable"},
		{"postgresql://admin:x@db/sidekick", "notifier", "", "postgresql://notifier@db/sidekick"},
		{"host=db dbname=sidekick user=admin", "rotation", "it's", `host=db dbname=sidekick user=admin user='rotation' password='it\'s'`},
	} {
		got, err := withUser(c.in, c.user, c.pw)
		if err != nil || got != c.want {
			t.Errorf("withUser(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestErrorHelpers(t *testing.T) {
	uv := fmt.Errorf("insert: %w", &pgconn.PgError{Code: "23505", ConstraintName: "items_name_key"})
	if !IsUniqueViolation(uv) || IsForeignKeyViolation(uv) || IsRetryable(uv) || ConstraintName(uv) != "items_name_key" {
		t.Errorf("helpers misread a unique violation")
	}
	if !IsRetryable(&pgconn.PgError{Code: "40001"}) || !IsRetryable(&pgconn.PgError{Code: "40P01"}) {
		t.Errorf("serialization failure / deadlock not retryable")
	}
	if IsUniqueViolation(errors.New("x")) || IsUniqueViolation(nil) || ConstraintName(nil) != "" {
		t.Errorf("helpers matched a non-Postgres error")
	}
	if !isConcurrentDDL(&pgconn.PgError{Code: "XX000", Message: "tuple concurrently updated"}) || isConcurrentDDL(&pgconn.PgError{Code: "XX000", Message: "other"}) {
		t.Errorf("isConcurrentDDL")
	}
}
