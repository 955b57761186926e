package daemon

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/config"
)

// TestSameBGP: a reload restarts the speaker only when the bgp block
// changed, not when lines moved.
func TestSameBGP(t *testing.T) {
	mk := func(line int, hold time.Duration) *config.BGP {
		return &config.BGP{Pos: config.Pos{File: "k.conf", Line: line}, RouterID: netip.MustParseAddr("198.18.0.11"), LocalAS: 65001,
			Neighbors: []*config.BGPNeighbor{{Pos: config.Pos{File: "k.conf", Line: line + 3}, Addr: netip.MustParseAddr("198.18.0.1"), RemoteAS: 65000, HoldTime: hold}}}
	}
	for _, tc := range []struct {
		name string
		a, b *config.BGP
		same bool
	}{
		{"both absent", nil, nil, true},
		{"added", nil, mk(1, 3*time.Second), false},
		{"removed", mk(1, 3*time.Second), nil, false},
		{"moved lines", mk(1, 3*time.Second), mk(40, 3*time.Second), true},
		{"hold time changed", mk(1, 3*time.Second), mk(1, 9*time.Second), false},
	} {
		if got := sameBGP(tc.a, tc.b); got != tc.same {
			t.Errorf("%s: sameBGP = %v, want %v", tc.name, got, tc.same)
		}
	}
}
