package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		args []string
		want func(o Options) bool
		err  string
	}{
		{nil, func(o Options) bool {
			return o.ConfigFile == "/etc/keepalived/keepalived.conf" && o.Control == "/run/vipd/vipd.sock" && !o.ConfigTest
		}, ""},
		{[]string{"-t", "-f", "/tmp/k.conf"}, func(o Options) bool { return o.ConfigTest && o.ConfigFile == "/tmp/k.conf" }, ""},
		{[]string{"-f/tmp/k.conf"}, func(o Options) bool { return o.ConfigFile == "/tmp/k.conf" }, ""},
		{[]string{"--use-file=/tmp/k.conf", "--config-test"}, func(o Options) bool { return o.ConfigTest && o.ConfigFile == "/tmp/k.conf" }, ""},
		{[]string{"--use-file", "/tmp/k.conf"}, func(o Options) bool { return o.ConfigFile == "/tmp/k.conf" }, ""},
		{[]string{"--config-test=/tmp/log"}, func(o Options) bool { return o.ConfigTest && o.ConfigTestLog == "/tmp/log" }, ""},
		{[]string{"-nlD"}, func(o Options) bool { return o.DontFork && o.LogConsole && o.LogDetail }, ""},
		{[]string{"-nlDf", "/x"}, func(o Options) bool { return o.DontFork && o.ConfigFile == "/x" }, ""},
		{[]string{"-i", "lb1", "-p", "/run/p", "-r", "/run/r", "-c", "/run/c"}, func(o Options) bool {
			return o.ConfigID == "lb1" && o.PIDFile == "/run/p" && o.VRRPPIDFile == "/run/r" && o.CheckPIDFile == "/run/c"
		}, ""},
		{[]string{"--config-id", "lb2", "-d"}, func(o Options) bool { return o.ConfigID == "lb2" && o.DumpConf }, ""},
		{[]string{"-P"}, func(o Options) bool { return o.VRRPOnly }, ""},
		{[]string{"--check"}, func(o Options) bool { return o.CheckOnly }, ""},
		{[]string{"--dataplane", "ipvs", "--control", "/tmp/s", "--metrics", "127.0.0.1:9650"}, func(o Options) bool {
			return o.Dataplane == "ipvs" && o.Control == "/tmp/s" && o.Metrics == "127.0.0.1:9650"
		}, ""},
		{[]string{"--dataplane=xdp"}, func(o Options) bool { return o.Dataplane == "xdp" }, ""},
		{[]string{"--dataplane=bpf"}, nil, "--dataplane must be"},
		{[]string{"-P", "-C"}, nil, "exclude each other"},
		{[]string{"-x"}, nil, "unknown option -x"},
		{[]string{"--nope"}, nil, "unknown option --nope"},
		{[]string{"-f"}, nil, "needs FILE"},
		{[]string{"--dont-fork=yes"}, nil, "takes no value"},
		{[]string{"stray"}, nil, "unexpected argument"},
	}
	for _, tc := range tests {
		o, err := parseArgs(tc.args)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseArgs(%q) error = %v, want %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil || !tc.want(o) {
			t.Errorf("parseArgs(%q) = %+v, %v", tc.args, o, err)
		}
	}
}

// TestHelpIsComplete checks that --help names every option, both forms.
func TestHelpIsComplete(t *testing.T) {
	var out bytes.Buffer
	if code := realMain([]string{"--help"}, &out, &out); code != 0 {
		t.Fatalf("--help exits %d", code)
	}
	help := out.String()
	for _, op := range options {
		if !strings.Contains(help, "--"+op.long) {
			t.Errorf("--help lacks --%s", op.long)
		}
		if op.short != 0 && !strings.Contains(help, "-"+string(op.short)+", ") {
			t.Errorf("--help lacks -%c", op.short)
		}
		if op.help == "" {
			t.Errorf("--%s has no help text", op.long)
		}
	}
}

func writeConf(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "keepalived.conf")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// The interface is lo so that the checks pass on any machine.
const validConf = `global_defs {
    router_id test-lb
}
vrrp_instance VI_1 {
    interface lo
    virtual_router_id 51
    virtual_ipaddress {
        198.18.0.100/32
    }
}
`

const hmacBlock = "    auth_hmac {\n        key 1 hex:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n        active_key 1\n    }\n"

