package netif

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

func do(t *testing.T, h *lab.Host, fn func() error) {
	t.Helper()
	if err := h.Do(fn); err != nil {
		t.Fatal(err)
	}
}

func TestAddrsInNamespace(t *testing.T) {
	l := lab.New(t)
	h := l.Host("d1")
	v := Addr{Prefix: netip.MustParsePrefix("198.18.0.100/24"), Dev: "eth0", Label: "eth0:vip", Scope: "global"}
	b := Addr{Prefix: netip.MustParsePrefix("198.18.0.101/32"), Dev: "eth0", Scope: "host", Broadcast: netip.MustParseAddr("198.18.0.101")}
	v6 := Addr{Prefix: netip.MustParsePrefix("fd00::100/64"), Dev: "eth0"}
	m := NewAddrs()
	do(t, h, func() error {
		for _, a := range []Addr{v, b, v6} {
			if err := m.Add(a); err != nil {
				return err
			}
			if err := m.Add(a); err != nil { // idempotent
				return err
			}
		}
		return nil
	})
	out := h.MustRun("ip", "addr", "show", "dev", "eth0")
	containsAll(t, out,
		"inet 198.18.0.100/24 scope global secondary eth0:vip", // no brd: like keepalived
		"inet 198.18.0.101/32 brd 198.18.0.101 scope host eth0",
		"inet6 fd00::100/64 scope global nodad",
	)
	// A stale address (someone else's) is removed by RemoveStale only.
	h.MustRun("ip", "addr", "add", "198.18.0.102/24", "dev", "eth0")
	stale := Addr{Prefix: netip.MustParsePrefix("198.18.0.102/24"), Dev: "eth0"}
	do(t, h, func() error {
		if err := m.RemoveAll(); err != nil {
			return err
		}
		if ok, err := Present(stale); err != nil || !ok {
			return errors.New("RemoveAll removed an address it did not add")
		}
		removed, err := m.RemoveStale(stale)
		if err != nil || !removed {
			return errors.New("RemoveStale did not remove the stale address")
		}
		if removed, err := m.RemoveStale(stale); err != nil || removed {
			return errors.New("RemoveStale of an absent address")
		}
		return m.Remove(v) // absent: not an error
	})
	out = h.MustRun("ip", "addr", "show", "dev", "eth0")
	for _, gone := range []string{"198.18.0.100", "198.18.0.101", "198.18.0.102", "fd00::100"} {
		if strings.Contains(out, gone) {
			t.Errorf("%s still there:\n%s", gone, out)
		}
	}
	if !strings.Contains(out, "198.18.0.11/24") {
		t.Errorf("the host's own address went away:\n%s", out)
	}
	do(t, h, func() error {
		a, err := PrimaryAddr("eth0", false)
		if err != nil || a != netip.MustParseAddr("198.18.0.11") {
			return errors.New("PrimaryAddr v4: " + a.String())
		}
		a6, err := PrimaryAddr("eth0", true)
		if err != nil || !a6.IsLinkLocalUnicast() {
			return errors.New("PrimaryAddr v6: " + a6.String())
		}
		if err := m.Add(Addr{Prefix: netip.MustParsePrefix("198.18.0.103/24"), Dev: "nope0"}); err == nil {
			return errors.New("address on a missing interface accepted")
		}
		return nil
	})
}

func TestWatchLinks(t *testing.T) {
	l := lab.New(t)
	h := l.Host("d1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ch <-chan LinkState
	do(t, h, func() error {
		var err error
		ch, err = WatchLinks(ctx, nil)
		return err
	})
	wait := func(up bool) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case s := <-ch:
				if s.Name == "eth0" && s.Up == up {
					return
				}
			case <-deadline:
				t.Fatalf("no eth0 up=%v event", up)
			}
		}
	}
	wait(true) // the initial dump
	h.Cut()
	wait(false)
	h.Restore()
	wait(true)
	h.MustRun("ip", "link", "set", "eth0", "down")
	wait(false)
	do(t, h, func() error {
		s, err := LinkUp("eth0")
		if err != nil || s.Up {
			return errors.New("LinkUp says up for an interface set down")
		}
		return nil
	})
	cancel()
	select {
	case _, ok := <-ch:
		for ok {
			_, ok = <-ch
		}
	case <-time.After(5 * time.Second):
		t.Fatal("channel not closed after cancel")
	}
}

