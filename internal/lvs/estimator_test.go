package lvs

import "testing"

func TestEstimator(t *testing.T) {
	// A steady 1 connection/s, 10 packets/s in, 5 out, 1000 bytes/s in and
	// 64 out: the expected readings are worked out by hand from the
	// kernel's arithmetic (rate<<9 or <<4 per 2 s sample, avg += (rate-avg)>>2,
	// read as (avg + 511)>>10 or (avg + 15)>>5).
	//   cps:   avg 256, 448, 592, 700       -> 0, 0, 1, 1
	//   inpps: rate 10240: avg 2560, 4480, 5920, 7000 -> 2, 4, 6, 7
	//   inbps: rate 32000: avg 8000, 14000, 18500, 21875 -> 250, 437, 578, 684
	//   outbps: rate 2048: avg 512, 896, 1184, 1400 -> 16, 28, 37, 44
	want := []Rates{
		{CPS: 0, InPPS: 2, OutPPS: 1, InBPS: 250, OutBPS: 16},
		{CPS: 0, InPPS: 4, OutPPS: 2, InBPS: 437, OutBPS: 28},
		{CPS: 1, InPPS: 6, OutPPS: 3, InBPS: 578, OutBPS: 37},
		{CPS: 1, InPPS: 7, OutPPS: 3, InBPS: 684, OutBPS: 44},
	}
	// outpps rate 5120: avg 1280, 2240, 2960, 3500 -> 1 (1791>>10), 2, 3 (3471>>10), 3 (4011>>10)
	var e Estimator
	var s Stats
	for i, w := range want {
		s.Conns += 2
		s.InPkts += 20
		s.OutPkts += 10
		s.InBytes += 2000
		s.OutBytes += 128
		e.Update(s)
		if got := e.Rates(); got != w {
			t.Errorf("sample %d: %+v, want %+v", i+1, got, w)
		}
	}
	// It converges to the true rate and decays back to zero when idle.
	for range 40 {
		s.Conns += 2
		s.InBytes += 2000
		e.Update(s)
	}
	if r := e.Rates(); r.CPS != 1 || r.InBPS != 1000 {
		t.Errorf("converged: %+v, want cps 1 inbps 1000", r)
	}
	for range 40 {
		e.Update(s)
	}
	if r := e.Rates(); r != (Rates{}) {
		t.Errorf("idle: %+v, want zero", r)
	}
}

func TestEstimatorReset(t *testing.T) {
	var e Estimator
	e.Reset(Stats{Conns: 1000000, InBytes: 1 << 40})
	e.Update(Stats{Conns: 1000002, InBytes: 1<<40 + 2000})
	if r := e.Rates(); r.CPS != 0 || r.InBPS != 250 {
		t.Errorf("%+v: want cps 0 inbps 250 (no spike from the old counts)", r)
	}
	// Counters going backwards (zeroed) give no negative or huge rate.
	e.Update(Stats{})
	if r := e.Rates(); r.InBPS > 250 {
		t.Errorf("after zeroing: %+v", r)
	}
}