// TestKeepalivedVersionFlag: only the versions vipd is tested against.
func TestKeepalivedVersionFlag(t *testing.T) {
	path := writeConf(t, validConf)
	var stdout, stderr bytes.Buffer
	if code := realMain([]string{"-t", "-f", path, "--keepalived-version", "2.3"}, &stdout, &stderr); code == 0 || !strings.Contains(stderr.String(), "2.2 or 2.4") {
		t.Errorf("--keepalived-version 2.3: exit %d, stderr %q", code, stderr.String())
	}
}

func TestConfigTest(t *testing.T) {
	tests := []struct {
		name   string
		conf   string
		args   []string
		code   int
		stderr string
	}{
		{"valid", validConf, nil, 0, ""},
		{"unknown keyword", strings.Replace(validConf, "router_id", "routerid", 1), nil, 5, "did you mean 'router_id'?"},
		{"missing parameter", strings.Replace(validConf, "virtual_router_id 51", "virtual_router_id", 1), nil, 2, "missing parameter"},
		{"deprecated keyword", validConf + "virtual_server 198.18.0.100 80 {\n lb_algo rr\n lb_kind DR\n protocol TCP\n real_server 198.18.0.2 80 {\n  HTTP_GET {\n   url {\n    path /\n   }\n   nb_get_retry 3\n  }\n }\n}\n", nil, 5, "'nb_get_retry' is deprecated"},
		{"DR judged as keepalived", validConf + "virtual_server 198.18.0.100 80 {\n lvs_sched rr\n lvs_method DR\n protocol TCP\n real_server 198.18.0.2 80 {\n }\n}\n", nil, 0, ""},
		{"DR on the proxy data plane", validConf + "virtual_server 198.18.0.100 80 {\n lvs_sched rr\n lvs_method DR\n protocol TCP\n real_server 198.18.0.2 80 {\n }\n}\n", []string{"--dataplane", "proxy"}, 4, "--dataplane ipvs"},
		{"DR mh on xdp", validConf + xdpVS("mh", "DR", ""), []string{"--dataplane", "xdp"}, 0, ""},
		{"NAT on xdp", validConf + xdpVS("mh", "NAT", ""), []string{"--dataplane", "xdp"}, 4, "lvs_method NAT is not supported by the xdp data plane"},
		{"NAT on xdp hints", validConf + xdpVS("mh", "NAT", ""), []string{"--dataplane", "xdp"}, 4, "--dataplane proxy (userspace) or --dataplane ipvs (kernel)"},
		{"TUN on xdp", validConf + xdpVS("mh", "TUN", ""), []string{"--dataplane", "xdp"}, 0, ""},
		{"TUN GUE on xdp", validConf + xdpVS("mh", "TUN type gue port 6080", ""), []string{"--dataplane", "xdp"}, 0, ""},
		{"TUN GUE csum on xdp", validConf + xdpVS("mh", "TUN type gue port 6080 csum", ""), []string{"--dataplane", "xdp"}, 4, "GUE with a port and without checksum options (not GRE"},
		{"TUN GRE on xdp", validConf + xdpVS("mh", "TUN type gre", ""), []string{"--dataplane", "xdp"}, 4, "GUE with a port and without checksum options (not GRE"},
		{"DR port change on xdp", validConf + strings.Replace(xdpVS("mh", "DR", ""), "real_server 198.18.0.2 80", "real_server 198.18.0.2 8080", 1), []string{"--dataplane", "xdp"}, 4, "cannot change the port"},
		{"wlc on xdp", validConf + xdpVS("wlc", "DR", ""), []string{"--dataplane", "xdp"}, 4, "use lvs_sched mh"},
		{"proxy_protocol on xdp", validConf + xdpVS("mh", "DR", " proxy_protocol 2\n"), []string{"--dataplane", "xdp"}, 4, "proxy_protocol needs the proxy data plane"},
		{"persistence on xdp", validConf + xdpVS("mh", "DR", " persistence_timeout 300\n"), []string{"--dataplane", "xdp"}, 0, ""},
		{"vipd_dataplane xdp in the file", strings.Replace(validConf, "router_id test-lb", "router_id test-lb\n    vipd_dataplane xdp", 1) + xdpVS("rr", "DR", ""), nil, 4, "lvs_sched rr is not supported by the xdp data plane"},
		{"vipd_dataplane in the file", strings.Replace(validConf, "router_id test-lb", "router_id test-lb\n    vipd_dataplane proxy", 1) + "virtual_server fwmark 1 {\n lvs_sched rr\n lvs_method NAT\n real_server 198.18.0.2 80 {\n }\n}\n", nil, 4, "firewall-mark services need the ipvs data plane"},
		// What the daemon refuses, vipd -t refuses: the data plane's own
		// check judges every virtual server for both.
		{"port 0 on the proxy data plane", validConf + "virtual_server 198.18.0.100 0 {\n lvs_sched rr\n lvs_method NAT\n protocol TCP\n persistence_timeout 60\n real_server 198.18.0.2 80 {\n }\n}\n", []string{"--dataplane", "proxy"}, 4, "port 0 (all ports) needs the ipvs data plane (run with --dataplane ipvs"},
		// Judged as the keepalived in use: 2.2.7 does not know auth_hmac.
		{"auth_hmac judged as 2.2", strings.Replace(validConf, "    interface lo\n", "    interface lo\n"+hmacBlock, 1), nil, 5, "unknown keyword 'auth_hmac' for keepalived 2.2 (added in keepalived 2.4)"},
		{"auth_hmac judged as 2.2 explicitly", strings.Replace(validConf, "    interface lo\n", "    interface lo\n"+hmacBlock, 1), []string{"--keepalived-version", "2.2"}, 5, "--keepalived-version 2.4"},
		{"auth_hmac judged as 2.4", strings.Replace(validConf, "    interface lo\n", "    interface lo\n"+hmacBlock, 1), []string{"--keepalived-version", "2.4"}, 0, ""},
		{"auth_hmac judged as 2.4.3", strings.Replace(validConf, "    interface lo\n", "    interface lo\n"+hmacBlock, 1), []string{"--keepalived-version=2.4.3"}, 0, ""},
		{"config id", strings.Replace(validConf, "    virtual_router_id 51\n", "    @lb1 virtual_router_id 51\n    @^lb1 virtual_router_id 52\n", 1), []string{"-i", "lb1"}, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConf(t, tc.conf)
			var stdout, stderr bytes.Buffer
			code := realMain(append([]string{"-t", "-f", path}, tc.args...), &stdout, &stderr)
			if code != tc.code || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("vipd -t exits %d, want %d; stderr:\n%s", code, tc.code, stderr.String())
			}
			if code != 0 && !strings.Contains(stderr.String(), path+":") {
				t.Errorf("diagnostics do not name %s:LINE:\n%s", path, stderr.String())
			}
		})
	}
}

