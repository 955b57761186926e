package daemon

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/check"
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

// TestRoundSince: a virtual server back from every real server down is
// announced only after each checker of a server ended an attempt after
// the first server returned, and the loop has the verdict they found.
func TestRoundSince(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	before, after := t0.Add(-time.Second), t0.Add(time.Second)
	st := func(server string, last time.Time, up bool) check.Status {
		return check.Status{Server: server, Checker: "TCP_CHECK", LastCheck: last, Up: up, Checks: 1}
	}
	for _, tc := range []struct {
		name   string
		checks []check.Status
		loopUp bool
		want   bool
	}{
		{"last attempt before the return", []check.Status{st("rs1", before, true)}, true, false},
		{"attempt after, loop agrees (up)", []check.Status{st("rs1", after, true)}, true, true},
		{"attempt after, loop agrees (down)", []check.Status{st("rs1", after, false)}, false, true},
		{"attempt after, loop has not seen the success", []check.Status{st("rs1", after, true)}, false, false},
		{"one of two checkers not yet", []check.Status{st("rs1", after, true), st("rs1", before, true)}, true, false},
		{"two checkers after, one down", []check.Status{st("rs1", after, true), st("rs1", after, false)}, false, true},
		{"other servers do not count", []check.Status{st("rs2", before, true), st("rs1", after, true)}, true, true},
		{"no checker of the server", []check.Status{st("rs2", after, true)}, true, false},
	} {
		if got := roundSince(tc.checks, "rs1", t0, tc.loopUp); got != tc.want {
			t.Errorf("%s: roundSince = %v, want %v", tc.name, got, tc.want)
		}
	}
}
