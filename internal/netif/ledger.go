package netif

import (
	"errors"
	"fmt"
	"sort"
	"sync"

	"golang.org/x/sys/unix"
)

// ledger remembers what a manager (Routes, Rules) installed in the kernel,
// keyed by the item's String, so that removing them all removes exactly
// those and nothing an administrator or another program added. It is
// safe for concurrent use; the zero ledger is empty.
type ledger[T fmt.Stringer] struct {
	mu    sync.Mutex
	added map[string]T
}

// remember records x as added.
func (l *ledger[T]) remember(x T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.added == nil {
		l.added = map[string]T{}
	}
	l.added[x.String()] = x
}

// forget drops x from the record.
func (l *ledger[T]) forget(x T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.added, x.String())
}

// list returns what is recorded, ordered by key for stable listings.
func (l *ledger[T]) list() []T {
	l.mu.Lock()
	defer l.mu.Unlock()
	keys := make([]string, 0, len(l.added))
	for k := range l.added {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]T, len(keys))
	for i, k := range keys {
		out[i] = l.added[k]
	}
	return out
}

// removeEach removes every item, going on after a failure, and returns
// the failures joined.
func removeEach[T any](items []T, remove func(T) error) error {
	var errs []error
	for _, it := range items {
		if err := remove(it); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// gone reports whether a delete failed because there was nothing to
// delete.
func gone(err error) bool {
	return errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENODEV)
}