func TestVRRPSocketsAndGARP(t *testing.T) {
	l := lab.New(t)
	d1 := l.Host("d1")
	d2 := l.Host("d2")
	cl := l.Host("client")
	for _, v6 := range []bool{false, true} {
		group := netip.MustParseAddr("224.0.0.18")
		if v6 {
			group = netip.MustParseAddr("ff02::12")
		}
		var a, b *VRRPConn
		do(t, d1, func() (err error) { a, err = ListenVRRP("eth0", v6, group); return })
		do(t, d2, func() (err error) { b, err = ListenVRRP("eth0", v6, group); return })
		var src netip.Addr
		do(t, d1, func() (err error) { src, err = PrimaryAddr("eth0", v6); return })
		msg := []byte{0x31, 0x33, 0x64, 0x01, 0x00, 0x0a, 0x00, 0x00, 198, 18, 0, 100}
		if v6 {
			msg = append(msg[:8], netip.MustParseAddr("fd00::100").AsSlice()...)
			msg[3] = 1
		}
		got := make(chan Received, 1)
		errc := make(chan error, 1)
		go func() {
			buf := make([]byte, 1500)
			r, err := b.Read(buf)
			if err != nil {
				errc <- err
				return
			}
			r.Payload = append([]byte(nil), r.Payload...)
			got <- r
		}()
		// Send until received: the first may race the join.
		deadline := time.Now().Add(5 * time.Second)
	loop:
		for {
			if err := a.Write(msg, src, group, 255); err != nil {
				t.Fatal(err)
			}
			select {
			case r := <-got:
				if r.Src != src || r.Dst != group || r.TTL != 255 {
					t.Errorf("v6=%v: received from %v to %v TTL %d", v6, r.Src, r.Dst, r.TTL)
				}
				if age := time.Since(r.At); r.At.IsZero() || age < 0 || age > time.Second {
					t.Errorf("v6=%v: kernel receive time %v (%v ago)", v6, r.At, age)
				}
				if !v6 && string(r.Payload) != string(msg) {
					t.Errorf("payload %x, want %x", r.Payload, msg)
				}
				if v6 && (len(r.Payload) != len(msg) || r.Payload[6] == 0 && r.Payload[7] == 0) {
					t.Errorf("v6 payload %x: the kernel should have filled the checksum", r.Payload)
				}
				break loop
			case err := <-errc:
				t.Fatal(err)
			case <-time.After(50 * time.Millisecond):
				if time.Now().After(deadline) {
					t.Fatalf("v6=%v: advert not received", v6)
				}
			}
		}
		// Drain what the retries above left, then: nothing queued, and
		// TryRead does not wait.
		for i := 0; i < 100; i++ {
			if _, ok, _ := b.TryRead(make([]byte, 1500)); !ok {
				break
			}
		}
		begin := time.Now()
		if _, ok, err := b.TryRead(make([]byte, 1500)); ok || err != nil || time.Since(begin) > 100*time.Millisecond {
			t.Errorf("TryRead on an empty socket: ok=%v err=%v after %v", ok, err, time.Since(begin))
		}
		// Something queued: TryRead returns it.
		if err := a.Write(msg, src, group, 255); err != nil {
			t.Fatal(err)
		}
		lab.Eventually(t, 2*time.Second, func() bool {
			r, ok, err := b.TryRead(make([]byte, 1500))
			return err == nil && ok && r.Src == src
		}, "TryRead did not return a queued advert")
		a.Close()
		b.Close()
		// A closed socket's Read returns.
		if _, err := b.Read(make([]byte, 10)); err == nil {
			t.Error("Read on a closed socket succeeded")
		}
	}

	// GARP moves the client's neighbour entry for the VIP to the new
	// owner's MAC.
	vip := netip.MustParsePrefix("198.18.0.100/24")
	m1, m2 := NewAddrs(), NewAddrs()
	do(t, d1, func() error { return m1.Add(Addr{Prefix: vip, Dev: "eth0"}) })
	cl.MustRun("ping", "-c", "1", "-W", "2", "198.18.0.100")
	if out := cl.MustRun("ip", "neigh", "show", "198.18.0.100"); !strings.Contains(out, d1.MAC) {
		t.Fatalf("neighbour entry %q, want %s", out, d1.MAC)
	}
	do(t, d1, func() error { return m1.RemoveAll() })
	an := NewAnnouncer()
	defer an.Close()
	do(t, d2, func() error {
		if err := m2.Add(Addr{Prefix: vip, Dev: "eth0"}); err != nil {
			return err
		}
		return an.Announce("eth0", vip.Addr(), 3)
	})
	lab.Eventually(t, 3*time.Second, func() bool {
		out, _ := cl.Run("ip", "neigh", "show", "198.18.0.100")
		return strings.Contains(out, d2.MAC)
	}, "client's neighbour entry did not move to %s after GARP", d2.MAC)

	// Unsolicited NA does the same for IPv6.
	vip6 := netip.MustParsePrefix("fd00::100/64")
	do(t, d1, func() error { return m1.Add(Addr{Prefix: vip6, Dev: "eth0"}) })
	cl.MustRun("ip", "addr", "add", "fd00::50/64", "dev", "eth0")
	lab.Eventually(t, 5*time.Second, func() bool {
		_, err := cl.Run("ping", "-6", "-c", "1", "-W", "1", "fd00::100")
		return err == nil
	}, "IPv6 VIP not reachable")
	do(t, d1, func() error { return m1.RemoveAll() })
	do(t, d2, func() error {
		if err := m2.Add(Addr{Prefix: vip6, Dev: "eth0"}); err != nil {
			return err
		}
		return an.Announce("eth0", vip6.Addr(), 3)
	})
	mac2, _ := net.ParseMAC(d2.MAC)
	lab.Eventually(t, 3*time.Second, func() bool {
		out, _ := cl.Run("ip", "-6", "neigh", "show", "fd00::100")
		return strings.Contains(out, mac2.String())
	}, "client's IPv6 neighbour entry did not move after NA")
}
