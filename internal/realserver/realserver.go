// Package realserver prepares a Linux host to be a real server behind a
// direct-routing (DR) or tunnelling (TUN) load balancer, what the seeds'
// dr.sh does by hand and what `vipctl realserver up|down` runs:
//
//	DR:  net.ipv4.conf.{all,DEV}.arp_ignore=1, arp_announce=2; VIP/32 on DEV (lo)
//	TUN: the same on tunl0, rp_filter=0 on all and tunl0, VIP/32 on tunl0, tunl0 up
//
// In DR mode the director forwards frames to the real server's MAC with
// the VIP still as destination, so the real server must own the VIP
// (on lo, so nothing else changes) but must never answer ARP for it or use
// it as the source of its own ARP requests: otherwise clients and the
// router learn the real server's MAC for the VIP and bypass the director.
// arp_ignore=1 answers only for addresses of the receiving interface,
// arp_announce=2 picks the best local address of the outgoing interface.
// IPv6 VIPs need no sysctl: Linux answers neighbour solicitations only for
// addresses of the receiving interface.
//
// Up is idempotent and Down reverses it: Up records in a state file each
// sysctl's value before it first changed it and each address it added;
// Down removes those addresses and, when no VIP of the state remains,
// puts the sysctls back (unless someone changed them since) and removes
// the state file.
package realserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Mode is how the director reaches the real server.
type Mode string

// Modes.
const (
	DR  Mode = "dr"  // direct routing: the VIP on a local device (lo)
	TUN Mode = "tun" // IP-in-IP: the VIP on tunl0
)

// DefaultStateFile is where Up records what it changed.
const DefaultStateFile = "/run/vipd/realserver.json"

// Config says what to set up.
type Config struct {
	VIPs []netip.Addr
	Mode Mode   // default DR
	Dev  string // DR: device for the VIPs, default "lo"; TUN: always tunl0

	// StateFile records prior values for Down; default DefaultStateFile.
	// One state file describes one host (one network namespace).
	StateFile string

	// ProcSys is where the sysctls are; default /proc/sys. It belongs to
	// the network namespace of the thread that opens it.
	ProcSys string
}

// Change is one thing Up or Down did (or found already done), for the
// operator to read.
type Change struct {
	What     string // "sysctl net.ipv4.conf.all.arp_ignore", "address 198.18.0.100/32 on lo", "link tunl0"
	From, To string // "0" -> "1", "" -> "added", "up" -> "down"
	Note     string // why nothing was done, if so
}

func (c Change) String() string {
	s := c.What + ": " + c.From + " -> " + c.To
	if c.From == c.To {
		s = c.What + ": " + c.To + " (unchanged)"
	}
	if c.Note != "" {
		s += " (" + c.Note + ")"
	}
	return s
}

// state is the state file.
type state struct {
	Version int          `json:"version"`
	Mode    Mode         `json:"mode"`
	Dev     string       `json:"dev"`
	VIPs    []stateVIP   `json:"vips"`
	Sysctls []stateValue `json:"sysctls"`
	LinkUp  bool         `json:"link_set_up,omitempty"` // Up set the device up
}

type stateVIP struct {
	Prefix string `json:"prefix"`
	Added  bool   `json:"added"` // false: it was there before Up; Down leaves it
}

type stateValue struct {
	Path  string `json:"path"`  // under ProcSys: net/ipv4/conf/all/arp_ignore
	Prior string `json:"prior"` // before Up first changed it
	Set   string `json:"set"`   // what Up wrote
}

func (c *Config) defaults() error {
	if c.Mode == "" {
		c.Mode = DR
	}
	switch c.Mode {
	case DR:
		if c.Dev == "" {
			c.Dev = "lo"
		}
	case TUN:
		if c.Dev != "" && c.Dev != "tunl0" {
			return fmt.Errorf("realserver: TUN mode uses tunl0, not %s", c.Dev)
		}
		c.Dev = "tunl0"
	default:
		return fmt.Errorf("realserver: unknown mode %q (dr or tun)", c.Mode)
	}
	if strings.ContainsAny(c.Dev, "/\x00") || c.Dev == "." || c.Dev == ".." {
		return fmt.Errorf("realserver: bad device name %q", c.Dev)
	}
	if c.StateFile == "" {
		c.StateFile = DefaultStateFile
	}
	if c.ProcSys == "" {
		c.ProcSys = "/proc/sys"
	}
	for _, v := range c.VIPs {
		if !v.IsValid() {
			return errors.New("realserver: invalid VIP")
		}
		if c.Mode == TUN && !v.Unmap().Is4() {
			return fmt.Errorf("realserver: VIP %s: TUN mode (IP-in-IP) carries IPv4 only", v)
		}
	}
	return nil
}

