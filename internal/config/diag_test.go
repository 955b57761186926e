package config

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"
)

// fakeHost is a Host with a fixed set of interfaces, users and files.
type fakeHost struct {
	ifaces map[string]bool
	users  map[string]int
	files  map[string]fs.FileMode
	euid   int
}

func newFakeHost() *fakeHost {
	return &fakeHost{
		ifaces: map[string]bool{"lo": true, "eth0": true, "eth1": true, "eth2": true, "ens33": true},
		users:  map[string]int{"root": 0, "nobody": 65534},
		files:  map[string]fs.FileMode{"/bin/true": 0o755, "/bin": fs.ModeDir | 0o755, "/": fs.ModeDir | 0o755, "/usr/bin/killall": 0o755},
	}
}

func (h *fakeHost) InterfaceExists(n string) bool { return h.ifaces[n] }
func (h *fakeHost) LookupUser(n string) (int, bool) {
	u, ok := h.users[n]
	return u, ok
}
func (h *fakeHost) LookPath(f string) (string, error) {
	for _, d := range []string{"/bin/", "/usr/bin/"} {
		if _, ok := h.files[d+f]; ok {
			return d + f, nil
		}
	}
	return "", errors.New("not found")
}
func (h *fakeHost) Stat(p string) (fs.FileInfo, error) {
	m, ok := h.files[p]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return fakeInfo{name: p, mode: m}, nil
}
func (h *fakeHost) Euid() int { return h.euid }

type fakeInfo struct {
	name string
	mode fs.FileMode
}

func (f fakeInfo) Name() string       { return f.name }
func (f fakeInfo) Size() int64        { return 0 }
func (f fakeInfo) Mode() fs.FileMode  { return f.mode }
func (f fakeInfo) ModTime() time.Time { return time.Time{} }
func (f fakeInfo) IsDir() bool        { return f.mode.IsDir() }
func (f fakeInfo) Sys() any           { return nil }

// Building blocks of the test configurations; each is valid for
// keepalived 2.2.7 on a host with eth0.
func vi(body string) string {
	return `vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        198.18.0.100/24
    }
` + body + `
}
`
}

func vsrv(body, rs string) string {
	if rs == "" {
		rs = "        TCP_CHECK {\n        }\n"
	}
	return `virtual_server 198.18.0.100 80 {
    lvs_sched rr
    lvs_method NAT
    protocol TCP
` + body + `
    real_server 198.18.0.11 80 {
` + rs + `    }
}
`
}

func gdefs(body string) string { return "global_defs {\n" + body + "\n}\n" + vi("") }

// diagCase is one configuration with the diagnostic vipd must report for
// it. The line of the diagnostic is the line marked "# <-" (or 0 when the
// finding has no position). The side-by-side test (keepalived_test.go)
// also runs every case through keepalived -t: keepalived must reject
// exactly the cases where vipd reports more than a notice.
type diagCase struct {
	name      string
	conf      string
	sev       Severity
	kw        string
	msg       string // substring of the message
	hint      string // substring of the hint
	dataplane string
	noHost    bool // do not run the host checks
	vipdOnly  bool // not a keepalived configuration (vipd extensions)
	// version is the keepalived version judged (Options.KeepalivedVersion;
	// "" the default, 2.2). The side-by-side test runs a case against
	// each keepalived with vipd judging as that one, and skips cases
	// pinned to another version.
	version string
}

