package daemon

import (
	"maps"
	"path/filepath"
	"slices"

	"skiff.dev/skiff/internal/registry"
)

// The built-in registry's users live in ROOT/registry/htpasswd, which a
// running daemon rereads when it changes. These functions work on the
// file directly, on the daemon's host, as `skiff registry user` does.

// RegistryUsersPath is the users file under root.
func RegistryUsersPath(root string) string {
	return filepath.Join(root, RegistryDir, RegistryUsersFile)
}

// SetRegistryUser adds a user, or changes their password (stored as a
// bcrypt hash).
func SetRegistryUser(root, name, password string) error {
	return registry.SetUser(RegistryUsersPath(root), name, password)
}

// RemoveRegistryUser removes a user.
func RemoveRegistryUser(root, name string) error {
	return registry.RemoveUser(RegistryUsersPath(root), name)
}

// RegistryUsers lists the users' names, sorted.
func RegistryUsers(root string) ([]string, error) {
	users, err := registry.ReadUsers(RegistryUsersPath(root))
	if err != nil {
		return nil, err
	}
	return slices.Sorted(maps.Keys(users)), nil
}
