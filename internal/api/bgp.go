package api

import (
	"context"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BGP is the state of vipd's BGP speaker (nil in Status without a bgp
// block).
type BGP struct {
	RouterID netip.Addr `json:"router_id"`
	LocalAS  uint32     `json:"local_as"`
	Peers    []BGPPeer  `json:"peers"`
	// Routes are the prefixes announced now.
	Routes   []string `json:"routes"`
	Draining bool     `json:"draining,omitempty"`
	// Decisions are the policy's verdicts per VIP with bgp_announce, with
	// the reason a VIP is not announced.
	Decisions []BGPDecision `json:"decisions"`
	// Error: the speaker is not running (why).
	Error string `json:"error,omitempty"`
}

// BGPPeer is one BGP neighbor.
type BGPPeer struct {
	Addr     netip.Addr `json:"addr"`
	RemoteAS uint32     `json:"remote_as"`
	State    string     `json:"state"`          // IDLE, CONNECT, ACTIVE, OPENSENT, OPENCONFIRM, ESTABLISHED
	Since    time.Time  `json:"since,omitzero"` // established since
	BFD      string     `json:"bfd,omitempty"`  // "" without BFD; DOWN, INIT, UP, ADMIN_DOWN
	HoldTime uint64     `json:"hold_time"`      // negotiated, seconds
}

// BGPDecision is the policy's verdict for one prefix.
type BGPDecision struct {
	Prefix   string `json:"prefix"`
	Announce bool   `json:"announce"`
	Reason   string `json:"reason"`
}

var (
	vBGPPeerUp      = desc("vipd_bgp_peer_up", "1 if the BGP session with the neighbor is ESTABLISHED.", "peer", "remote_as")
	vBGPPeerState   = desc("vipd_bgp_peer_state", "BGP session state of the neighbor: 1 on the series of the current state.", "peer", "state")
	vBGPPeerBFDUp   = desc("vipd_bgp_peer_bfd_up", "1 if the neighbor's BFD session is UP (only for neighbors with bfd).", "peer")
	vBGPRoutes      = desc("vipd_bgp_routes_announced", "Number of prefixes vipd announces by BGP.")
	vBGPRoute       = desc("vipd_bgp_route_announced", "1 if the VIP's host route is announced, 0 if the policy holds it back.", "prefix")
	bgpStates       = []string{"IDLE", "CONNECT", "ACTIVE", "OPENSENT", "OPENCONFIRM", "ESTABLISHED"}
	bgpDescriptions = []*prometheus.Desc{vBGPPeerUp, vBGPPeerState, vBGPPeerBFDUp, vBGPRoutes, vBGPRoute}
)

// collectBGP emits the BGP series of st.
func collectBGP(st Status, emit func(*prometheus.Desc, prometheus.ValueType, float64, []string)) {
	b := st.BGP
	if b == nil {
		return
	}
	for _, p := range b.Peers {
		addr := p.Addr.String()
		emit(vBGPPeerUp, prometheus.GaugeValue, b2f(p.State == "ESTABLISHED"), []string{addr, strconv.FormatUint(uint64(p.RemoteAS), 10)})
		for _, s := range bgpStates {
			emit(vBGPPeerState, prometheus.GaugeValue, b2f(p.State == s), []string{addr, s})
		}
		if p.BFD != "" {
			emit(vBGPPeerBFDUp, prometheus.GaugeValue, b2f(p.BFD == "UP"), []string{addr})
		}
	}
	emit(vBGPRoutes, prometheus.GaugeValue, float64(len(b.Routes)), nil)
	for _, d := range b.Decisions {
		announced := false
		for _, r := range b.Routes {
			if r == d.Prefix {
				announced = true
			}
		}
		emit(vBGPRoute, prometheus.GaugeValue, b2f(announced), []string{d.Prefix})
	}
}

// Control endpoints of the BGP speaker.
const (
	PathBGPDrain  = "/v1/bgp/drain"
	PathBGPResume = "/v1/bgp/resume"
)

// BGPControl is implemented by sources that run a BGP speaker: the API
// offers drain and resume only then (501 otherwise).
type BGPControl interface {
	// BGPDrain takes this director out gracefully: every route gets the
	// GRACEFUL_SHUTDOWN community, then, after a pause, is withdrawn; no
	// route is announced until BGPResume.
	BGPDrain(ctx context.Context) error
	// BGPResume ends a drain: the policy's routes are announced again.
	BGPResume(ctx context.Context) error
}

func (s *Server) routeBGP() {
	op := func(f func(BGPControl, context.Context) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			c, ok := s.src.(BGPControl)
			if !ok {
				writeJSON(w, http.StatusNotImplemented, ErrorBody{Error: "this vipd has no BGP speaker"})
				return
			}
			if err := f(c, r.Context()); err != nil {
				writeJSON(w, http.StatusConflict, ErrorBody{Error: err.Error()})
				return
			}
			writeJSON(w, http.StatusOK, s.src.Status().BGP)
		}
	}
	s.route(http.MethodPost, PathBGPDrain, op(BGPControl.BGPDrain))
	s.route(http.MethodPost, PathBGPResume, op(BGPControl.BGPResume))
}

// BGPDrain asks the daemon to drain its BGP routes (GRACEFUL_SHUTDOWN, a
// pause, withdrawal); it returns once they are withdrawn.
func (c *Client) BGPDrain(ctx context.Context) (*BGP, error) {
	var b *BGP
	err := c.do(ctx, http.MethodPost, PathBGPDrain, &b)
	return b, err
}

// BGPResume ends a drain.
func (c *Client) BGPResume(ctx context.Context) (*BGP, error) {
	var b *BGP
	err := c.do(ctx, http.MethodPost, PathBGPResume, &b)
	return b, err
}
