package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/api"
	"github.com/vipd/vipd/internal/api/apitest"
	"github.com/vipd/vipd/internal/lvs"
)

// bigSource is a large director: 20 VRRP instances, 50 services of 20 real
// servers, each with a checker.
func bigSource() *apitest.Source {
	src := apitest.NewSource()
	src.Update(func(st *api.Status) {
		in := st.Instances[0]
		st.Instances = nil
		for i := range 20 {
			in.Name, in.VRID = fmt.Sprintf("VI_%d", i), 10+i
			st.Instances = append(st.Instances, in)
		}
		st.Services, st.Checks = nil, nil
		for s := range 50 {
			svc := lvs.ServiceStatus{Service: lvs.Service{Key: lvs.ServiceKey{Proto: lvs.TCP, Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 1, byte(s)}), 80)}, Scheduler: "wlc"}}
			for d := range 20 {
				addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 2, byte(d)}), uint16(8000+s))
				svc.Dests = append(svc.Dests, lvs.DestStatus{Destination: lvs.Destination{Addr: addr, Weight: 1}, ActiveConns: d, Stats: lvs.Stats{Conns: uint64(d * 1000)}})
				st.Checks = append(st.Checks, api.Check{VirtualServer: svc.Key.String(), RealServer: addr.String(), Kind: "HTTP_GET", Up: d%7 != 0, Duration: time.Millisecond})
			}
			st.Services = append(st.Services, svc)
		}
	})
	return src
}

// BenchmarkScrape measures a full /metrics scrape of a large director and
// reports it as a ratio to encoding the same state as JSON (what
// /v1/status costs), measured in the same run.
func BenchmarkScrape(b *testing.B) {
	src := bigSource()
	h := api.NewWebHandler(src, api.WebOptions{})
	var size int
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
		size = rec.Body.Len()
	}
	elapsed, n := b.Elapsed(), b.N
	start := time.Now()
	for range n {
		if _, err := json.Marshal(src.Status()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(elapsed)/float64(time.Since(start)), "x_json_status")
	b.ReportMetric(float64(size), "bytes/scrape")
}

// BenchmarkHistory fills a History with 10 minutes of 1 s samples of the
// large director (1000 real servers) and reports the heap it holds per
// real server, and what one Record costs as a ratio to encoding the same
// status as JSON (what /status.json does every second per open page),
// measured in the same run.
func BenchmarkHistory(b *testing.B) {
	src := bigSource()
	st := src.Status()
	nrs := 0
	for _, s := range st.Services {
		nrs += len(s.Dests)
	}
	var perRS float64
	t0 := time.Unix(1700000000, 0)
	for b.Loop() {
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		h := api.NewHistory(api.DefaultHistoryWindow)
		for i := range 600 {
			h.Record(t0.Add(time.Duration(i)*time.Second), st)
		}
		runtime.GC()
		runtime.ReadMemStats(&m1)
		perRS = float64(m1.HeapAlloc-m0.HeapAlloc) / float64(nrs)
		runtime.KeepAlive(h)
	}
	b.ReportMetric(perRS, "heap_bytes/real_server")

	h := api.NewHistory(api.DefaultHistoryWindow)
	const n = 200
	start := time.Now()
	for i := range n {
		h.Record(t0.Add(time.Duration(i)*time.Second), st)
	}
	rec := time.Since(start)
	start = time.Now()
	for range n {
		if _, err := json.Marshal(st); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rec)/float64(time.Since(start)), "x_json_status")
	b.ReportMetric(float64(rec.Nanoseconds())/n/float64(nrs), "ns_record/real_server")
}
