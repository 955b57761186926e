package vrrp

import (
	"container/heap"
	"fmt"
	"math/rand"
	"net/netip"
	"testing"
	"time"
)

// A simulated LAN of VRRP routers: every node is a Machine, adverts are
// delivered to every other live node after a small random delay, some are
// lost while the network misbehaves. Nodes crash, stop cleanly, restart,
// change priority and fault. After each round of trouble the network calms
// down and the test checks what VRRP promises: exactly one master, and it
// has the highest effective priority of the nodes that can be master.

type simNode struct {
	id    int
	addr  netip.Addr
	prio  uint8
	m     *Machine
	alive bool
	inc   int // incarnation: deliveries to a dead incarnation are lost
	delta int
	fault bool
}

type delivery struct {
	at  time.Time
	to  int
	inc int
	pkt Packet
	src netip.Addr
	seq int
}

type deliveryQueue []delivery

func (q deliveryQueue) Len() int { return len(q) }
func (q deliveryQueue) Less(i, j int) bool {
	if q[i].at.Equal(q[j].at) {
		return q[i].seq < q[j].seq
	}
	return q[i].at.Before(q[j].at)
}
func (q deliveryQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *deliveryQueue) Push(x any)   { *q = append(*q, x.(delivery)) }
func (q *deliveryQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

type sim struct {
	t       *testing.T
	rnd     *rand.Rand
	version int
	advert  time.Duration
	now     time.Time
	nodes   []*simNode
	q       deliveryQueue
	seq     int
	loss    float64
	steps   int
}

func (s *sim) cfg(n *simNode) MachineConfig {
	c := MachineConfig{Name: fmt.Sprintf("n%d", n.id), Version: s.version, VRID: 7, Priority: n.prio,
		AdvertInt: s.advert, VIPs: []netip.Addr{vip}, GARPMasterRepeat: 1}
	return c
}

func (s *sim) startNode(n *simNode, initMaster bool) {
	c := s.cfg(n)
	c.InitMaster = initMaster
	n.m = NewMachine(c, n.addr)
	n.alive = true
	n.inc++
	s.step(n, Event{Kind: EvTrack, Delta: n.delta, Faults: faults(n.fault)})
	s.step(n, Event{Kind: EvStart})
}

func faults(f bool) []string {
	if f {
		return []string{"simulated fault"}
	}
	return nil
}

func (s *sim) step(n *simNode, ev Event) {
	ev.Now = s.now
	s.steps++
	for _, a := range n.m.Step(ev) {
		if a.Kind != ActSendAdvert {
			continue
		}
		iv, _ := IntervalField(s.version, n.m.Config().AdvertInt)
		p := Packet{Version: s.version, Type: 1, VRID: 7, Priority: a.Priority, AdvertInt: iv, Addrs: []netip.Addr{vip}}
		for _, o := range s.nodes {
			if o == n || !o.alive || s.rnd.Float64() < s.loss {
				continue
			}
			s.seq++
			d := time.Millisecond + time.Duration(s.rnd.Intn(2000))*time.Microsecond
			heap.Push(&s.q, delivery{at: s.now.Add(d), to: o.id, inc: o.inc, pkt: p, src: n.addr, seq: s.seq})
		}
	}
}

// run advances virtual time by d, processing deliveries and timers.
func (s *sim) run(d time.Duration) {
	end := s.now.Add(d)
	for i := 0; ; i++ {
		if i > 10_000_000 {
			s.t.Fatal("simulation does not settle (event storm)")
		}
		var next *simNode
		var at time.Time
		for _, n := range s.nodes {
			if !n.alive {
				continue
			}
			if dl := n.m.Deadline(); !dl.IsZero() && (next == nil || dl.Before(at)) {
				next, at = n, dl
			}
		}
		if len(s.q) > 0 && (next == nil || !s.q[0].at.After(at)) {
			if s.q[0].at.After(end) {
				break
			}
			dv := heap.Pop(&s.q).(delivery)
			s.now = dv.at
			n := s.nodes[dv.to]
			if n.alive && n.inc == dv.inc {
				p := dv.pkt
				s.step(n, Event{Kind: EvAdvert, Packet: &p, Src: dv.src, Dst: MulticastGroup4, TTL: 255})
			}
			continue
		}
		if next == nil || at.After(end) {
			break
		}
		if at.After(s.now) {
			s.now = at
		}
		s.step(next, Event{Kind: EvTick})
	}
	s.now = end
}

// check asserts one master with the highest effective priority among the
// live nodes that are not faulted (ties: any of the highest).
func (s *sim) check(round int) {
	s.t.Helper()
	best := -1
	var masters []*simNode
	for _, n := range s.nodes {
		if !n.alive {
			continue
		}
		if n.fault {
			if n.m.State() != StateFault {
				s.t.Fatalf("round %d: faulted node %d is %v", round, n.id, n.m.State())
			}
			continue
		}
		if e := n.m.EffectivePriority(); e > best {
			best = e
		}
		switch n.m.State() {
		case StateMaster:
			masters = append(masters, n)
		case StateBackup:
		default:
			s.t.Fatalf("round %d: node %d is %v", round, n.id, n.m.State())
		}
	}
	if best < 0 {
		if len(masters) != 0 {
			s.t.Fatalf("round %d: masters without eligible nodes", round)
		}
		return
	}
	if len(masters) != 1 {
		s.t.Fatalf("round %d: %d masters (%s)", round, len(masters), s.describe())
	}
	if e := masters[0].m.EffectivePriority(); e != best {
		s.t.Fatalf("round %d: master n%d has priority %d, best is %d (%s)", round, masters[0].id, e, best, s.describe())
	}
}

func (s *sim) describe() string {
	var out string
	for _, n := range s.nodes {
		if !n.alive {
			out += fmt.Sprintf("n%d:dead ", n.id)
			continue
		}
		out += fmt.Sprintf("n%d:%v/%d ", n.id, n.m.State(), n.m.EffectivePriority())
	}
	return out
}

func TestSimulatedNetwork(t *testing.T) {
	for _, version := range []int{2, 3} {
		for nodes := 2; nodes <= 5; nodes++ {
			t.Run(fmt.Sprintf("v%d/%d-nodes", version, nodes), func(t *testing.T) {
				rounds := 150
				if testing.Short() {
					rounds = 30
				}
				simulate(t, version, nodes, int64(version*100+nodes), rounds)
			})
		}
	}
}

func simulate(t *testing.T, version, count int, seed int64, rounds int) {
	s := &sim{t: t, rnd: rand.New(rand.NewSource(seed)), version: version, now: t0}
	s.advert = time.Second
	if version == 3 {
		s.advert = 100 * time.Millisecond
	}
	for i := 0; i < count; i++ {
		n := &simNode{id: i, addr: netip.AddrFrom4([4]byte{198, 18, 0, byte(11 + i)}), prio: uint8(1 + s.rnd.Intn(254))}
		s.nodes = append(s.nodes, n)
		s.startNode(n, s.rnd.Intn(3) == 0)
	}
	down := 3*s.advert + time.Second // worst master down interval (v2 skew < 1 s)
	settle := 6 * down
	s.run(settle)
	s.check(0)
	for round := 1; round <= rounds; round++ {
		// A burst of trouble: a few events spread over a few intervals,
		// with packet loss.
		s.loss = []float64{0, 0.1, 0.3, 0.7}[s.rnd.Intn(4)]
		for e := 0; e < 1+s.rnd.Intn(4); e++ {
			n := s.nodes[s.rnd.Intn(len(s.nodes))]
			switch k := s.rnd.Intn(7); {
			case k == 0 && n.alive: // crash
				n.alive = false
			case k == 1 && n.alive: // clean stop: priority 0
				s.step(n, Event{Kind: EvShutdown})
				n.alive = false
			case k <= 2 && !n.alive: // restart
				s.startNode(n, s.rnd.Intn(3) == 0)
			case k == 3 && n.alive: // tracking changes the priority
				n.delta = s.rnd.Intn(101) - 50
				s.step(n, Event{Kind: EvTrack, Delta: n.delta, Faults: faults(n.fault)})
			case k == 4 && n.alive: // fault on / off
				n.fault = !n.fault
				s.step(n, Event{Kind: EvTrack, Delta: n.delta, Faults: faults(n.fault)})
			case k == 5 && !n.alive:
				s.startNode(n, false)
			}
			s.run(time.Duration(s.rnd.Int63n(int64(2 * s.advert))))
		}
		s.loss = 0
		s.run(settle)
		s.check(round)
	}
	t.Logf("%d rounds, %d steps, %v of virtual time", rounds, s.steps, s.now.Sub(t0))
}