var diagCases = []diagCase{
	// lexer and parser
	{name: "unknown keyword with suggestion", conf: vi("    priorty 100 # <-"), sev: Error, kw: "priorty", msg: "unknown keyword 'priorty' in vrrp_instance", hint: "did you mean 'priority'?"},
	{name: "status instead of status_code (seed 001)", conf: vsrv("", "        HTTP_GET {\n            url {\n                path /\n                status 200 # <-\n            }\n        }\n"), sev: Error, kw: "status", hint: "did you mean 'status_code'?"},
	{name: "keyword in the wrong block", conf: gdefs("    virtual_router_id 5 # <-"), sev: Error, kw: "virtual_router_id", hint: "belongs in vrrp_instance"},
	{name: "extra closing brace", conf: vi("") + "} # <-\n", sev: Error, kw: "}", msg: "extra '}'"},
	{name: "missing closing brace", conf: strings.Replace(strings.TrimSuffix(vi(""), "}\n"), "VI_1 {", "VI_1 { # <-", 1), sev: Error, kw: "vrrp_instance", msg: "never closed"},
	{name: "block keyword without brace", conf: "vrrp_instance VI_1 # <-\n    interface eth0\n    virtual_router_id 51\n    virtual_ipaddress {\n        198.18.0.100\n    }\n}\n", sev: Error, kw: "vrrp_instance", msg: "missing '{'"},
	{name: "brace after a value keyword", conf: vi("    priority 100 { # <-\n    }"), sev: Error, kw: "priority", msg: "unexpected '{'"},
	{name: "missing parameter aborts like keepalived", conf: vi("    priority # <-"), sev: Fatal, kw: "priority", msg: "missing parameter"},
	{name: "unterminated quote", conf: gdefs(`    router_id "r1 # <-`), sev: Warning, msg: "unterminated quote"},
	{name: "include without file", conf: "include # <-\n" + vi(""), sev: Error, kw: "include", msg: "without a file name"},
	{name: "missing include is fine for include", conf: "include /nonexistent/vipd-test.conf # <-\n" + vi(""), sev: Notice, kw: "include", msg: "no file matches"},
	{name: "missing includea file is an error", conf: "includea /nonexistent/vipd-test.conf # <-\n" + vi(""), sev: Fatal, kw: "includea", msg: "no file matches"},
	{name: "reserved parameter name", conf: "$_MINE=1 # <-\n" + vi(""), sev: Notice, kw: "$_MINE", msg: "reserved"},
	{name: "self-referencing definition", conf: "$A=$A x\n" + gdefs("    router_id $A # <-"), sev: Notice, msg: "nested more than"},
	{name: "SEQ without closing parenthesis", conf: vi("    virtual_ipaddress_excluded {\n        ~SEQ(A, 1, 3 198.18.1.$A # <-\n    }"), sev: Error, kw: "~SEQ", msg: "no closing"},
	{name: "SEQ with zero step", conf: vi("    virtual_ipaddress_excluded {\n        ~SEQ(A, 1, 0, 3) 198.18.1.$A # <-\n    }"), sev: Error, kw: "~SEQ", msg: "step is 0"},
	{name: "SEQ explosion is capped", conf: vi("    virtual_ipaddress_excluded {\n        ~SEQ(A, 1, 1, 99999999999) 198.18.1.$A # <-\n    }"), sev: Fatal, kw: "~SEQ", msg: "more than the limit", vipdOnly: true}, // keepalived expands it for ever (compat.md)
	{name: "LST with mismatched fields", conf: vi("    virtual_ipaddress_excluded {\n        ~LST({A,B}, {1,2}, {3}) 198.18.$A.$B # <-\n    }"), sev: Error, kw: "~LST", msg: "fields"},

	// values
	{name: "VRID out of range", conf: strings.Replace(vi(""), "virtual_router_id 51", "virtual_router_id 300 # <-", 1), sev: Error, kw: "virtual_router_id", msg: "outside range [1, 255]"},
	{name: "priority out of range", conf: vi("    priority 0 # <-"), sev: Error, kw: "priority", msg: "outside range [1, 255]"},
	{name: "priority not a number", conf: vi("    priority high # <-"), sev: Error, kw: "priority", msg: "invalid number 'high'"},
	{name: "advert_int out of range", conf: vi("    advert_int 300 # <-"), sev: Error, kw: "advert_int", msg: "outside range"},
	{name: "advert_int not a number", conf: vi("    advert_int 1s # <-"), sev: Error, kw: "advert_int", msg: "invalid time value"},
	{name: "unknown state", conf: vi("    state PRIMARY # <-"), sev: Error, kw: "state", msg: "unknown state 'PRIMARY'"},
	{name: "auth_pass truncated", conf: vi("    authentication {\n        auth_type PASS\n        auth_pass 123456789 # <-\n    }"), sev: Warning, kw: "auth_pass", msg: "truncating auth_pass to 8"},
	{name: "unknown auth_type", conf: vi("    authentication {\n        auth_type MD5 # <-\n    }"), sev: Error, kw: "auth_type", msg: "unknown authentication type"},
	{name: "bad VIP", conf: vi("    virtual_ipaddress_excluded {\n        198.18.0.300/24 # <-\n    }"), sev: Error, kw: "198.18.0.300/24", msg: "invalid IP address"},
	{name: "bad VIP option", conf: vi("    virtual_ipaddress_excluded {\n        198.18.0.101 device eth0 # <-\n    }"), sev: Error, msg: "unknown address option 'device'"},
	{name: "bad VIP scope", conf: vi("    virtual_ipaddress_excluded {\n        198.18.0.101 scope planet # <-\n    }"), sev: Error, msg: "invalid scope 'planet'"},
	{name: "VIP families mixed", conf: strings.Replace(vi(""), "198.18.0.100/24\n", "198.18.0.100/24\n        2001:db8::1 # <-\n", 1), sev: Error, kw: "virtual_ipaddress", msg: "address family must match"},
	{name: "malformed source address", conf: vi("    mcast_src_ip 198.18.0.x # <-"), sev: Error, kw: "mcast_src_ip", msg: "malformed src address"},
	{name: "mcast_dst_ip not multicast", conf: vi("    mcast_dst_ip 198.18.0.1 # <-"), sev: Error, kw: "mcast_dst_ip", msg: "not a multicast address"},
	{name: "bad boolean", conf: vi("    smtp_alert maybe # <-"), sev: Error, kw: "smtp_alert", msg: "invalid boolean"},
	{name: "track weight out of range", conf: "vrrp_script chk {\n    script /bin/true\n}\n" + vi("    track_script {\n        chk weight 300 # <-\n    }"), sev: Error, kw: "chk", msg: "outside range [-253, 253]"},
	{name: "vrrp_script weight out of range", conf: "vrrp_script chk {\n    script /bin/true\n    weight -300 # <-\n}\n" + vi(""), sev: Error, kw: "weight", msg: "outside range [-253, 253]"},
	{name: "vrrp_script interval must be whole seconds", conf: "vrrp_script chk {\n    script /bin/true\n    interval 0.5 # <-\n}\n" + vi(""), sev: Error, kw: "interval", msg: "invalid number"},
	{name: "vrrp_garp_interval 0 is rejected by keepalived 2.2 (seed 001)", conf: gdefs("    vrrp_garp_interval 0 # <-"), sev: Error, kw: "vrrp_garp_interval", msg: "outside range"},
	{name: "vrrp_mcast_group4 not multicast", conf: gdefs("    vrrp_mcast_group4 198.18.0.1 # <-"), sev: Error, kw: "vrrp_mcast_group4", msg: "not an IPv4 multicast"},
	{name: "vrrp_mcast_group6 an IPv4 group", conf: gdefs("    vrrp_mcast_group6 224.0.0.18 # <-"), sev: Error, kw: "vrrp_mcast_group6", msg: "'224.0.0.18' is not an IPv6 multicast"},
	{name: "vrrp_version 4", conf: gdefs("    vrrp_version 4 # <-"), sev: Error, kw: "vrrp_version", msg: "outside range [2, 3]"},
	{name: "lvs_timeouts without option", conf: gdefs("    lvs_timeouts # <-"), sev: Error, kw: "lvs_timeouts", msg: "at least one option"},
	{name: "lvs_timeouts unknown option", conf: gdefs("    lvs_timeouts tcp 900 fin 30 # <-"), sev: Error, kw: "lvs_timeouts", msg: "unknown lvs_timeouts option 'fin'"},
	{name: "notification_email with inline arguments", conf: gdefs("    notification_email root@localhost { # <-\n    }"), sev: Error, kw: "notification_email", msg: "extra parameters"},
	{name: "persistence_timeout 0 (seed 001)", conf: vsrv("    persistence_timeout 0 # <-", ""), sev: Error, kw: "persistence_timeout", msg: "outside range [1, 2678400]"},
	{name: "unknown scheduler", conf: vsrv("    lvs_sched fastest # <-", ""), sev: Error, kw: "lvs_sched", msg: "invalid lvs_scheduler 'fastest'"},
	{name: "unknown forwarding method", conf: vsrv("    lvs_method DSR # <-", ""), sev: Error, kw: "lvs_method", msg: "unknown [DSR] routing method"},
	{name: "unknown protocol", conf: vsrv("    protocol QUIC # <-", ""), sev: Error, kw: "protocol", msg: "unknown protocol 'QUIC'"},
	{name: "digest with wrong length", conf: vsrv("", "        HTTP_GET {\n            url {\n                path /\n                digest abc # <-\n            }\n        }\n"), sev: Error, kw: "digest", msg: "should be 32"},
	{name: "second digest in a url", conf: vsrv("", "        HTTP_GET {\n            url {\n                path /\n                digest 9b3a0c85a887a256d6939da88aabd8cd\n                digest 9b3a0c85a887a256d6939da88aabd8ce # <-\n            }\n        }\n"), sev: Error, kw: "digest", msg: "is a duplicate"},
	{name: "bad status code", conf: vsrv("", "        HTTP_GET {\n            url {\n                path /\n                status_code OK # <-\n            }\n        }\n"), sev: Error, kw: "status_code", msg: "invalid HTTP status code"},
	{name: "connect_timeout out of range", conf: vsrv("", "        TCP_CHECK {\n            connect_timeout 0 # <-\n        }\n"), sev: Error, kw: "connect_timeout", msg: "outside range"},
	{name: "bad connect_ip", conf: vsrv("", "        TCP_CHECK {\n            connect_ip 198.18.0.x # <-\n        }\n"), sev: Error, kw: "connect_ip", msg: "invalid connect_ip"},
	{name: "http_protocol 2", conf: vsrv("", "        HTTP_GET {\n            http_protocol 2 # <-\n            url {\n                path /\n            }\n        }\n"), sev: Error, kw: "http_protocol", msg: "invalid http_protocol"},
	{name: "unknown DNS type", conf: vsrv("", "        DNS_CHECK {\n            type SRV # <-\n        }\n"), sev: Error, kw: "type", msg: "unknown DNS check type"},
	{name: "UDP payload not hex", conf: vsrv("    protocol UDP", "        UDP_CHECK {\n            payload zz # <-\n        }\n"), sev: Error, kw: "payload", msg: "not hexadecimal"},
	{name: "real server weight negative", conf: vsrv("", "        weight -1 # <-\n"), sev: Error, kw: "weight", msg: "outside range [0, 2147483647]"},
	{name: "sorry_server_inhibit before sorry_server", conf: vsrv("    sorry_server_inhibit # <-", ""), sev: Error, kw: "sorry_server_inhibit", msg: "before or without sorry_server"},
	{name: "invalid virtual server address", conf: "virtual_server 198.18.0.x 80 { # <-\n    lvs_sched rr\n}\n", sev: Error, kw: "virtual_server", msg: "invalid IP address"},
	{name: "bad virtual_server_group range", conf: "virtual_server_group G {\n    198.18.0.10-9 80 # <-\n}\n" + vi(""), sev: Error, msg: "invalid address or range"},

	// deprecations keepalived 2.2 warns about
	{name: "nb_get_retry is deprecated (seed 000)", conf: vsrv("", "        HTTP_GET {\n            url {\n                path /\n            }\n            nb_get_retry 3 # <-\n        }\n"), sev: Warning, kw: "nb_get_retry", msg: "deprecated", hint: "use 'retry'"},
	{name: "route gw is deprecated", conf: vi("    virtual_routes {\n        198.18.5.0/24 gw 198.18.0.1 dev eth0 # <-\n    }"), sev: Warning, msg: `"gw" for routes is deprecated`},
	{name: "global_tracking is deprecated", conf: vi("") + strings.Replace(vi(""), "VI_1", "VI_2", 1) + "vrrp_sync_group G {\n    group {\n        VI_1\n        VI_2\n    }\n    global_tracking # <-\n}\n", sev: Warning, kw: "global_tracking", msg: "deprecated"},
	{name: "unicast keyword without peers", conf: vi("    unicast_src_ip 198.18.0.11 # <-"), sev: Warning, kw: "unicast_src_ip", msg: "without any unicast peers"},
	{name: "vrrp_iptables is not supported by Debian's keepalived", conf: gdefs("    vrrp_iptables # <-"), sev: Warning, kw: "vrrp_iptables", msg: "iptables not supported"},

	// whole-configuration checks
	{name: "instance without VRID", conf: "vrrp_instance VI_1 { # <-\n    interface eth0\n    virtual_ipaddress {\n        198.18.0.100\n    }\n}\n", sev: Error, kw: "virtual_router_id", msg: "must be set"},
	{name: "instance without interface", conf: "vrrp_instance VI_1 { # <-\n    virtual_router_id 5\n    virtual_ipaddress {\n        198.18.0.100\n    }\n}\n", sev: Error, kw: "interface", msg: "unknown interface"},
	{name: "unicast instance without interface", conf: "vrrp_instance VI_1 { # <-\n    virtual_router_id 5\n    unicast_src_ip 198.18.0.11\n    unicast_peer {\n        198.18.0.12\n    }\n    virtual_ipaddress {\n        198.18.0.100\n    }\n}\n", sev: Error, kw: "interface", msg: "unknown interface"},
	{name: "SSL setting given twice", conf: "SSL {\n    key /a.key\n    key /b.key # <-\n}\n" + vi(""), sev: Warning, kw: "key", msg: "already specified"},
	{name: "instance without VIP", conf: "vrrp_instance VI_1 { # <-\n    interface eth0\n    virtual_router_id 5\n}\n", sev: Warning, kw: "virtual_ipaddress", msg: "no VIP specified"},
	{name: "duplicate VRID", conf: vi("") + strings.Replace(strings.Replace(vi(""), "VI_1", "VI_2", 1), "198.18.0.100", "198.18.0.101", 1), sev: Error, kw: "virtual_router_id", msg: "both use VRID 51"},
	{name: "duplicate instance name", conf: vi("") + strings.Replace(vi(""), "VI_1 {", "VI_1 { # <-", 1), sev: Error, kw: "vrrp_instance", msg: "already defined"},
	{name: "unknown track script", conf: vi("    track_script {\n        chk_nginx # <-\n    }"), sev: Error, kw: "chk_nginx", msg: "track script chk_nginx not found"},
	{name: "vrrp_script without script", conf: "vrrp_script chk { # <-\n    interval 2\n}\n" + vi(""), sev: Error, kw: "vrrp_script", msg: "no script set"},
	{name: "sync group with unknown instance", conf: vi("") + "vrrp_sync_group G { # <-\n    group {\n        VI_1\n        VI_9\n    }\n}\n", sev: Error, kw: "group", msg: "VI_9 specified but not found"},
	{name: "sync group members outside group block (sample lvs_syncd)", conf: vi("") + "vrrp_sync_group G { # <-\n    VI_1\n}\n", sev: Error, kw: "vrrp_sync_group", msg: "no virtual router"},
	{name: "weighted track script in a sync group", conf: "vrrp_script chk {\n    script /nonexistent/chk\n    weight 10\n}\n" + vi("    track_script {\n        chk # <-\n    }") + strings.Replace(strings.Replace(vi(""), "VI_1", "VI_2", 1), "51", "52", 1) + "vrrp_sync_group G {\n    group {\n        VI_1\n        VI_2\n    }\n}\n", sev: Warning, kw: "chk", msg: "with weights due to SYNC group"},
	{name: "weighted tracking on the address owner", conf: vi("    priority 255\n    track_interface {\n        eth1 weight -20 # <-\n    }"), sev: Warning, kw: "eth1", msg: "due to address owner"},
	{name: "missing value that keepalived reports without aborting", conf: gdefs("    router_id # <-"), sev: Error, kw: "router_id", msg: "without a value"},
	{name: "missing value that keepalived accepts", conf: gdefs("    smtp_helo_name # <-"), sev: Notice, kw: "smtp_helo_name", msg: "without a value"},
	{name: "quorum above the total weight", conf: strings.Replace(vsrv("    quorum 5", ""), "198.18.0.100 80 {", "198.18.0.100 80 { # <-", 1), sev: Warning, kw: "quorum", msg: "exceeds total weight"},
	{name: "AH with state MASTER", conf: vi("    state MASTER # <-\n    priority 100\n    authentication {\n        auth_type AH\n        auth_pass secret\n    }"), sev: Warning, kw: "state", msg: "incompatible with AH"},
	{name: "strict mode with MASTER below 255", conf: "global_defs {\n    vrrp_strict\n}\n" + strings.Replace(vi("    state MASTER\n    priority 100"), "VI_1 {", "VI_1 { # <-", 1), sev: Warning, kw: "state", msg: "must match being address owner"},
	{name: "virtual server without protocol", conf: "virtual_server 198.18.0.100 80 { # <-\n    lvs_sched rr\n    lvs_method NAT\n}\n", sev: Warning, kw: "protocol", msg: "no protocol set - defaulting to UDP"},
	{name: "virtual server without scheduler", conf: "virtual_server 198.18.0.100 80 { # <-\n    lvs_method NAT\n    protocol TCP\n}\n", sev: Warning, kw: "lvs_sched", msg: "no scheduler set"},
	{name: "virtual server without method", conf: "virtual_server 198.18.0.100 80 { # <-\n    lvs_sched rr\n    protocol TCP\n}\n", sev: Warning, kw: "lvs_method", msg: "no forwarding method"},
	{name: "virtual server without port", conf: strings.Replace(vsrv("", ""), "198.18.0.100 80 {", "198.18.0.100 { # <-", 1), sev: Warning, kw: "virtual_server", msg: "zero port only valid for persistent"},
	{name: "fwmark with protocol", conf: strings.Replace(vsrv("", ""), "198.18.0.100 80 {", "fwmark 1 { # <-", 1), sev: Warning, kw: "protocol", msg: "protocol specified for fwmark"},
	{name: "sh-port without sh", conf: strings.Replace(vsrv("    sh-port", ""), "virtual_server", "virtual_server", 1), sev: Warning, kw: "sh-port", msg: "only applies to the sh scheduler"},
	{name: "HTTP_GET without url", conf: vsrv("", "        HTTP_GET { # <-\n            connect_timeout 3\n        }\n"), sev: Error, kw: "HTTP_GET", msg: "no urls specified", vipdOnly: true}, // keepalived 2.2.7 -t crashes (SIGSEGV) here (compat.md)
	{name: "MISC_CHECK without misc_path", conf: vsrv("", "        MISC_CHECK { # <-\n        }\n"), sev: Error, kw: "MISC_CHECK", msg: "no script path"},
	{name: "unknown virtual_server_group", version: "2.2", conf: "virtual_server group NOPE { # <-\n    lvs_sched rr\n    lvs_method NAT\n    protocol TCP\n}\n", sev: Notice, kw: "virtual_server", msg: "group NOPE not found"},
	{name: "rule without preference", conf: vi("    virtual_rules {\n        from 198.18.0.0/24 table 100 # <-\n    }"), sev: Warning, kw: "from", msg: "no preference"},
	{name: "route without interface cannot be tracked", version: "2.2", conf: vi("    virtual_routes {\n        198.18.9.0/24 via 198.18.0.1 # <-\n    }"), sev: Warning, kw: "virtual_routes", msg: "cannot track route"},

	// the running system
	{name: "interface does not exist", conf: strings.Replace(vi(""), "interface eth0", "interface eth9 # <-", 1), sev: Error, kw: "interface", msg: "interface eth9 for vrrp_instance VI_1 doesn't exist", hint: "dynamic_interfaces"},
	{name: "dynamic_interfaces allows missing interfaces", conf: "global_defs {\n    dynamic_interfaces\n}\n" + strings.Replace(vi(""), "interface eth0", "interface eth9", 1), sev: Notice},
	{name: "tracked interface does not exist", conf: vi("    track_interface {\n        eth7 # <-\n    }"), sev: Error, kw: "track_interface", msg: "eth7"},
	{name: "script as root without script security", conf: vi("    notify_master /bin/true # <-"), sev: Security, kw: "enable_script_security", msg: "SECURITY VIOLATION"},
	{name: "script security without script user", conf: "global_defs { # <-\n    enable_script_security\n}\n" + vi("    notify_master /bin/true"), sev: Warning, kw: "script_user", msg: "keepalived_script"},
	{name: "script security with root script user", conf: "global_defs {\n    enable_script_security\n    script_user root\n}\n" + vi("    notify_master /bin/true"), sev: Notice},
	{name: "missing script is dropped silently", conf: vi("    notify_master /nonexistent/notify.sh # <-"), sev: Notice, msg: "not found"},
	{name: "unknown script_user", conf: "global_defs {\n    script_user nosuchuser # <-\n}\n" + vi(""), sev: Error, kw: "script_user", msg: "does not exist"},

	// vipd: keywords it ignores or refuses, data-plane checks, extensions
	{name: "ignored keyword still checks its value", conf: gdefs("    vrrp_priority -30 # <-"), sev: Error, kw: "vrrp_priority", msg: "outside range [-20, 19]"},
	{name: "ignored boolean keyword still checks its value", conf: gdefs("    data_use_instance maybe # <-"), sev: Error, kw: "data_use_instance", msg: "invalid boolean"},
	{name: "ignored keyword is a notice", conf: gdefs("    checker_no_swap # <-"), sev: Notice, kw: "checker_no_swap", msg: "ignored by vipd"},
	{name: "refused keyword is a notice for -t", conf: vsrv("    persistence_engine sip # <-", ""), sev: Notice, kw: "persistence_engine", msg: "refuses"},
	{name: "refused keyword is an error for the daemon", conf: vsrv("    persistence_engine sip # <-", ""), sev: Error, kw: "persistence_engine", msg: "refuses", dataplane: DataplaneIPVS, vipdOnly: true},
	{name: "bfd_instance without a neighbor", conf: "bfd_instance b1 { # <-\n    min_rx 10\n}\n", sev: Error, kw: "bfd_instance", msg: "has no neighbor address set"},
	{name: "bfd_instance with a bad min_rx", conf: "bfd_instance b1 {\n    neighbor_ip 198.18.0.11\n    min_rx 0.5 # <-\n}\n", sev: Error, kw: "min_rx", msg: "min_rx value 0.5 not valid"},
	{name: "bfd_instance sources of two families", conf: "bfd_instance b1 { # <-\n    neighbor_ip 198.18.0.11\n    source_ip 2001:db8::1\n}\n", sev: Error, kw: "bfd_instance", msg: "are not of the same family"},
	{name: "two bfd_instances to one neighbor", conf: "bfd_instance b1 {\n    neighbor_ip 198.18.0.11\n}\nbfd_instance b2 { # <-\n    neighbor_ip 198.18.0.11\n}\n", sev: Error, kw: "bfd_instance", msg: "duplicate neighbor address 198.18.0.11"},
	{name: "track_bfd naming an unknown bfd_instance", conf: vi("    track_bfd {\n        b9 # <-\n    }"), sev: Error, kw: "b9", msg: "(VI_1) track bfd b9 not found"},
	{name: "BFD_CHECK is accepted", conf: "bfd_instance b1 {\n    neighbor_ip 198.18.0.11\n}\n" + vsrv("", "        BFD_CHECK {\n            name b1\n        }\n"), sev: Notice},
	{name: "BFD_CHECK naming an unknown bfd_instance", conf: vsrv("", "        BFD_CHECK {\n            name b1 # <-\n        }\n"), sev: Error, kw: "name", msg: "BFD b1 not configured"},
	{name: "DR is accepted on the ipvs data plane", conf: strings.Replace(vsrv("", ""), "lvs_method NAT", "lvs_method DR", 1), sev: Notice, dataplane: DataplaneIPVS, vipdOnly: true},
	{name: "DR is accepted by -t", conf: strings.Replace(vsrv("", ""), "lvs_method NAT", "lvs_method DR", 1), sev: Notice},
	{name: "proxy_protocol on ipvs", conf: strings.Replace(vsrv("    proxy_protocol 2", ""), "198.18.0.100 80 {", "198.18.0.100 80 { # <-", 1), sev: Error, kw: "proxy_protocol", msg: "needs the proxy data plane", dataplane: DataplaneIPVS, vipdOnly: true},
	{name: "proxy_protocol version", conf: vsrv("    proxy_protocol 3 # <-", ""), sev: Error, kw: "proxy_protocol", msg: "outside range [1, 2]", vipdOnly: true},
	{name: "keyword of a newer keepalived", conf: gdefs("    vrrp_delay_after_boot 10 # <-"), sev: Error, kw: "vrrp_delay_after_boot", msg: "unknown keyword 'vrrp_delay_after_boot' for keepalived 2.2 (added in keepalived 2.3)", hint: "--keepalived-version 2.4", version: "2.2"},
	{name: "auth_hmac unknown to 2.2", conf: vi("    auth_hmac { # <-\n        key 1 hex:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n        active_key 1\n    }"), sev: Error, kw: "auth_hmac", msg: "unknown keyword 'auth_hmac' for keepalived 2.2", version: "2.2"},
	{name: "auth_hmac valid for 2.4", conf: vi("    auth_hmac {\n        key 1 hex:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n        key 2 0123456789abcdef0123456789abcdef\n        active_key 2\n        anti_replay monotonic\n        time_window 10\n        mode permissive\n    }"), sev: Notice, version: "2.4"},
	{name: "auth_hmac active key undefined", conf: vi("    auth_hmac { # <-\n        key 1 hex:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n        active_key 2\n    }"), sev: Error, kw: "auth_hmac", msg: "(VI_1) auth_hmac active_key 2 is not defined, disabling extension", version: "2.4"},
	{name: "auth_hmac key too short", conf: vi("    auth_hmac {\n        key 1 hex:0001 # <-\n        active_key 1\n    }"), sev: Error, kw: "key", msg: "(VI_1) auth_hmac key 1 length 2 not in range [32, 64]", version: "2.4"},
	{name: "auth_hmac duplicate key", conf: vi("    auth_hmac {\n        key 1 hex:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n        key 1 hex:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f # <-\n        active_key 1\n    }"), sev: Error, kw: "key", msg: "duplicate auth_hmac key id 1", version: "2.4"},
	{name: "auth_hmac bad mode", conf: vi("    auth_hmac {\n        key 1 hex:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n        active_key 1\n        mode strict # <-\n    }"), sev: Error, kw: "mode", msg: "auth_hmac mode 'strict' must be enforce, permissive or receive-only", version: "2.4"},
	{name: "auth_hmac bad time_window", conf: vi("    auth_hmac {\n        key 1 hex:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n        active_key 1\n        time_window 301 # <-\n    }"), sev: Error, kw: "time_window", msg: "must be between 1 and 300 seconds", version: "2.4"},
	{name: "auth_hmac with PASS authentication", conf: gdefs("    vrrp_version 2") + strings.Replace(vi("    authentication {\n        auth_type PASS\n        auth_pass secret\n    }\n    auth_hmac { # <-\n        key 1 hex:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n        active_key 1\n    }"), "vrrp_instance VI_1", "vrrp_instance VI_2", 1), sev: Error, kw: "auth_hmac", msg: "auth_hmac cannot be combined with authentication, dropping legacy auth", version: "2.4"},
	// keepalived 2.4.3 judges these differently from 2.2.7.
	{name: "duplicate VIP as 2.4", conf: vi("    virtual_ipaddress {\n        198.18.0.100/24 # <-\n    }"), sev: Error, kw: "198.18.0.100/24", msg: "(VI_1): VIP duplicates a VIP 198.18.0.100/24 - ignoring", version: "2.4"},
	{name: "duplicate VIP as 2.2", conf: vi("    virtual_ipaddress {\n        198.18.0.100/24\n    }"), sev: Notice, version: "2.2"},
	{name: "virtual server without real servers as 2.4", conf: "virtual_server 198.18.0.100 80 { # <-\n    lvs_sched rr\n    lvs_method NAT\n    protocol TCP\n}\n", sev: Error, kw: "virtual_server", msg: "has no real servers - ignoring", version: "2.4"},
	{name: "notification_email_from with two words as 2.4", conf: gdefs("    notification_email_from a@b c # <-"), sev: Error, kw: "notification_email_from", msg: "emailfrom - ignoring extra entries 'c' ...", version: "2.4"},
	{name: "old_unicast_checksum bad mode", conf: vi("    unicast_peer {\n        198.18.0.12\n    }\n    old_unicast_checksum always # <-"), sev: Error, kw: "old_unicast_checksum", msg: "Unknown old_unicast_chksum mode always - ignoring"},
	{name: "vipd_dataplane value", conf: gdefs("    vipd_dataplane bpf # <-"), sev: Error, kw: "vipd_dataplane", msg: "unknown data plane", vipdOnly: true},
}

