package lvs

import (
	"net/netip"
	"time"
)

// PersistKey identifies a persistence template as the kernel hashes it: the
// client address masked by persistence_granularity, and the virtual
// service's address and port (port 0 for a port-zero service, which makes
// one template cover every port of the VIP) or its firewall mark.
type PersistKey struct {
	Proto   Protocol
	Client  netip.Addr
	Virtual netip.AddrPort
	FWMark  uint32
}

// MakePersistKey builds the template key of a client of service k. bits is
// the granularity as a prefix length; 0 or more than the address length
// means the whole address (one template per client), which is keepalived's
// default persistence_granularity of 255.255.255.255.
func MakePersistKey(k ServiceKey, client netip.Addr, bits int) PersistKey {
	client = client.Unmap()
	if bits <= 0 || bits > client.BitLen() {
		bits = client.BitLen()
	}
	p, err := client.Prefix(bits)
	if err == nil {
		client = p.Addr()
	}
	if k.FWMark != 0 {
		return PersistKey{Client: client, FWMark: k.FWMark}
	}
	return PersistKey{Proto: k.Proto, Client: client, Virtual: k.Addr}
}

// quiescedTimeout is what the kernel re-arms a template's timer with when
// the timer fires while connections still use the template.
const quiescedTimeout = 60 * time.Second

// Template is a persistence template: it binds a masked client to a
// destination for the persistence timeout.
type Template struct {
	Key  PersistKey
	Dest *Dest

	deadline time.Time
	timeout  time.Duration
	control  int  // connections attached (the kernel's n_control)
	valid    bool // false once its destination went away
}

// Expires returns the time left before the template expires, as the
// Expire column of `ipvsadm -L -n -c` shows it.
func (t *Template) Expires(now time.Time) time.Duration {
	if d := t.deadline.Sub(now); d > 0 {
		return d
	}
	return 0
}

// Valid reports whether new connections may still use the template.
func (t *Template) Valid() bool { return t.valid }

// Controls returns how many connections are attached to the template.
func (t *Template) Controls() int { return t.control }

// PersistTable holds a service's persistence templates with the kernel's
// life cycle: a template is created with the persistence timeout and bound
// to the scheduled destination; each new connection from the same masked
// client attaches to it and restarts its timer; when the timer fires while
// connections are still attached, the template lives on and its timer is
// re-armed with 60 s (the kernel's expire_later); a template whose
// destination is no longer available is invalidated (new connections are
// scheduled afresh) but lingers until its own timer fires with nothing
// attached.
//
// Like a Scheduler it owns no clock and is not safe for concurrent use.
type PersistTable struct {
	byKey map[PersistKey]*Template
	all   map[*Template]struct{}
}

// NewPersistTable returns an empty table.
func NewPersistTable() *PersistTable {
	return &PersistTable{byKey: map[PersistKey]*Template{}, all: map[*Template]struct{}{}}
}

// Len returns the number of templates, invalidated ones included.
func (p *PersistTable) Len() int { return len(p.all) }

// Lookup returns the valid template for k, or nil. available says whether
// a destination may still receive connections through a template (it is
// still part of its service); a template whose destination is not is
// invalidated here, as the kernel's template check does on lookup.
func (p *PersistTable) Lookup(k PersistKey, available func(*Dest) bool) *Template {
	t := p.byKey[k]
	if t == nil {
		return nil
	}
	if available != nil && !available(t.Dest) {
		t.valid = false
		delete(p.byKey, k)
		return nil
	}
	return t
}

// Create adds a template binding k to d for timeout, counted in d's
// PersistConns. A previous template of the same key is invalidated.
func (p *PersistTable) Create(k PersistKey, d *Dest, timeout time.Duration, now time.Time) *Template {
	if old := p.byKey[k]; old != nil {
		old.valid = false
	}
	t := &Template{Key: k, Dest: d, timeout: timeout, deadline: now.Add(timeout), valid: true}
	p.byKey[k] = t
	p.all[t] = struct{}{}
	d.BindTemplate()
	return t
}

// Attach attaches a new connection to t and restarts its timer.
func (p *PersistTable) Attach(t *Template, now time.Time) {
	t.control++
	if t.valid {
		t.deadline = now.Add(t.timeout)
	}
}

// Detach detaches a connection that expired. The timer is left alone: an
// idle template expires when its timer fires.
func (p *PersistTable) Detach(t *Template) {
	if t.control > 0 {
		t.control--
	}
}

// Expire processes the templates whose timer fired by now: those with
// connections attached are re-armed for 60 s, the others are removed and
// uncounted from their destination. It returns how many were removed.
func (p *PersistTable) Expire(now time.Time) int {
	n := 0
	for t := range p.all {
		if now.Before(t.deadline) {
			continue
		}
		if t.control > 0 {
			t.timeout = quiescedTimeout
			t.deadline = now.Add(quiescedTimeout)
			continue
		}
		p.remove(t)
		n++
	}
	return n
}

// Flush removes every template (service deleted).
func (p *PersistTable) Flush() {
	for t := range p.all {
		p.remove(t)
	}
}

func (p *PersistTable) remove(t *Template) {
	delete(p.all, t)
	if p.byKey[t.Key] == t {
		delete(p.byKey, t.Key)
	}
	t.valid = false
	t.Dest.UnbindTemplate()
}

// Each calls fn for every template, invalidated ones included.
func (p *PersistTable) Each(fn func(*Template)) {
	for t := range p.all {
		fn(t)
	}
}
