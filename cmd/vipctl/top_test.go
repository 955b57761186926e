package main

import (
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/api/apitest"
)

// TestTopRates: rates are the counters' deltas over the time between the
// two samples, per virtual and real server; a counter that went back
// (the service was replaced) shows no rate rather than a huge one.
func TestTopRates(t *testing.T) {
	prev := topSample{at: apitest.T0, st: apitest.NewSource().Status()}
	cur := topSample{at: apitest.T0.Add(2 * time.Second), st: apitest.NewSource().Status()}
	web := &cur.st.Services[0]
	web.Stats.Conns += 10
	web.Stats.InBytes += 50000
	web.Dests[1].Stats.Conns += 10      // 198.18.0.21:80
	web.Dests[1].Stats.InBytes += 50000 // 25K/s
	dns := &cur.st.Services[1]
	dns.Stats.Conns = 0 // went back: no rate

	out := topFrame(&prev, cur, apitest.T0.Add(2*time.Second), time.Second)
	for _, want := range []string{
		"VI_1 eth0 51 MASTER 100/110 198.18.0.11 (110) 12/3600 2 1h0m2s ago",
		// name, scheduler/weight, up, conn/s, in B/s, out B/s, active, inactive, conns
		"TCP 198.18.0.100:80 wrr 1/2 5 25.0K 0 17 45 12765",
		"-> 198.18.0.21:80 3 UP 5 25.0K 0 17 42 12355 HTTP_GET ok",
		"-> 198.18.0.22:80 0 DOWN 0 0 0 0 3 410 HTTP_GET: connect: connection refused",
		"UDP 198.18.0.100:53 rr 1/1 - 0 0 0 8 0",
	} {
		if !hasRow(out, want) {
			t.Errorf("frame lacks the row %q:\n%s", want, out)
		}
	}
	// The first frame has no rates.
	first := topFrame(nil, cur, apitest.T0, time.Second)
	if !hasRow(first, "TCP 198.18.0.100:80 wrr 1/2 - - - 17 45 12765") {
		t.Errorf("first frame shows rates:\n%s", first)
	}
}

// hasRow reports whether a line of out has want's fields (columns are
// aligned with spaces, so only the words count).
func hasRow(out, want string) bool {
	w := strings.Join(strings.Fields(want), " ")
	for _, l := range strings.Split(out, "\n") {
		if strings.Join(strings.Fields(l), " ") == w {
			return true
		}
	}
	return false
}

// TestTopUsage: bad flags are usage errors (exit 2), before any sample.
func TestTopUsage(t *testing.T) {
	for _, args := range [][]string{{"top", "-d", "10ms"}, {"top", "-n", "-1"}, {"top", "extra"}, {"top", "-o", "json"}} {
		if code, _, errs := vipctl(t, nil, append([]string{"--socket", "/nonexistent"}, args...)...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, exitUsage, errs)
		}
	}
}
