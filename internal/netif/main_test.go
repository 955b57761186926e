package netif

import "runtime"

// Keep the main goroutine on the main thread, so that lab.Host.Do (which
// moves its goroutine's thread into a namespace and never returns it) can
// never land on the main thread: a main thread left in a lab namespace
// makes the lab's cleanup ("ip netns pids") kill the test binary.
func init() { runtime.LockOSThread() }
