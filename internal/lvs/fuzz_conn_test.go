package lvs

import (
	"net/netip"
	"testing"
	"time"
)

// FuzzConnAccounting drives connection entries on one destination through
// arbitrary event sequences (each input byte: which of 4 entries, what
// happens to it) and checks the invariants the data planes rely on: the
// active count is exactly the entries in ESTABLISHED, the inactive count
// the other live entries, nothing goes negative, and the overload flag
// follows the thresholds.
func FuzzConnAccounting(f *testing.F) {
	f.Add(uint8(0), uint8(0), []byte{0x00, 0x04, 0x08, 0x0c, 0x10})
	f.Add(uint8(2), uint8(1), []byte{0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x1c, 0x1d, 0x1e, 0x1f})
	f.Add(uint8(3), uint8(0), []byte{0x00, 0x20, 0x40, 0x60, 0x80, 0xa0, 0xc0, 0xe0, 0x1c})
	f.Fuzz(func(t *testing.T, upper, lower uint8, ops []byte) {
		d := &Dest{UThreshold: int(upper % 8), LThreshold: int(lower % 8)}
		var live [4]bool
		var state [4]ConnState
		for i, op := range ops {
			c := int(op & 3)
			switch k := op >> 2 & 7; {
			case k == 0 || !live[c]: // a new connection in slot c
				if live[c] {
					d.UnbindConn(state[c])
				}
				live[c], state[c] = true, StateNone.Next(EvClientSyn)
				d.BindConn(state[c])
				if d.UThreshold != 0 && d.TotalConns() >= d.UThreshold && !d.Overloaded {
					t.Fatalf("op %d: %d entries reach u_threshold %d but not overloaded", i, d.TotalConns(), d.UThreshold)
				}
			case k == 7: // the entry expires
				d.UnbindConn(state[c])
				live[c] = false
				if d.TotalConns() == 0 && d.Overloaded {
					t.Fatalf("op %d: still overloaded with no entry left", i)
				}
			default:
				ev := ConnEvent(k - 1) // EvClientSyn..EvReset
				to := state[c].Next(ev)
				d.MoveConn(state[c], to)
				state[c] = to
			}
			active, inactive := 0, 0
			for j := range live {
				if !live[j] {
					continue
				}
				if state[j] == StateEstablished {
					active++
				} else {
					inactive++
				}
			}
			if d.ActiveConns != active || d.InactiveConns != inactive {
				t.Fatalf("op %d: active %d inactive %d, want %d %d", i, d.ActiveConns, d.InactiveConns, active, inactive)
			}
		}
	})
}

// FuzzPersistTable runs random template operations with a fake clock and
// checks that every template is counted on its destination exactly while
// it is in the table, whatever the order of creation, use, release,
// invalidation and expiry.
func FuzzPersistTable(f *testing.F) {
	f.Add([]byte{0x00, 0x10, 0x20, 0x30, 0x40, 0x50})
	f.Add([]byte{0x00, 0x01, 0x02, 0x13, 0x24, 0x35, 0x46, 0x57, 0x60, 0x71})
	f.Fuzz(func(t *testing.T, ops []byte) {
		svc := ServiceKey{Proto: TCP, Addr: netip.MustParseAddrPort("198.18.0.100:80")}
		dests := []*Dest{{Index: 0}, {Index: 1}, {Index: 2}}
		avail := func(d *Dest) bool { return d.Index >= 0 }
		p := NewPersistTable()
		now := time.Unix(0, 0)
		var attached []*Template
		for _, op := range ops {
			client := netip.AddrFrom4([4]byte{198, 18, 1, op & 3})
			k := MakePersistKey(svc, client, 32)
			switch op >> 4 & 7 {
			case 0, 1: // a connection from client: use or create, attach
				tp := p.Lookup(k, avail)
				if tp == nil {
					d := dests[int(op>>2&3)%len(dests)]
					if d.Index < 0 {
						continue
					}
					tp = p.Create(k, d, 30*time.Second, now)
				}
				p.Attach(tp, now)
				attached = append(attached, tp)
			case 2: // a connection ends
				if len(attached) > 0 {
					p.Detach(attached[0])
					attached = attached[1:]
				}
			case 3: // a destination is removed or comes back
				d := dests[int(op&3)%len(dests)]
				if d.Index >= 0 {
					d.Index = -1
				} else {
					d.Index = int(op & 3)
				}
			default: // time passes
				now = now.Add(time.Duration(op&15+1) * 5 * time.Second)
				p.Expire(now)
			}
			counted := 0
			for _, d := range dests {
				if d.PersistConns < 0 {
					t.Fatalf("negative PersistConns %d", d.PersistConns)
				}
				counted += d.PersistConns
			}
			if counted != p.Len() {
				t.Fatalf("%d templates counted on destinations, %d in the table", counted, p.Len())
			}
			p.Each(func(tp *Template) {
				if tp.Controls() < 0 {
					t.Fatalf("negative controls")
				}
			})
		}
	})
}
