package ipvs

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/vipd/vipd/internal/lvs"
)

// Ownership. The kernel's IPVS table is shared: an operator may have added
// services with ipvsadm, another daemon may run. vipd deletes only what it
// owns, and owns:
//
//   - every service in the desired set (a desired service that already
//     exists, e.g. left by keepalived or by a vipd that crashed, is adopted
//     as it is, and edited in place: its connections live on), and
//   - every service it created or adopted earlier and has not deleted
//     yet, recorded in the state file, so that a restarted vipd (after a
//     crash or an upgrade) still removes services dropped from the
//     configuration meanwhile.
//
// The state file is written before a service is created (a crash right
// after leaves a record of a service that may not exist: harmless) and
// after it is deleted. It also keeps the timeouts the kernel had before
// vipd first changed them (lvs_timeouts), to put them back when the
// configuration stops setting them or vipd stops, as keepalived does.
//
// Without a state file (Options.StateFile empty) ownership is the desired
// set alone, and services dropped from the configuration while vipd was
// not running are left in the kernel.

type stateFile struct {
	Version      int          `json:"version"`
	Services     []stateKey   `json:"services"`
	OrigTimeouts *stateTimers `json:"orig_timeouts,omitempty"`
}

type stateKey struct {
	FWMark uint32 `json:"fwmark,omitempty"`
	IPv6   bool   `json:"ipv6,omitempty"`
	Proto  uint8  `json:"proto,omitempty"`
	Addr   string `json:"addr,omitempty"`
}

type stateTimers struct {
	TCP    int64 `json:"tcp"`
	TCPFin int64 `json:"tcpfin"`
	UDP    int64 `json:"udp"`
}

// owners is the in-memory ownership record, mirrored to the state file.
type owners struct {
	path  string
	keys  map[svcKey]bool
	orig  *lvs.Timeouts // kernel timeouts before vipd's first change
	dirty bool
}

func loadOwners(path string) (*owners, error) {
	o := &owners{path: path, keys: map[svcKey]bool{}}
	if path == "" {
		return o, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return o, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ipvs state %s: %w", path, err)
	}
	var f stateFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("ipvs state %s: %w", path, err)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("ipvs state %s: unknown version %d", path, f.Version)
	}
	for i, k := range f.Services {
		sk := svcKey{fwmark: k.FWMark, ipv6: k.IPv6, proto: lvs.Protocol(k.Proto)}
		if k.FWMark == 0 {
			ap, err := netip.ParseAddrPort(k.Addr)
			if err != nil {
				return nil, fmt.Errorf("ipvs state %s: services[%d].addr: %w", path, i, err)
			}
			sk.addr = ap
			sk.ipv6 = ap.Addr().Is6()
		}
		o.keys[sk] = true
	}
	if t := f.OrigTimeouts; t != nil {
		o.orig = &lvs.Timeouts{TCP: time.Duration(t.TCP) * time.Second, TCPFin: time.Duration(t.TCPFin) * time.Second, UDP: time.Duration(t.UDP) * time.Second}
	}
	return o, nil
}

func (o *owners) owned(k svcKey) bool { return o.keys[k] }

func (o *owners) add(k svcKey) {
	if !o.keys[k] {
		o.keys[k] = true
		o.dirty = true
	}
}

func (o *owners) remove(k svcKey) {
	if o.keys[k] {
		delete(o.keys, k)
		o.dirty = true
	}
}

// clear forgets every service (after a flush); the timeouts are kept.
func (o *owners) clear() {
	if len(o.keys) > 0 {
		clear(o.keys)
		o.dirty = true
	}
}

func (o *owners) setOrig(t *lvs.Timeouts) {
	o.orig = t
	o.dirty = true
}

// save writes the state file atomically (temporary file, fsync, rename)
// when something changed.
func (o *owners) save() error {
	if o.path == "" || !o.dirty {
		return nil
	}
	f := stateFile{Version: 1, Services: []stateKey{}}
	for k := range o.keys {
		sk := stateKey{FWMark: k.fwmark, IPv6: k.ipv6, Proto: uint8(k.proto)}
		if k.fwmark == 0 {
			sk.Addr = k.addr.String()
			sk.IPv6 = false
		}
		f.Services = append(f.Services, sk)
	}
	sort.Slice(f.Services, func(i, j int) bool {
		a, b := f.Services[i], f.Services[j]
		if a.FWMark != b.FWMark {
			return a.FWMark < b.FWMark
		}
		if a.IPv6 != b.IPv6 {
			return !a.IPv6
		}
		if a.Proto != b.Proto {
			return a.Proto < b.Proto
		}
		return a.Addr < b.Addr
	})
	if o.orig != nil {
		f.OrigTimeouts = &stateTimers{TCP: int64(o.orig.TCP / time.Second), TCPFin: int64(o.orig.TCPFin / time.Second), UDP: int64(o.orig.UDP / time.Second)}
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(o.path), 0o755); err != nil {
		return fmt.Errorf("ipvs state: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(o.path), ".ipvs-state-*")
	if err != nil {
		return fmt.Errorf("ipvs state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("ipvs state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("ipvs state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("ipvs state: %w", err)
	}
	if err := os.Rename(tmp.Name(), o.path); err != nil {
		return fmt.Errorf("ipvs state: %w", err)
	}
	o.dirty = false
	return nil
}
