package secrets

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// Users says which Apps use a secret.
type Users interface {
	// AppsUsingSecret names the Apps whose spec refers to secret name.
	AppsUsingSecret(ctx context.Context, name string) ([]string, error)
}

// Config configures a Store.
type Config struct {
	// DB is the state database, with the secrets tables migrated.
	DB *sql.DB
	// KeyFile is the path of the key file that seals the data key.
	KeyFile string
	// Users, when set, is asked before a delete: a used secret stays.
	Users Users
	// Changed, when set, is called with a secret's name after each new
	// version and delete. It must not block.
	Changed func(name string)
}

// Store keeps secrets. It is safe for concurrent use.
type Store struct {
	cfg     Config
	dataKey []byte
	// mu orders writes, so versions are numbered without gaps.
	mu sync.Mutex
}

// Open opens the secrets of cfg.DB: the data key stored there is
// unsealed with the key file, which must then exist; on a database without
// one, a data key is made and sealed with the key file (made if missing).
func Open(ctx context.Context, cfg Config) (*Store, error) {
	var sealed []byte
	err := cfg.DB.QueryRowContext(ctx, `SELECT sealed FROM secret_keys WHERE id = 1`).Scan(&sealed)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("read the secrets data key: %w", err)
	}
	s := &Store{cfg: cfg}
	if sealed != nil {
		if s.dataKey, err = unsealDataKey(cfg.KeyFile, sealed); err != nil {
			return nil, err
		}
		return s, nil
	}
	fileKey, err := LoadOrCreateKeyFile(cfg.KeyFile, true)
	if err != nil {
		return nil, err
	}
	s.dataKey = make([]byte, KeySize)
	if _, err := rand.Read(s.dataKey); err != nil {
		return nil, err
	}
	if sealed, err = seal(fileKey, s.dataKey, dataKeyAAD); err != nil {
		return nil, err
	}
	if _, err := cfg.DB.ExecContext(ctx, `INSERT INTO secret_keys (id, sealed, created) VALUES (1, ?, ?)`, sealed, time.Now().UnixNano()); err != nil {
		return nil, fmt.Errorf("store the secrets data key: %w", err)
	}
	return s, nil
}

// aad binds a version's ciphertext to its secret and version.
func aad(name string, version int64) []byte {
	return []byte("skiff secret " + name + " v" + strconv.FormatInt(version, 10))
}

// Create stores a new secret at version 1. An existing name is
// ErrConflict.
func (s *Store) Create(ctx context.Context, name string, data map[string][]byte) (api.Secret, error) {
	return s.write(ctx, name, data, true)
}

// Set stores data as the next version of an existing secret (a missing
// one is ErrNotFound) and reports the change.
func (s *Store) Set(ctx context.Context, name string, data map[string][]byte) (api.Secret, error) {
	return s.write(ctx, name, data, false)
}

func (s *Store) write(ctx context.Context, name string, data map[string][]byte, create bool) (api.Secret, error) {
	if err := api.CheckSecretName(name); err != nil {
		return api.Secret{}, err
	}
	if err := api.CheckSecretData(data); err != nil {
		return api.Secret{}, err
	}
	plain, err := json.Marshal(data)
	if err != nil {
		return api.Secret{}, err
	}
	keys := slices.Sorted(maps.Keys(data))
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().UTC()
	var version int64
	err = s.cfg.DB.QueryRowContext(ctx, `SELECT version FROM secrets WHERE name = ?`, name).Scan(&version)
	switch {
	case err == nil && create:
		return api.Secret{}, errdefs.Conflict("secret %s exists already: use skiff secret set %s to write a new version", name, name)
	case errors.Is(err, sql.ErrNoRows) && !create:
		return api.Secret{}, errdefs.NotFound("secret %s does not exist: create it with skiff secret create %s", name, name)
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return api.Secret{}, fmt.Errorf("read secret %s: %w", name, err)
	}
	version++
	ct, err := seal(s.dataKey, plain, aad(name, version))
	if err != nil {
		return api.Secret{}, err
	}
	kj, _ := json.Marshal(keys)
	tx, err := s.cfg.DB.BeginTx(ctx, nil)
	if err != nil {
		return api.Secret{}, errdefs.WithCategory(errdefs.ErrUnavailable, err)
	}
	defer tx.Rollback()
	if version == 1 {
		_, err = tx.ExecContext(ctx, `INSERT INTO secrets (name, version, created, updated) VALUES (?, 1, ?, ?)`, name, now.UnixNano(), now.UnixNano())
	} else {
		_, err = tx.ExecContext(ctx, `UPDATE secrets SET version = ?, updated = ? WHERE name = ?`, version, now.UnixNano(), name)
	}
	if err == nil {
		_, err = tx.ExecContext(ctx, `INSERT INTO secret_versions (name, version, created, keys, data) VALUES (?, ?, ?, ?, ?)`, name, version, now.UnixNano(), string(kj), ct)
	}
	if err == nil {
		err = tx.Commit()
	}
	if err != nil {
		return api.Secret{}, fmt.Errorf("store secret %s: %w", name, err)
	}
	if s.cfg.Changed != nil {
		s.cfg.Changed(name)
	}
	return s.Get(ctx, name)
}

