package daemon

import "sync"

// inbox is the loop goroutine's one ordered queue: every change to the
// loop's state (a check result, a VRRP state for lvs_sync_daemon, an API
// request, a reload) is a function pushed here and run by the loop in
// the order pushed.
//
// push never blocks, so the VRRP goroutine can hand the loop a state
// change while the loop waits for VRRP (a reload does): a blocking send
// would deadlock, and a goroutine per send (what this replaces) could
// deliver MASTER and BACKUP in the wrong order.
type inbox struct {
	mu     sync.Mutex
	items  []func()
	closed bool
	ready  chan struct{} // one token while items is not empty
}

func newInbox() *inbox { return &inbox{ready: make(chan struct{}, 1)} }

// push queues f; after close it drops f and reports false.
func (q *inbox) push(f func()) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false
	}
	q.items = append(q.items, f)
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return true
}

// pop returns the oldest queued function, or nil. One at a time, so a
// function that itself serves the queue (stopping VRRP waits that way)
// keeps the order.
func (q *inbox) pop() func() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return nil
	}
	f := q.items[0]
	q.items[0] = nil
	q.items = q.items[1:]
	if len(q.items) > 0 {
		select {
		case q.ready <- struct{}{}:
		default:
		}
	}
	return f
}

// serve runs what is queued, in order, until the queue is empty.
func (q *inbox) serve() {
	for f := q.pop(); f != nil; f = q.pop() {
		f()
	}
}

// close drops what is queued and refuses what comes after.
func (q *inbox) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.items = nil
}
