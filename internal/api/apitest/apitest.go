// Package apitest provides a fake api.Source with realistic contents, for
// the tests of the API, vipctl, the metrics and the status page, which are
// written before (and independently of) the daemon.
//
// It is a fake and says so: it stands for the daemon, which the end-to-end
// tests exercise for real.
package apitest

import (
	"context"
	"errors"
	"github.com/vipd/vipd/internal/bfd"
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/api"
	"github.com/vipd/vipd/internal/lvs"
)

// Source is a fake api.Source whose state a test sets. It is safe for
// concurrent use.
type Source struct {
	mu        sync.Mutex
	status    api.Status
	conns     []lvs.ConnEntry
	readyErr  error
	reloadErr error
	reloads   int
	statusN   int
}

// NewSource returns a fake with Sample's state, ready.
func NewSource() *Source {
	return &Source{status: Sample(), conns: SampleConns()}
}

// Status implements api.Source.
func (s *Source) Status() api.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.statusN++
	return cloneStatus(s.status)
}

// cloneStatus deep-copies st: the Source contract lets callers keep a
// snapshot (the status page's history does) while Update changes the
// state.
func cloneStatus(st api.Status) api.Status {
	out := st
	out.Instances = slices.Clone(st.Instances)
	out.BFD = slices.Clone(st.BFD)
	for i := range out.Instances {
		in := &out.Instances[i]
		in.VIPs = slices.Clone(in.VIPs)
		in.FaultReasons = slices.Clone(in.FaultReasons)
		in.Stats.Dropped = maps.Clone(in.Stats.Dropped)
	}
	out.SyncGroups = slices.Clone(st.SyncGroups)
	for i := range out.SyncGroups {
		out.SyncGroups[i].Instances = slices.Clone(out.SyncGroups[i].Instances)
	}
	out.Services = slices.Clone(st.Services)
	for i := range out.Services {
		out.Services[i].Dests = slices.Clone(out.Services[i].Dests)
	}
	out.Checks = slices.Clone(st.Checks)
	out.Scripts = slices.Clone(st.Scripts)
	out.Quorum = maps.Clone(st.Quorum)
	out.ReloadResults = maps.Clone(st.ReloadResults)
	out.Packets = maps.Clone(st.Packets)
	if st.BGP != nil {
		b := *st.BGP
		b.Peers = slices.Clone(b.Peers)
		b.Routes = slices.Clone(b.Routes)
		b.Decisions = slices.Clone(b.Decisions)
		out.BGP = &b
	}
	return out
}

// Conns implements api.Source.
func (s *Source) Conns() []lvs.ConnEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// Reload implements api.Source: it counts the call and returns the error
// set with SetReloadError; a successful reload bumps Status.Reloads.
func (s *Source) Reload(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reloads++
	if s.reloadErr != nil {
		return s.reloadErr
	}
	s.status.Reloads++
	s.status.ConfigLoaded = s.status.ConfigLoaded.Add(time.Minute)
	return nil
}

// Ready implements api.Source.
func (s *Source) Ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readyErr
}

// Update changes the state under the lock.
func (s *Source) Update(f func(st *api.Status)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.status)
}

// SetConns replaces the connection table.
func (s *Source) SetConns(c []lvs.ConnEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns = c
}

// SetReady sets what Ready returns (nil: ready).
func (s *Source) SetReady(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readyErr = err
}

// SetReloadError sets what Reload returns.
func (s *Source) SetReloadError(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reloadErr = err
}

// Reloads returns how many times Reload was called.
func (s *Source) Reloads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reloads
}

// StatusCalls returns how many times Status was called.
func (s *Source) StatusCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.statusN
}

// ErrNotReady is a typical readiness error.
var ErrNotReady = errors.New("data plane not programmed yet")

// T0 is the fixed time the sample state is built around.
var T0 = time.Date(2026, 11, 21, 21, 56, 53, 0, time.UTC)

