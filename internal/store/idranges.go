package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"skiff.dev/skiff/api/errdefs"
)

// IDRange returns the index of the user namespace id range owner holds,
// giving it the lowest free index below limit when it holds none. An
// index in busy is not given out (a range still used by containers of a
// deleted owner). The choice is written before it is returned: an owner
// keeps its range until ReleaseIDRange, across daemon restarts.
func (s *Store) IDRange(ctx context.Context, owner string, limit int, busy map[int]bool) (int, error) {
	var idx int
	err := s.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT idx FROM id_ranges WHERE owner = ?`, owner).Scan(&idx)
		if err == nil || !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT idx FROM id_ranges ORDER BY idx`)
		if err != nil {
			return err
		}
		taken := map[int]bool{}
		for rows.Next() {
			var n int
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return err
			}
			taken[n] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for idx = 0; idx < limit && (taken[idx] || busy[idx]); idx++ {
		}
		if idx >= limit {
			return errdefs.Unavailable("all %d user namespace id ranges are in use: remove containers or Apps that run with a user namespace", limit)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO id_ranges (owner, idx, created) VALUES (?, ?, ?)`, owner, idx, time.Now().UnixNano())
		return err
	})
	return idx, err
}

// ReleaseIDRange frees owner's id range; an owner without one is fine.
func (s *Store) ReleaseIDRange(ctx context.Context, owner string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM id_ranges WHERE owner = ?`, owner)
	return err
}

// OwnedIDRanges returns the indexes of the id ranges that have an owner.
func (s *Store) OwnedIDRanges(ctx context.Context) (map[int]bool, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT idx FROM id_ranges`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	owned := map[int]bool{}
	for rows.Next() {
		var n int
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		owned[n] = true
	}
	return owned, rows.Err()
}
