package ipvs

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"github.com/vipd/vipd/internal/lvs"
)

// TestEncodeDaemonBytes pins the wire format of NEW_DAEMON against the
// kernel's policy (linux/ip_vs.h and ip_vs_ctl.c): a nested
// IPVS_CMD_ATTR_DAEMON (3) holding STATE u32, MCAST_IFN NUL-terminated
// string, SYNC_ID u32, then the optional SYNC_MAXLEN u16, MCAST_PORT u16,
// MCAST_TTL u8 and MCAST_GROUP as 4 address bytes. The kernel parses
// nested attributes liberally, so the NLA_F_NESTED flag the encoder sets
// is accepted (the VM tests prove it). Native byte order is
// little endian on the machines we build for.
func TestEncodeDaemonBytes(t *testing.T) {
	b, err := encodeDaemon(SyncMaster, &SyncConfig{Interface: "eth0", SyncID: 51, MaxLen: 1400, Port: 8848, TTL: 2, Group: netip.MustParseAddr("224.0.0.81")})
	if err != nil {
		t.Fatal(err)
	}
	want := "" +
		"4000" + "0380" + // daemon, 64 bytes, NLA_F_NESTED
		"0800" + "0100" + "01000000" + // state master
		"0900" + "0200" + "6574683000" + "000000" + // "eth0\0" padded
		"0800" + "0300" + "33000000" + // sync id 51
		"0600" + "0400" + "7805" + "0000" + // maxlen 1400
		"0600" + "0700" + "9022" + "0000" + // port 8848 (host order)
		"0500" + "0800" + "02" + "000000" + // ttl 2
		"0800" + "0500" + "e0000051" // group, network order
	if got := hex.EncodeToString(b); got != want {
		t.Errorf("NEW_DAEMON attributes\n got  %s\n want %s", got, want)
	}
	del, err := encodeDaemon(SyncBackup, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hex.EncodeToString(del), "0c000380"+"08000100"+"02000000"; got != want {
		t.Errorf("DEL_DAEMON attributes %s, want %s", got, want)
	}
}

func TestDaemonRoundTrip(t *testing.T) {
	for _, c := range []SyncConfig{
		{Interface: "eth0", SyncID: 1},
		{Interface: "bond0.100", SyncID: 255, MaxLen: 1472, Port: 9000, TTL: 5, Group: netip.MustParseAddr("239.1.2.3")},
		{Interface: "eth1", Group: netip.MustParseAddr("ff02::8:81")},
	} {
		b, err := encodeDaemon(SyncBackup, &c)
		if err != nil {
			t.Fatal(err)
		}
		d, err := decodeDaemon(b)
		if err != nil {
			t.Fatal(err)
		}
		if d.State != SyncBackup || d.SyncConfig != c {
			t.Errorf("round trip of %+v gave %+v", c, d)
		}
	}
}

func TestDaemonValidate(t *testing.T) {
	for _, tt := range []struct {
		c    SyncConfig
		want string
	}{
		{SyncConfig{}, `interface ""`},
		{SyncConfig{Interface: "averyveryverylong"}, "1..15 bytes"},
		{SyncConfig{Interface: "eth0", Group: netip.MustParseAddr("198.18.0.1")}, "not a multicast"},
	} {
		if err := tt.c.validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("validate(%+v) = %v, want %q", tt.c, err, tt.want)
		}
	}
}

func TestDecodeDaemonErrors(t *testing.T) {
	ae := netlink.NewAttributeEncoder()
	ae.Uint32(cmdAttrTimeoutTCP, 1)
	noDaemon, _ := ae.Encode()
	ae = netlink.NewAttributeEncoder()
	ae.Nested(cmdAttrDaemon, func(n *netlink.AttributeEncoder) error {
		n.Bytes(daemonAttrMcastGroup, []byte{1, 2, 3})
		return nil
	})
	badGroup, _ := ae.Encode()
	for name, b := range map[string][]byte{
		"truncated":  {0x08, 0x00, 0x03},
		"no daemon":  noDaemon,
		"bad group":  badGroup,
		"bad length": {0xff, 0x00, 0x03, 0x00, 0, 0, 0, 0},
	} {
		if _, err := decodeDaemon(b); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}

func TestTimeoutsRoundTrip(t *testing.T) {
	in := lvs.Timeouts{TCP: 7200 * time.Second, TCPFin: 30 * time.Second, UDP: 60 * time.Second}
	b, err := encodeTimeouts(in)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hex.EncodeToString(b), "08000400201c0000"+"080005001e000000"+"080006003c000000"; got != want {
		t.Errorf("SET_CONFIG attributes %s, want %s", got, want)
	}
	out, err := decodeTimeouts(b)
	if err != nil || out != in {
		t.Errorf("decode = %+v, %v", out, err)
	}
	partial, _ := encodeTimeouts(lvs.Timeouts{UDP: time.Second})
	if !bytes.Equal(partial, []byte{8, 0, 6, 0, 1, 0, 0, 0}) {
		t.Errorf("zero fields must be left out: % x", partial)
	}
}

func FuzzDecodeDaemon(f *testing.F) {
	b, _ := encodeDaemon(SyncMaster, &SyncConfig{Interface: "eth0", SyncID: 3, Group: netip.MustParseAddr("224.0.0.81")})
	f.Add(b)
	b, _ = encodeDaemon(SyncBackup, &SyncConfig{Interface: "eth0", Group: netip.MustParseAddr("ff02::8:81")})
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := decodeDaemon(b)
		if err != nil {
			return
		}
		// Whatever decodes must encode and decode to the same value.
		c := d.SyncConfig
		b2, err := encodeDaemon(d.State, &c)
		if err != nil {
			return
		}
		d2, err := decodeDaemon(b2)
		if err != nil {
			t.Fatalf("re-decoding %x: %v", b2, err)
		}
		if d2.State != d.State || d2.SyncID != d.SyncID || d2.MaxLen != d.MaxLen || d2.Port != d.Port || d2.TTL != d.TTL || d2.Group != d.Group.Unmap() && d2.Group != d.Group {
			t.Fatalf("round trip %+v -> %+v", d, d2)
		}
	})
}

func FuzzDecodeTimeouts(f *testing.F) {
	b, _ := encodeTimeouts(lvs.DefaultTimeouts)
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeTimeouts(b)
	})
}
