// Command proxyrun runs vipd's proxy data plane with one virtual service
// described by flags, until SIGINT or SIGTERM. It stands in for
// `vipd -n -l -f CONF` in bench/proxy/run.sh until the daemon runs
// keepalived.conf; it is not a user-facing program.
//
//	proxyrun -vip 198.18.0.100:81 -rs 198.18.0.21:80,198.18.0.22:80 -sched rr
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/vipd/vipd/internal/dataplane/proxy"
	"github.com/vipd/vipd/internal/lvs"
)

func main() {
	vip := flag.String("vip", "", "virtual address:port")
	rs := flag.String("rs", "", "real servers, comma-separated address:port[@weight]")
	proto := flag.String("proto", "tcp", "tcp or udp")
	sched := flag.String("sched", "rr", "scheduler")
	workers := flag.Int("workers", 0, "event loops (0: one per CPU)")
	persist := flag.Duration("persist", 0, "persistence timeout")
	pp := flag.Int("proxy-protocol", 0, "PROXY protocol version to send (0, 1, 2)")
	stats := flag.Bool("stats", false, "print the service's counters when stopping")
	verbose := flag.Bool("v", false, "debug logging")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "proxyrun:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	svc, err := service(*vip, *rs, *proto, *sched, *persist, *pp)
	if err != nil {
		fmt.Fprintln(os.Stderr, "proxyrun:", err)
		os.Exit(2)
	}
	dp, err := proxy.New(proxy.Options{Workers: *workers, Logger: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, "proxyrun:", err)
		os.Exit(1)
	}
	if err := dp.Apply(context.Background(), []lvs.Service{svc}); err != nil {
		fmt.Fprintln(os.Stderr, "proxyrun:", err)
		dp.Close()
		os.Exit(1)
	}
	fmt.Println("proxyrun: ready")
	defer dp.Close()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	if *stats {
		for _, s := range dp.Services() {
			fmt.Printf("%s conns %d inpkts %d outpkts %d inbytes %d outbytes %d\n", s.Key, s.Stats.Conns, s.Stats.InPkts, s.Stats.OutPkts, s.Stats.InBytes, s.Stats.OutBytes)
			for _, d := range s.Dests {
				fmt.Printf("  -> %s weight %d active %d inactive %d conns %d\n", d.Addr, d.Weight, d.ActiveConns, d.InactiveConns, d.Stats.Conns)
			}
		}
	}
}

func service(vip, rs, proto, sched string, persist time.Duration, pp int) (lvs.Service, error) {
	ap, err := netip.ParseAddrPort(vip)
	if err != nil {
		return lvs.Service{}, fmt.Errorf("-vip: %w", err)
	}
	p := lvs.TCP
	switch proto {
	case "tcp":
	case "udp":
		p = lvs.UDP
	default:
		return lvs.Service{}, fmt.Errorf("-proto %q: tcp or udp", proto)
	}
	s := lvs.Service{Key: lvs.ServiceKey{Proto: p, Addr: ap}, Scheduler: sched, Persistence: persist, ProxyProtocol: pp}
	for _, r := range strings.Split(rs, ",") {
		if r == "" {
			continue
		}
		addr, w, _ := strings.Cut(r, "@")
		d, err := netip.ParseAddrPort(addr)
		if err != nil {
			return lvs.Service{}, fmt.Errorf("-rs %q: %w", r, err)
		}
		weight := 1
		if w != "" {
			if _, err := fmt.Sscan(w, &weight); err != nil {
				return lvs.Service{}, fmt.Errorf("-rs %q: weight: %w", r, err)
			}
		}
		s.Destinations = append(s.Destinations, lvs.Destination{Addr: d, Weight: weight})
	}
	return s, nil
}
