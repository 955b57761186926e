package config

import (
	"strings"
	"testing"
)

const hmacConf = `vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    auth_hmac {
        key 1 hex:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
        key 2 file:/nonexistent/vipd-key
        active_key 1
        mode receive-only
    }
    virtual_ipaddress {
        198.18.0.100/24
    }
}
`

// TestKeepalivedVersionJudgement: under 2.2 auth_hmac is an unknown
// keyword, skipped by vipd -t and refused by the daemon; under 2.4 it is
// parsed into the model.
func TestKeepalivedVersionJudgement(t *testing.T) {
	cfg, diags := Parse("k.conf", []byte(hmacConf), Options{ConfigID: "t"})
	if diags.ExitCode() != ExitConfigTest || cfg.Instances[0].AuthHMAC != nil {
		t.Fatalf("2.2: exit %d, auth_hmac %+v\n%s", diags.ExitCode(), cfg.Instances[0].AuthHMAC, diags)
	}
	for _, d := range diags {
		if d.Blocking() {
			t.Fatalf("vipd -t blocks: %s", d)
		}
	}
	_, diags = Parse("k.conf", []byte(hmacConf), Options{ConfigID: "t", Daemon: true})
	blocked := false
	for _, d := range diags {
		blocked = blocked || d.Blocking() && strings.Contains(d.Msg, "unknown keyword 'auth_hmac' for keepalived 2.2")
	}
	if !blocked {
		t.Fatalf("the daemon does not refuse auth_hmac under 2.2:\n%s", diags)
	}
	cfg, diags = Parse("k.conf", []byte(hmacConf), Options{ConfigID: "t", KeepalivedVersion: "2.4.3", Daemon: true})
	a := cfg.Instances[0].AuthHMAC
	if a == nil || a.ActiveKey != 1 || a.Mode != "receive-only" || len(a.Keys) != 1 || len(a.Keys[0].Key) != 32 {
		t.Fatalf("2.4: auth_hmac %+v\n%s", a, diags)
	}
	// The missing key file is keepalived's error, and the key is skipped.
	if !strings.Contains(diags.String(), "auth_hmac key file '/nonexistent/vipd-key' cannot be opened") {
		t.Fatalf("2.4: no error for the missing key file:\n%s", diags)
	}
}
