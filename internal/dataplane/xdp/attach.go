package xdp

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vipd/vipd/internal/netif"
	"golang.org/x/sys/unix"
)

// attach puts the program on every interface a real server is reached
// through and on Options.Interfaces, and takes it off the others.
func (d *Dataplane) attach() error {
	if d.opts.noAttach {
		return nil
	}
	want := map[int]bool{}
	for _, st := range d.svcs {
		for _, ds := range st.dests {
			if ds.ok {
				want[ds.hop.ifindex] = true
			}
		}
	}
	var errs []error
	if len(d.svcs) > 0 {
		for _, name := range d.opts.Interfaces {
			err := netif.InNetns(d.opts.NetNS, func() error {
				ifc, err := net.InterfaceByName(name)
				if err == nil {
					want[ifc.Index] = true
				}
				return err
			})
			if err != nil {
				errs = append(errs, fmt.Errorf("xdp: interface %s: %w", name, err))
			}
		}
	}
	for ifx, l := range d.links {
		if !want[ifx] {
			_ = l.Unpin()
			_ = l.Close()
			_ = d.objs.Ifmacs.Delete(uint32(ifx))
			delete(d.links, ifx)
			d.log.Info("xdp: detached", "ifindex", ifx)
		}
	}
	// Attachments a previous vipd pinned (it crashed, or is being
	// replaced): the program keeps forwarding with the pinned maps while
	// no vipd runs. Take over those still wanted, with this program;
	// detach the others.
	pins, _ := filepath.Glob(filepath.Join(d.opts.PinPath, "link_*"))
	for _, p := range pins {
		var ifx int
		if _, err := fmt.Sscanf(filepath.Base(p), "link_%d", &ifx); err != nil || d.links[ifx] != nil {
			continue
		}
		l, err := link.LoadPinnedLink(p, nil)
		if err != nil {
			_ = os.Remove(p)
			continue
		}
		if want[ifx] && l.Update(d.objs.XdpLb) == nil {
			d.links[ifx] = l
			d.log.Info("xdp: took over the attachment a previous vipd left", "ifindex", ifx)
			continue
		}
		_ = l.Unpin()
		_ = l.Close()
		d.log.Info("xdp: detached what a previous vipd left", "ifindex", ifx)
	}
	for ifx := range want {
		if d.links[ifx] != nil {
			continue
		}
		l, mode, err := attachXDP(d.opts.NetNS, d.objs.XdpLb, ifx)
		if err != nil {
			errs = append(errs, fmt.Errorf("xdp: attaching to ifindex %d: %w", ifx, err))
			continue
		}
		if mode == "generic" {
			d.log.Warn("xdp: driver has no native XDP; attached in generic mode (slower)", "ifindex", ifx, "native_err", l.nativeErr)
		} else {
			d.log.Info("xdp: attached", "ifindex", ifx, "mode", mode)
		}
		if err := l.Pin(filepath.Join(d.opts.PinPath, fmt.Sprintf("link_%d", ifx))); err != nil {
			d.log.Warn("xdp: cannot pin the attachment: a crash of vipd will detach the program", "ifindex", ifx, "err", err)
		}
		d.links[ifx] = l.Link
	}
	// The program forwards only frames sent to the interface's own MAC.
	for ifx := range d.links {
		var mac net.HardwareAddr
		err := netif.InNetns(d.opts.NetNS, func() error {
			ifc, err := net.InterfaceByIndex(ifx)
			if err == nil {
				mac = ifc.HardwareAddr
			}
			return err
		})
		if err != nil || len(mac) != 6 {
			continue // no MAC (not Ethernet): the program does not check
		}
		var m [6]byte
		copy(m[:], mac)
		if err := d.objs.Ifmacs.Put(uint32(ifx), m); err != nil {
			errs = append(errs, fmt.Errorf("xdp: ifindex %d: recording its MAC: %w", ifx, err))
		}
	}
	return errors.Join(errs...)
}

type attached struct {
	link.Link
	nativeErr error
}

// attachXDP attaches prog natively, or in generic mode when the driver
// refuses native XDP.
func attachXDP(ns string, prog *ebpf.Program, ifindex int) (attached, string, error) {
	var a attached
	mode := "native"
	err := netif.InNetns(ns, func() error {
		l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex, Flags: link.XDPDriverMode})
		if err != nil {
			a.nativeErr = err
			mode = "generic"
			l, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex, Flags: link.XDPGenericMode})
		}
		a.Link = l
		return err
	})
	return a, mode, err
}

// AttachPass attaches a program that passes everything to the interface
// name in the namespace ns. On veth, frames a program sends with XDP_TX
// leave only when the peer veth runs an XDP program; labs put this one on
// the director's peer. Closing the link detaches it.
func AttachPass(ns, name string) (io.Closer, error) {
	spec, err := loadXdplb()
	if err != nil {
		return nil, err
	}
	var objs struct {
		XdpPass *ebpf.Program `ebpf:"xdp_pass"`
	}
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		return nil, err
	}
	defer objs.XdpPass.Close()
	var l link.Link
	err = netif.InNetns(netif.NetnsPath(ns), func() error {
		ifc, err := net.InterfaceByName(name)
		if err != nil {
			return err
		}
		l, err = link.AttachXDP(link.XDPOptions{Program: objs.XdpPass, Interface: ifc.Index, Flags: link.XDPDriverMode})
		return err
	})
	return l, err
}

// ensureBPFFS mounts bpffs on dir unless it already is one.
func ensureBPFFS(dir string, log *slog.Logger) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil && st.Type == unix.BPF_FS_MAGIC {
		return nil
	}
	if !strings.HasPrefix(dir, "/sys/fs/bpf") {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("xdp: %w", err)
		}
	}
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		return fmt.Errorf("xdp: mounting bpffs on %s: %w", dir, err)
	}
	log.Info("xdp: mounted bpffs", "dir", dir)
	return nil
}
