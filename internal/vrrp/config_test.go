package vrrp

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func baseInstance() InstanceConfig {
	return InstanceConfig{Name: "VI_1", Interface: "eth0", VRID: 51, Priority: 100,
		VIPs: []VIP{{Prefix: netip.MustParsePrefix("198.18.0.100/24")}}}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*Config)
		problem string // "" = valid
		warning string
	}{
		{"valid", func(*Config) {}, "", ""},
		{"no name", func(c *Config) { c.Instances[0].Name = "" }, "no name", ""},
		{"duplicate name", func(c *Config) { c.Instances = append(c.Instances, c.Instances[0]) }, "duplicate name", ""},
		{"vrid 0", func(c *Config) { c.Instances[0].VRID = 0 }, "virtual_router_id 0 outside 1..255", ""},
		{"vrid 256", func(c *Config) { c.Instances[0].VRID = 256 }, "virtual_router_id 256", ""},
		{"priority 256", func(c *Config) { c.Instances[0].Priority = 256 }, "priority 256", ""},
		{"no interface", func(c *Config) { c.Instances[0].Interface = "" }, "no interface", ""},
		{"v2 fractional interval", func(c *Config) { c.Instances[0].AdvertInt = 1500 * time.Millisecond }, "VRRPv2 carries whole seconds", ""},
		{"v3 0.02 s fine", func(c *Config) { c.Instances[0].Version, c.Instances[0].AdvertInt = 3, 20*time.Millisecond }, "", ""},
		{"IPv6 in v2", func(c *Config) {
			c.Instances[0].Version = 2
			c.Instances[0].VIPs = []VIP{{Prefix: netip.MustParsePrefix("fd00::1/64")}}
		}, "VRRPv2 has no IPv6", ""},
		{"IPv6 defaults to v3", func(c *Config) { c.Instances[0].VIPs = []VIP{{Prefix: netip.MustParsePrefix("fd00::1/64")}} }, "", ""},
		{"mixed families", func(c *Config) {
			c.Instances[0].VIPs = append(c.Instances[0].VIPs, VIP{Prefix: netip.MustParsePrefix("fd00::1/64")})
		}, "every address must be of one family", ""},
		{"AH refused", func(c *Config) { c.Instances[0].AuthType, c.Instances[0].AuthPass = "AH", "x" }, "IPsec AH) is not supported", ""},
		{"PASS with v3", func(c *Config) {
			c.Instances[0].Version, c.Instances[0].AuthType, c.Instances[0].AuthPass = 3, "PASS", "x"
		}, "authentication is not part of VRRPv3", ""},
		{"PASS without password", func(c *Config) { c.Instances[0].AuthType = "PASS" }, "without auth_pass", ""},
		{"long password truncated", func(c *Config) { c.Instances[0].AuthType, c.Instances[0].AuthPass = "PASS", "123456789" }, "", "truncated to 8"},
		{"bad state", func(c *Config) { c.Instances[0].State = "LEADER" }, `state "LEADER"`, ""},
		{"duplicate VRID on an interface", func(c *Config) {
			o := c.Instances[0]
			o.Name = "VI_2"
			c.Instances = append(c.Instances, o)
		}, "virtual_router_id 51 already used by VI_1 on eth0", ""},
		{"unknown script", func(c *Config) { c.Instances[0].TrackScripts = []TrackRef{{Name: "nope"}} }, `track_script "nope" is not defined`, ""},
		{"script weight range", func(c *Config) {
			c.Scripts = []ScriptConfig{{Name: "s", Script: "true", Weight: 300}}
		}, "weight 300 outside -253..253", ""},
		{"unknown group member", func(c *Config) { c.Groups = []GroupConfig{{Name: "G", Instances: []string{"VI_9"}}} }, `vrrp_instance "VI_9" is not defined`, ""},
		{"member of two groups", func(c *Config) {
			c.Groups = []GroupConfig{{Name: "G", Instances: []string{"VI_1"}}, {Name: "H", Instances: []string{"VI_1"}}}
		}, "already in sync group G", ""},
		{"nopreempt with state MASTER", func(c *Config) { c.Instances[0].State, c.Instances[0].NoPreempt = "MASTER", true }, "",
			"(VI_1) Warning - nopreempt will not work with initial state MASTER - clearing"},
		{"nopreempt with priority 255", func(c *Config) { c.Instances[0].Priority, c.Instances[0].NoPreempt = 255, true }, "",
			"(VI_1) nopreempt is incompatible with priority 255 - resetting nopreempt"},
		{"strict: no VIPs", func(c *Config) { c.Instances[0].Strict, c.Instances[0].VIPs = true, nil }, "vrrp_strict: at least one virtual_ipaddress", ""},
		{"strict: unicast", func(c *Config) {
			c.Instances[0].Strict, c.Instances[0].UnicastPeers = true, []netip.Addr{netip.MustParseAddr("198.18.0.12")}
		}, "vrrp_strict: unicast_peer is not allowed", ""},
		{"strict: auth", func(c *Config) {
			c.Instances[0].Strict, c.Instances[0].AuthType, c.Instances[0].AuthPass = true, "PASS", "x"
		}, "vrrp_strict: authentication is not allowed", ""},
		{"strict: MASTER without 255", func(c *Config) { c.Instances[0].Strict, c.Instances[0].State = true, "MASTER" }, "",
			"(VI_1): Cannot start in MASTER state if not address owner"},
		{"strict: preempt_delay", func(c *Config) { c.Instances[0].Strict, c.Instances[0].PreemptDelay = true, time.Second }, "",
			"(VI_1) preempt_delay is incompatible with strict mode - resetting"},
		{"strict: first IPv6 VIP link local", func(c *Config) {
			c.Instances[0].Strict = true
			c.Instances[0].VIPs = []VIP{{Prefix: netip.MustParsePrefix("fd00::1/64")}}
		}, "the first IPv6 VIP must be link local", ""},
		{"unicast peer family", func(c *Config) { c.Instances[0].UnicastPeers = []netip.Addr{netip.MustParseAddr("fd00::2")} }, "not of the instance's address family", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Instances: []InstanceConfig{baseInstance()}}
			tt.mod(&c)
			warns, err := c.Validate()
			switch {
			case tt.problem == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.problem != "" && (err == nil || !strings.Contains(err.Error(), tt.problem)):
				t.Fatalf("error %v, want one containing %q", err, tt.problem)
			}
			if tt.warning != "" && !strings.Contains(strings.Join(warns, "\n"), tt.warning) {
				t.Fatalf("warnings %q, want %q", warns, tt.warning)
			}
		})
	}
}

