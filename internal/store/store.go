package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"skiff.dev/skiff/api/errdefs"
)

// Store is skiff's state database. It is safe for concurrent use.
type Store struct {
	db *sql.DB
}

// Open opens (creating if needed) the database at path and applies any
// pending migrations.
func Open(ctx context.Context, path string) (*Store, error) {
	q := url.Values{}
	for _, p := range []string{
		"journal_mode(WAL)",
		"synchronous(FULL)",
		"busy_timeout(10000)",
		"foreign_keys(ON)",
	} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open state database %s: %w", path, err)
	}
	// One writer at a time is what SQLite does anyway; a single
	// connection avoids SQLITE_BUSY between our own connections.
	db.SetMaxOpenConns(1)
	s := &Store{db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate state database %s: %w", path, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// migrations are applied in order; their index+1 is the schema version.
// Never edit an applied migration: append a new one.
var migrations = []string{
	`CREATE TABLE containers (
		id       TEXT PRIMARY KEY,
		name     TEXT NOT NULL UNIQUE,
		created  INTEGER NOT NULL,
		spec     TEXT NOT NULL,
		state    TEXT NOT NULL
	)`,
	// Networks (package network): one row per network; seq numbers the
	// network's host bridge, ip_cursor is where the next address search
	// starts (round robin, so a freed address is not handed out at once).
	`CREATE TABLE networks (
		id         TEXT PRIMARY KEY,
		name       TEXT NOT NULL UNIQUE,
		created    INTEGER NOT NULL,
		driver     TEXT NOT NULL,
		subnet     TEXT NOT NULL DEFAULT '',
		gateway    TEXT NOT NULL DEFAULT '',
		bridge     TEXT NOT NULL DEFAULT '',
		seq        INTEGER NOT NULL UNIQUE,
		internal   INTEGER NOT NULL DEFAULT 0,
		labels     TEXT NOT NULL DEFAULT '{}',
		cni_config TEXT NOT NULL DEFAULT '',
		ip_cursor  TEXT NOT NULL DEFAULT ''
	)`,
	// Network endpoints (package network): a container's attachment. The
	// row is the IP lease: UNIQUE (network_id, ip) is what guarantees an
	// address is never handed out twice, also across a crash. network_id
	// is NULL for "none" (a namespace with loopback only).
	`CREATE TABLE network_endpoints (
		container_id TEXT PRIMARY KEY,
		network_id   TEXT REFERENCES networks(id),
		mode         TEXT NOT NULL,
		name         TEXT NOT NULL,
		hostname     TEXT NOT NULL DEFAULT '',
		ip           TEXT,
		mac          TEXT NOT NULL DEFAULT '',
		gateway      TEXT NOT NULL DEFAULT '',
		aliases      TEXT NOT NULL DEFAULT '[]',
		ports        TEXT NOT NULL DEFAULT '[]',
		veth         TEXT NOT NULL DEFAULT '',
		created      INTEGER NOT NULL,
		UNIQUE (network_id, ip)
	)`,
	// Apps (package controller): the applied resource, status included.
	`CREATE TABLE apps (
		name     TEXT PRIMARY KEY,
		doc      TEXT NOT NULL,
		updated  INTEGER NOT NULL
	)`,
	// Revisions: immutable snapshots of an app's runnable spec (the status
	// part changes). Deleting an app deletes its revisions.
	`CREATE TABLE revisions (
		name     TEXT PRIMARY KEY,
		app      TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
		doc      TEXT NOT NULL
	)`,
	`CREATE INDEX revisions_app ON revisions (app)`,
	// Events: what happened, for describe and skiff events; the oldest are
	// trimmed beyond a bound.
	`CREATE TABLE events (
		id       INTEGER PRIMARY KEY AUTOINCREMENT,
		time     INTEGER NOT NULL,
		kind     TEXT NOT NULL,
		name     TEXT NOT NULL,
		doc      TEXT NOT NULL
	)`,
	`CREATE INDEX events_object ON events (kind, name, id)`,
	// resourceVersion: one counter for every versioned object, taken by
	// each write (so a version is never reused); an App's version is its
	// own column. Apps stored before versions existed start at 1.
	`CREATE TABLE resource_version (value INTEGER NOT NULL)`,
	`INSERT INTO resource_version (value) VALUES (1)`,
	`ALTER TABLE apps ADD COLUMN version INTEGER NOT NULL DEFAULT 1`,
	// Containers are versioned too: each state write names the version it
	// replaces, so a second writer (another daemon on the same root) is
	// found instead of overwriting.
	`ALTER TABLE containers ADD COLUMN version INTEGER NOT NULL DEFAULT 1`,
	// Secrets (package secrets): the data key sealed by the key file
	// (one row), each secret's current version, and every version's keys
	// in clear and values sealed by the data key.
	`CREATE TABLE secret_keys (
		id       INTEGER PRIMARY KEY CHECK (id = 1),
		sealed   BLOB NOT NULL,
		created  INTEGER NOT NULL
	)`,
	`CREATE TABLE secrets (
		name     TEXT PRIMARY KEY,
		version  INTEGER NOT NULL,
		created  INTEGER NOT NULL,
		updated  INTEGER NOT NULL
	)`,
	`CREATE TABLE secret_versions (
		name     TEXT NOT NULL REFERENCES secrets(name) ON DELETE CASCADE,
		version  INTEGER NOT NULL,
		created  INTEGER NOT NULL,
		keys     TEXT NOT NULL,
		data     BLOB NOT NULL,
		PRIMARY KEY (name, version)
	)`,
	// API tokens (tokens.go): the SHA-256 of each secret, never the
	// secret; expires and last_used are Unix nanoseconds, 0 for none.
	`CREATE TABLE api_tokens (
		name      TEXT PRIMARY KEY,
		hash      TEXT NOT NULL UNIQUE,
		role      TEXT NOT NULL,
		app       TEXT NOT NULL DEFAULT '',
		created   INTEGER NOT NULL,
		expires   INTEGER NOT NULL DEFAULT 0,
		last_used INTEGER NOT NULL DEFAULT 0
	)`,
	// User namespace id ranges (idranges.go): range idx belongs to owner
	// ("app/NAME" or "container/ID") until released.
	`CREATE TABLE id_ranges (
		owner    TEXT PRIMARY KEY,
		idx      INTEGER NOT NULL UNIQUE,
		created  INTEGER NOT NULL
	)`,
}

func (s *Store) migrate(ctx context.Context) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
			return err
		}
		var v int
		err := tx.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (0)`); err != nil {
				return err
			}
		case err != nil:
			return err
		}
		if v > len(migrations) {
			return fmt.Errorf("database schema version %d is newer than this skiff knows (%d): use a newer skiff", v, len(migrations))
		}
		for i := v; i < len(migrations); i++ {
			if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
				return fmt.Errorf("migration %d: %w", i+1, err)
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE schema_version SET version = ?`, len(migrations))
		return err
	})
}

// tx runs fn in a transaction, committing if it returns nil.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("begin transaction: %w", err))
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("commit: %w", err))
	}
	return nil
}

func isUniqueViolation(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}
