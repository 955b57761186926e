package api_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/api"
	"github.com/vipd/vipd/internal/api/apitest"
)

// TestHistory: rates are the counters' deltas per second, check verdicts
// and latency are kept per real server, transitions carry an inferred
// cause, and samples older than the window are dropped.
func TestHistory(t *testing.T) {
	h := api.NewHistory(10 * time.Second)
	st := apitest.NewSource().Status()
	t0 := apitest.T0
	h.Record(t0, st)

	// One second later: 30 connections and 3000 bytes in on .21:80, the
	// master heard from a higher priority (VI_1 to BACKUP), VI_2 times
	// out (to MASTER), VI_3's fault clears.
	st2 := apitest.NewSource().Status()
	web := &st2.Services[0]
	web.Stats.Conns += 30
	web.Stats.InBytes += 3000
	web.Dests[1].Stats.Conns += 30
	web.Dests[1].Stats.InBytes += 3000
	st2.Instances[0].State, st2.Instances[0].Transitions = "BACKUP", 3
	st2.Instances[0].MasterAddr, st2.Instances[0].MasterPriority = netip.MustParseAddr("198.18.0.12"), 200
	st2.Instances[1].State, st2.Instances[1].Transitions = "MASTER", 2
	st2.Instances[2].State, st2.Instances[2].Transitions = "BACKUP", 2
	st2.Checks[0].Duration = 12 * time.Millisecond
	h.Record(t0.Add(time.Second), st2)

	d := h.Snapshot(t0.Add(time.Second))
	var vs, rs21, rs22 *api.HistoryServer
	for i := range d.Servers {
		s := &d.Servers[i]
		switch {
		case s.VirtualServer == "TCP 198.18.0.100:80" && s.RealServer == "":
			vs = s
		case s.RealServer == "198.18.0.21:80":
			rs21 = s
		case s.RealServer == "198.18.0.22:80":
			rs22 = s
		}
	}
	if vs == nil || rs21 == nil || rs22 == nil {
		t.Fatalf("servers missing: %+v", d.Servers)
	}
	if len(vs.T) != 2 || vs.CPS[1] != 30 || vs.InBPS[1] != 3000 || vs.CPS[0] != 0 {
		t.Errorf("virtual server history %+v, want 2 samples, 30 conn/s and 3000 B/s in the second", *vs)
	}
	if rs21.CPS[1] != 30 || rs22.CPS[1] != 0 {
		t.Errorf("real server rates %v and %v, want 30 and 0", rs21.CPS, rs22.CPS)
	}
	if rs21.Up[1] != 1 || rs22.Up[1] != 0 || rs21.LatencyMs[1] != 12 {
		t.Errorf("check history: .21 up %v latency %v, .22 up %v", rs21.Up, rs21.LatencyMs, rs22.Up)
	}
	causes := map[string]string{}
	for _, in := range d.Instances {
		if len(in.Transitions) != 2 || in.Transitions[0].Cause != "first sample" {
			t.Errorf("%s: transitions %+v, want the first sample and one change", in.Name, in.Transitions)
			continue
		}
		tr := in.Transitions[1]
		causes[in.Name] = tr.From + ">" + tr.To + ": " + tr.Cause
	}
	for name, want := range map[string]string{
		"VI_1": "MASTER>BACKUP: advert from 198.18.0.12 with priority 200",
		"VI_2": "BACKUP>MASTER: advert timeout",
		"VI_3": "FAULT>BACKUP: fault cleared",
	} {
		if !strings.HasPrefix(causes[name], want) {
			t.Errorf("%s: %q, want %q...", name, causes[name], want)
		}
	}

	// 20 s later (the window is 10 s) only the new sample is kept, and
	// each instance keeps its last transition (the state at the start).
	h.Record(t0.Add(21*time.Second), st2)
	d = h.Snapshot(t0.Add(21 * time.Second))
	for _, s := range d.Servers {
		if len(s.T) != 1 {
			t.Errorf("%s %s: %d samples after the window passed, want 1", s.VirtualServer, s.RealServer, len(s.T))
		}
	}
	for _, in := range d.Instances {
		if len(in.Transitions) != 1 || in.Transitions[0].From == "" {
			t.Errorf("%s: %+v, want only the last transition", in.Name, in.Transitions)
		}
	}
}
