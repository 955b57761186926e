// Command xdppass attaches an XDP program that passes everything to an
// interface of a network namespace and holds it until SIGTERM or SIGINT.
// bench/xdp/run.sh puts it on the director's peer veth: on veth, frames a
// program sends with XDP_TX leave only when the peer runs an XDP program.
//
//	xdppass NETNS IFNAME
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/vipd/vipd/internal/dataplane/xdp"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: xdppass NETNS IFNAME")
		os.Exit(2)
	}
	l, err := xdp.AttachPass(os.Args[1], os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "xdppass:", err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	l.Close()
}
