package config

import (
	"testing"
	"time"
)

// TestCheckerTiming: the levels (virtual_server, real_server, checker)
// and keepalived's defaults per checker type, resolved once in the model
// (what vipd -d prints and the daemon runs).
func TestCheckerTiming(t *testing.T) {
	s := func(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
	type timing struct {
		DelayLoop, DelayBeforeRetry, Warmup, ConnectTimeout time.Duration
		Retry                                               int
		Alpha                                               bool
	}
	tests := []struct {
		name       string
		vs, rs, ck string // lines at each level
		checker    string
		want       timing
	}{
		{"defaults TCP", "", "", "", "TCP_CHECK", timing{s(60), s(1), s(60), s(5), 1, false}},
		{"defaults HTTP", "", "", "url { path / }", "HTTP_GET", timing{s(60), s(3), s(60), s(5), 1, false}},
		{"defaults DNS follow delay_loop", "delay_loop 6", "", "", "DNS_CHECK", timing{s(6), s(6), s(6), s(5), 3, false}},
		{"defaults MISC", "delay_loop 6", "", "misc_path /bin/true", "MISC_CHECK", timing{s(6), s(1), s(6), s(5), 0, false}},
		{"FILE has no retry and no warmup", "delay_loop 6\n retry 5\n warmup 3", "", "track_file F", "FILE_CHECK", timing{s(6), s(1), 0, s(5), 0, false}},
		{"checker over real_server over virtual_server",
			"delay_loop 10\n retry 2\n delay_before_retry 2\n warmup 1\n connect_timeout 3\n alpha",
			"delay_loop 6\n retry 4\n alpha no",
			"retry 7\n connect_timeout 0.5", "TCP_CHECK",
			timing{s(6), s(2), s(1), s(0.5), 7, false}},
		{"warmup 0 disables", "warmup 0", "", "", "TCP_CHECK", timing{s(60), s(1), 0, s(5), 1, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "track_file F {\n file /tmp/vipd-timing-test\n}\nvirtual_server 198.18.0.100 80 {\n lb_kind NAT\n protocol TCP\n " + tt.vs +
				"\n real_server 198.18.0.21 80 {\n " + tt.rs + "\n " + tt.checker + " {\n " + tt.ck + "\n }\n }\n}\n"
			c, diags := Parse("t.conf", []byte(src), Options{})
			for _, d := range diags {
				if d.Severity >= Error {
					t.Fatalf("%s\n%s", d, src)
				}
			}
			ck := c.VirtualServers[0].RealServers[0].Checkers[0]
			got := timing{ck.DelayLoop, ck.DelayBeforeRetry, ck.Warmup, ck.ConnectTimeout, ck.Retry, ck.Alpha}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
