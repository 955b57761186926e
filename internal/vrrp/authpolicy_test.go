package vrrp

import (
	"net/netip"
	"testing"
	"time"
)

// TestAuthHMACPolicy drives the sender and receiver state of auth_hmac
// through keepalived's cases: each bad advert is dropped for its reason.
func TestAuthHMACPolicy(t *testing.T) {
	src := netip.MustParseAddr("198.18.0.11")
	dst := MulticastGroup4
	now := time.Date(2026, 12, 7, 22, 0, 0, 0, time.UTC)
	cfg := &AuthHMACConfig{Keys: []HMACKey{{1, goldenKey1}, {7, goldenKey7}}, ActiveKey: 1}
	win := cfg.window(time.Second)
	if win != 5 {
		t.Fatalf("default window %d, want 5 (max(3 × 1 s, 5))", win)
	}
	var tx hmacState
	sign := func(c *AuthHMACConfig, at time.Time, key []byte) []byte {
		p := Packet{Version: 3, VRID: 61, Priority: 100, AdvertInt: 100, Addrs: addrs("198.18.0.100")}
		p.Trailer = tx.trailer(c, win, at)
		b, err := p.Marshal(src, dst, EncodeOptions{AuthKey: key})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	recv := func(rx *hmacState, c *AuthHMACConfig, b []byte, at time.Time, peers ...netip.Addr) string {
		p, err := Decode(b, src, dst, DecodeOptions{AuthTrailer: true})
		if err != nil {
			t.Fatal(err)
		}
		return rx.verify(c, win, p, b, src, peers, at).reason
	}
	var rx hmacState
	first := sign(cfg, now, goldenKey1)
	if r := recv(&rx, cfg, first, now); r != "" {
		t.Fatalf("valid advert dropped: %s", r)
	}
	if r := recv(&rx, cfg, first, now); r != DropAuthExtReplay {
		t.Fatalf("replayed advert: %q, want %s", r, DropAuthExtReplay)
	}
	// Same clock reading: the counter grows, the next advert is fresh.
	second := sign(cfg, now, goldenKey1)
	if r := recv(&rx, cfg, second, now); r != "" {
		t.Fatalf("second advert in the same instant dropped: %s", r)
	}
	if r := recv(&rx, cfg, sign(cfg, now.Add(time.Second), goldenKey7), now.Add(time.Second)); r != DropAuthExtBadHMAC {
		t.Fatalf("advert signed with another key under id 1: %q, want %s", r, DropAuthExtBadHMAC)
	}
	other := &AuthHMACConfig{Keys: []HMACKey{{9, goldenKey1}}, ActiveKey: 9}
	if r := recv(&rx, cfg, sign(other, now.Add(2*time.Second), goldenKey1), now.Add(2*time.Second)); r != DropAuthExtUnknownKey {
		t.Fatalf("key id 9: %q, want %s", r, DropAuthExtUnknownKey)
	}
	late := sign(cfg, now.Add(3*time.Second), goldenKey1)
	if r := recv(&rx, cfg, late, now.Add(10*time.Second)); r != DropAuthExtStale {
		t.Fatalf("7 s old advert, window 5: %q, want %s", r, DropAuthExtStale)
	}
	mono := *cfg
	mono.Monotonic = true
	if r := recv(&rx, &mono, late, now.Add(10*time.Second)); r != "" {
		t.Fatalf("anti_replay monotonic takes an old but growing sequence: %q", r)
	}
	bad := sign(cfg, now.Add(11*time.Second), goldenKey1)
	bad[len(bad)-AuthTrailerLen] = 2 // unknown scheme
	if r := recv(&rx, cfg, bad, now.Add(11*time.Second)); r != DropAuthExtMalformed {
		t.Fatalf("scheme 2: %q, want %s", r, DropAuthExtMalformed)
	}
	// Unicast: only configured peers, each with its own mark.
	var urx hmacState
	if r := recv(&urx, cfg, sign(cfg, now.Add(12*time.Second), goldenKey1), now.Add(12*time.Second), netip.MustParseAddr("198.18.0.12")); r != DropPeer {
		t.Fatalf("unicast advert from a non-peer: %q, want %s", r, DropPeer)
	}
	if r := recv(&urx, cfg, sign(cfg, now.Add(13*time.Second), goldenKey1), now.Add(13*time.Second), src); r != "" {
		t.Fatalf("unicast advert from the peer: %q", r)
	}
	// Modes: a trailerless advert.
	plain, _ := (&Packet{Version: 3, VRID: 61, Priority: 100, AdvertInt: 100, Addrs: addrs("198.18.0.100")}).Marshal(src, dst, EncodeOptions{})
	for mode, want := range map[string]string{"": DropAuthExtMissing, HMACEnforce: DropAuthExtMissing, HMACPermissive: "", HMACReceiveOnly: ""} {
		c := *cfg
		c.Mode = mode
		if r := recv(&hmacState{}, &c, plain, now); r != want {
			t.Errorf("mode %q, unsigned advert: %q, want %q", mode, r, want)
		}
	}
	ro := *cfg
	ro.Mode = HMACReceiveOnly
	if tr := tx.trailer(&ro, win, now); tr != nil {
		t.Errorf("receive-only sends a trailer %+v", tr)
	}
}

// TestAuthHMACSeqClockStep: a clock stepped back keeps the sequence
// growing (monotonic), and in time mode restarts from the clock once the
// last sequence is beyond the window, as keepalived's sender does.
func TestAuthHMACSeqClockStep(t *testing.T) {
	now := time.Date(2026, 12, 7, 22, 0, 0, 0, time.UTC)
	cfg := &AuthHMACConfig{Keys: []HMACKey{{1, goldenKey1}}, ActiveKey: 1}
	var s hmacState
	a := s.nextSeq(cfg, 5, now)
	b := s.nextSeq(cfg, 5, now.Add(-2*time.Second))
	if b != a+1 {
		t.Fatalf("2 s back: %x after %x, want +1", b, a)
	}
	c := s.nextSeq(cfg, 5, now.Add(-time.Minute))
	if c != clockSeq(now.Add(-time.Minute)) {
		t.Fatalf("1 min back, time mode: %x, want the clock %x", c, clockSeq(now.Add(-time.Minute)))
	}
	m := *cfg
	m.Monotonic = true
	var s2 hmacState
	a = s2.nextSeq(&m, 5, now)
	if c := s2.nextSeq(&m, 5, now.Add(-time.Minute)); c != a+1 {
		t.Fatalf("monotonic mode after a step back: %x, want %x", c, a+1)
	}
}
