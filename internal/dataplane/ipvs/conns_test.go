package ipvs

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/lvs"
)

// A listing in the kernel's format (ip_vs_conn_seq_show), with a template,
// an IPv6 entry and an entry with persistence-engine data.
const connSample = `Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
TCP C6120102 9C41 C6120164 0050 C6120215 0050 ESTABLISHED     897
IP  C6120102 0000 C6120164 0050 C6120215 0050 NONE            297
UDP C6120102 D431 C6120164 0035 C6120216 0035 UDP             299
TCP 2001:0db8:0000:0000:0000:0000:0000:0002 9C42 2001:0db8:0000:0000:0000:0000:0000:0064 01BB 2001:0db8:0000:0000:0000:0000:0000:0015 01BB TIME_WAIT        59
UDP C6120102 13C4 C6120164 13C4 C6120215 13C4 UDP             170 sip abc@198.18.0.1
TCP C6120102 9C43 C6120164 0050 C6120215 0050 CLOSE       4294967295
`

func TestParseConns(t *testing.T) {
	got, err := parseConns(strings.NewReader(connSample))
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort
	want := []lvs.ConnEntry{
		{Proto: lvs.TCP, Expire: 897 * time.Second, State: "ESTABLISHED", Client: ap("198.18.1.2:40001"), Virtual: ap("198.18.1.100:80"), Dest: ap("198.18.2.21:80")},
		{Proto: 0, Expire: 297 * time.Second, State: "NONE", Client: ap("198.18.1.2:0"), Virtual: ap("198.18.1.100:80"), Dest: ap("198.18.2.21:80")},
		{Proto: lvs.UDP, Expire: 299 * time.Second, State: "UDP", Client: ap("198.18.1.2:54321"), Virtual: ap("198.18.1.100:53"), Dest: ap("198.18.2.22:53")},
		{Proto: lvs.TCP, Expire: 59 * time.Second, State: "TIME_WAIT", Client: ap("[2001:db8::2]:40002"), Virtual: ap("[2001:db8::64]:443"), Dest: ap("[2001:db8::15]:443")},
		{Proto: lvs.UDP, Expire: 170 * time.Second, State: "UDP", Client: ap("198.18.1.2:5060"), Virtual: ap("198.18.1.100:5060"), Dest: ap("198.18.2.21:5060")},
		{Proto: lvs.TCP, Expire: 0, State: "CLOSE", Client: ap("198.18.1.2:40003"), Virtual: ap("198.18.1.100:80"), Dest: ap("198.18.2.21:80")},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d:\n got  %+v\n want %+v", i, got[i], want[i])
		}
	}
}

func TestParseConnsErrors(t *testing.T) {
	head := "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n"
	for _, tt := range []struct{ in, want string }{
		{"TCP C6120102 9C41\n", "line 2: 3 fields"},
		{"XYZ C6120102 9C41 C6120164 0050 C6120215 0050 ESTABLISHED 1\n", `unknown protocol "XYZ"`},
		{"TCP C612010Z 9C41 C6120164 0050 C6120215 0050 ESTABLISHED 1\n", "client: address"},
		{"TCP C6120102 9C4 C6120164 0050 C6120215 0050 ESTABLISHED 1\n", "client: port"},
		{"TCP C6120102 9C41 C6120164 0050 1.2.3.4 0050 ESTABLISHED 1\n", "destination: address"},
		{"TCP C6120102 9C41 C6120164 0050 C6120215 0050 ESTABLISHED x\n", `expires "x"`},
		{strings.Repeat("A", 5000) + "\n", "line 2"},
	} {
		_, err := parseConns(strings.NewReader(head + tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseConns(%.40q) = %v, want %q", tt.in, err, tt.want)
		}
	}
}

func FuzzParseConns(f *testing.F) {
	f.Add([]byte(connSample))
	f.Add([]byte("TCP 2001:0db8:0000:0000:0000:0000:0000:0002 9C42 ::1 01BB ::2 01BB X 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		conns, err := parseConns(strings.NewReader(string(b)))
		if err != nil {
			return
		}
		for _, c := range conns {
			if !c.Client.Addr().IsValid() || !c.Virtual.Addr().IsValid() || !c.Dest.Addr().IsValid() || c.Expire < 0 {
				t.Fatalf("accepted an invalid entry %+v", c)
			}
		}
	})
}

func TestOwnersFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "ipvs.json")
	o, err := loadOwners(path)
	if err != nil {
		t.Fatal(err)
	}
	v6 := lvs.ServiceKey{Proto: lvs.UDP, Addr: netip.MustParseAddrPort("[2001:db8::1]:53")}
	for _, k := range []lvs.ServiceKey{vip80, fwm1, v6, {FWMark: 2, IPv6: true}} {
		o.add(keyOf(k))
	}
	o.remove(keyOf(fwm1))
	orig := lvs.DefaultTimeouts
	o.setOrig(&orig)
	if err := o.save(); err != nil {
		t.Fatal(err)
	}
	o2, err := loadOwners(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []lvs.ServiceKey{vip80, v6, {FWMark: 2, IPv6: true}} {
		if !o2.owned(keyOf(k)) {
			t.Errorf("%s not owned after reload", keyString(k))
		}
	}
	if o2.owned(keyOf(fwm1)) || o2.owned(keyOf(vip443)) || o2.owned(keyOf(lvs.ServiceKey{FWMark: 2})) {
		t.Error("owns a service it never recorded")
	}
	if o2.orig == nil || *o2.orig != orig {
		t.Errorf("orig timeouts %+v", o2.orig)
	}
	for name, content := range map[string]string{
		"garbage":     "{",
		"version":     `{"version":2}`,
		"bad address": `{"version":1,"services":[{"proto":6,"addr":"nope"}]}`,
	} {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := loadOwners(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: err = %v, want one naming the file", name, err)
		}
	}
}

// TestNewWithoutIPVS: on a kernel without IPVS (this project's hosts),
// New fails with ErrUnavailable instead of pretending to work.
func TestNewWithoutIPVS(t *testing.T) {
	if _, err := os.Stat("/proc/net/ip_vs"); err == nil {
		lab.SkipMachineFact(t, "this kernel has IPVS (/proc/net/ip_vs exists); the VM tests cover New")
	}
	for _, opts := range []Options{{NoModprobe: true}, {}} {
		d, err := New(opts)
		if err == nil {
			d.Close()
			t.Fatalf("New(%+v) succeeded on a kernel without /proc/net/ip_vs", opts)
		}
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "IPVS") {
			t.Errorf("New(%+v) = %v; want ErrUnavailable naming IPVS", opts, err)
		}
		if testing.Verbose() {
			t.Logf("New(%+v): %v", opts, err)
		}
	}
}