// Get returns a secret's current version and keys (ErrNotFound if none).
func (s *Store) Get(ctx context.Context, name string) (api.Secret, error) {
	var sec api.Secret
	var created, updated int64
	var keys string
	err := s.cfg.DB.QueryRowContext(ctx, `SELECT s.version, s.created, s.updated, v.keys FROM secrets s
		JOIN secret_versions v ON v.name = s.name AND v.version = s.version WHERE s.name = ?`, name).Scan(&sec.Version, &created, &updated, &keys)
	if errors.Is(err, sql.ErrNoRows) {
		return api.Secret{}, errdefs.NotFound("secret %s does not exist: see skiff secret ls", name)
	}
	if err != nil {
		return api.Secret{}, fmt.Errorf("read secret %s: %w", name, err)
	}
	sec.Name, sec.Created, sec.Updated = name, time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	if err := json.Unmarshal([]byte(keys), &sec.Keys); err != nil {
		return api.Secret{}, fmt.Errorf("secret %s: corrupt key list: %w", name, err)
	}
	return sec, nil
}

// List returns every secret (current versions), by name.
func (s *Store) List(ctx context.Context) ([]api.Secret, error) {
	rows, err := s.cfg.DB.QueryContext(ctx, `SELECT name FROM secrets ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		names = append(names, n)
	}
	rows.Close()
	out := []api.Secret{}
	for _, n := range names {
		sec, err := s.Get(ctx, n)
		if errors.Is(err, errdefs.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, sec)
	}
	return out, nil
}

// Inspect returns a secret with its versions and the Apps using it.
func (s *Store) Inspect(ctx context.Context, name string) (api.Secret, error) {
	sec, err := s.Get(ctx, name)
	if err != nil {
		return api.Secret{}, err
	}
	rows, err := s.cfg.DB.QueryContext(ctx, `SELECT version, created, keys FROM secret_versions WHERE name = ? ORDER BY version`, name)
	if err != nil {
		return api.Secret{}, fmt.Errorf("read secret %s: %w", name, err)
	}
	for rows.Next() {
		var v api.SecretVersion
		var created int64
		var keys string
		if err := rows.Scan(&v.Version, &created, &keys); err != nil {
			rows.Close()
			return api.Secret{}, err
		}
		v.Created = time.Unix(0, created).UTC()
		json.Unmarshal([]byte(keys), &v.Keys)
		sec.Versions = append(sec.Versions, v)
	}
	rows.Close()
	if s.cfg.Users != nil {
		if sec.UsedBy, err = s.cfg.Users.AppsUsingSecret(ctx, name); err != nil {
			return api.Secret{}, err
		}
	}
	return sec, nil
}

// Reveal returns the values of a secret's current version.
func (s *Store) Reveal(ctx context.Context, name string) (api.SecretValues, error) {
	sec, err := s.Get(ctx, name)
	if err != nil {
		return api.SecretValues{}, err
	}
	data, err := s.values(ctx, name, sec.Version)
	if err != nil {
		return api.SecretValues{}, err
	}
	return api.SecretValues{Name: name, Version: sec.Version, Data: data}, nil
}

// Resolve returns the value of key in version of secret name: what a
// replica of a revision made at that version gets.
func (s *Store) Resolve(ctx context.Context, name string, version int64, key string) ([]byte, error) {
	data, err := s.values(ctx, name, version)
	if err != nil {
		return nil, err
	}
	v, ok := data[key]
	if !ok {
		return nil, errdefs.NotFound("secret %s (version %d) has no key %q: its keys are %s", name, version, key, strings.Join(slices.Sorted(maps.Keys(data)), ", "))
	}
	return v, nil
}

// Values returns every key of version of secret name, with its value
// (for secret volumes that name no items).
func (s *Store) Values(ctx context.Context, name string, version int64) (map[string][]byte, error) {
	return s.values(ctx, name, version)
}

func (s *Store) values(ctx context.Context, name string, version int64) (map[string][]byte, error) {
	var ct []byte
	err := s.cfg.DB.QueryRowContext(ctx, `SELECT data FROM secret_versions WHERE name = ? AND version = ?`, name, version).Scan(&ct)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errdefs.NotFound("secret %s has no version %d: see skiff secret inspect %s", name, version, name)
	}
	if err != nil {
		return nil, fmt.Errorf("read secret %s: %w", name, err)
	}
	plain, err := open(s.dataKey, ct, aad(name, version))
	if err != nil {
		return nil, errdefs.WithCategory(errdefs.ErrUnavailable, fmt.Errorf("secret %s version %d: %w", name, version, err))
	}
	var data map[string][]byte
	if err := json.Unmarshal(plain, &data); err != nil {
		return nil, fmt.Errorf("secret %s version %d: corrupt content: %w", name, version, err)
	}
	return data, nil
}

// Versions returns the current version of each of names that exists.
func (s *Store) Versions(ctx context.Context, names []string) (map[string]int64, error) {
	out := map[string]int64{}
	for _, n := range names {
		var v int64
		err := s.cfg.DB.QueryRowContext(ctx, `SELECT version FROM secrets WHERE name = ?`, n).Scan(&v)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read secret %s: %w", n, err)
		}
		out[n] = v
	}
	return out, nil
}

// Delete removes a secret and all its versions. A secret some App uses
// is ErrConflict naming the Apps.
func (s *Store) Delete(ctx context.Context, name string) error {
	if s.cfg.Users != nil {
		apps, err := s.cfg.Users.AppsUsingSecret(ctx, name)
		if err != nil {
			return err
		}
		if len(apps) > 0 {
			return errdefs.Conflict("secret %s is used by app %s: remove it from their env first (or delete the apps)", name, strings.Join(apps, ", "))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	res, err := s.cfg.DB.ExecContext(ctx, `DELETE FROM secrets WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("delete secret %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errdefs.NotFound("secret %s does not exist: see skiff secret ls", name)
	}
	if s.cfg.Changed != nil {
		s.cfg.Changed(name)
	}
	return nil
}

// dataKeyAAD binds the sealed data key to its purpose.
var dataKeyAAD = []byte("skiff data key")

// unsealDataKey opens the sealed data key with the key file. When that
// fails and a key file left by an interrupted RotateKey (keyFile+".new")
// opens it, that one replaces the key file first.
func unsealDataKey(keyFile string, sealed []byte) ([]byte, error) {
	fileKey, ferr := LoadOrCreateKeyFile(keyFile, false)
	if ferr == nil {
		if dk, err := open(fileKey, sealed, dataKeyAAD); err == nil {
			return dk, nil
		}
	}
	if next, err := LoadOrCreateKeyFile(keyFile+".new", false); err == nil {
		if dk, err := open(next, sealed, dataKeyAAD); err == nil {
			if err := os.Rename(keyFile+".new", keyFile); err != nil {
				return nil, fmt.Errorf("finish the rotation of the secrets key file: %w", err)
			}
			return dk, nil
		}
	}
	if ferr != nil {
		return nil, ferr
	}
	return nil, errdefs.Invalid("secrets key file %s does not open the database's data key: it is not the key file this database was made with: restore the right one from your backup (see docs/secrets.md)", keyFile)
}

// RotateKey replaces the key file with a new random one and seals the
// data key with it; the old key file no longer opens the database. The
// new file is written beside the old one (KeyFile+".new") before the
// database changes and renamed over it after, so a crash in between
// leaves a pair Open still finds.
func (s *Store) RotateKey(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.cfg.KeyFile + ".new"
	os.Remove(next)
	key, err := LoadOrCreateKeyFile(next, true)
	if err != nil {
		return err
	}
	sealed, err := seal(key, s.dataKey, dataKeyAAD)
	if err != nil {
		return err
	}
	if _, err := s.cfg.DB.ExecContext(ctx, `UPDATE secret_keys SET sealed = ? WHERE id = 1`, sealed); err != nil {
		os.Remove(next)
		return fmt.Errorf("store the resealed data key: %w", err)
	}
	if err := os.Rename(next, s.cfg.KeyFile); err != nil {
		return fmt.Errorf("replace the secrets key file (the new one is %s): %w", next, err)
	}
	if d, err := os.Open(filepath.Dir(s.cfg.KeyFile)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
