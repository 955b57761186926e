package ipvs

import (
	"fmt"
	"os"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// netnsPath turns Options.NetNS into a path: a bare name is one of
// `ip netns`'s (/run/netns/NAME).
func netnsPath(ns string) string {
	if ns == "" || strings.Contains(ns, "/") {
		return ns
	}
	return "/run/netns/" + ns
}

// inNetns runs fn on an OS thread that has joined the network namespace at
// path (or on the calling goroutine when path is empty). Netlink sockets
// and /proc/thread-self/net files opened by fn belong to that namespace
// for their lifetime. The thread is never unlocked, so it dies with its
// goroutine and no other goroutine ever runs in the wrong namespace.
func inNetns(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open(path)
		if err != nil {
			errc <- fmt.Errorf("network namespace: %w", err)
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", path, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}
