package bgp

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// syncBuf is a log sink safe for GoBGP's and the speaker's goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// routerRIB lists what a second GoBGP (standing in for the upstream
// router; BIRD and FRR are in the e2e tests) has received: prefix ->
// communities.
func routerRIB(t *testing.T, r *server.BgpServer) map[string][]uint32 {
	t.Helper()
	out := map[string][]uint32{}
	err := r.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: bgp.RF_IPv4_UC},
		func(prefix bgp.NLRI, paths []*apiutil.Path) {
			for _, p := range paths {
				var comms []uint32
				for _, a := range p.Attrs {
					if c, ok := a.(*bgp.PathAttributeCommunities); ok {
						comms = c.Value
					}
				}
				out[prefix.String()] = comms
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func waitFor(t *testing.T, what string, d time.Duration, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSpeakerAgainstGoBGP runs the speaker against a GoBGP router on
// loopback: session up, announce, GSHUT drain, withdraw, stop.
func TestSpeakerAgainstGoBGP(t *testing.T) {
	port := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	router := server.NewBgpServer()
	go router.Serve()
	defer router.Stop()
	if err := router.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: 65000, RouterId: "198.18.0.1", ListenPort: int32(port), ListenAddresses: []string{"127.0.0.1"}}}); err != nil {
		t.Fatal(err)
	}
	if err := router.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: "127.0.0.1", PeerAsn: 65001},
		Transport: &api.Transport{PassiveMode: true},
		Timers:    &api.Timers{Config: &api.TimersConfig{HoldTime: 3, KeepaliveInterval: 1}},
	}}); err != nil {
		t.Fatal(err)
	}

	var logs syncBuf
	sp, err := New(Config{
		RouterID: netip.MustParseAddr("198.18.0.11"), LocalAS: 65001,
		Peers: []Peer{{Addr: netip.MustParseAddr("127.0.0.1"), RemoteAS: 65000, HoldTime: 3 * time.Second, Port: uint16(port)}},
	}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- sp.Run(ctx) }()

	waitFor(t, "session ESTABLISHED", 20*time.Second, func() bool {
		st, err := sp.Status(ctx)
		return err == nil && len(st.Peers) == 1 && st.Peers[0].State == "ESTABLISHED"
	})
	vip := Host(netip.MustParseAddr("198.18.0.100"))
	if err := sp.Set(ctx, []netip.Prefix{vip}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "router learns the VIP", 10*time.Second, func() bool {
		_, ok := routerRIB(t, router)["198.18.0.100/32"]
		return ok
	})
	st, _ := sp.Status(ctx)
	if len(st.Routes) != 1 || st.Routes[0] != vip || st.Peers[0].HoldTime != 3 || st.Peers[0].Since.IsZero() {
		t.Fatalf("status: %+v", st)
	}

	// Drain: GSHUT first, then the withdrawal after the pause.
	drained := make(chan error, 1)
	go func() { drained <- sp.Drain(ctx, 2*time.Second) }()
	waitFor(t, "GRACEFUL_SHUTDOWN community at the router", 10*time.Second, func() bool {
		c := routerRIB(t, router)["198.18.0.100/32"]
		return len(c) == 1 && c[0] == GracefulShutdown
	})
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "withdrawal after the drain", 10*time.Second, func() bool {
		_, ok := routerRIB(t, router)["198.18.0.100/32"]
		return !ok
	})
	// Set does not announce while draining; Resume lets it.
	if err := sp.Set(ctx, []netip.Prefix{vip}); err != nil {
		t.Fatal(err)
	}
	if st, _ := sp.Status(ctx); len(st.Routes) != 0 || !st.Draining {
		t.Fatalf("announced while draining: %+v", st)
	}
	if err := sp.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sp.Set(ctx, []netip.Prefix{vip}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "re-announcement without community", 10*time.Second, func() bool {
		c, ok := routerRIB(t, router)["198.18.0.100/32"]
		return ok && len(c) == 0
	})
	if err := sp.Set(ctx, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "withdrawal", 10*time.Second, func() bool {
		_, ok := routerRIB(t, router)["198.18.0.100/32"]
		return !ok
	})

	if err := sp.Announce(ctx, vip); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "announce", 10*time.Second, func() bool { _, ok := routerRIB(t, router)["198.18.0.100/32"]; return ok })
	if err := sp.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "stop withdraws", 10*time.Second, func() bool { _, ok := routerRIB(t, router)["198.18.0.100/32"]; return !ok })
	if err := sp.Announce(ctx, vip); err != ErrStopped {
		t.Fatalf("Announce after Stop: %v", err)
	}
	for _, want := range []string{"state=ESTABLISHED", `msg="BGP route announced"`, `msg="BGP route marked GRACEFUL_SHUTDOWN"`, `msg="BGP route withdrawn"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

func TestNewRejects(t *testing.T) {
	for _, c := range []Config{
		{LocalAS: 1},
		{RouterID: netip.MustParseAddr("2001:db8::1"), LocalAS: 1},
		{RouterID: netip.MustParseAddr("198.18.0.1")},
		{RouterID: netip.MustParseAddr("198.18.0.1"), LocalAS: 1, Peers: []Peer{{Addr: netip.MustParseAddr("198.18.0.2"), RemoteAS: 2, HoldTime: time.Second}}},
	} {
		if _, err := New(c, nil); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
}
