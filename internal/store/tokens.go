package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// TokenRecord is an API token as stored: its description and the hash
// of its secret (never the secret).
type TokenRecord struct {
	api.Token
	Hash string
}

// CreateToken stores t; a token of the same name is a conflict.
func (s *Store) CreateToken(ctx context.Context, t TokenRecord) error {
	var exp int64
	if t.Expires != nil {
		exp = t.Expires.UnixNano()
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO api_tokens (name, hash, role, app, created, expires) VALUES (?, ?, ?, ?, ?, ?)`,
		t.Name, t.Hash, t.Role, t.App, t.Created.UnixNano(), exp)
	if err != nil && strings.Contains(err.Error(), "UNIQUE") {
		return errdefs.Conflict("a token named %q exists: choose another --name, or revoke it first", t.Name)
	}
	return err
}

// ListTokens returns every token, by name.
func (s *Store) ListTokens(ctx context.Context) ([]TokenRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, hash, role, app, created, expires, last_used FROM api_tokens ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []TokenRecord
	for rows.Next() {
		var t TokenRecord
		var created, exp, used int64
		if err := rows.Scan(&t.Name, &t.Hash, &t.Role, &t.App, &created, &exp, &used); err != nil {
			return nil, err
		}
		t.Created = time.Unix(0, created)
		if exp != 0 {
			e := time.Unix(0, exp)
			t.Expires = &e
		}
		if used != 0 {
			u := time.Unix(0, used)
			t.LastUsed = &u
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// DeleteToken removes the token named name.
func (s *Store) DeleteToken(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM api_tokens WHERE name = ?`, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errdefs.NotFound("no token named %q: see skiff token ls", name)
	}
	return nil
}

// TouchToken records that the token named name was used at t.
func (s *Store) TouchToken(ctx context.Context, name string, t time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE api_tokens SET last_used = ? WHERE name = ?`, t.UnixNano(), name)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	return err
}