// Sample returns the state of a director in the classic LVS-DR setup of the
// seeds: two VRRP instances (one MASTER, one BACKUP), a sync group, a
// tracking script, a TCP web service with two real servers (one failing its
// HTTP check), a UDP DNS service and a fwmark service, with counters.
func Sample() api.Status {
	ap := netip.MustParseAddrPort
	web := lvs.ServiceKey{Proto: lvs.TCP, Addr: ap("198.18.0.100:80")}
	dns := lvs.ServiceKey{Proto: lvs.UDP, Addr: ap("198.18.0.100:53")}
	fwm := lvs.ServiceKey{FWMark: 1}
	return api.Status{
		Version:      "0.1.0",
		RouterID:     "LVS_DEVEL",
		Hostname:     "lb1",
		PID:          4242,
		Started:      T0.Add(-2 * time.Hour),
		ConfigFile:   "/etc/keepalived/keepalived.conf",
		ConfigLoaded: T0.Add(-90 * time.Minute),
		Reloads:      3,
		Dataplane:    "proxy",
		Instances: []api.Instance{
			{
				Name: "VI_1", Interface: "eth0", VRID: 51, Version: 2, Family: "inet",
				State: "MASTER", Priority: 100, EffectivePriority: 110,
				AdvertInterval: time.Second,
				MasterAddr:     netip.MustParseAddr("198.18.0.11"), MasterPriority: 110,
				VIPs:        []string{"198.18.0.100/24"},
				SyncGroup:   "VG_1",
				Transitions: 2, LastTransition: T0.Add(-time.Hour),
				Stats: api.VRRPStats{
					AdvertRcvd: 12, AdvertSent: 3600, BecomeMaster: 1,
					AuthFailure: 2, PriZeroRcvd: 1,
					Dropped: map[string]uint64{"auth": 2, "ttl": 1},
				},
			},
			{
				Name: "VI_2", Interface: "eth0", VRID: 52, Version: 3, Family: "inet6",
				State: "BACKUP", Priority: 90, EffectivePriority: 90,
				AdvertInterval: 100 * time.Millisecond,
				MasterAddr:     netip.MustParseAddr("fe80::1"), MasterPriority: 150,
				VIPs:        []string{"2001:db8::100/64", "2001:db8::101/64"},
				Transitions: 1, LastTransition: T0.Add(-119 * time.Minute),
				Stats: api.VRRPStats{AdvertRcvd: 72000, ReleaseMaster: 0},
			},
			{
				Name: "VI_3", Interface: "eth1", VRID: 53, Version: 2, Family: "inet",
				State: "FAULT", Priority: 100, EffectivePriority: 100,
				AdvertInterval: time.Second,
				VIPs:           []string{"198.18.1.100/24"},
				Transitions:    1, LastTransition: T0.Add(-30 * time.Minute),
				FaultReasons: []string{"interface eth1 down"},
				Stats: api.VRRPStats{
					PacketLenErr: 4, IPTTLErr: 1,
					Dropped: map[string]uint64{"length": 4, "ttl": 1, "checksum": 7},
				},
			},
		},
		SyncGroups: []api.SyncGroup{{Name: "VG_1", State: "MASTER", Instances: []string{"VI_1"}}},
		Scripts:    []api.Script{{Name: "chk_nginx", State: "GOOD", Weight: 10, LastChange: T0.Add(-time.Hour)}},
		Services: []lvs.ServiceStatus{
			{
				Service: lvs.Service{Key: web, Scheduler: "wrr", Persistence: 50 * time.Second, PersistMask: 32},
				Dests: []lvs.DestStatus{
					{
						Destination:   lvs.Destination{Addr: ap("198.18.0.22:80"), Weight: 0, Forward: lvs.Route},
						InactiveConns: 3,
						Stats:         lvs.Stats{Conns: 410, InPkts: 5000, OutPkts: 0, InBytes: 400000, OutBytes: 0},
					},
					{
						Destination:   lvs.Destination{Addr: ap("198.18.0.21:80"), Weight: 3, Forward: lvs.Route},
						ActiveConns:   17,
						InactiveConns: 42,
						PersistConns:  5,
						Stats:         lvs.Stats{Conns: 12345, InPkts: 234567, OutPkts: 0, InBytes: 34567890, OutBytes: 0},
						Rates:         lvs.Rates{CPS: 12, InPPS: 340, InBPS: 51000},
					},
				},
				Stats: lvs.Stats{Conns: 12755, InPkts: 239567, InBytes: 34967890},
				Rates: lvs.Rates{CPS: 12, InPPS: 340, InBPS: 51000},
			},
			{
				Service: lvs.Service{Key: dns, Scheduler: "rr"},
				Dests: []lvs.DestStatus{
					{
						Destination:   lvs.Destination{Addr: ap("198.18.0.21:53"), Weight: 1, Forward: lvs.Masq},
						InactiveConns: 8,
						Stats:         lvs.Stats{Conns: 800, InPkts: 800, OutPkts: 800, InBytes: 48000, OutBytes: 96000},
					},
				},
				Stats: lvs.Stats{Conns: 800, InPkts: 800, OutPkts: 800, InBytes: 48000, OutBytes: 96000},
			},
			{
				Service: lvs.Service{Key: fwm, Scheduler: "sh", Flags: lvs.FlagSHFallback | lvs.FlagSHPort},
				Dests: []lvs.DestStatus{
					{Destination: lvs.Destination{Addr: ap("198.18.0.23:0"), Weight: 1, Forward: lvs.Tunnel}},
				},
			},
		},
		// The fwmark service has no quorum entry: the daemon lists only
		// the virtual servers it plans for.
		Quorum: map[string]bool{"TCP 198.18.0.100:80": true, "UDP 198.18.0.100:53": false},
		BFD: []bfd.SessionStatus{
			{Name: "to_router", Peer: netip.MustParseAddr("198.18.0.1"), State: "Up", Remote: "Up",
				LocalDiscr: 0x1a2b3c4d, RemoteDiscr: 7, TxIntervalUS: 10000, DetectUS: 30000,
				RemoteMinRx: 10000, RemoteMinTx: 10000, RemoteMult: 3, LastDown: "Control Detection Time Expired",
				Since: T0.Add(-10 * time.Minute), SentPackets: 60012, RecvPackets: 60007},
			{Name: "to_rs1", Peer: netip.MustParseAddr("198.18.0.21"), State: "Down", Remote: "Down",
				LocalDiscr: 0x55aa, TxIntervalUS: 1000000, RemoteMinRx: 1,
				Since: T0.Add(-time.Hour), SentPackets: 3600},
		},
		Checks: []api.Check{
			{
				VirtualServer: "TCP 198.18.0.100:80", RealServer: "198.18.0.21:80", Kind: "HTTP_GET",
				Up: true, Reason: "HTTP status 200, digest ok", Weight: 3,
				LastCheck: T0.Add(-2 * time.Second), LastChange: T0.Add(-time.Hour),
				Duration: 3 * time.Millisecond, Checks: 3600, Failures: 1,
			},
			{
				VirtualServer: "TCP 198.18.0.100:80", RealServer: "198.18.0.22:80", Kind: "HTTP_GET",
				Up: false, Reason: "connect: connection refused", Weight: 0,
				LastCheck: T0.Add(-1 * time.Second), LastChange: T0.Add(-5 * time.Minute),
				Duration: 1500 * time.Microsecond, Checks: 3600, Failures: 300,
			},
			{
				VirtualServer: "UDP 198.18.0.100:53", RealServer: "198.18.0.21:53", Kind: "DNS_CHECK",
				Up: true, Reason: "answer NOERROR", Weight: 1,
				LastCheck: T0.Add(-3 * time.Second), LastChange: T0.Add(-2 * time.Hour),
				Duration: 800 * time.Microsecond, Checks: 1200,
			},
		},
	}
}