func TestStrictAdjustsBehaviour(t *testing.T) {
	c := Config{Instances: []InstanceConfig{baseInstance()}}
	c.Instances[0].Strict = true
	if _, err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	mc := c.Instances[0].machineConfig()
	if !mc.LowerPrioNoAdvert || mc.GARPLowerPrioRepeat != 0 {
		t.Fatalf("strict mode must follow the RFC on lower priority adverts: %+v", mc)
	}
}

func TestMachineConfigDefaults(t *testing.T) {
	in := InstanceConfig{Name: "VI_1", Interface: "eth0", VRID: 7, VIPs: []VIP{{Prefix: netip.MustParsePrefix("198.18.0.100/24")}},
		AuthType: "PASS", AuthPass: "secret1234"}
	mc := in.machineConfig()
	if mc.Version != 2 || mc.Priority != 100 || mc.AdvertInt != time.Second || mc.GARPMasterRepeat != 5 ||
		mc.GARPMasterDelay != 5*time.Second || mc.GARPLowerPrioRepeat != 5 || mc.GARPLowerPrioDelay != 5*time.Second ||
		mc.GARPMasterRefresh != 0 || mc.AuthType != AuthPass || string(mc.AuthPass[:]) != "secret12" {
		t.Fatalf("defaults %+v", mc)
	}
	zero := 0
	in.GARPMasterDelay = new(time.Duration)
	in.GARPMasterRepeat = &zero
	mc = in.machineConfig()
	if mc.GARPMasterDelay != 0 || mc.GARPMasterRepeat != 0 || mc.GARPLowerPrioRepeat != 0 {
		t.Fatalf("explicit zeros: %+v", mc)
	}
}

func TestValidateDoesNotModifyCallersConfig(t *testing.T) {
	c := Config{Instances: []InstanceConfig{baseInstance()}}
	c.Instances[0].State, c.Instances[0].NoPreempt = "MASTER", true
	if _, err := New(c, Deps{}); err != nil {
		t.Fatal(err)
	}
	if !c.Instances[0].NoPreempt {
		t.Fatal("New changed the caller's configuration")
	}
}

func TestSplitScript(t *testing.T) {
	tests := map[string][]string{
		"/bin/true":                     {"/bin/true"},
		"  /usr/bin/test  -f  /tmp/x  ": {"/usr/bin/test", "-f", "/tmp/x"},
		"/bin/sh -c 'exit 1'":           {"/bin/sh", "-c", "exit 1"},
		"/bin/echo ''":                  {"/bin/echo", ""},
	}
	for in, want := range tests {
		got := splitScript(in)
		if strings.Join(got, "|") != strings.Join(want, "|") || len(got) != len(want) {
			t.Errorf("splitScript(%q) = %q, want %q", in, got, want)
		}
	}
}
