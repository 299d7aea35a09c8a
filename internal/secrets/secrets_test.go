package secrets

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"skiff.dev/skiff/api/errdefs"
	"skiff.dev/skiff/internal/store"
)

func TestSealOpen(t *testing.T) {
	key := bytes.Repeat([]byte{7}, KeySize)
	ct, err := seal(key, []byte("hunter2"), []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(ct, []byte("hunter2")) {
		t.Fatal("the ciphertext holds the plain text")
	}
	if got, err := open(key, ct, []byte("a")); err != nil || string(got) != "hunter2" {
		t.Fatalf("open = %q, %v", got, err)
	}
	other := bytes.Repeat([]byte{8}, KeySize)
	cases := map[string]func() ([]byte, error){
		"wrong key": func() ([]byte, error) { return open(other, ct, []byte("a")) },
		"wrong aad": func() ([]byte, error) { return open(key, ct, []byte("b")) },
		"truncated": func() ([]byte, error) { return open(key, ct[:10], []byte("a")) },
		"tampered": func() ([]byte, error) {
			bad := bytes.Clone(ct)
			bad[len(bad)-20] ^= 1
			return open(key, bad, []byte("a"))
		},
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := f(); !errors.Is(err, errOpen) {
				t.Fatalf("open = %v, want refused", err)
			}
		})
	}
}

func openStore(t *testing.T, dir string) (*store.Store, *Store) {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(dir, "skiff.db"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), Config{DB: db.DB(), KeyFile: filepath.Join(dir, "secrets.key")})
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	return db, s
}

type fakeUsers map[string][]string

func (f fakeUsers) AppsUsingSecret(_ context.Context, name string) ([]string, error) {
	return f[name], nil
}

// TestStoreRoundTrip: versions are kept and open, the key file is made
// 0600, the database holds no value in clear, and a reopened store reads
// them with the same key file and refuses another one.
func TestStoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, s := openStore(t, dir)
	canary := "canary-5f1e0c3a9b"
	if _, err := s.Create(ctx, "db", map[string][]byte{"password": []byte(canary + "-1"), "user": []byte("app")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "db", map[string][]byte{"x": []byte("y")}); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("second create = %v, want conflict", err)
	}
	sec, err := s.Set(ctx, "db", map[string][]byte{"password": []byte(canary + "-2")})
	if err != nil || sec.Version != 2 || strings.Join(sec.Keys, ",") != "password" {
		t.Fatalf("set = %+v, %v", sec, err)
	}
	if v, err := s.Resolve(ctx, "db", 1, "password"); err != nil || string(v) != canary+"-1" {
		t.Fatalf("resolve v1 = %q, %v", v, err)
	}
	if _, err := s.Resolve(ctx, "db", 2, "user"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("resolve of a missing key = %v", err)
	}
	vals, err := s.Reveal(ctx, "db")
	if err != nil || string(vals.Data["password"]) != canary+"-2" {
		t.Fatalf("reveal = %+v, %v", vals, err)
	}
	ins, err := s.Inspect(ctx, "db")
	if err != nil || len(ins.Versions) != 2 {
		t.Fatalf("inspect = %+v, %v", ins, err)
	}
	if st, err := os.Stat(filepath.Join(dir, "secrets.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	db.Close()
	for _, f := range []string{"skiff.db", "skiff.db-wal"} {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		if bytes.Contains(b, []byte(canary)) {
			t.Fatalf("%s holds a value in clear", f)
		}
	}

	db, s = openStore(t, dir)
	if v, err := s.Resolve(ctx, "db", 2, "password"); err != nil || string(v) != canary+"-2" {
		t.Fatalf("after reopen: %q, %v", v, err)
	}
	s.cfg.Users = fakeUsers{"db": {"shop"}}
	if err := s.Delete(ctx, "db"); !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "shop") {
		t.Fatalf("delete of a used secret = %v", err)
	}
	s.cfg.Users = nil
	if err := s.Delete(ctx, "db"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "db"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("get after delete = %v", err)
	}
	db.Close()

	// Another key file does not open the data key; a missing one is refused.
	os.WriteFile(filepath.Join(dir, "secrets.key"), bytes.Repeat([]byte{1}, KeySize), 0o600)
	db2, err := store.Open(ctx, filepath.Join(dir, "skiff.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if _, err := Open(ctx, Config{DB: db2.DB(), KeyFile: filepath.Join(dir, "secrets.key")}); err == nil || !strings.Contains(err.Error(), "not the key file") {
		t.Fatalf("open with a wrong key file = %v", err)
	}
	os.Remove(filepath.Join(dir, "secrets.key"))
	if _, err := Open(ctx, Config{DB: db2.DB(), KeyFile: filepath.Join(dir, "secrets.key")}); err == nil || !strings.Contains(err.Error(), "is missing") {
		t.Fatalf("open without the key file = %v", err)
	}
}

func TestNamesAndData(t *testing.T) {
	ctx := context.Background()
	_, s := openStore(t, t.TempDir())
	for _, tc := range []struct {
		name string
		data map[string][]byte
		want string
	}{
		{"Bad", map[string][]byte{"k": nil}, "secret name"},
		{"ok", nil, "at least one key"},
		{"ok", map[string][]byte{"a b": nil}, `secret key "a b"`},
	} {
		if _, err := s.Create(ctx, tc.name, tc.data); !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("create %s %v = %v, want %q", tc.name, tc.data, err, tc.want)
		}
	}
}

// TestRotateKey: after a rotation the new key file opens the secrets and
// the old one does not; a rotation interrupted before its rename (the new
// key still in secrets.key.new) is finished by Open.
func TestRotateKey(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "secrets.key")
	db, s := openStore(t, dir)
	if _, err := s.Create(ctx, "db", map[string][]byte{"pw": []byte("x1")}); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(keyFile)
	if err := s.RotateKey(ctx); err != nil {
		t.Fatal(err)
	}
	nw, _ := os.ReadFile(keyFile)
	if bytes.Equal(old, nw) || len(nw) != KeySize {
		t.Fatal("the key file did not change")
	}
	if st, _ := os.Stat(keyFile); st.Mode().Perm() != 0o600 {
		t.Fatalf("new key file mode %v", st.Mode())
	}
	if v, err := s.Resolve(ctx, "db", 1, "pw"); err != nil || string(v) != "x1" {
		t.Fatalf("after rotation: %q, %v", v, err)
	}
	db.Close()

	// The old key file is refused.
	os.WriteFile(keyFile, old, 0o600)
	db2, err := store.Open(ctx, filepath.Join(dir, "skiff.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if _, err := Open(ctx, Config{DB: db2.DB(), KeyFile: keyFile}); err == nil || !strings.Contains(err.Error(), "not the key file") {
		t.Fatalf("open with the old key file = %v", err)
	}
	// Interrupted between the database write and the rename.
	os.WriteFile(keyFile+".new", nw, 0o600)
	s2, err := Open(ctx, Config{DB: db2.DB(), KeyFile: keyFile})
	if err != nil {
		t.Fatalf("open after an interrupted rotation: %v", err)
	}
	if got, _ := os.ReadFile(keyFile); !bytes.Equal(got, nw) {
		t.Fatal("the new key file was not put in place")
	}
	if v, err := s2.Resolve(ctx, "db", 1, "pw"); err != nil || string(v) != "x1" {
		t.Fatalf("after recovery: %q, %v", v, err)
	}
}
