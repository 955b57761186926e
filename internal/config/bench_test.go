package config

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// genConfig writes a large configuration: instances vrrp_instances spread
// over four interfaces (VRIDs must be unique per interface) and vs
// virtual servers with rs real servers each, every real server with an
// HTTP_GET checker.
func genConfig(instances, vs, rs int) []byte {
	var b strings.Builder
	b.WriteString("global_defs {\n    router_id bench\n}\n")
	for i := 0; i < instances; i++ {
		fmt.Fprintf(&b, `vrrp_instance VI_%d {
    state BACKUP
    interface eth%d
    virtual_router_id %d
    priority %d
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass pw%d
    }
    virtual_ipaddress {
        198.18.%d.%d/16 dev eth%d
    }
}
`, i, i/250, i%250+1, 50+i%200, i, 100+i/250, i%250+1, i/250)
	}
	for v := 0; v < vs; v++ {
		fmt.Fprintf(&b, "virtual_server 198.19.%d.%d 80 {\n    delay_loop 6\n    lvs_sched wrr\n    lvs_method NAT\n    protocol TCP\n", v/250, v%250+1)
		for r := 0; r < rs; r++ {
			n := v*rs + r
			fmt.Fprintf(&b, `    real_server 198.18.%d.%d 8080 {
        weight %d
        HTTP_GET {
            url {
                path /health
                status_code 200
            }
            connect_timeout 3
            retry 3
            delay_before_retry 3
        }
    }
`, n/250, n%250+1, 1+r%10)
		}
		b.WriteString("}\n")
	}
	return []byte(b.String())
}

// BenchmarkParse parses a configuration with 1,000 vrrp_instances and
// 10,000 real servers (100 virtual servers x 100), and reports the time
// relative to a reference measured in the same run: splitting the same
// bytes into lines and fields (the least any parser must do).
func BenchmarkParse(b *testing.B) {
	src := genConfig(1000, 100, 100)
	opts := Options{ConfigID: "bench", Host: benchHost()}
	cfg, diags := Parse("bench.conf", src, opts)
	if diags.HasProblems() || len(cfg.Instances) != 1000 || len(cfg.VirtualServers) != 100 || countRS(cfg) != 10000 {
		b.Fatalf("generated configuration: %d instances, %d real servers, diagnostics:\n%s", len(cfg.Instances), countRS(cfg), diags)
	}
	ref := measure(func() {
		n := 0
		for _, l := range strings.Split(string(src), "\n") {
			n += len(strings.Fields(l))
		}
		_ = n
	})
	b.SetBytes(int64(len(src)))
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		Parse("bench.conf", src, opts)
	}
	per := time.Since(start) / time.Duration(b.N)
	b.ReportMetric(float64(per.Microseconds())/1000, "ms/parse")
	b.ReportMetric(float64(per)/float64(ref), "x-split-fields")
}

// BenchmarkParseVsKeepalived compares the same parse with `keepalived -t`
// on the file, in a network namespace that has the interfaces. It needs
// root and keepalived, and skips otherwise.
func BenchmarkParseVsKeepalived(b *testing.B) {
	lab.RequireCommand(b, "keepalived")
	l := lab.New(b)
	h := l.Host("kb")
	for _, name := range []string{"eth1", "eth2", "eth3"} {
		h.MustRun("ip", "link", "add", name, "type", "veth", "peer", "name", name+"-p")
	}
	src := genConfig(1000, 100, 100)
	dir := b.TempDir()
	path := filepath.Join(dir, "bench.conf")
	if err := os.WriteFile(path, src, 0o644); err != nil {
		b.Fatal(err)
	}
	keep := measure(func() {
		cmd := exec.Command("ip", "netns", "exec", h.NS, "keepalived", "-t", "-f", path,
			"-p", dir+"/k.pid", "-r", dir+"/v.pid", "-c", dir+"/c.pid", "-b", dir+"/b.pid")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("keepalived -t: %v\n%s", err, out)
		}
	})
	opts := Options{ConfigID: "bench", Host: benchHost()}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		Parse("bench.conf", src, opts)
	}
	per := time.Since(start) / time.Duration(b.N)
	b.ReportMetric(float64(per.Microseconds())/1000, "ms/parse")
	b.ReportMetric(float64(keep.Microseconds())/1000, "ms/keepalived-t")
	b.ReportMetric(float64(per)/float64(keep), "x-keepalived")
}

// measure returns the median duration of five runs of fn.
func measure(fn func()) time.Duration {
	var ds []time.Duration
	for i := 0; i < 5; i++ {
		s := time.Now()
		fn()
		ds = append(ds, time.Since(s))
	}
	for i := range ds {
		for j := i + 1; j < len(ds); j++ {
			if ds[j] < ds[i] {
				ds[i], ds[j] = ds[j], ds[i]
			}
		}
	}
	return ds[len(ds)/2]
}

func countRS(cfg *Config) int {
	n := 0
	for _, vs := range cfg.VirtualServers {
		n += len(vs.RealServers)
	}
	return n
}

func benchHost() Host {
	h := newFakeHost()
	h.ifaces["eth3"] = true
	return h
}
