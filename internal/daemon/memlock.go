package daemon

import (
	"fmt"
	"log/slog"

	"golang.org/x/sys/unix"
)

// memLock carries out vrrp_no_swap: the daemon's memory locked with
// mlockall(2) while the configuration asks for it, so that the VRRP
// thread never waits on a page brought back from swap or re-read from
// the binary. vipd is one process: keepalived locks its VRRP child only,
// vipd locks all of it. Pages are locked as they are first touched
// (MCL_ONFAULT) and then stay: plain MCL_CURRENT|MCL_FUTURE would make
// every address range the Go runtime maps resident at once (228 MB of
// RSS instead of 30 MB for a daemon with one instance; with
// MCL_ONFAULT 31 MB).
type memLock struct {
	log    *slog.Logger
	locked bool
	// lock and unlock are mlockall and munlockall (replaced in tests).
	lock   func() error
	unlock func() error
}

func newMemLock(log *slog.Logger) *memLock {
	return &memLock{log: log,
		lock:   func() error { return unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE | unix.MCL_ONFAULT) },
		unlock: unix.Munlockall,
	}
}

// apply locks or unlocks. A failure is logged and the daemon goes on
// unlocked, as keepalived does: memory locking is a help, not a
// condition of running.
func (m *memLock) apply(on bool) {
	if on == m.locked {
		return
	}
	if on {
		if err := m.lock(); err != nil {
			m.log.Error(fmt.Sprintf("vrrp_no_swap: cannot lock the daemon's memory: %v", err))
			return
		}
		m.locked = true
		m.log.Info("vrrp_no_swap: memory locked (mlockall)")
		return
	}
	if err := m.unlock(); err != nil {
		m.log.Error(fmt.Sprintf("vrrp_no_swap removed: munlockall: %v", err))
		return
	}
	m.locked = false
	m.log.Info("vrrp_no_swap removed: memory unlocked")
}
