package lvs

import "time"

// EstimatorInterval is how often IPVS samples counters for its rates.
const EstimatorInterval = 2 * time.Second

// Estimator computes IPVS's rate estimates from cumulative counters, with
// the kernel's arithmetic so that `--rate` listings match what ipvsadm
// shows for the same traffic: every EstimatorInterval the change of each
// counter is turned into a per-second rate and folded into a moving
// average with weight 1/4 (avg += (rate - avg) / 4). Connection and packet
// rates are kept scaled by 2^10 and byte rates by 2^5, and rounded when
// read, which is why a steady 1 conn/s shows as 1 and not 0.99.
//
// The zero value starts from zero counters; call Reset when a service
// already has counts. It owns no clock: the data plane calls Update on a
// ticker.
type Estimator struct {
	last                             Stats
	cps, inpps, outpps, inbps, outbs int64
}

// Reset forgets the averages and takes s as the base of the next sample.
func (e *Estimator) Reset(s Stats) {
	*e = Estimator{last: s}
}

// Update folds the counters sampled now (EstimatorInterval after the
// previous sample) into the averages.
func (e *Estimator) Update(s Stats) {
	// A difference over 2 s shifted left by 9 is the per-second rate
	// scaled by 2^10; shifted by 4, scaled by 2^5.
	e.cps = smooth(e.cps, delta(s.Conns, e.last.Conns)<<9)
	e.inpps = smooth(e.inpps, delta(s.InPkts, e.last.InPkts)<<9)
	e.outpps = smooth(e.outpps, delta(s.OutPkts, e.last.OutPkts)<<9)
	e.inbps = smooth(e.inbps, delta(s.InBytes, e.last.InBytes)<<4)
	e.outbs = smooth(e.outbs, delta(s.OutBytes, e.last.OutBytes)<<4)
	e.last = s
}

// Rates returns the current estimates, rounded as the kernel rounds them.
func (e *Estimator) Rates() Rates {
	return Rates{
		CPS:    unscale(e.cps, 10),
		InPPS:  unscale(e.inpps, 10),
		OutPPS: unscale(e.outpps, 10),
		InBPS:  unscale(e.inbps, 5),
		OutBPS: unscale(e.outbs, 5),
	}
}

func delta(now, before uint64) int64 {
	if now < before { // counters were reset
		return 0
	}
	return int64(now - before)
}

// smooth is avg += (rate - avg) >> 2 with an arithmetic shift, as the
// kernel computes it on signed 64-bit values.
func smooth(avg, rate int64) int64 { return avg + (rate-avg)>>2 }

// unscale removes the 2^shift scale, rounding half up as the kernel does
// by adding 2^(shift-1)-1 before shifting.
func unscale(v int64, shift uint) uint64 {
	v += 1<<(shift-1) - 1
	if v < 0 {
		return 0
	}
	return uint64(v >> shift)
}
