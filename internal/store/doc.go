// Package store keeps skiff's state in SQLite (the pure-Go modernc.org
// driver, so the binary needs no cgo).
//
// Contract: every method is one transaction; when a method returns nil the
// change is committed to the write-ahead log and survives the daemon being
// killed with SIGKILL (and, with synchronous=FULL, a power loss). Schema
// changes are numbered migrations applied at Open, in a transaction each.
// Errors are classified with errdefs: a missing row is ErrNotFound, a
// duplicate name is ErrConflict.
//
// Apps are versioned as in Kubernetes: each write gives the App a new
// resourceVersion from one counter. UpdateApp (metadata and spec) and
// UpdateAppStatus (status only) write only if the App is still at the
// version the caller read, else they return a *StaleError (ErrConflict)
// and write nothing. Container records take versions from the same
// counter: PutContainerState replaces only the version its record was
// read or last written at (ContainerRecord.Version), so a second process
// writing the same root is a conflict, not a lost update.
package store
