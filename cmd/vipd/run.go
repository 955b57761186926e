package main

import (
	"fmt"
	"os"
)

// run starts the daemon. This is a stub: the lead engineer replaces this
// file with the daemon's run path.
func run(o Options) int {
	_ = o
	fmt.Fprintln(os.Stderr, "vipd: daemon not wired yet")
	return 1
}
