package pg

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// RoleName is the login role EnsureServiceRole uses for a service: the
// service name with '-' replaced by '_' (ingest-slack → ingest_slack).
func RoleName(service string) string {
	return strings.ReplaceAll(strings.ToLower(service), "-", "_")
}

// EnsureServiceRole creates (if missing) a login role named for the service
// with the given password, owning only its schema, with no rights on other
// services' schemas; used by `sidekick dev` and documented for production.
// It returns adminURL with the user and password replaced by the service's.
//
// What it does, idempotently, in one transaction on the admin connection:
//
//   - CREATE ROLE (or ALTER ROLE when it exists) <role> LOGIN NOSUPERUSER
//     NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS PASSWORD …;
//     it refuses to touch an existing superuser role or the admin itself;
//   - creates the schema owned by the role, or hands an existing schema and
//     every table, view, sequence, function and type in it to the role (so
//     migrations applied earlier by the admin become the service's);
//   - revokes PUBLIC's rights on the schema, and sets default privileges so
//     objects the admin creates there later are usable by the role;
//   - sets the role's search_path to the schema in this database.
//
// The role gets nothing else: other services' schemas are owned by their
// own roles and grant nothing to PUBLIC, so it cannot read them. The admin
// must be a superuser, or hold CREATEROLE and own the schema (it then
// becomes a member of the role so it can hand over ownership).
func EnsureServiceRole(ctx context.Context, adminURL, service, schema, password string) (serviceURL string, err error) {
	role := RoleName(service)
	if !isPlainIdentifier(role) {
		return "", fmt.Errorf("ensure service role: invalid service name %q", service)
	}
	if err := ValidateSchema(schema); err != nil {
		return "", fmt.Errorf("ensure service role %s: %w", role, err)
	}
	serviceURL, err = withUser(adminURL, role, password)
	if err != nil {
		return "", fmt.Errorf("ensure service role %s: %w", role, err)
	}
	cfg, err := pgx.ParseConfig(adminURL)
	if err != nil {
		return "", fmt.Errorf("ensure service role %s: parse url: %w", role, err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return "", fmt.Errorf("ensure service role %s: connect %s: %w", role, redact(cfg), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	// Roles are cluster-wide while advisory locks are per database, so two
	// databases setting up the same role can still collide: retry those.
	const attempts = 5
	for i := 1; ; i++ {
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			return ensureServiceRole(ctx, tx, role, schema, password)
		})
		if err == nil || i == attempts || !isConcurrentDDL(err) {
			break
		}
	}
	if err != nil {
		return "", fmt.Errorf("ensure service role %s: %w", role, err)
	}
	return serviceURL, nil
}

func ensureServiceRole(ctx context.Context, tx pgx.Tx, role, schema, password string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey("role:"+role)); err != nil {
		return fmt.Errorf("take advisory lock: %w", err)
	}
	var (
		admin       string
		adminSuper  bool
		exists      bool
		existsSuper bool
	)
	err := tx.QueryRow(ctx, `
		SELECT current_user,
		       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
		       EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1),
		       COALESCE((SELECT rolsuper FROM pg_roles WHERE rolname = $1), false)`, role).
		Scan(&admin, &adminSuper, &exists, &existsSuper)
	if err != nil {
		return fmt.Errorf("look up roles: %w", err)
	}
	if role == admin || existsSuper {
		return fmt.Errorf("role %s is the admin or a superuser; refusing to turn it into a service role", role)
	}

	verb := "CREATE"
	if exists {
		verb = "ALTER"
	}
	var pw any // NULL: no password (trust-only setups)
	if password != "" {
		pw = password
	}
	// format() quotes the identifier and the password literal server-side.
	if err := execFormatted(ctx, tx,
		`SELECT format('`+verb+` ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS PASSWORD %L', $1::text, $2::text)`,
		role, pw); err != nil {
		return fmt.Errorf("%s role: %w", strings.ToLower(verb), err)
	}
	if !adminSuper {
		// A non-superuser admin can only hand objects to a role it may SET ROLE to.
		if err := execFormatted(ctx, tx, `SELECT format('GRANT %I TO %I', $1::text, current_user)`, role); err != nil {
			return fmt.Errorf("grant role to admin: %w", err)
		}
	}

	r, s := pgx.Identifier{role}.Sanitize(), pgx.Identifier{schema}.Sanitize()
	var schemaExists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&schemaExists); err != nil {
		return fmt.Errorf("look up schema: %w", err)
	}
	if schemaExists {
		if _, err := tx.Exec(ctx, `ALTER SCHEMA `+s+` OWNER TO `+r); err != nil {
			return fmt.Errorf("hand schema to role: %w", err)
		}
		if err := reassignSchemaObjects(ctx, tx, schema, role); err != nil {
			return err
		}
	} else if _, err := tx.Exec(ctx, `CREATE SCHEMA `+s+` AUTHORIZATION `+r); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}

	stmts := []string{
		`REVOKE ALL ON SCHEMA ` + s + ` FROM PUBLIC`,
		`ALTER DEFAULT PRIVILEGES IN SCHEMA ` + s + ` GRANT ALL ON TABLES TO ` + r,
		`ALTER DEFAULT PRIVILEGES IN SCHEMA ` + s + ` GRANT ALL ON SEQUENCES TO ` + r,
		`ALTER DEFAULT PRIVILEGES IN SCHEMA ` + s + ` GRANT ALL ON FUNCTIONS TO ` + r,
		`ALTER DEFAULT PRIVILEGES IN SCHEMA ` + s + ` GRANT ALL ON TYPES TO ` + r,
	}
	for _, q := range stmts {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	if err := execFormatted(ctx, tx, `SELECT format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), $1::text)`, role); err != nil {
		return fmt.Errorf("grant connect: %w", err)
	}
	if err := execFormatted(ctx, tx, `SELECT format('ALTER ROLE %I IN DATABASE %I SET search_path = %I', $1::text, current_database(), $2::text)`, role, schema); err != nil {
		return fmt.Errorf("set role search_path: %w", err)
	}
	return nil
}

