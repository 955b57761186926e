package api

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// History keeps the last Window of the daemon's state in memory for the
// status page's graphs: rates per virtual and real server, health-check
// verdicts and latency per real server, and every VRRP state transition
// with its cause. It is fed by Record (ServeWeb calls it every Step) and
// keeps no other state, so it costs nothing when --metrics is off.
//
// Cost: a real server (and a virtual server) keeps, per sample, its time
// (8 bytes), three rates and a check latency (4 bytes each) and a verdict
// (1 byte): 25 bytes, so 15 KB for the default 10 minutes at 1 s; 22.7 KB
// of heap with slice headroom (BenchmarkHistory). Instances keep at most
// maxTransitions transitions each.
type History struct {
	window time.Duration

	mu        sync.Mutex
	prev      Status
	prevAt    time.Time
	servers   map[string]*serverHistory
	order     []string
	instances map[string]*instanceHistory
	instOrder []string
}

// maxTransitions bounds an instance's timeline whatever its flapping.
const maxTransitions = 200

// DefaultHistoryWindow and DefaultHistoryStep are what ServeWeb keeps.
const (
	DefaultHistoryWindow = 10 * time.Minute
	DefaultHistoryStep   = time.Second
)

type serverHistory struct {
	HistoryServer
}

type instanceHistory struct {
	HistoryInstance
}

// HistoryServer is one virtual server (RealServer empty) or one of its
// real servers over the window. Columns are aligned: T[i] is the time of
// CPS[i], ... in Unix milliseconds. Rates are per second over the step
// before T[i].
type HistoryServer struct {
	VirtualServer string    `json:"virtual_server"`
	RealServer    string    `json:"real_server,omitempty"`
	T             []int64   `json:"t"`
	CPS           []float32 `json:"cps"`
	InBPS         []float32 `json:"in_bps"`
	OutBPS        []float32 `json:"out_bps"`
	// Up is 1 when every checker of the real server passed, 0 when one
	// failed; LatencyMs is the slowest checker's last check. Real
	// servers only.
	Up        []int8    `json:"up,omitempty"`
	LatencyMs []float32 `json:"latency_ms,omitempty"`
}

// HistoryInstance is one VRRP instance's timeline: its state when first
// seen, then every transition.
type HistoryInstance struct {
	Name        string       `json:"name"`
	State       string       `json:"state"`
	Transitions []Transition `json:"transitions"`
}

// Transition is one VRRP state change. Cause is inferred from the
// instance's status before and after (fault reasons, effective priority,
// the master heard), as sampled every step.
type Transition struct {
	At    time.Time `json:"at"`
	From  string    `json:"from"` // "" for the state when first seen
	To    string    `json:"to"`
	Cause string    `json:"cause"`
}

// HistoryData is what /history.json serves.
type HistoryData struct {
	Now       time.Time         `json:"now"`
	Window    time.Duration     `json:"window"`
	Servers   []HistoryServer   `json:"servers"`
	Instances []HistoryInstance `json:"instances"`
}

// NewHistory keeps window of samples.
func NewHistory(window time.Duration) *History {
	return &History{window: window, servers: map[string]*serverHistory{}, instances: map[string]*instanceHistory{}}
}

