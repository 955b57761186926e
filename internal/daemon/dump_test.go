package daemon

import (
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/check"
	"github.com/vipd/vipd/internal/config"
)

// TestDumpIsWhatRuns: for every checker type, the timing `vipd -d` prints
// (config.Dump of the model) is the timing the daemon hands the checkers,
// field by field. A default applied in one place and not the other (as
// FILE_CHECK's retry and warmup once were) fails here.
func TestDumpIsWhatRuns(t *testing.T) {
	c := parse(t, `track_file F {
    file /tmp/vipd-dump-test
}
virtual_server 198.18.0.100 80 {
    lb_kind NAT
    protocol TCP
    delay_loop 7
    real_server 198.18.0.21 80 {
        retry 4
        HTTP_GET { url { path / } }
        SSL_GET { url { path / } delay_before_retry 2 }
        TCP_CHECK { warmup 0 }
        SMTP_CHECK { }
        DNS_CHECK { name example.org }
        MISC_CHECK { misc_path /bin/true }
        PING_CHECK { alpha }
        UDP_CHECK { connect_timeout 2 }
        FILE_CHECK { track_file F }
    }
}
`)
	plans, err := planServices(c)
	if err != nil {
		t.Fatal(err)
	}
	servers, err := checkServers(c, plans, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	var dump struct {
		VirtualServers []struct {
			RealServers []struct {
				Checkers []struct {
					Type             string `json:"type"`
					ConnectTimeout   string `json:"connect_timeout"`
					Retry            int    `json:"retry"`
					DelayBeforeRetry string `json:"delay_before_retry"`
					Warmup           string `json:"warmup"`
					DelayLoop        string `json:"delay_loop"`
					Alpha            bool   `json:"alpha"`
					Misc             *struct {
						Timeout string `json:"misc_timeout"`
					} `json:"misc"`
				} `json:"checkers"`
			} `json:"real_servers"`
		} `json:"virtual_servers"`
	}
	if err := json.Unmarshal(config.Dump(c), &dump); err != nil {
		t.Fatal(err)
	}
	dumped := dump.VirtualServers[0].RealServers[0].Checkers
	running := servers[0].Checkers
	if len(dumped) != 9 || len(running) != len(dumped) {
		t.Fatalf("%d checkers dumped, %d running, want 9 and 9", len(dumped), len(running))
	}
	dur := func(s string) time.Duration {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("dumped duration %q: %v", s, err)
		}
		return d
	}
	for i, d := range dumped {
		want := check.Timing{
			DelayLoop: dur(d.DelayLoop), Retry: d.Retry, DelayBeforeRetry: dur(d.DelayBeforeRetry),
			Warmup: dur(d.Warmup), Timeout: dur(d.ConnectTimeout), Alpha: d.Alpha,
		}
		if d.Misc != nil {
			want.Timeout = dur(d.Misc.Timeout)
		}
		if got := running[i].Timing; got != want {
			t.Errorf("%s: vipd -d prints %+v, the daemon runs %+v", d.Type, want, got)
		}
	}
}
