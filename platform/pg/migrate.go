package pg

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"log/slog"
	"path"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
)

// VersionTable is the name of goose's version table inside each service
// schema.
const VersionTable = "goose_db_version"

// Migrate creates the schema if missing and applies the embedded goose SQL
// migrations (fsys holds *.sql at its root) with the version table inside
// that schema (<schema>.goose_db_version), under a Postgres advisory lock
// so several replicas starting at once are safe. Running it twice changes
// nothing.
//
// The lock is a session advisory lock keyed by the schema name and held on
// a dedicated connection for the whole run, so concurrent callers wait
// (honouring ctx) instead of polling. Migrations run with search_path set to
// the schema, so their SQL uses unqualified names.
//
// The role in url needs CREATE on the database only when the schema does
// not exist yet; a service role set up by EnsureServiceRole can migrate its
// own schema.
func Migrate(ctx context.Context, url, schema string, fsys fs.FS, logger *slog.Logger) error {
	if err := ValidateSchema(schema); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if fsys == nil {
		return fmt.Errorf("migrate %s: no migrations given", schema)
	}
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	logger = logger.With("schema", schema)

	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("migrate %s: parse url: %w", schema, err)
	}
	lockConn, err := pgx.ConnectConfig(ctx, cfg.Copy())
	if err != nil {
		return fmt.Errorf("migrate %s: connect %s: %w", schema, redact(cfg), err)
	}
	defer lockConn.Close(context.WithoutCancel(ctx))

	key := lockKey(schema)
	if _, err := lockConn.Exec(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
		return fmt.Errorf("migrate %s: take advisory lock: %w", schema, err)
	}
	// Closing the session releases the lock too; unlocking explicitly keeps
	// it short when the connection lingers.
	defer func() { _, _ = lockConn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, key) }()

	if err := ensureSchema(ctx, lockConn, schema); err != nil {
		return fmt.Errorf("migrate %s: %w", schema, err)
	}

	migCfg := cfg.Copy()
	migCfg.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	db := stdlib.OpenDB(*migCfg)
	defer db.Close()

	provider, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithTableName(schema+"."+VersionTable),
		goose.WithDisableGlobalRegistry(true),
		goose.WithSlog(logger),
	)
	if err != nil {
		return fmt.Errorf("migrate %s: load migrations: %w", schema, err)
	}
	results, err := provider.Up(ctx)
	if err != nil {
		var partial *goose.PartialError
		if errors.As(err, &partial) && partial.Failed != nil && partial.Failed.Source != nil {
			return fmt.Errorf("migrate %s: apply %s: %w", schema, path.Base(partial.Failed.Source.Path), partial.Err)
		}
		return fmt.Errorf("migrate %s: %w", schema, err)
	}
	for _, r := range results {
		logger.Info("migration applied", "version", r.Source.Version, "file", path.Base(r.Source.Path), "duration", r.Duration)
	}
	version, err := provider.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("migrate %s: read version: %w", schema, err)
	}
	logger.Debug("schema up to date", "version", version, "applied", len(results))
	return nil
}

// ensureSchema creates schema unless it exists. It checks first because
// CREATE SCHEMA IF NOT EXISTS still demands CREATE on the database, which
// a service role migrating its existing schema does not have.
func ensureSchema(ctx context.Context, conn *pgx.Conn, schema string) error {
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
		return fmt.Errorf("look up schema: %w", err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize()); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	return nil
}

// lockKey derives the advisory lock key for migrating schema. Advisory
// locks are per database, so the same schema name in two databases does
// not contend.
func lockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("sidekick/pg.Migrate/" + schema))
	return int64(h.Sum64())
}