// reassignSchemaObjects hands every object in schema that role does not own
// yet to role. Sequences owned by a column, indexes and row types follow
// their table.
func reassignSchemaObjects(ctx context.Context, tx pgx.Tx, schema, role string) error {
	rows, err := tx.Query(ctx, `
		WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname = $1),
		     owner AS (SELECT oid FROM pg_roles WHERE rolname = $2)
		SELECT format('ALTER %s %I.%I OWNER TO %I',
		              CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
		                             WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
		              $1::text, c.relname, $2::text)
		FROM pg_class c
		WHERE c.relnamespace = (SELECT oid FROM ns)
		  AND c.relowner <> (SELECT oid FROM owner)
		  AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
		  AND NOT (c.relkind = 'S' AND EXISTS (
		        SELECT 1 FROM pg_depend d
		        WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i')))
		UNION ALL
		SELECT format('ALTER ROUTINE %s OWNER TO %I', p.oid::regprocedure, $2::text)
		FROM pg_proc p
		WHERE p.pronamespace = (SELECT oid FROM ns) AND p.proowner <> (SELECT oid FROM owner)
		UNION ALL
		SELECT format('ALTER %s %s OWNER TO %I', CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, t.oid::regtype, $2::text)
		FROM pg_type t
		WHERE t.typnamespace = (SELECT oid FROM ns) AND t.typowner <> (SELECT oid FROM owner)
		  AND (t.typtype IN ('e', 'd', 'r')
		       OR (t.typtype = 'c' AND EXISTS (SELECT 1 FROM pg_class k WHERE k.oid = t.typrelid AND k.relkind = 'c')))`,
		schema, role)
	if err != nil {
		return fmt.Errorf("list schema objects: %w", err)
	}
	stmts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list schema objects: %w", err)
	}
	for _, q := range stmts {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// execFormatted runs query, which must return one statement built with
// format(), and then executes that statement. DDL takes no bind
// parameters; this keeps quoting on the server.
func execFormatted(ctx context.Context, tx pgx.Tx, query string, args ...any) error {
	var stmt string
	if err := tx.QueryRow(ctx, query, args...).Scan(&stmt); err != nil {
		return fmt.Errorf("build statement: %w", err)
	}
	if _, err := tx.Exec(ctx, stmt); err != nil {
		return err
	}
	return nil
}

// isConcurrentDDL reports errors caused by another session changing the
// same role or catalog row at the same moment.
func isConcurrentDDL(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case codeUniqueViolation, "42710", codeSerialization, codeDeadlock: // 42710 duplicate_object
		return true
	case "XX000":
		return strings.Contains(pgErr.Message, "concurrently")
	}
	return false
}

// withUser returns connURL with its user and password replaced. It accepts
// postgres:// URLs and keyword/value connection strings.
func withUser(connURL, user, password string) (string, error) {
	if strings.HasPrefix(connURL, "postgres://") || strings.HasPrefix(connURL, "postgresql://") {
		u, err := url.Parse(connURL)
		if err != nil {
			return "", fmt.Errorf("parse url: %w", err)
		}
		if password == "" {
			u.User = url.User(user)
		} else {
			u.User = url.UserPassword(user, password)
		}
		return u.String(), nil
	}
	// keyword/value: later settings override earlier ones.
	quote := func(v string) string {
		return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
	}
	return strings.TrimSpace(connURL) + " user=" + quote(user) + " password=" + quote(password), nil
}