// markedLine returns the number of the line containing "# <-", or 0.
func markedLine(conf string) int {
	for i, l := range strings.Split(conf, "\n") {
		if strings.Contains(l, "# <-") {
			return i + 1
		}
	}
	return 0
}

func TestDiagnostics(t *testing.T) {
	for _, tc := range diagCases {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{ConfigID: "test", Dataplane: tc.dataplane, Limits: Limits{MaxLines: 100000}, KeepalivedVersion: tc.version}
			if !tc.noHost {
				opts.Host = newFakeHost()
			}
			_, diags := Parse("test.conf", []byte(tc.conf), opts)
			if tc.sev == Notice && tc.msg == "" {
				if diags.HasProblems() {
					t.Fatalf("want no problems, got:\n%s", diags)
				}
				return
			}
			line := markedLine(tc.conf)
			var found *Diagnostic
			for i, d := range diags {
				if d.Severity == tc.sev && strings.Contains(d.Msg, tc.msg) && (tc.kw == "" || d.Keyword == tc.kw) && strings.Contains(d.Hint, tc.hint) {
					found = &diags[i]
					break
				}
			}
			if found == nil {
				t.Fatalf("want %v %q %q (hint %q) at line %d; got:\n%s", tc.sev, tc.kw, tc.msg, tc.hint, line, diags)
			}
			if line != 0 && found.Pos.Line != line {
				t.Errorf("diagnostic at line %d, want %d: %s", found.Pos.Line, line, found)
			}
			if line != 0 && found.Pos.File != "test.conf" {
				t.Errorf("diagnostic names file %q, want test.conf", found.Pos.File)
			}
			if tc.sev > Notice && found.Hint == "" && tc.kw != "" {
				t.Errorf("diagnostic without a hint: %s", found)
			}
			// the formatted message names file:line and the keyword
			s := found.String()
			if line != 0 && !strings.HasPrefix(s, "test.conf:") {
				t.Errorf("String() = %q, want a file:line prefix", s)
			}
		})
	}
}

