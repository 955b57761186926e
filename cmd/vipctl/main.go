// Command vipctl controls and inspects a running vipd: VRRP status,
// ipvsadm-identical listings of the virtual servers and connections, health
// checks, reload, a full state dump, keepalived's genhash, and the
// real-server side of direct routing.
//
// It is a thin client of vipd's control API on a unix socket; everything it
// prints comes from one request, so it never disagrees with the daemon.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := newApp(os.Stdout, os.Stderr).run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
