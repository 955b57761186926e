package api_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vipd/vipd/internal/api"
	"github.com/vipd/vipd/internal/api/apitest"
)

// bgpSource is a Source with a BGP speaker whose drain can fail.
type bgpSource struct {
	*apitest.Source
	drained, resumed int
	fail             error
}

func (s *bgpSource) BGPDrain(context.Context) error  { s.drained++; return s.fail }
func (s *bgpSource) BGPResume(context.Context) error { s.resumed++; return s.fail }

func TestBGPDrainEndpoint(t *testing.T) {
	ctx := context.Background()
	// Without a BGP speaker: 501, said plainly.
	c := api.NewClient(apitest.Serve(t, apitest.NewSource()))
	if _, err := c.BGPDrain(ctx); err == nil || !strings.Contains(err.Error(), "no BGP speaker") {
		t.Errorf("drain without BGP: %v", err)
	}
	src := &bgpSource{Source: apitest.NewSource()}
	src.Update(func(st *api.Status) { st.BGP = &api.BGP{LocalAS: 65001, Draining: true} })
	c = api.NewClient(apitest.Serve(t, src))
	b, err := c.BGPDrain(ctx)
	if err != nil || b == nil || !b.Draining || src.drained != 1 {
		t.Fatalf("drain: %+v, %v, drained %d", b, err, src.drained)
	}
	if _, err := c.BGPResume(ctx); err != nil || src.resumed != 1 {
		t.Fatalf("resume: %v, resumed %d", err, src.resumed)
	}
	src.fail = errors.New("bgp: speaker stopped")
	if _, err := c.BGPDrain(ctx); err == nil || !strings.Contains(err.Error(), "speaker stopped") {
		t.Errorf("failed drain: %v", err)
	}
}

func TestBGPMetrics(t *testing.T) {
	src := apitest.NewSource()
	src.Update(func(st *api.Status) {
		st.BGP = &api.BGP{
			Peers: []api.BGPPeer{
				{Addr: netip.MustParseAddr("198.18.0.1"), RemoteAS: 65000, State: "ESTABLISHED", BFD: "UP"},
				{Addr: netip.MustParseAddr("198.18.0.2"), RemoteAS: 65000, State: "ACTIVE"},
			},
			Routes:    []string{"198.18.100.1/32"},
			Decisions: []api.BGPDecision{{Prefix: "198.18.100.1/32", Announce: true}, {Prefix: "198.18.100.2/32", Reason: "quorum down"}},
		}
	})
	want := `
# HELP vipd_bgp_peer_up 1 if the BGP session with the neighbor is ESTABLISHED.
# TYPE vipd_bgp_peer_up gauge
vipd_bgp_peer_up{peer="198.18.0.1",remote_as="65000"} 1
vipd_bgp_peer_up{peer="198.18.0.2",remote_as="65000"} 0
# HELP vipd_bgp_peer_bfd_up 1 if the neighbor's BFD session is UP (only for neighbors with bfd).
# TYPE vipd_bgp_peer_bfd_up gauge
vipd_bgp_peer_bfd_up{peer="198.18.0.1"} 1
# HELP vipd_bgp_routes_announced Number of prefixes vipd announces by BGP.
# TYPE vipd_bgp_routes_announced gauge
vipd_bgp_routes_announced 1
# HELP vipd_bgp_route_announced 1 if the VIP's host route is announced, 0 if the policy holds it back.
# TYPE vipd_bgp_route_announced gauge
vipd_bgp_route_announced{prefix="198.18.100.1/32"} 1
vipd_bgp_route_announced{prefix="198.18.100.2/32"} 0
`
	if err := testutil.CollectAndCompare(api.NewCollector(src), strings.NewReader(want),
		"vipd_bgp_peer_up", "vipd_bgp_peer_bfd_up", "vipd_bgp_routes_announced", "vipd_bgp_route_announced"); err != nil {
		t.Error(err)
	}
}
