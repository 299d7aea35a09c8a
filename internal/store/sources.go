package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// sourceHistoryMax bounds the history kept per source.
const sourceHistoryMax = 100

// CreateSource stores a new source; one of the same name is ErrConflict.
func (s *Store) CreateSource(ctx context.Context, src api.Source) error {
	spec, err := json.Marshal(src.Spec)
	if err != nil {
		return err
	}
	status, err := json.Marshal(src.Status)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO git_sources (name, created, spec, status) VALUES (?, ?, ?, ?)`,
		src.Name, src.Created.UnixNano(), string(spec), string(status))
	if isUniqueViolation(err) {
		return errdefs.Conflict("a source named %q exists: remove it first (skiff source rm %s) or choose another name", src.Name, src.Name)
	}
	return err
}

// UpdateSourceSpec replaces a source's spec.
func (s *Store) UpdateSourceSpec(ctx context.Context, name string, spec api.SourceSpec) error {
	b, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	return s.updateSource(ctx, `UPDATE git_sources SET spec = ? WHERE name = ?`, string(b), name)
}

// UpdateSourceStatus replaces a source's status.
func (s *Store) UpdateSourceStatus(ctx context.Context, name string, st api.SourceStatus) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return s.updateSource(ctx, `UPDATE git_sources SET status = ? WHERE name = ?`, string(b), name)
}

func (s *Store) updateSource(ctx context.Context, q, doc, name string) error {
	res, err := s.db.ExecContext(ctx, q, doc, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return sourceNotFound(name)
	}
	return nil
}

func sourceNotFound(name string) error {
	return errdefs.NotFound("no source named %q: see skiff source ls", name)
}

// GetSource returns one source.
func (s *Store) GetSource(ctx context.Context, name string) (api.Source, error) {
	row := s.db.QueryRowContext(ctx, `SELECT name, created, spec, status FROM git_sources WHERE name = ?`, name)
	src, err := scanSource(row)
	if errors.Is(err, sql.ErrNoRows) {
		return api.Source{}, sourceNotFound(name)
	}
	return src, err
}

// ListSources returns every source, by name.
func (s *Store) ListSources(ctx context.Context) ([]api.Source, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, created, spec, status FROM git_sources ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []api.Source
	for rows.Next() {
		src, err := scanSource(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, src)
	}
	return out, rows.Err()
}

func scanSource(row interface{ Scan(...any) error }) (api.Source, error) {
	var src api.Source
	var created int64
	var spec, status string
	if err := row.Scan(&src.Name, &created, &spec, &status); err != nil {
		return api.Source{}, err
	}
	src.Created = time.Unix(0, created).UTC()
	if err := json.Unmarshal([]byte(spec), &src.Spec); err != nil {
		return api.Source{}, fmt.Errorf("source %s: corrupt spec: %w", src.Name, err)
	}
	if err := json.Unmarshal([]byte(status), &src.Status); err != nil {
		return api.Source{}, fmt.Errorf("source %s: corrupt status: %w", src.Name, err)
	}
	return src, nil
}

// DeleteSource removes a source and its history.
func (s *Store) DeleteSource(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM git_sources WHERE name = ?`, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return sourceNotFound(name)
	}
	return nil
}

// AddSourceHistory appends e to a source's history, dropping the oldest
// entries beyond sourceHistoryMax.
func (s *Store) AddSourceHistory(ctx context.Context, name string, e api.SourceHistoryEntry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO git_source_history (source, doc) VALUES (?, ?)`, name, string(b)); err != nil {
			if errors.Is(err, sql.ErrNoRows) || isForeignKeyViolation(err) {
				return sourceNotFound(name)
			}
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM git_source_history WHERE source = ? AND id NOT IN
			(SELECT id FROM git_source_history WHERE source = ? ORDER BY id DESC LIMIT ?)`, name, name, sourceHistoryMax)
		return err
	})
}

// SourceHistory returns a source's history, newest first.
func (s *Store) SourceHistory(ctx context.Context, name string) ([]api.SourceHistoryEntry, error) {
	if _, err := s.GetSource(ctx, name); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT doc FROM git_source_history WHERE source = ? ORDER BY id DESC`, name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []api.SourceHistoryEntry
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, err
		}
		var e api.SourceHistoryEntry
		if err := json.Unmarshal([]byte(doc), &e); err != nil {
			return nil, fmt.Errorf("source %s: corrupt history entry: %w", name, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
