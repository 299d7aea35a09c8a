package store

import "database/sql"

// DB returns the underlying database for packages that keep their own
// tables in skiff's state (their migrations are in this package's list).
// It allows one connection at a time: finish reading rows before issuing
// the next statement, and keep transactions short.
func (s *Store) DB() *sql.DB { return s.db }