// sysctls are the settings of a mode, as paths under /proc/sys.
func sysctls(mode Mode, dev string) []stateValue {
	v := []stateValue{
		{Path: "net/ipv4/conf/all/arp_ignore", Set: "1"},
		{Path: "net/ipv4/conf/all/arp_announce", Set: "2"},
		{Path: "net/ipv4/conf/" + dev + "/arp_ignore", Set: "1"},
		{Path: "net/ipv4/conf/" + dev + "/arp_announce", Set: "2"},
	}
	if mode == TUN {
		// Decapsulated packets arrive on tunl0 from clients that are
		// routed through another interface: reverse-path filtering
		// (the maximum of all and the device) would drop them.
		v = append(v,
			stateValue{Path: "net/ipv4/conf/all/rp_filter", Set: "0"},
			stateValue{Path: "net/ipv4/conf/" + dev + "/rp_filter", Set: "0"})
	}
	return v
}

// sysctlName spells a path as sysctl(8) does (a dot in a device name
// becomes a slash).
func sysctlName(p string) string {
	parts := strings.Split(p, "/")
	for i := range parts {
		parts[i] = strings.ReplaceAll(parts[i], ".", "/")
	}
	return strings.Join(parts, ".")
}

// loadState fills in cfg's defaults and reads its state file (nil when
// there is none): how Up and Down start.
func (cfg *Config) loadState() (*state, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	return load(cfg.StateFile)
}

// Up prepares the host: device (tunl0 is created and set up in TUN
// mode), sysctls, VIPs. It can be run again with more VIPs. What it
// changed is saved to the state file even when it fails half-way, so
// Down can undo it.
func Up(cfg Config) ([]Change, error) {
	st, err := cfg.loadState()
	if err != nil {
		return nil, err
	}
	if st == nil {
		st = &state{Version: 1, Mode: cfg.Mode, Dev: cfg.Dev}
	} else if st.Mode != cfg.Mode || st.Dev != cfg.Dev {
		return nil, fmt.Errorf("realserver: %s records a %s setup on %s; run down first to switch to %s on %s",
			cfg.StateFile, st.Mode, st.Dev, cfg.Mode, cfg.Dev)
	}
	var changes []Change
	save := func() error {
		if err := st.save(cfg.StateFile); err != nil {
			return fmt.Errorf("realserver: %w", err)
		}
		return nil
	}

	link, created, err := ensureLink(cfg)
	if err != nil {
		return changes, err
	}
	if created {
		changes = append(changes, Change{What: "link " + cfg.Dev, From: "absent", To: "created"})
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(link); err != nil {
			return changes, fmt.Errorf("realserver: set %s up: %w", cfg.Dev, err)
		}
		st.LinkUp = true
		changes = append(changes, Change{What: "link " + cfg.Dev, From: "down", To: "up"})
	}

	for _, want := range sysctls(cfg.Mode, cfg.Dev) {
		cur, err := readSysctl(cfg.ProcSys, want.Path)
		if err != nil {
			_ = save()
			return changes, err
		}
		if st.sysctl(want.Path) == nil {
			// First time: remember the value to restore. A later Up
			// keeps the first prior value.
			st.Sysctls = append(st.Sysctls, stateValue{Path: want.Path, Prior: cur, Set: want.Set})
		}
		name := "sysctl " + sysctlName(want.Path)
		if cur == want.Set {
			changes = append(changes, Change{What: name, From: cur, To: cur})
			continue
		}
		if err := writeSysctl(cfg.ProcSys, want.Path, want.Set); err != nil {
			_ = save()
			return changes, err
		}
		changes = append(changes, Change{What: name, From: cur, To: want.Set})
	}

	for _, vip := range cfg.VIPs {
		p := hostPrefix(vip)
		what := "address " + p.String() + " on " + cfg.Dev
		present, err := hasAddr(link, p)
		if err != nil {
			_ = save()
			return changes, err
		}
		rec := st.vip(p)
		if present {
			if rec == nil {
				st.VIPs = append(st.VIPs, stateVIP{Prefix: p.String(), Added: false})
				changes = append(changes, Change{What: what, From: "present", To: "present", Note: "was there before; down will leave it"})
			} else {
				changes = append(changes, Change{What: what, From: "present", To: "present"})
			}
			continue
		}
		if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: ipNet(p), Scope: unix.RT_SCOPE_UNIVERSE}); err != nil && !errors.Is(err, unix.EEXIST) {
			_ = save()
			return changes, fmt.Errorf("realserver: add %s to %s: %w", p, cfg.Dev, err)
		}
		if rec != nil {
			rec.Added = true
		} else {
			st.VIPs = append(st.VIPs, stateVIP{Prefix: p.String(), Added: true})
		}
		changes = append(changes, Change{What: what, From: "absent", To: "added"})
	}
	return changes, save()
}

