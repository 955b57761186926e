package netif

import (
	"fmt"
	"os"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// NetnsPath turns a namespace option into a path: a bare name is one of
// `ip netns`'s (/run/netns/NAME); a path or "" stands as it is.
func NetnsPath(ns string) string {
	if ns == "" || strings.Contains(ns, "/") {
		return ns
	}
	return "/run/netns/" + ns
}

// InNetns runs fn on an OS thread that has joined the network namespace at
// path (or on the calling goroutine when path is empty). Netlink sockets
// and /proc/thread-self/net files opened by fn belong to that namespace
// for their lifetime. Afterwards the thread goes back to its namespace and
// is released; if it cannot go back it stays locked and dies with the
// goroutine. (Letting every such thread die is not enough: when the
// goroutine happens to run on the process's main thread, Go parks that
// thread for good instead, and the whole process would then appear to
// live in the namespace.)
func InNetns(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("network namespace: %w", err)
			return
		}
		defer orig.Close()
		f, err := os.Open(path)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("network namespace: %w", err)
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", path, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread()
		}
		errc <- ferr
	}()
	return <-errc
}
