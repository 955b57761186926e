package check

import (
	"sync"
	"time"
)

// stallMonitor measures how much time this process lost to CPU
// starvation: a goroutine sleeps 5 ms at a time and records by how much
// each sleep overshot. Timing assertions add what was lost during their
// window to their tolerance, so they stay tight on a quiet machine and do
// not fail on a starved one (two cores shared by the whole test suite and
// a VM).
type stallMonitor struct {
	mu    sync.Mutex
	lost  []stall
	start sync.Once
}

type stall struct {
	at   time.Time
	lost time.Duration
}

var stalls stallMonitor

func (m *stallMonitor) run() {
	m.start.Do(func() {
		go func() {
			const tick = 5 * time.Millisecond
			for {
				t0 := time.Now()
				time.Sleep(tick)
				if over := time.Since(t0) - tick; over > 2*time.Millisecond {
					m.mu.Lock()
					m.lost = append(m.lost, stall{at: time.Now(), lost: over})
					if len(m.lost) > 100000 {
						m.lost = m.lost[len(m.lost)/2:]
					}
					m.mu.Unlock()
				}
			}
		}()
	})
}

// lostSince sums the stalls that ended after t.
func (m *stallMonitor) lostSince(t time.Time) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	var sum time.Duration
	for i := len(m.lost) - 1; i >= 0 && m.lost[i].at.After(t); i-- {
		sum += m.lost[i].lost
	}
	return sum
}