// Down undoes Up for the given VIPs, or for every VIP of the state file
// when none is given. Sysctls and the device go back to what they were
// once no VIP is left; a sysctl changed by someone else since Up keeps
// its new value.
func Down(cfg Config) ([]Change, error) {
	st, err := cfg.loadState()
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, fmt.Errorf("realserver: no state file %s: nothing was set up (or it was set up by hand)", cfg.StateFile)
	}
	if st.Mode != cfg.Mode || st.Dev != cfg.Dev {
		return nil, fmt.Errorf("realserver: %s records a %s setup on %s, not %s on %s", cfg.StateFile, st.Mode, st.Dev, cfg.Mode, cfg.Dev)
	}
	remove := map[string]bool{}
	for _, v := range cfg.VIPs {
		p := hostPrefix(v)
		if st.vip(p) == nil {
			return nil, fmt.Errorf("realserver: %s was not set up by up (not in %s)", p, cfg.StateFile)
		}
		remove[p.String()] = true
	}
	all := len(cfg.VIPs) == 0
	var changes []Change
	link, err := netlink.LinkByName(cfg.Dev)
	if err != nil {
		return nil, fmt.Errorf("realserver: device %s: %w", cfg.Dev, err)
	}
	var kept []stateVIP
	for _, v := range st.VIPs {
		if !all && !remove[v.Prefix] {
			kept = append(kept, v)
			continue
		}
		p := netip.MustParsePrefix(v.Prefix)
		what := "address " + v.Prefix + " on " + cfg.Dev
		if !v.Added {
			changes = append(changes, Change{What: what, From: "present", To: "present", Note: "was there before up"})
			continue
		}
		if err := netlink.AddrDel(link, &netlink.Addr{IPNet: ipNet(p)}); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			st.VIPs = append(kept, st.VIPs[len(kept):]...)
			_ = st.save(cfg.StateFile)
			return changes, fmt.Errorf("realserver: remove %s from %s: %w", p, cfg.Dev, err)
		}
		changes = append(changes, Change{What: what, From: "present", To: "removed"})
	}
	st.VIPs = kept
	if len(kept) > 0 {
		return changes, st.save(cfg.StateFile)
	}

	// Last VIP gone: restore the host.
	for i := len(st.Sysctls) - 1; i >= 0; i-- {
		s := st.Sysctls[i]
		name := "sysctl " + sysctlName(s.Path)
		cur, err := readSysctl(cfg.ProcSys, s.Path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // the device is gone, and its settings with it
			}
			return changes, err
		}
		switch {
		case cur == s.Prior:
			changes = append(changes, Change{What: name, From: cur, To: cur})
		case cur != s.Set:
			changes = append(changes, Change{What: name, From: cur, To: cur, Note: "changed by someone else since up; left as it is"})
		default:
			if err := writeSysctl(cfg.ProcSys, s.Path, s.Prior); err != nil {
				return changes, err
			}
			changes = append(changes, Change{What: name, From: cur, To: s.Prior})
		}
	}
	if st.LinkUp {
		if err := netlink.LinkSetDown(link); err != nil {
			return changes, fmt.Errorf("realserver: set %s down: %w", cfg.Dev, err)
		}
		changes = append(changes, Change{What: "link " + cfg.Dev, From: "up", To: "down"})
	}
	if err := os.Remove(cfg.StateFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return changes, fmt.Errorf("realserver: %w", err)
	}
	return changes, nil
}

