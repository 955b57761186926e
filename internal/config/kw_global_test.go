package config

import (
	"net/netip"
	"strings"
	"testing"
)

// TestLVSSyncDaemonOptions: every lvs_sync_daemon option takes the word
// after it as its value (the bare second word is the instance), and an
// unknown option is an error naming it while the rest still apply.
func TestLVSSyncDaemonOptions(t *testing.T) {
	const inst = `
vrrp_instance VI_1 {
    interface lo
    virtual_router_id 1
    virtual_ipaddress {
        198.18.0.100/24
    }
}
`
	cfg, diags := Parse("k.conf", []byte("global_defs {\n    lvs_sync_daemon eth0 VI_1 id 7 maxlen 1400 port 9000 ttl 3 group 224.0.0.90\n}\n"+inst), Options{})
	for _, d := range diags {
		t.Errorf("unexpected diagnostic: %s", d)
	}
	want := LVSSyncDaemon{Interface: "eth0", Instance: "VI_1", SyncID: 7, MaxLen: 1400, Port: 9000, TTL: 3, Group: netip.MustParseAddr("224.0.0.90")}
	if got := cfg.Global.LVSSyncDaemon; got == nil || *got != want {
		t.Fatalf("lvs_sync_daemon = %+v, want %+v", got, want)
	}

	cfg, diags = Parse("k.conf", []byte("global_defs {\n    lvs_sync_daemon eth0 inst VI_1 bogus ttl 4\n}\n"+inst), Options{})
	var all []string
	for _, d := range diags {
		all = append(all, d.String())
	}
	if len(all) != 1 || !strings.Contains(all[0], "unknown lvs_sync_daemon option 'bogus'") {
		t.Errorf("diagnostics = %q, want one naming 'bogus'", all)
	}
	if got := cfg.Global.LVSSyncDaemon; got == nil || got.Instance != "VI_1" || got.TTL != 4 || got.SyncID != -1 || got.Port != 8848 {
		t.Errorf("lvs_sync_daemon = %+v, want instance VI_1, ttl 4, defaults otherwise", got)
	}
}
