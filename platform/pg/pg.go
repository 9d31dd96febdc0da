// Package pg connects services to PostgreSQL: a pgx pool pinned to the
// service's own schema, goose migrations applied inside that schema under an
// advisory lock, a readiness check, and a least-privilege login role per
// service.
//
// Each service owns exactly one schema (DESIGN: no service reads another's
// tables). Connect sets search_path to that schema, so SQL in a service uses
// unqualified table names.
//
// # Production
//
// Give every service its own login role that owns its schema and nothing
// else. Either run EnsureServiceRole once per service with an admin URL
// (a setup job), or have the DBA run its equivalent:
//
//	CREATE ROLE triage LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD '…';
//	CREATE SCHEMA triage AUTHORIZATION triage;   -- or ALTER SCHEMA … OWNER TO
//	REVOKE ALL ON SCHEMA triage FROM PUBLIC;
//	ALTER ROLE triage IN DATABASE sidekick SET search_path = triage;
//
// and give the service SIDEKICK_DATABASE_URL with that role. The service
// then applies its own migrations at start (or with its "migrate"
// argument) without any further rights. Migrate holds a session advisory
// lock, so point it at the server directly or through a session-mode
// pooler, not a transaction-mode one (PgBouncer pool_mode=transaction).
package pg

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ValidateSchema reports whether schema is usable as a service schema name:
// lower-case letters, digits and underscores, not starting with a digit,
// at most 63 bytes, and not a reserved pg_ prefix.
func ValidateSchema(schema string) error {
	if !isPlainIdentifier(schema) {
		return fmt.Errorf("invalid schema name %q: want lower-case letters, digits and _ (max 63, not starting with a digit)", schema)
	}
	if strings.HasPrefix(schema, "pg_") || schema == "public" || schema == "information_schema" {
		return fmt.Errorf("invalid schema name %q: reserved", schema)
	}
	return nil
}

// Connect opens a pgxpool whose connections use search_path = schema (set
// in the pool config RuntimeParams), pings it, and returns it. The schema
// must exist (Migrate creates it); Connect fails with a message saying so
// otherwise.
func Connect(ctx context.Context, url, schema string) (*pgxpool.Pool, error) {
	return ConnectWith(ctx, url, schema, nil, 0)
}

// ConnectWith is Connect with settings: PostgreSQL run-time parameters
// (name → value, e.g. "jit": "off") for every connection of the pool,
// sent in the startup message, so they cost no statement, and maxConns,
// the pool's size (0: pgxpool's default, the CPUs and at least 4). A
// parameter or pool_max_conns the URL already sets
// (postgres://…?jit=on&pool_max_conns=8) keeps the URL's value: the
// operator has the last word.
func ConnectWith(ctx context.Context, url, schema string, settings map[string]string, maxConns int32) (*pgxpool.Pool, error) {
	if err := ValidateSchema(schema); err != nil {
		return nil, fmt.Errorf("connect postgres: %w", err)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("connect postgres: parse url: %w", err)
	}
	for k, v := range settings {
		if _, set := cfg.ConnConfig.RuntimeParams[k]; !set {
			cfg.ConnConfig.RuntimeParams[k] = v
		}
	}
	if maxConns > 0 && !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = maxConns
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect postgres %s: ping: %w", redact(cfg.ConnConfig), err)
	}
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect postgres: look up schema %s: %w", schema, err)
	}
	if !exists {
		pool.Close()
		return nil, fmt.Errorf("connect postgres: schema %s does not exist in database %s (run migrations first)", schema, cfg.ConnConfig.Database)
	}
	return pool, nil
}

// DefaultReadyTimeout bounds one readiness ping when the caller's context
// has no earlier deadline.
const DefaultReadyTimeout = 2 * time.Second

// Ready is a readiness check (ping with timeout) usable by /readyz.
func Ready(pool *pgxpool.Pool) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, DefaultReadyTimeout)
		defer cancel()
		if err := pool.Ping(ctx); err != nil {
			return fmt.Errorf("postgres ping: %w", err)
		}
		return nil
	}
}

// SQLSTATE codes the helpers below recognise.
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
	codeSerialization       = "40001"
	codeDeadlock            = "40P01"
)

// IsUniqueViolation reports whether err is a unique constraint violation.
func IsUniqueViolation(err error) bool { return hasCode(err, codeUniqueViolation) }

// IsForeignKeyViolation reports whether err is a foreign key violation.
func IsForeignKeyViolation(err error) bool { return hasCode(err, codeForeignKeyViolation) }

// IsRetryable reports whether err is a serialization failure or deadlock,
// after which the whole transaction may be retried.
func IsRetryable(err error) bool {
	return hasCode(err, codeSerialization) || hasCode(err, codeDeadlock)
}

// ConstraintName returns the constraint named by a Postgres error, or "".
func ConstraintName(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.ConstraintName
	}
	return ""
}

func hasCode(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}

// redact names a server without its password, for error messages.
func redact(c *pgx.ConnConfig) string {
	return fmt.Sprintf("%s@%s:%d/%s", c.User, c.Host, c.Port, c.Database)
}

// isPlainIdentifier reports whether s is a lower-case SQL identifier that
// needs no quoting anywhere (search_path, goose's version table name).
func isPlainIdentifier(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r == '_':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