// ensureLink finds the device; in TUN mode it creates tunl0 (loading the
// ipip module) when missing.
func ensureLink(cfg Config) (netlink.Link, bool, error) {
	link, err := netlink.LinkByName(cfg.Dev)
	if err == nil {
		return link, false, nil
	}
	var notFound netlink.LinkNotFoundError
	if cfg.Mode != TUN || !errors.As(err, &notFound) {
		return nil, false, fmt.Errorf("realserver: device %s: %w", cfg.Dev, err)
	}
	// Creating an ipip link loads the module, whose load creates the
	// fallback device tunl0 itself: either way tunl0 then exists.
	addErr := netlink.LinkAdd(&netlink.Iptun{LinkAttrs: netlink.LinkAttrs{Name: cfg.Dev}})
	link, err = netlink.LinkByName(cfg.Dev)
	if err != nil {
		if addErr != nil {
			return nil, false, fmt.Errorf("realserver: create %s (is the ipip module available?): %w", cfg.Dev, addErr)
		}
		return nil, false, fmt.Errorf("realserver: device %s: %w", cfg.Dev, err)
	}
	return link, addErr == nil, nil
}

func hasAddr(link netlink.Link, p netip.Prefix) (bool, error) {
	family := netlink.FAMILY_V4
	if p.Addr().Is6() {
		family = netlink.FAMILY_V6
	}
	addrs, err := netlink.AddrList(link, family)
	if err != nil {
		return false, fmt.Errorf("realserver: list addresses: %w", err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		ones, _ := a.Mask.Size()
		if ok && ip.Unmap() == p.Addr() && ones == p.Bits() {
			return true, nil
		}
	}
	return false, nil
}

// hostPrefix is the VIP as a host prefix: /32 or /128.
func hostPrefix(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen())
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func readSysctl(root, path string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		return "", fmt.Errorf("realserver: read sysctl %s: %w", sysctlName(path), err)
	}
	return strings.TrimSpace(string(b)), nil
}

func writeSysctl(root, path, v string) error {
	if err := os.WriteFile(filepath.Join(root, path), []byte(v+"\n"), 0o644); err != nil {
		return fmt.Errorf("realserver: write sysctl %s=%s: %w", sysctlName(path), v, err)
	}
	return nil
}

func (st *state) sysctl(path string) *stateValue {
	for i := range st.Sysctls {
		if st.Sysctls[i].Path == path {
			return &st.Sysctls[i]
		}
	}
	return nil
}

func (st *state) vip(p netip.Prefix) *stateVIP {
	for i := range st.VIPs {
		if st.VIPs[i].Prefix == p.String() {
			return &st.VIPs[i]
		}
	}
	return nil
}

// load reads the state file; a missing file is a nil state.
func load(path string) (*state, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("realserver: %w", err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("realserver: state file %s: %w", path, err)
	}
	if st.Version != 1 {
		return nil, fmt.Errorf("realserver: state file %s: unknown version %d", path, st.Version)
	}
	for _, v := range st.VIPs {
		if _, err := netip.ParsePrefix(v.Prefix); err != nil {
			return nil, fmt.Errorf("realserver: state file %s: vip %q: %w", path, v.Prefix, err)
		}
	}
	for _, s := range st.Sysctls {
		if !strings.HasPrefix(s.Path, "net/") || strings.Contains(s.Path, "..") {
			return nil, fmt.Errorf("realserver: state file %s: bad sysctl path %q", path, s.Path)
		}
	}
	return &st, nil
}

// save writes the state file atomically (temporary file, then rename).
func (st *state) save(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
