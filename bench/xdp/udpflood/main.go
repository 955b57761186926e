// Command udpflood sends small UDP datagrams from many source ports (one
// flow each) as fast as it can for a while, or sinks them.
//
//	udpflood -to ADDR:PORT [-flows 256] [-size 18] [-d 5s]
//	udpflood -sink :PORT
//
// The sender prints the datagrams it sent; the benchmark counts what
// arrives at the real server from its interface counters.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/net/ipv4"
)

func main() {
	to := flag.String("to", "", "destination ADDR:PORT")
	sink := flag.String("sink", "", "receive and discard on ADDR:PORT")
	flows := flag.Int("flows", 256, "source ports (flows)")
	size := flag.Int("size", 18, "payload bytes (18: 64-byte Ethernet frames)")
	dur := flag.Duration("d", 5*time.Second, "how long to send")
	flag.Parse()
	if *sink != "" {
		c, err := net.ListenPacket("udp4", *sink)
		if err != nil {
			fail(err)
		}
		p := ipv4.NewPacketConn(c)
		ms := make([]ipv4.Message, 64)
		for i := range ms {
			ms[i].Buffers = [][]byte{make([]byte, 2048)}
		}
		for {
			if _, err := p.ReadBatch(ms, 0); err != nil {
				fail(err)
			}
		}
	}
	dst, err := net.ResolveUDPAddr("udp4", *to)
	if err != nil {
		fail(err)
	}
	var conns []*ipv4.PacketConn
	for range *flows {
		c, err := net.ListenPacket("udp4", ":0")
		if err != nil {
			fail(err)
		}
		conns = append(conns, ipv4.NewPacketConn(c))
	}
	payload := make([]byte, *size)
	ms := make([]ipv4.Message, 64)
	for i := range ms {
		ms[i] = ipv4.Message{Buffers: [][]byte{payload}, Addr: dst}
	}
	sent := 0
	deadline := time.Now().Add(*dur)
	for i := 0; time.Now().Before(deadline); i++ {
		n, err := conns[i%len(conns)].WriteBatch(ms, 0)
		if err != nil {
			continue // ENOBUFS under load: keep going
		}
		sent += n
	}
	fmt.Println(sent)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "udpflood:", err)
	os.Exit(1)
}