// Record adds a sample of st taken at now.
func (h *History) Record(now time.Time, st Status) {
	h.mu.Lock()
	defer h.mu.Unlock()
	dt := now.Sub(h.prevAt).Seconds()
	first := h.prevAt.IsZero() || dt <= 0
	prevSvc := map[string]int{}
	for i, s := range h.prev.Services {
		prevSvc[s.Key.String()] = i
	}
	down := RealServersDown(st.Checks)
	latency := map[RealServerKey]float32{}
	for _, c := range st.Checks {
		k := RealServerKey{c.VirtualServer, c.RealServer}
		if ms := float32(c.Duration.Seconds() * 1000); ms > latency[k] {
			latency[k] = ms
		}
	}
	rate := func(p, c uint64) float32 {
		if first || c < p {
			return 0
		}
		return float32(float64(c-p) / dt)
	}
	seen := map[string]bool{}
	for _, s := range st.Services {
		vs := s.Key.String()
		pi, had := prevSvc[vs]
		var ps = s
		if had {
			ps = h.prev.Services[pi]
		}
		sh := h.server(vs, "")
		seen[vs] = true
		sh.add(now, rate(ps.Stats.Conns, s.Stats.Conns), rate(ps.Stats.InBytes, s.Stats.InBytes), rate(ps.Stats.OutBytes, s.Stats.OutBytes))
		prevDest := map[string]int{}
		for i, d := range ps.Dests {
			prevDest[d.Addr.String()] = i
		}
		for _, d := range s.Dests {
			rs := d.Addr.String()
			pd := d
			if i, ok := prevDest[rs]; ok && had {
				pd = ps.Dests[i]
			}
			rh := h.server(vs, rs)
			seen[vs+"|"+rs] = true
			rh.add(now, rate(pd.Stats.Conns, d.Stats.Conns), rate(pd.Stats.InBytes, d.Stats.InBytes), rate(pd.Stats.OutBytes, d.Stats.OutBytes))
			k := RealServerKey{vs, rs}
			up := int8(1)
			if down[k] {
				up = 0
			}
			rh.Up = append(rh.Up, up)
			rh.LatencyMs = append(rh.LatencyMs, latency[k])
		}
	}
	// A real server whose checks fail is taken out of the data plane
	// (unless inhibit_on_failure): it is still on the page, from its
	// checks, with no traffic.
	for _, c := range st.Checks {
		k := c.VirtualServer + "|" + c.RealServer
		if seen[k] {
			continue
		}
		seen[k] = true
		rh := h.server(c.VirtualServer, c.RealServer)
		rh.add(now, 0, 0, 0)
		up := int8(1)
		if down[RealServerKey{c.VirtualServer, c.RealServer}] {
			up = 0
		}
		rh.Up = append(rh.Up, up)
		rh.LatencyMs = append(rh.LatencyMs, latency[RealServerKey{c.VirtualServer, c.RealServer}])
	}
	cut := now.Add(-h.window).UnixMilli()
	keep := h.order[:0]
	for _, k := range h.order {
		sh := h.servers[k]
		sh.trim(cut)
		if len(sh.T) == 0 && !seen[k] {
			delete(h.servers, k)
			continue
		}
		keep = append(keep, k)
	}
	h.order = keep

	prevInst := map[string]Instance{}
	for _, in := range h.prev.Instances {
		prevInst[in.Name] = in
	}
	present := map[string]bool{}
	for _, in := range st.Instances {
		present[in.Name] = true
		ih, ok := h.instances[in.Name]
		if !ok {
			ih = &instanceHistory{HistoryInstance{Name: in.Name}}
			h.instances[in.Name] = ih
			h.instOrder = append(h.instOrder, in.Name)
			ih.Transitions = append(ih.Transitions, Transition{At: now, To: in.State, Cause: "first sample"})
		} else if p, ok := prevInst[in.Name]; ok && (p.State != in.State || in.Transitions > p.Transitions) {
			// The change happened between the two samples; the
			// status says when, unless its clock disagrees.
			at := in.LastTransition
			if !at.After(h.prevAt) || at.After(now) {
				at = now
			}
			ih.Transitions = append(ih.Transitions, Transition{At: at, From: p.State, To: in.State, Cause: transitionCause(p, in)})
		}
		ih.State = in.State
		// Keep the transitions in the window and the one before it
		// (the state at the window's start), at most maxTransitions.
		i := 0
		for i+1 < len(ih.Transitions) && ih.Transitions[i+1].At.UnixMilli() < cut {
			i++
		}
		if n := len(ih.Transitions) - i; n > maxTransitions {
			i = len(ih.Transitions) - maxTransitions
		}
		ih.Transitions = append(ih.Transitions[:0], ih.Transitions[i:]...)
	}
	// An instance a reload removed leaves the page with it.
	kept := h.instOrder[:0]
	for _, n := range h.instOrder {
		if present[n] {
			kept = append(kept, n)
		} else {
			delete(h.instances, n)
		}
	}
	h.instOrder = kept
	h.prev, h.prevAt = st, now
}

