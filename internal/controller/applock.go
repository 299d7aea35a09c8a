package controller

import (
	"context"
	"sync"
)

// appLocks queues the API verbs' read-modify-write cycles per App, so
// that concurrent verbs on one App take turns instead of racing each
// other through the store's version check (which still guards them
// against the controller's status writes). Apps do not wait for each
// other, and no lock is held by anything but a verb on that App.
type appLocks struct {
	mu sync.Mutex
	m  map[string]*appLock
}

type appLock struct {
	ch   chan struct{} // holds a token while the App is locked
	refs int           // holders and waiters
}

// lock waits until name is free (or ctx ends) and returns its unlock.
func (l *appLocks) lock(ctx context.Context, name string) (func(), error) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*appLock{}
	}
	e := l.m[name]
	if e == nil {
		e = &appLock{ch: make(chan struct{}, 1)}
		l.m[name] = e
	}
	e.refs++
	l.mu.Unlock()
	release := func() {
		l.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(l.m, name)
		}
		l.mu.Unlock()
	}
	select {
	case e.ch <- struct{}{}:
		return func() { <-e.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}
