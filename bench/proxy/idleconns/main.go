// Command idleconns opens N idle TCP connections to a target and holds
// them until SIGINT or SIGTERM, for bench/proxy/run.sh's memory-per-
// connection row. It prints "idleconns: open N" once all are connected.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

func main() {
	target := flag.String("target", "", "address:port")
	n := flag.Int("n", 1000, "connections")
	par := flag.Int("parallel", 64, "connections being opened at once")
	flag.Parse()
	var (
		mu    sync.Mutex
		conns []net.Conn
		fails int
		wg    sync.WaitGroup
	)
	sem := make(chan struct{}, *par)
	for range *n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.DialTimeout("tcp", *target, 10*time.Second)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				fails++
				return
			}
			conns = append(conns, c)
		}()
	}
	wg.Wait()
	fmt.Printf("idleconns: open %d failed %d\n", len(conns), fails)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	for _, c := range conns {
		c.Close()
	}
}
