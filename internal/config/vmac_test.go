package config

import (
	"strings"
	"testing"
)

// TestVMACDiagnostics: use_vmac on an address is redundant with the
// instance's own (keepalived's warning, the address goes on the VMAC) and
// refused elsewhere (a per-address VMAC, like use_vmac_addr); vmac_xmit_base
// alone is reported and leaves no VMAC; use_vmac after vmac_xmit_base
// keeps it.
func TestVMACDiagnostics(t *testing.T) {
	src := `vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    vmac_xmit_base
    use_vmac vr51 02:00:00:00:01
    virtual_ipaddress {
        198.18.0.100/24 use_vmac
        198.18.1.100/24 dev eth1 use_vmac
    }
}
vrrp_instance VI_2 {
    interface eth0
    virtual_router_id 52
    vmac_xmit_base
    virtual_ipaddress {
        198.18.0.101/24
    }
}
`
	cfg, diags := Parse("t.conf", []byte(src), Options{ConfigID: "node1", Host: newFakeHost(), Dataplane: "proxy"})
	var got []string
	for _, d := range diags {
		got = append(got, d.Pos.String()+" "+d.Severity.String()+" "+d.Msg)
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{
		"t.conf:7 warning (VI_1) use_vmac specified for VIP/eVIP 198.18.0.100/24 and vrrp instance",
		"t.conf:8 error (VI_1) use_vmac on address 198.18.1.100/24: not supported by vipd",
		"warning (VI_2) vmac_xmit_base has no effect without use_vmac",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("missing %q in:\n%s", want, all)
		}
	}
	if strings.Contains(all, "(VI_1) vmac_xmit_base has no effect") {
		t.Errorf("use_vmac after vmac_xmit_base reported as missing:\n%s", all)
	}
	blocking := false
	for _, d := range diags {
		blocking = blocking || d.Blocking()
	}
	if !blocking {
		t.Errorf("a per-address VMAC must stop the daemon:\n%s", all)
	}
	for _, in := range cfg.Instances {
		switch in.Name {
		case "VI_1":
			if v := in.UseVMAC; v == nil || v.Interface != "vr51" || v.MAC != "02:00:00:00:01" || !v.XmitBase {
				t.Errorf("VI_1 use_vmac %+v", v)
			}
		case "VI_2":
			if in.UseVMAC != nil {
				t.Errorf("VI_2: vmac_xmit_base alone left use_vmac %+v", in.UseVMAC)
			}
		}
	}
}
