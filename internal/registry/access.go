package registry

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"skiff.dev/skiff/api/errdefs"
)

// Realm is the basic-auth realm the registry announces.
const Realm = "skiff registry"

// Access decides who may read and write. Users are read from an htpasswd
// file of bcrypt entries ("NAME:$2y$..." lines, as skiff registry user add
// and htpasswd -B write them), reread when it changes.
type Access struct {
	// UsersFile is the htpasswd file; a missing file has no users.
	UsersFile string
	// AnonymousRead are patterns (path.Match syntax, "public/*") of
	// repository names anyone may read without credentials.
	AnonymousRead []string

	mu    sync.Mutex
	stamp time.Time
	size  int64
	users map[string][]byte
	// ok caches accepted passwords (name + "\x00" + password hashed with
	// bcrypt once), so that a pull of many blobs pays bcrypt once.
	ok map[string]bool
}

// CheckPatterns validates anonymous-read patterns.
func CheckPatterns(patterns []string) error {
	for _, p := range patterns {
		if _, err := path.Match(p, "x"); err != nil || p == "" {
			return errdefs.Invalid("anonymous-read pattern %q is not valid: use path patterns such as 'public/*'", p)
		}
	}
	return nil
}

// mayRead reports whether r may read repository name: with valid
// credentials, or anonymously when a pattern matches.
func (a *Access) mayRead(r *http.Request, name string) bool {
	if a.anonymous(name) {
		return true
	}
	user, pass, ok := r.BasicAuth()
	return ok && a.check(user, pass)
}

func (a *Access) anonymous(name string) bool {
	for _, p := range a.AnonymousRead {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// authenticate lets r through, or answers 401 with a basic-auth
// challenge. name is the repository ("" for the base and catalog
// endpoints).
func (g *Registry) authenticate(w http.ResponseWriter, r *http.Request, name string, write bool) (string, bool) {
	a := g.cfg.Access
	user, pass, has := r.BasicAuth()
	if has {
		if a.check(user, pass) {
			return user, true
		}
	} else if !write && name != "" && a.anonymous(name) {
		return "", true
	}
	w.Header().Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q", Realm))
	if has {
		writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "wrong user name or password")
	} else {
		writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required: log in with a user made by skiff registry user add")
	}
	return "", false
}

// check reports whether user and pass match the users file.
func (a *Access) check(user, pass string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reloadLocked()
	hash, ok := a.users[user]
	if !ok {
		return false
	}
	sum := sha256.Sum256([]byte(user + "\x00" + pass + "\x00" + string(hash)))
	key := string(sum[:])
	if a.ok[key] {
		return true
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(pass)) != nil {
		return false
	}
	if len(a.ok) > 1000 {
		clear(a.ok)
	}
	a.ok[key] = true
	return true
}

func (a *Access) reloadLocked() {
	fi, err := os.Stat(a.UsersFile)
	if err != nil {
		a.users, a.ok = nil, nil
		return
	}
	if a.users != nil && fi.ModTime().Equal(a.stamp) && fi.Size() == a.size {
		return
	}
	users, err := ReadUsers(a.UsersFile)
	if err != nil {
		return
	}
	a.users, a.stamp, a.size, a.ok = users, fi.ModTime(), fi.Size(), map[string]bool{}
}

// ReadUsers reads an htpasswd file of bcrypt entries.
func ReadUsers(file string) (map[string][]byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	users := map[string][]byte{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, hash, ok := strings.Cut(line, ":")
		if ok && strings.HasPrefix(hash, "$2") {
			users[name] = []byte(hash)
		}
	}
	return users, nil
}

// userNameRE is what a registry user name may be.
var userNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// SetUser adds user to the htpasswd file (creating it, mode 0600) or
// changes their password; the password is stored as a bcrypt hash.
func SetUser(file, user, password string) error {
	if !userNameRE.MatchString(user) {
		return errdefs.Invalid("user name %q is not valid: use letters, digits and . _ @ - (at most 64)", user)
	}
	if password == "" {
		return errdefs.Invalid("the password is empty: give one on standard input")
	}
	if len(password) > 72 {
		return errdefs.Invalid("the password is longer than 72 bytes, which bcrypt cannot hash: choose a shorter one")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	return editUsers(file, func(users map[string][]byte) error {
		users[user] = hash
		return nil
	})
}

// RemoveUser removes user from the htpasswd file.
func RemoveUser(file, user string) error {
	return editUsers(file, func(users map[string][]byte) error {
		if _, ok := users[user]; !ok {
			return errdefs.NotFound("registry user %q does not exist", user)
		}
		delete(users, user)
		return nil
	})
}

// editUsers rewrites the htpasswd file (synced, renamed into place) after
// edit changed its users.
func editUsers(file string, edit func(map[string][]byte) error) error {
	users, err := ReadUsers(file)
	if errors.Is(err, fs.ErrNotExist) {
		users, err = map[string][]byte{}, nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", file, err)
	}
	if err := edit(users); err != nil {
		return err
	}
	var buf bytes.Buffer
	for _, name := range slices.Sorted(maps.Keys(users)) {
		fmt.Fprintf(&buf, "%s:%s\n", name, users[name])
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".htpasswd-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}