// transitionCause says why an instance went from p to c, from what
// changed between the two samples. The VRRP machine's own reason is not
// in the status; these are the causes keepalived's log names.
func transitionCause(p, c Instance) string {
	var why []string
	switch {
	case c.State == "FAULT":
		if len(c.FaultReasons) > 0 {
			why = append(why, "fault: "+strings.Join(c.FaultReasons, "; ")+" (link or tracking)")
		} else {
			why = append(why, "fault (link or tracking)")
		}
	case p.State == "FAULT":
		why = append(why, "fault cleared (link or tracking back)")
	case c.State == "STOP":
		why = append(why, "shutting down")
	case p.State == "INIT" && c.State == "MASTER":
		why = append(why, "start as master (state MASTER or priority 255)")
	case p.State == "INIT":
		why = append(why, "start")
	case c.State == "MASTER" && c.EffectivePriority > p.EffectivePriority:
		why = append(why, fmt.Sprintf("priority change %d→%d (tracking), preempting", p.EffectivePriority, c.EffectivePriority))
	case c.State == "MASTER":
		why = append(why, "advert timeout (no advert from the master for 3 intervals)")
	case c.State == "BACKUP" && c.EffectivePriority < p.EffectivePriority:
		why = append(why, fmt.Sprintf("priority change %d→%d (tracking)", p.EffectivePriority, c.EffectivePriority))
	case c.State == "BACKUP" && c.MasterAddr.IsValid():
		why = append(why, fmt.Sprintf("advert from %s with priority %d", c.MasterAddr, c.MasterPriority))
	}
	if n := c.Transitions - p.Transitions; n > 1 {
		why = append(why, fmt.Sprintf("%d transitions within one sample", n))
	}
	if len(why) == 0 {
		return "unknown"
	}
	return strings.Join(why, "; ")
}

func (h *History) server(vs, rs string) *serverHistory {
	k := vs
	if rs != "" {
		k = vs + "|" + rs
	}
	sh, ok := h.servers[k]
	if !ok {
		sh = &serverHistory{HistoryServer{VirtualServer: vs, RealServer: rs}}
		h.servers[k] = sh
		h.order = append(h.order, k)
	}
	return sh
}

func (s *serverHistory) add(now time.Time, cps, in, out float32) {
	s.T = append(s.T, now.UnixMilli())
	s.CPS = append(s.CPS, cps)
	s.InBPS = append(s.InBPS, in)
	s.OutBPS = append(s.OutBPS, out)
}

// trim drops the samples before cut (Unix ms); the slices are shifted in
// place so their backing arrays stop growing.
func (s *serverHistory) trim(cut int64) {
	i := sort.Search(len(s.T), func(i int) bool { return s.T[i] >= cut })
	if i == 0 {
		return
	}
	s.T = append(s.T[:0], s.T[i:]...)
	s.CPS = append(s.CPS[:0], s.CPS[i:]...)
	s.InBPS = append(s.InBPS[:0], s.InBPS[i:]...)
	s.OutBPS = append(s.OutBPS[:0], s.OutBPS[i:]...)
	if len(s.Up) >= i {
		s.Up = append(s.Up[:0], s.Up[i:]...)
		s.LatencyMs = append(s.LatencyMs[:0], s.LatencyMs[i:]...)
	}
}

// Snapshot returns a copy of the history for /history.json.
func (h *History) Snapshot(now time.Time) HistoryData {
	h.mu.Lock()
	defer h.mu.Unlock()
	d := HistoryData{Now: now, Window: h.window, Servers: []HistoryServer{}, Instances: []HistoryInstance{}}
	for _, k := range h.order {
		s := h.servers[k].HistoryServer
		s.T = append([]int64(nil), s.T...)
		s.CPS = append([]float32(nil), s.CPS...)
		s.InBPS = append([]float32(nil), s.InBPS...)
		s.OutBPS = append([]float32(nil), s.OutBPS...)
		s.Up = append([]int8(nil), s.Up...)
		s.LatencyMs = append([]float32(nil), s.LatencyMs...)
		d.Servers = append(d.Servers, s)
	}
	for _, k := range h.instOrder {
		in := h.instances[k].HistoryInstance
		in.Transitions = append([]Transition(nil), in.Transitions...)
		d.Instances = append(d.Instances, in)
	}
	return d
}
