package proxy

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/lvs"
)

func TestLingerQueue(t *testing.T) {
	s := newService(lvs.ServiceKey{Proto: lvs.TCP, Addr: netip.MustParseAddrPort("198.18.0.100:80")})
	d := &destination{}
	d.Addr = netip.MustParseAddrPort("198.18.0.21:80")
	tmpl := s.persist.Create(lvs.PersistKey{}, &d.Dest, time.Second, epoch)
	t0 := epoch.Add(time.Hour)
	var q lingerQueue
	// 3000 closed connections, one every 10 ms, each lingering 120 s.
	for i := range 3000 {
		at := t0.Add(time.Duration(i) * 10 * time.Millisecond)
		client := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 1, byte(i)}), uint16(i))
		d.BindConn(lvs.StateTimeWait)
		s.persist.Attach(tmpl, at)
		q.push(newLingerRec(client, lvs.StateTimeWait, at.Add(120*time.Second), d, tmpl), s)
	}
	e := q.entries(t0.Add(60*time.Second), s.key, nil)
	if len(e) != 3000 || e[0].Expire != 60*time.Second || e[0].State != "TIME_WAIT" || e[0].Dest != d.Addr ||
		e[5].Client != netip.MustParseAddrPort("198.18.1.5:5") {
		t.Fatalf("%d entries, first %+v, sixth %+v", len(e), e[0], e[5])
	}
	tests := []struct {
		at       time.Duration
		left     int
		controls int
	}{
		{119 * time.Second, 3000, 3000},
		{120 * time.Second, 2999, 2999},
		{125 * time.Second, 2499, 2499}, // i*10ms+120s <= 125s for i = 0..500
		{149*time.Second + 990*time.Millisecond, 0, 0},
	}
	for _, tt := range tests {
		q.expire(t0.Add(tt.at), s)
		if q.len() != tt.left || d.InactiveConns != tt.left || tmpl.Controls() != tt.controls {
			t.Fatalf("at %v: %d records, %d inactive, %d controls; want %d", tt.at, q.len(), d.InactiveConns, tmpl.Controls(), tt.left)
		}
	}
	if len(q.buf) > 2048 {
		t.Fatalf("buffer of %d records kept after draining", len(q.buf))
	}
	// Records keep the client's family.
	q.push(newLingerRec(netip.MustParseAddrPort("[2001:db8::1]:5"), lvs.StateClose, t0, d, nil), s)
	if e := q.entries(t0, s.key, nil); e[0].Client.String() != "[2001:db8::1]:5" {
		t.Fatalf("IPv6 client became %v", e[0].Client)
	}
}

func TestRates(t *testing.T) {
	if testing.Short() {
		lab.Skip(t, "-short: waits for the 2 s estimator")
	}
	rs1 := startServer(t, "rs1", "127.0.0.1:0")
	dp, v, _ := serveRR(t, rs1)
	// About 50 connections a second for 5 s: the estimator (2 s samples,
	// weight 1/4) shows a rate within a few samples.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c := dial(t, v, "")
		c.echo(t, "x")
		c.Close()
		time.Sleep(20 * time.Millisecond)
	}
	r := dp.Services()[0].Rates
	if r.CPS < 5 || r.CPS > 60 || r.InPPS == 0 || r.OutPPS == 0 || r.InBPS == 0 || r.OutBPS == 0 {
		t.Fatalf("rates %+v after ~50 conn/s for 5 s", r)
	}
	if d := dp.Services()[0].Dests[0].Rates; d != r {
		t.Fatalf("destination rates %+v differ from the service's %+v with one destination", d, r)
	}
}
