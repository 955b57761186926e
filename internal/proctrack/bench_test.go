package proctrack

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// BenchmarkExitNotice measures how long after a tracked process is
// killed the monitor reports it gone (the driver's whole path: the
// kernel's exit event, decode, tracker, report), against the reference
// measured on the same kill: the process's parent learning it through
// wait(2). Each iteration starts a sleep, waits until it is counted, then
// kills it. A vrrp_script running pidof every second (keepalived's
// default interval) would notice after 0.5 s on average.
//
//	go test -run XXX -bench ExitNotice -benchtime 200x ./internal/proctrack
func BenchmarkExitNotice(b *testing.B) {
	lab.RequireRoot(b)
	arg := fmt.Sprintf("%d.%d", os.Getpid(), time.Now().UnixNano()%1e6)
	ch := make(chan Change, 16)
	spec := Spec{Name: "b", Process: "sleep", Params: []string{arg}, ParamMatch: MatchExact, Quorum: 1, QuorumMax: -1}
	m, _, err := Start([]Spec{spec}, func(cs []Change) {
		for _, c := range cs {
			ch <- c
		}
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Stop()
	wait := func(up bool) time.Time {
		deadline := time.After(10 * time.Second)
		for {
			select {
			case c := <-ch:
				if c.Up == up {
					return time.Now()
				}
			case <-deadline:
				b.Fatalf("no change to up=%v within 10s", up)
			}
		}
	}
	var monitor, reaped time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cmd := exec.Command("sleep", arg)
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		wait(true)
		done := make(chan time.Time, 1)
		go func() { cmd.Wait(); done <- time.Now() }()
		t0 := time.Now()
		cmd.Process.Kill()
		seen := wait(false)
		monitor += seen.Sub(t0)
		reaped += (<-done).Sub(t0)
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(monitor.Microseconds())/n, "monitor-µs/kill")
	b.ReportMetric(float64(reaped.Microseconds())/n, "wait-µs/kill")
	b.ReportMetric(float64(monitor)/float64(reaped), "monitor/wait")
	if s := m.Stats(); s.Bad != 0 || s.Lost != 0 {
		b.Errorf("stats %+v", s)
	}
}
