package xdp

import (
	"net/netip"
	"sort"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vipd/vipd/internal/lvs"
	"golang.org/x/sys/unix"
)

// Services returns the services with their counters, sorted as ipvsadm
// sorts its listing; destinations in configuration order.
func (d *Dataplane) Services() []lvs.ServiceStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	active := d.activeFlows()
	var out []lvs.ServiceStatus
	for _, st := range d.svcs {
		ss := lvs.ServiceStatus{Service: st.svc, Stats: d.sum(d.objs.SvcStats, st.id), Rates: st.est.Rates()}
		for _, dst := range st.svc.Destinations {
			ds := st.dests[realAddr(st.svc, dst)]
			x := lvs.DestStatus{Destination: dst}
			if ds != nil {
				x.Stats = d.sum(d.objs.DestStats, ds.idx)
				x.Rates = ds.est.Rates()
				x.ActiveConns = active[ds.idx]
			}
			ss.Dests = append(ss.Dests, x)
		}
		out = append(out, ss)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key.String() < out[j].Key.String() })
	return out
}

func (d *Dataplane) sum(m *ebpf.Map, idx uint32) lvs.Stats {
	var per []counters
	var s lvs.Stats
	if m.Lookup(idx, &per) != nil {
		return s
	}
	for _, c := range per {
		s.Conns += c.Conns
		s.InPkts += c.Packets
		s.InBytes += c.Bytes
	}
	return s
}

// Reasons returns the packet-path counters summed over CPUs, by
// ReasonNames.
func (d *Dataplane) Reasons() map[string]uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]uint64{}
	if d.closed {
		return out
	}
	for i, name := range ReasonNames {
		var per []uint64
		if d.objs.Reasons.Lookup(uint32(i), &per) == nil {
			for _, v := range per {
				out[name] += v
			}
		}
	}
	return out
}

func monotonicNow() uint64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}

// activeFlows counts the live flow entries per destination slot.
func (d *Dataplane) activeFlows() map[uint32]int {
	out := map[uint32]int{}
	d.eachFlow(func(_ flowKey, _ flowVal, _ *svcState, ds *destState, _ time.Duration) {
		out[ds.idx]++
	})
	return out
}

// idleSince is how long ago seen (a monotonicNow reading stored by the
// program) was at now; 0 when the program's clock read after now.
func idleSince(now, seen uint64) time.Duration {
	if now < seen {
		return 0
	}
	return time.Duration(now - seen)
}

// eachFlow calls fn for every unexpired flow entry whose destination is
// still the one it was scheduled to.
func (d *Dataplane) eachFlow(fn func(flowKey, flowVal, *svcState, *destState, time.Duration)) {
	bySlot := map[uint32]*destState{}
	svcOf := map[uint32]*svcState{}
	for _, st := range d.svcs {
		for _, ds := range st.dests {
			bySlot[ds.idx] = ds
			svcOf[ds.idx] = st
		}
	}
	now := monotonicNow()
	var k flowKey
	var v flowVal
	it := d.objs.Flows.Iterate()
	for it.Next(&k, &v) {
		ds := bySlot[v.Dest]
		if ds == nil || ds.gen != v.Gen {
			continue
		}
		st := svcOf[v.Dest]
		to := st.svc.Timeouts.WithDefaults()
		timeout := to.UDP
		if lvs.Protocol(k.Proto) == lvs.TCP {
			timeout = to.TCP
		}
		idle := idleSince(now, v.Seen)
		if idle >= timeout {
			continue
		}
		fn(k, v, st, ds, timeout-idle)
	}
}

// Conns lists the flow table as `ipvsadm -L -n -c` would. XDP sees only
// the client's direction of a DR flow and keeps no TCP state: a TCP
// entry is ESTABLISHED until it idles out (the service's TCP timeout).
func (d *Dataplane) Conns() []lvs.ConnEntry {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	var out []lvs.ConnEntry
	d.eachFlow(func(k flowKey, v flowVal, st *svcState, ds *destState, left time.Duration) {
		e := lvs.ConnEntry{Proto: lvs.Protocol(k.Proto), Expire: left.Truncate(time.Second), State: "ESTABLISHED",
			Client: addrPortOf(k.Src, k.SPort), Virtual: addrPortOf(k.Dst, k.DPort)}
		if e.Proto == lvs.UDP {
			e.State = "UDP"
		}
		var dv destVal
		if d.objs.Dests.Lookup(v.Dest, &dv) == nil {
			e.Dest = addrPortOf(dv.Addr, dv.Port)
		}
		out = append(out, e)
	})
	// Persistence templates, as IPVS lists them: client port 0, state NONE.
	bySvc := map[uint32]*svcState{}
	for _, st := range d.svcs {
		bySvc[st.id] = st
	}
	now := monotonicNow()
	var pk persistKey
	var pv flowVal
	it := d.objs.Persist.Iterate()
	for it.Next(&pk, &pv) {
		st := bySvc[pk.Svc]
		if st == nil || st.svc.Persistence == 0 {
			continue
		}
		idle := idleSince(now, pv.Seen)
		if idle >= st.svc.Persistence {
			continue
		}
		var dv destVal
		if d.objs.Dests.Lookup(pv.Dest, &dv) != nil || dv.Live == 0 || dv.Gen != pv.Gen {
			continue
		}
		out = append(out, lvs.ConnEntry{Proto: st.svc.Key.Proto, Expire: (st.svc.Persistence - idle).Truncate(time.Second), State: "NONE",
			Client: netip.AddrPortFrom(netip.AddrFrom16(pk.Client).Unmap(), 0), Virtual: st.svc.Key.Addr, Dest: addrPortOf(dv.Addr, dv.Port)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Client.String() < out[j].Client.String() })
	return out
}
