package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// StaleError is the conflict of a conditional write: the object was
// changed (or deleted) since the version the write was based on was read.
// It is in the errdefs.ErrConflict category; nothing was written.
type StaleError struct {
	// Kind and Name name the object ("app", "shop").
	Kind, Name string
	// Read is the resourceVersion the write was based on ("" for a
	// create); Current is the stored one ("" when the object no longer
	// exists).
	Read, Current string
}

func (e *StaleError) Error() string {
	switch {
	case e.Read == "":
		return fmt.Sprintf("%s %q was created by another write at the same time: nothing was written: read it again and retry", e.Kind, e.Name)
	case e.Current == "":
		return fmt.Sprintf("%s %q was deleted after version %s of it was read: nothing was written: read it again and retry", e.Kind, e.Name, e.Read)
	}
	return fmt.Sprintf("%s %q was changed since it was read: the write was based on resourceVersion %s, the %s is now at %s: nothing was written: read it again and retry", e.Kind, e.Name, e.Read, e.Kind, e.Current)
}

// Is makes a StaleError match errdefs.ErrConflict.
func (e *StaleError) Is(target error) bool { return target == errdefs.ErrConflict }

// nextVersion takes the next resourceVersion: one counter for every
// object, so a version is never reused, not even by an object deleted and
// created again under the same name.
func nextVersion(ctx context.Context, tx *sql.Tx) (int64, error) {
	if _, err := tx.ExecContext(ctx, `UPDATE resource_version SET value = value + 1`); err != nil {
		return 0, err
	}
	var v int64
	err := tx.QueryRowContext(ctx, `SELECT value FROM resource_version`).Scan(&v)
	return v, err
}

func formatVersion(v int64) string { return strconv.FormatInt(v, 10) }

// appDoc is the stored form of an App: its resourceVersion lives in its
// own column, not in the document.
func appDoc(a api.App) (string, error) {
	a.Metadata.ResourceVersion = ""
	doc, err := json.Marshal(a)
	return string(doc), err
}

func parseApp(name, doc string, version int64) (api.App, error) {
	var a api.App
	if err := json.Unmarshal([]byte(doc), &a); err != nil {
		return api.App{}, fmt.Errorf("app %s: corrupt record: %w", name, err)
	}
	a.Metadata.ResourceVersion = formatVersion(version)
	return a, nil
}

// CreateApp stores a new App and returns it as stored, with its
// resourceVersion. An App of that name that exists already is
// ErrConflict. The resourceVersion in a is ignored.
func (s *Store) CreateApp(ctx context.Context, a api.App) (api.App, error) {
	doc, err := appDoc(a)
	if err != nil {
		return api.App{}, err
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		v, err := nextVersion(ctx, tx)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO apps (name, doc, updated, version) VALUES (?, ?, ?, ?)`,
			a.Metadata.Name, doc, time.Now().UnixNano(), v)
		if isUniqueViolation(err) {
			return errdefs.Conflict("app %q exists already", a.Metadata.Name)
		}
		a.Metadata.ResourceVersion = formatVersion(v)
		return err
	})
	if err != nil {
		return api.App{}, err
	}
	return a, nil
}

// UpdateApp replaces the metadata and spec of a stored App, on condition
// that it is still at a.Metadata.ResourceVersion; its status stays as
// stored (UpdateAppStatus writes that). It returns the App as stored,
// with its new resourceVersion. A version that is not the stored one, or
// an App deleted since, is a *StaleError (ErrConflict) and writes
// nothing.
func (s *Store) UpdateApp(ctx context.Context, a api.App) (api.App, error) {
	var out api.App
	err := s.tx(ctx, func(tx *sql.Tx) error {
		cur, err := s.getAppTx(ctx, tx, a.Metadata.Name, a.Metadata.ResourceVersion)
		if err != nil {
			return err
		}
		a.Status = cur.Status
		out, err = s.putAppTx(ctx, tx, a)
		return err
	})
	return out, err
}

// UpdateAppStatus replaces the status of a stored App, on condition that
// it is still at resourceVersion, and never changes its metadata or spec
// (the status subresource of Kubernetes). It returns the App as stored,
// with its new resourceVersion. A stale version is a *StaleError
// (ErrConflict) and writes nothing: a status computed from an older spec
// is not stored over a newer one.
func (s *Store) UpdateAppStatus(ctx context.Context, name, resourceVersion string, status api.AppStatus) (api.App, error) {
	var out api.App
	err := s.tx(ctx, func(tx *sql.Tx) error {
		cur, err := s.getAppTx(ctx, tx, name, resourceVersion)
		if err != nil {
			return err
		}
		cur.Status = status
		out, err = s.putAppTx(ctx, tx, cur)
		return err
	})
	return out, err
}

// getAppTx reads an App inside a write transaction and checks that it is
// at version want.
func (s *Store) getAppTx(ctx context.Context, tx *sql.Tx, name, want string) (api.App, error) {
	if want == "" {
		return api.App{}, errdefs.Invalid("a write of app %q needs the resourceVersion it is based on", name)
	}
	var doc string
	var v int64
	err := tx.QueryRowContext(ctx, `SELECT doc, version FROM apps WHERE name = ?`, name).Scan(&doc, &v)
	if errors.Is(err, sql.ErrNoRows) {
		return api.App{}, &StaleError{Kind: "app", Name: name, Read: want}
	}
	if err != nil {
		return api.App{}, err
	}
	if formatVersion(v) != want {
		return api.App{}, &StaleError{Kind: "app", Name: name, Read: want, Current: formatVersion(v)}
	}
	return parseApp(name, doc, v)
}

// putAppTx writes an existing App with the next resourceVersion.
func (s *Store) putAppTx(ctx context.Context, tx *sql.Tx, a api.App) (api.App, error) {
	doc, err := appDoc(a)
	if err != nil {
		return api.App{}, err
	}
	v, err := nextVersion(ctx, tx)
	if err != nil {
		return api.App{}, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE apps SET doc = ?, updated = ?, version = ? WHERE name = ?`,
		doc, time.Now().UnixNano(), v, a.Metadata.Name); err != nil {
		return api.App{}, err
	}
	a.Metadata.ResourceVersion = formatVersion(v)
	return a, nil
}

// GetApp returns the App named name, with its resourceVersion.
func (s *Store) GetApp(ctx context.Context, name string) (api.App, error) {
	var doc string
	var v int64
	err := s.db.QueryRowContext(ctx, `SELECT doc, version FROM apps WHERE name = ?`, name).Scan(&doc, &v)
	if errors.Is(err, sql.ErrNoRows) {
		return api.App{}, errdefs.NotFound("app %q not found", name)
	}
	if err != nil {
		return api.App{}, err
	}
	return parseApp(name, doc, v)
}

// ListApps returns all Apps by name.
func (s *Store) ListApps(ctx context.Context) ([]api.App, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, doc, version FROM apps ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []api.App
	for rows.Next() {
		var name, doc string
		var v int64
		if err := rows.Scan(&name, &doc, &v); err != nil {
			return nil, err
		}
		a, err := parseApp(name, doc, v)
		if err != nil {
			return nil, err
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