func TestConfigTestMissingFile(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := realMain([]string{"-t", "-f", "/nonexistent/keepalived.conf"}, &stdout, &stderr); code != 7 {
		t.Errorf("vipd -t on a missing file exits %d, want 7; %s", code, stderr.String())
	}
}

func TestConfigTestLogFile(t *testing.T) {
	path := writeConf(t, strings.Replace(validConf, "router_id", "routerid", 1))
	log := filepath.Join(t.TempDir(), "check.log")
	var stdout, stderr bytes.Buffer
	if code := realMain([]string{"--config-test=" + log, "-f", path}, &stdout, &stderr); code != 5 {
		t.Fatalf("exit %d", code)
	}
	data, err := os.ReadFile(log)
	if err != nil || !strings.Contains(string(data), "routerid") || stderr.Len() != 0 {
		t.Errorf("log %q (%v), stderr %q", data, err, stderr.String())
	}
}

func TestDumpConf(t *testing.T) {
	path := writeConf(t, validConf)
	var stdout, stderr bytes.Buffer
	if code := realMain([]string{"-d", "-f", path}, &stdout, &stderr); code != 0 {
		t.Fatalf("vipd -d exits %d: %s", code, stderr.String())
	}
	var m struct {
		Global struct {
			RouterID string `json:"router_id"`
		} `json:"global"`
		Instances []struct {
			Name      string `json:"name"`
			VRID      int    `json:"virtual_router_id"`
			Priority  int    `json:"priority"`
			AdvertInt string `json:"advert_int"`
		} `json:"vrrp_instances"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &m); err != nil {
		t.Fatalf("-d output is not JSON: %v\n%s", err, stdout.String())
	}
	if m.Global.RouterID != "test-lb" || len(m.Instances) != 1 || m.Instances[0].VRID != 51 || m.Instances[0].Priority != 100 || m.Instances[0].AdvertInt != "1s" {
		t.Errorf("dump: %+v", m)
	}
}

// xdpVS is a virtual server with the given scheduler and method, and
// extra lines.
func xdpVS(sched, method, extra string) string {
	return "virtual_server 198.18.0.100 80 {\n lvs_sched " + sched + "\n lvs_method " + method + "\n protocol TCP\n" + extra + " real_server 198.18.0.2 80 {\n }\n}\n"
}