// SampleConns returns a small connection table matching Sample.
func SampleConns() []lvs.ConnEntry {
	ap := netip.MustParseAddrPort
	return []lvs.ConnEntry{
		{Proto: lvs.TCP, Expire: 14*time.Minute + 56*time.Second, State: "ESTABLISHED",
			Client: ap("198.18.0.50:40312"), Virtual: ap("198.18.0.100:80"), Dest: ap("198.18.0.21:80")},
		{Proto: lvs.TCP, Expire: 1*time.Minute + 58*time.Second, State: "FIN_WAIT",
			Client: ap("198.18.0.51:40400"), Virtual: ap("198.18.0.100:80"), Dest: ap("198.18.0.21:80")},
		{Proto: lvs.TCP, Expire: 45 * time.Second, State: "NONE",
			Client: ap("198.18.0.50:0"), Virtual: ap("198.18.0.100:80"), Dest: ap("198.18.0.21:80")},
		{Proto: lvs.UDP, Expire: 4*time.Minute + 30*time.Second, State: "UDP",
			Client: ap("198.18.0.50:5353"), Virtual: ap("198.18.0.100:53"), Dest: ap("198.18.0.21:53")},
	}
}

// Serve serves the control API for src on a fresh unix socket, as vipd
// would, with the clock stopped at T0, and returns the socket's path;
// the server stops when the test ends, and an error from it, or its not
// stopping within 10 s, fails the test.
func Serve(t testing.TB, src api.Source) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "run", "vipd.sock")
	ln, err := api.Listen(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- api.NewServer(src, api.Options{Now: func() time.Time { return T0 }}).Serve(ctx, ln)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after cancel")
		}
	})
	return path
}
