package check

import (
	"context"
	"time"
)

// BFDPoll is how often a BFD_CHECK reads its session's state. The read
// is of memory (no packet is sent: the BFD session itself is the probe),
// so it is frequent: a session that goes down takes its real server out
// within BFDPoll of the detection.
const BFDPoll = 20 * time.Millisecond

// BFD is BFD_CHECK: up while the named bfd_instance's session is Up.
type BFD struct {
	Name string
	// Up reports the session's state; the daemon's BFD driver answers.
	Up func(name string) bool
}

// Check implements Checker.
func (b *BFD) Check(ctx context.Context) Result {
	if b.Up != nil && b.Up(b.Name) {
		return up("BFD " + b.Name + " Up")
	}
	return down("BFD %s is DOWN", b.Name)
}

// sameConfig: the Up function is the daemon's, the same across reloads.
func (b *BFD) sameConfig(o Checker) bool {
	ob, ok := o.(*BFD)
	return ok && ob.Name == b.Name
}
