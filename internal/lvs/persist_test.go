package lvs

import (
	"net/netip"
	"testing"
	"time"
)

func TestMakePersistKey(t *testing.T) {
	svc := ServiceKey{Proto: TCP, Addr: netip.MustParseAddrPort("198.18.0.100:80")}
	v6 := ServiceKey{Proto: UDP, Addr: netip.MustParseAddrPort("[2001:db8::100]:53")}
	fwm := ServiceKey{FWMark: 7}
	tests := []struct {
		svc    ServiceKey
		client string
		bits   int
		want   PersistKey
	}{
		{svc, "198.18.1.77", 32, PersistKey{Proto: TCP, Client: netip.MustParseAddr("198.18.1.77"), Virtual: svc.Addr}},
		{svc, "198.18.1.77", 0, PersistKey{Proto: TCP, Client: netip.MustParseAddr("198.18.1.77"), Virtual: svc.Addr}},
		{svc, "198.18.1.77", 24, PersistKey{Proto: TCP, Client: netip.MustParseAddr("198.18.1.0"), Virtual: svc.Addr}},
		{svc, "::ffff:198.18.1.77", 16, PersistKey{Proto: TCP, Client: netip.MustParseAddr("198.18.0.0"), Virtual: svc.Addr}},
		{v6, "2001:db8:1:2::9", 48, PersistKey{Proto: UDP, Client: netip.MustParseAddr("2001:db8:1::"), Virtual: v6.Addr}},
		{v6, "2001:db8:1:2::9", 200, PersistKey{Proto: UDP, Client: netip.MustParseAddr("2001:db8:1:2::9"), Virtual: v6.Addr}},
		{fwm, "198.18.1.77", 32, PersistKey{Client: netip.MustParseAddr("198.18.1.77"), FWMark: 7}},
	}
	for _, tt := range tests {
		if got := MakePersistKey(tt.svc, netip.MustParseAddr(tt.client), tt.bits); got != tt.want {
			t.Errorf("%v %s/%d: %+v, want %+v", tt.svc, tt.client, tt.bits, got, tt.want)
		}
	}
}

func TestPersistLifecycle(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	svc := ServiceKey{Proto: TCP, Addr: netip.MustParseAddrPort("198.18.0.100:80")}
	key := MakePersistKey(svc, netip.MustParseAddr("198.18.0.3"), 32)
	d := &Dest{Addr: netip.MustParseAddrPort("198.18.0.21:80")}
	p := NewPersistTable()
	all := func(*Dest) bool { return true }

	if p.Lookup(key, all) != nil {
		t.Fatal("empty table found a template")
	}
	tp := p.Create(key, d, 50*time.Second, at(0))
	p.Attach(tp, at(0))
	if d.PersistConns != 1 || tp.Controls() != 1 {
		t.Fatalf("persistconns %d controls %d", d.PersistConns, tp.Controls())
	}
	// A second connection at 30 s restarts the timer: expires at 80 s.
	if p.Lookup(key, all) != tp {
		t.Fatal("lookup missed")
	}
	p.Attach(tp, at(30))
	if got := tp.Expires(at(30)); got != 50*time.Second {
		t.Fatalf("expires %v, want 50s", got)
	}
	p.Detach(tp)
	if n := p.Expire(at(79)); n != 0 {
		t.Fatal("expired early")
	}
	// At 80 s one connection is still attached: re-armed for 60 s.
	if n := p.Expire(at(80)); n != 0 || p.Len() != 1 {
		t.Fatalf("removed %d with a connection attached", n)
	}
	if got := tp.Expires(at(80)); got != 60*time.Second {
		t.Fatalf("re-armed for %v, want 60s", got)
	}
	// From now on uses restart it with 60 s, as the kernel does.
	p.Attach(tp, at(100))
	if got := tp.Expires(at(100)); got != 60*time.Second {
		t.Fatalf("after re-arm, use restarts with %v, want 60s", got)
	}
	p.Detach(tp)
	p.Detach(tp)
	if n := p.Expire(at(160)); n != 1 || p.Len() != 0 || d.PersistConns != 0 {
		t.Fatalf("removed %d, len %d, persistconns %d", n, p.Len(), d.PersistConns)
	}
	if p.Lookup(key, all) != nil {
		t.Fatal("expired template still found")
	}
}

func TestPersistInvalidation(t *testing.T) {
	t0 := time.Unix(1000, 0)
	svc := ServiceKey{Proto: UDP, Addr: netip.MustParseAddrPort("198.18.0.100:53")}
	key := MakePersistKey(svc, netip.MustParseAddr("198.18.0.3"), 32)
	d1, d2 := &Dest{}, &Dest{}
	gone := map[*Dest]bool{}
	avail := func(d *Dest) bool { return !gone[d] }
	p := NewPersistTable()
	t1 := p.Create(key, d1, 300*time.Second, t0)
	p.Attach(t1, t0)
	// A weight-0 destination stays available (the kernel's default
	// expire_quiescent_template=0): only removal invalidates.
	d1.Weight = 0
	if p.Lookup(key, avail) != t1 {
		t.Fatal("quiesced destination invalidated the template")
	}
	gone[d1] = true
	if p.Lookup(key, avail) != nil || t1.Valid() {
		t.Fatal("template of a removed destination still valid")
	}
	t2 := p.Create(key, d2, 300*time.Second, t0.Add(time.Second))
	if p.Lookup(key, avail) != t2 || p.Len() != 2 {
		t.Fatalf("new template not found or old one dropped early (len %d)", p.Len())
	}
	// The invalidated one lingers until its timer with nothing attached.
	p.Detach(t1)
	if n := p.Expire(t0.Add(300 * time.Second)); n != 1 || d1.PersistConns != 0 || d2.PersistConns != 1 {
		t.Fatalf("removed %d, d1 %d d2 %d", n, d1.PersistConns, d2.PersistConns)
	}
	p.Flush()
	if p.Len() != 0 || d2.PersistConns != 0 {
		t.Fatal("flush left templates")
	}
}