func TestDiagnosticString(t *testing.T) {
	d := Diagnostic{Pos: Pos{File: "k.conf", Line: 7}, Severity: Error, Keyword: "status", Msg: "unknown keyword 'status' in url", Hint: "did you mean 'status_code'?"}
	want := "k.conf:7: error: status: unknown keyword 'status' in url (did you mean 'status_code'?)"
	if got := d.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		name string
		sevs []Diagnostic
		want int
	}{
		{"nothing", nil, 0},
		{"notices only", []Diagnostic{{Severity: Notice}}, 0},
		{"warning", []Diagnostic{{Severity: Notice}, {Severity: Warning}}, 5},
		{"error", []Diagnostic{{Severity: Error}}, 5},
		{"security beats errors", []Diagnostic{{Severity: Error}, {Severity: Security}, {Severity: Warning}}, 6},
		{"missing parameter beats all", []Diagnostic{{Severity: Security}, {Severity: Fatal, Exit: ExitProgramError}}, 2},
		{"no configuration", []Diagnostic{{Severity: Fatal, Exit: ExitNoConfig}}, 7},
		{"fatal", []Diagnostic{{Severity: Fatal}, {Severity: Error}}, 4},
	}
	for _, tc := range tests {
		if got := Diagnostics(tc.sevs).ExitCode(); got != tc.want {
			t.Errorf("%s: ExitCode() = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	cfg, diags := Load("/nonexistent/keepalived.conf", Options{ConfigID: "x"})
	if cfg != nil || diags.ExitCode() != ExitNoConfig || !strings.Contains(diags.String(), "/nonexistent/keepalived.conf") {
		t.Fatalf("Load of a missing file: cfg=%v diags=%s", cfg, diags)
	}
	_ = os.ErrNotExist
}

// TestMasterWithoutPriority checks keepalived's rule that state MASTER
// without a priority makes the instance the address owner.
func TestMasterWithoutPriority(t *testing.T) {
	for _, tc := range []struct {
		body string
		want int
	}{
		{"    state MASTER", 255},
		{"    state MASTER\n    priority 150", 150},
		{"    state BACKUP", 100},
		{"", 100},
	} {
		cfg, _ := Parse("t.conf", []byte(vi(tc.body)), Options{ConfigID: "x"})
		if got := cfg.Instances[0].Priority; got != tc.want {
			t.Errorf("%q: priority %d, want %d", tc.body, got, tc.want)
		}
	}
}
