// Command udpload is the UDP request/response load of bench/proxy/udp.sh,
// and its stand-in real server.
//
//	udpload -serve 198.18.0.21:7              # echo server: each datagram back to its sender
//	udpload -target 198.18.0.100:81 -flows 1000 -d 5s
//
// As a client it runs -flows flows, each its own socket (its own source
// port, so its own flow in a balancer), each sending a 64-byte request
// and waiting for the answer before the next one. It prints one line:
// "requests N rps R p50 MS p99 MS lost L". A request unanswered within
// -timeout counts as lost and the flow goes on with a new one; an answer
// to an older request is skipped.
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	serve := flag.String("serve", "", "echo on this address:port")
	target := flag.String("target", "", "address:port to load")
	flows := flag.Int("flows", 1000, "concurrent flows (sockets)")
	dur := flag.Duration("d", 5*time.Second, "duration")
	timeout := flag.Duration("timeout", 500*time.Millisecond, "a request unanswered this long is lost")
	size := flag.Int("size", 64, "request size in bytes")
	flag.Parse()
	switch {
	case *serve != "":
		if err := echo(*serve); err != nil {
			fmt.Fprintln(os.Stderr, "udpload:", err)
			os.Exit(1)
		}
	case *target != "":
		if err := load(*target, *flows, *dur, *timeout, *size); err != nil {
			fmt.Fprintln(os.Stderr, "udpload:", err)
			os.Exit(1)
		}
	default:
		fmt.Fprintln(os.Stderr, "udpload: -serve or -target")
		os.Exit(2)
	}
}

// echo answers on one SO_REUSEPORT socket per CPU, each with a 4 MiB
// receive buffer (capped by net.core.rmem_max).
func echo(addr string) error {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			// The balancers' VIP sockets ask for the same.
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	var wg sync.WaitGroup
	for range max(2, numCPU()) {
		pc, err := lc.ListenPacket(context.Background(), "udp", addr)
		if err != nil {
			return err
		}
		c := pc.(*net.UDPConn)
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64<<10)
			for {
				n, from, err := c.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				c.WriteToUDPAddrPort(buf[:n], from)
			}
		}()
	}
	fmt.Println("udpload: serving", addr)
	wg.Wait()
	return nil
}

func numCPU() int {
	var s unix.CPUSet
	if unix.SchedGetaffinity(0, &s) != nil {
		return 1
	}
	return s.Count()
}

func load(target string, flows int, dur, timeout time.Duration, size int) error {
	raddr, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		return err
	}
	conns := make([]*net.UDPConn, flows)
	for i := range conns {
		if conns[i], err = net.DialUDP("udp", nil, raddr); err != nil {
			return fmt.Errorf("flow %d: %w", i, err)
		}
		defer conns[i].Close()
	}
	var (
		mu   sync.Mutex
		lats []time.Duration
		lost int
		wg   sync.WaitGroup
	)
	start := time.Now()
	end := start.Add(dur)
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var my []time.Duration
			myLost := 0
			req := make([]byte, max(size, 8))
			buf := make([]byte, 64<<10)
			for seq := uint64(1); ; seq++ {
				t0 := time.Now()
				if !t0.Before(end) {
					break
				}
				binary.BigEndian.PutUint64(req, seq)
				if _, err := c.Write(req); err != nil {
					myLost++
					continue
				}
				c.SetReadDeadline(t0.Add(timeout))
				for {
					n, err := c.Read(buf)
					if err != nil {
						myLost++
						break
					}
					if n >= 8 && binary.BigEndian.Uint64(buf) == seq {
						my = append(my, time.Since(t0))
						break
					}
				}
			}
			mu.Lock()
			lats = append(lats, my...)
			lost += myLost
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start)
	slices.Sort(lats)
	pct := func(p float64) float64 {
		if len(lats) == 0 {
			return 0
		}
		return float64(lats[min(len(lats)-1, int(float64(len(lats))*p))]) / 1e6
	}
	fmt.Printf("requests %d rps %.1f p50 %.3f p99 %.3f lost %d\n", len(lats), float64(len(lats))/el.Seconds(), pct(0.50), pct(0.99), lost)
	return nil
}
