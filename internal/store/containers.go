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

// ContainerRecord is a container as persisted: the API object plus the
// daemon's private bookkeeping.
type ContainerRecord struct {
	api.Container
	// ManuallyStopped is set by stop/kill so the restart policy leaves the
	// container alone.
	ManuallyStopped bool `json:"manuallyStopped,omitempty"`
	// Intent is the lifecycle step under way, written before the step
	// begins and cleared when its outcome is recorded, so a daemon that
	// restarts after a crash knows what was cut short (IntentStart,
	// IntentStop; "" when none).
	Intent string `json:"intent,omitempty"`
	// StopDeadline, with IntentStop, is when the stop's grace period ends
	// and the container is to be killed.
	StopDeadline time.Time `json:"stopDeadline,omitzero"`
	// Version is the record's resourceVersion as last read or written:
	// PutContainerState replaces only that version and sets the new one.
	Version int64 `json:"-"`
}

// Container intents (ContainerRecord.Intent).
const (
	// IntentStart: the network and the runtime's create are being made,
	// or the process started; nothing recorded says it runs yet.
	IntentStart = "start"
	// IntentStop: the stop signal was (or is about to be) sent; SIGKILL
	// is due at StopDeadline.
	IntentStop = "stop"
)

// stateDoc is what the state column holds: the parts that change.
type stateDoc struct {
	State           api.ContainerState   `json:"state"`
	ManuallyStopped bool                 `json:"manuallyStopped,omitempty"`
	Network         *api.NetworkSettings `json:"network,omitempty"`
	Intent          string               `json:"intent,omitempty"`
	StopDeadline    time.Time            `json:"stopDeadline,omitzero"`
}

func stateDocOf(c *ContainerRecord) stateDoc {
	return stateDoc{State: c.State, ManuallyStopped: c.ManuallyStopped, Network: c.NetworkSettings, Intent: c.Intent, StopDeadline: c.StopDeadline}
}

// specDoc is what the spec column holds: the parts fixed at creation.
type specDoc struct {
	Config   api.ContainerConfig `json:"config"`
	ImageID  string              `json:"imageID"`
	ImageRef string              `json:"imageRef,omitempty"`
	Process  []string            `json:"process,omitempty"`
	Runtime  string              `json:"runtime,omitempty"`
	LogPath  string              `json:"logPath,omitempty"`
	IDMap    *api.IDMap          `json:"idMap,omitempty"`
}

// CreateContainer inserts a new container. A name already taken is
// ErrConflict.
func (s *Store) CreateContainer(ctx context.Context, c *ContainerRecord) error {
	spec, err := json.Marshal(specDoc{Config: c.Config, ImageID: c.ImageID, ImageRef: c.ImageRef, Process: c.Process, Runtime: c.Runtime, LogPath: c.LogPath, IDMap: c.IDMap})
	if err != nil {
		return err
	}
	state, err := json.Marshal(stateDocOf(c))
	if err != nil {
		return err
	}
	var version int64
	err = s.tx(ctx, func(tx *sql.Tx) error {
		v, err := nextVersion(ctx, tx)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO containers (id, name, created, spec, state, version) VALUES (?, ?, ?, ?, ?, ?)`,
			c.ID, c.Name, c.Created.UnixNano(), string(spec), string(state), v)
		if isUniqueViolation(err) {
			return errdefs.Conflict("container name %q is already in use: remove that container (skiff rm %s) or choose another name", c.Name, c.Name)
		}
		version = v
		return err
	})
	if err == nil {
		c.Version = version
	}
	return err
}

// PutContainerState records the changing part of c: its state, whether
// it was stopped by hand, its network settings and its intent. It
// replaces only the record of version c.Version and sets c.Version to the
// new one; a record written meanwhile by someone else is a *StaleError
// (ErrConflict), and nothing is written.
func (s *Store) PutContainerState(ctx context.Context, c *ContainerRecord) error {
	state, err := json.Marshal(stateDocOf(c))
	if err != nil {
		return err
	}
	var version int64
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var cur int64
		err := tx.QueryRowContext(ctx, `SELECT version FROM containers WHERE id = ?`, c.ID).Scan(&cur)
		if errors.Is(err, sql.ErrNoRows) {
			return errdefs.NotFound("container %s not found", c.ID)
		}
		if err != nil {
			return err
		}
		if cur != c.Version {
			return &StaleError{Kind: "container", Name: c.Name, Read: formatVersion(c.Version), Current: formatVersion(cur)}
		}
		v, err := nextVersion(ctx, tx)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE containers SET state = ?, version = ? WHERE id = ?`, string(state), v, c.ID); err != nil {
			return err
		}
		version = v
		return nil
	})
	if err == nil {
		c.Version = version
	}
	return err
}

// DeleteContainer removes a container; a missing one is not an error.
func (s *Store) DeleteContainer(ctx context.Context, id string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM containers WHERE id = ?`, id)
		return err
	})
}

// GetContainer returns the container with the given id.
func (s *Store) GetContainer(ctx context.Context, id string) (*ContainerRecord, error) {
	row := s.db.QueryRowContext(ctx, `SELECT id, name, created, spec, state, version FROM containers WHERE id = ?`, id)
	c, err := scanContainer(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errdefs.NotFound("container %s not found", id)
	}
	return c, err
}

// ListContainers returns all containers, oldest first.
func (s *Store) ListContainers(ctx context.Context) ([]*ContainerRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, created, spec, state, version FROM containers ORDER BY created`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*ContainerRecord
	for rows.Next() {
		c, err := scanContainer(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

type scanner interface{ Scan(dest ...any) error }

func scanContainer(r scanner) (*ContainerRecord, error) {
	var (
		c           ContainerRecord
		created     int64
		spec, state string
	)
	if err := r.Scan(&c.ID, &c.Name, &created, &spec, &state, &c.Version); err != nil {
		return nil, err
	}
	c.Created = time.Unix(0, created).UTC()
	var sd specDoc
	if err := json.Unmarshal([]byte(spec), &sd); err != nil {
		return nil, fmt.Errorf("container %s: corrupt spec: %w", c.ID, err)
	}
	var st stateDoc
	if err := json.Unmarshal([]byte(state), &st); err != nil {
		return nil, fmt.Errorf("container %s: corrupt state: %w", c.ID, err)
	}
	c.Config, c.ImageID, c.ImageRef, c.Process, c.Runtime, c.LogPath = sd.Config, sd.ImageID, sd.ImageRef, sd.Process, sd.Runtime, sd.LogPath
	c.IDMap = sd.IDMap
	c.State, c.ManuallyStopped, c.NetworkSettings = st.State, st.ManuallyStopped, st.Network
	c.Intent, c.StopDeadline = st.Intent, st.StopDeadline
	return &c, nil
}
