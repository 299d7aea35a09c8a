package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/internal/errdefs"
)

// PutApp stores an App (create or replace).
func (s *Store) PutApp(ctx context.Context, a api.App) error {
	doc, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO apps (name, doc, updated) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET doc = excluded.doc, updated = excluded.updated`,
			a.Metadata.Name, string(doc), time.Now().UnixNano())
		return err
	})
}

// GetApp returns the App named name.
func (s *Store) GetApp(ctx context.Context, name string) (api.App, error) {
	var doc string
	err := s.db.QueryRowContext(ctx, `SELECT doc FROM apps WHERE name = ?`, name).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return api.App{}, errdefs.NotFound("app %q not found", name)
	}
	if err != nil {
		return api.App{}, err
	}
	var a api.App
	if err := json.Unmarshal([]byte(doc), &a); err != nil {
		return api.App{}, fmt.Errorf("app %s: corrupt record: %w", name, err)
	}
	return a, nil
}

// ListApps returns all Apps by name.
func (s *Store) ListApps(ctx context.Context) ([]api.App, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT doc FROM apps ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []api.App
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, err
		}
		var a api.App
		if err := json.Unmarshal([]byte(doc), &a); err != nil {
			return nil, fmt.Errorf("corrupt app record: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// DeleteApp deletes an App and its revisions in one transaction.
func (s *Store) DeleteApp(ctx context.Context, name string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM revisions WHERE app = ?`, name); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM apps WHERE name = ?`, name)
		return err
	})
}

// PutRevision stores a revision (create or replace its status).
func (s *Store) PutRevision(ctx context.Context, r api.Revision) error {
	doc, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO revisions (name, app, doc) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET doc = excluded.doc`, r.Name, r.App, string(doc))
		if err != nil && isForeignKeyViolation(err) {
			return errdefs.NotFound("app %q not found", r.App)
		}
		return err
	})
}

func isForeignKeyViolation(err error) bool {
	return err != nil && strings.Contains(err.Error(), "FOREIGN KEY constraint failed")
}

// ListRevisions returns an App's revisions by name.
func (s *Store) ListRevisions(ctx context.Context, app string) ([]api.Revision, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT doc FROM revisions WHERE app = ? ORDER BY name`, app)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []api.Revision
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, err
		}
		var r api.Revision
		if err := json.Unmarshal([]byte(doc), &r); err != nil {
			return nil, fmt.Errorf("corrupt revision record: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// DeleteRevision deletes one revision.
func (s *Store) DeleteRevision(ctx context.Context, name string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM revisions WHERE name = ?`, name)
		return err
	})
}

// MaxEvents bounds the events kept; older ones are trimmed.
const MaxEvents = 10000

// RepeatWindow is how long an event can repeat and still be counted as
// a repeat of the earlier one.
const RepeatWindow = 10 * time.Minute

// AddEvent records an event. An event equal in type, reason and message to
// one of the object's recent events within RepeatWindow is a repeat: the
// earlier record is replaced by e with Count and FirstTime carried on, so
// repeats are counted, never dropped, and the list stays in time order.
func (s *Store) AddEvent(ctx context.Context, e api.Event) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := foldRepeat(ctx, tx, &e); err != nil {
			return err
		}
		doc, err := json.Marshal(e)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO events (time, kind, name, doc) VALUES (?, ?, ?, ?)`, e.Time.UnixNano(), e.Kind, e.Name, string(doc))
		if err != nil {
			return err
		}
		if id, _ := res.LastInsertId(); id%100 == 0 {
			_, err = tx.ExecContext(ctx, `DELETE FROM events WHERE id <= ?`, id-MaxEvents)
		}
		return err
	})
}

// foldRepeat looks for an earlier record of e among the object's recent
// events; if there is one, it is deleted and e counts it.
func foldRepeat(ctx context.Context, tx *sql.Tx, e *api.Event) error {
	rows, err := tx.QueryContext(ctx, `SELECT id, doc FROM events WHERE kind = ? AND name = ? AND time >= ? ORDER BY id DESC LIMIT 20`,
		e.Kind, e.Name, e.Time.Add(-RepeatWindow).UnixNano())
	if err != nil {
		return err
	}
	var found int64
	var prev api.Event
	for rows.Next() {
		var id int64
		var doc string
		var old api.Event
		if err := rows.Scan(&id, &doc); err != nil {
			rows.Close()
			return err
		}
		if json.Unmarshal([]byte(doc), &old) == nil && old.Type == e.Type && old.Reason == e.Reason && old.Message == e.Message {
			found, prev = id, old
			break
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil || found == 0 {
		return err
	}
	e.Count = max(prev.Count, 1) + 1
	e.FirstTime = prev.FirstTime
	if e.FirstTime == nil {
		t := prev.Time
		e.FirstTime = &t
	}
	_, err = tx.ExecContext(ctx, `DELETE FROM events WHERE id = ?`, found)
	return err
}

// EventFilter selects events; zero fields match everything.
type EventFilter struct {
	Kind, Name string
	Since      time.Time
	Limit      int // the newest Limit events (0: all)
}

// ListEvents returns matching events, oldest first.
func (s *Store) ListEvents(ctx context.Context, f EventFilter) ([]api.Event, error) {
	q := `SELECT doc FROM events WHERE time >= ?`
	args := []any{f.Since.UnixNano()}
	if f.Kind != "" {
		q += ` AND kind = ?`
		args = append(args, f.Kind)
	}
	if f.Name != "" {
		q += ` AND name = ?`
		args = append(args, f.Name)
	}
	q += ` ORDER BY id DESC`
	if f.Limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, f.Limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []api.Event
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, err
		}
		var e api.Event
		if err := json.Unmarshal([]byte(doc), &e); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, rows.Err()
}
