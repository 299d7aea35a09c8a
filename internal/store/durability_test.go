package store

import (
	"context"
	"testing"
)

// TestDurabilitySettings checks the settings that make an acknowledged
// write survive a power loss, not only a process kill (which keeps the
// page cache): every connection the store opens runs in WAL mode with
// synchronous=FULL, so each commit is fsynced before it returns.
func TestDurabilitySettings(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	for round := range 3 {
		// Each round forces a new connection: the settings must come with
		// every connection, not only the first.
		s.db.SetMaxIdleConns(0)
		var mode string
		var sync, fk int
		if err := s.db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if err := s.db.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil {
			t.Fatal(err)
		}
		if err := s.db.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil {
			t.Fatal(err)
		}
		// synchronous: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA.
		if mode != "wal" || sync < 2 || fk != 1 {
			t.Fatalf("connection %d: journal_mode %s, synchronous %d, foreign_keys %d; want wal, FULL (2) or more, 1", round, mode, sync, fk)
		}
	}
}
