package ipvs

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/mdlayher/netlink"
	"github.com/vipd/vipd/internal/lvs"
)

// The IPVS generic netlink commands that github.com/cloudflare/ipvs does
// not implement: the sync daemon (NEW/DEL/GET_DAEMON) and the global
// timeouts (SET/GET_CONFIG). Numbers from linux/ip_vs.h (UAPI).
const (
	genlFamily  = "IPVS"
	genlVersion = 1

	cmdNewDaemon = 9
	cmdDelDaemon = 10
	cmdGetDaemon = 11
	cmdSetConfig = 12
	cmdGetConfig = 13

	cmdAttrDaemon        = 3
	cmdAttrTimeoutTCP    = 4
	cmdAttrTimeoutTCPFin = 5
	cmdAttrTimeoutUDP    = 6

	daemonAttrState       = 1
	daemonAttrMcastIfn    = 2
	daemonAttrSyncID      = 3
	daemonAttrSyncMaxLen  = 4
	daemonAttrMcastGroup  = 5
	daemonAttrMcastGroup6 = 6
	daemonAttrMcastPort   = 7
	daemonAttrMcastTTL    = 8

	ifNameMax = 16 // IP_VS_IFNAME_MAXLEN, NUL included
)

// SyncState is the role of a connection-synchronisation daemon.
type SyncState uint32

// Sync daemon roles (IP_VS_STATE_*). The kernel runs at most one of each
// per network namespace, and both may run at once.
const (
	SyncMaster SyncState = 1
	SyncBackup SyncState = 2
)

func (s SyncState) String() string {
	switch s {
	case SyncMaster:
		return "master"
	case SyncBackup:
		return "backup"
	}
	return fmt.Sprintf("state%d", uint32(s))
}

// SyncConfig is keepalived's lvs_sync_daemon: the interface the kernel
// sends (master) or receives (backup) connection updates on, the sync ID
// that directors of one cluster share, and the optional parameters
// keepalived calls maxlen, port, ttl and group. Zero fields take the
// kernel's defaults (maxlen from the interface MTU, port 8848, TTL 1,
// group 224.0.0.81 or ff02::8:81).
type SyncConfig struct {
	Interface string
	SyncID    uint8
	MaxLen    uint16
	Port      uint16
	TTL       uint8
	Group     netip.Addr
}

// SyncDaemon is a running sync daemon as the kernel reports it.
type SyncDaemon struct {
	State SyncState
	SyncConfig
}

func (c SyncConfig) validate() error {
	if c.Interface == "" || len(c.Interface) >= ifNameMax {
		return fmt.Errorf("lvs_sync_daemon: interface %q: need a name of 1..%d bytes", c.Interface, ifNameMax-1)
	}
	if c.Group.IsValid() && !c.Group.IsMulticast() {
		return fmt.Errorf("lvs_sync_daemon: group %s is not a multicast address", c.Group)
	}
	return nil
}

// encodeDaemon builds the attributes of NEW_DAEMON (full config) or
// DEL_DAEMON (state only).
func encodeDaemon(state SyncState, c *SyncConfig) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	ae.Nested(cmdAttrDaemon, func(nae *netlink.AttributeEncoder) error {
		nae.Uint32(daemonAttrState, uint32(state))
		if c == nil {
			return nil
		}
		nae.String(daemonAttrMcastIfn, c.Interface)
		nae.Uint32(daemonAttrSyncID, uint32(c.SyncID))
		if c.MaxLen != 0 {
			nae.Uint16(daemonAttrSyncMaxLen, c.MaxLen)
		}
		if c.Port != 0 {
			nae.Uint16(daemonAttrMcastPort, c.Port)
		}
		if c.TTL != 0 {
			nae.Uint8(daemonAttrMcastTTL, c.TTL)
		}
		if g := c.Group.Unmap(); g.IsValid() {
			if g.Is4() {
				b := g.As4()
				nae.Bytes(daemonAttrMcastGroup, b[:])
			} else {
				b := g.As16()
				nae.Bytes(daemonAttrMcastGroup6, b[:])
			}
		}
		return nil
	})
	return ae.Encode()
}

// decodeDaemon decodes one GET_DAEMON reply message's attributes.
func decodeDaemon(b []byte) (SyncDaemon, error) {
	var d SyncDaemon
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return d, fmt.Errorf("sync daemon: %w", err)
	}
	found := false
	for ad.Next() {
		if ad.Type() != cmdAttrDaemon {
			continue
		}
		found = true
		ad.Nested(func(nad *netlink.AttributeDecoder) error {
			for nad.Next() {
				switch nad.Type() {
				case daemonAttrState:
					d.State = SyncState(nad.Uint32())
				case daemonAttrMcastIfn:
					d.Interface = nad.String()
				case daemonAttrSyncID:
					d.SyncID = uint8(nad.Uint32())
				case daemonAttrSyncMaxLen:
					d.MaxLen = nad.Uint16()
				case daemonAttrMcastPort:
					d.Port = nad.Uint16()
				case daemonAttrMcastTTL:
					d.TTL = nad.Uint8()
				case daemonAttrMcastGroup, daemonAttrMcastGroup6:
					a, ok := netip.AddrFromSlice(nad.Bytes())
					if !ok {
						return fmt.Errorf("multicast group attribute of %d bytes", nad.Len())
					}
					d.Group = a
				}
			}
			return nil
		})
	}
	if err := ad.Err(); err != nil {
		return d, fmt.Errorf("sync daemon: %w", err)
	}
	if !found {
		return d, fmt.Errorf("sync daemon: reply without a daemon attribute")
	}
	return d, nil
}

// encodeTimeouts builds SET_CONFIG's attributes: the three timeouts in
// seconds. Zero fields are left out, which makes the kernel keep them.
func encodeTimeouts(t lvs.Timeouts) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	put := func(typ uint16, d time.Duration) {
		if d > 0 {
			ae.Uint32(typ, uint32(d/time.Second))
		}
	}
	put(cmdAttrTimeoutTCP, t.TCP)
	put(cmdAttrTimeoutTCPFin, t.TCPFin)
	put(cmdAttrTimeoutUDP, t.UDP)
	return ae.Encode()
}

// decodeTimeouts decodes GET_CONFIG's reply.
func decodeTimeouts(b []byte) (lvs.Timeouts, error) {
	var t lvs.Timeouts
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return t, fmt.Errorf("timeouts: %w", err)
	}
	for ad.Next() {
		switch ad.Type() {
		case cmdAttrTimeoutTCP:
			t.TCP = time.Duration(ad.Uint32()) * time.Second
		case cmdAttrTimeoutTCPFin:
			t.TCPFin = time.Duration(ad.Uint32()) * time.Second
		case cmdAttrTimeoutUDP:
			t.UDP = time.Duration(ad.Uint32()) * time.Second
		}
	}
	if err := ad.Err(); err != nil {
		return t, fmt.Errorf("timeouts: %w", err)
	}
	return t, nil
}
