package failover

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// canary is cyclictest (rt-tests) waking every 10 ms, as a VRRP master
// at advert_int 0.01 does, and recording how late each wake-up was: a
// C program with no Go runtime, so what it suffers is the machine's
// (CPU contention at its priority, the hypervisor, kernel sections that
// cannot be preempted), not a runtime's.
type canary struct {
	name string
	cmd  *exec.Cmd
	out  strings.Builder
}

// startCanary runs cyclictest for d with the given policy (other, rr,
// fifo) and priority; nil when cyclictest is missing.
func startCanary(name, policy string, prio int, d time.Duration) *canary {
	if _, err := exec.LookPath("cyclictest"); err != nil {
		return nil
	}
	c := &canary{name: name}
	// -h 200000: a histogram in microseconds up to 200 ms.
	c.cmd = exec.Command("cyclictest", "-q", "-t", "1", "-i", "10000", "--policy="+policy, "-p", strconv.Itoa(prio),
		"-D", fmt.Sprintf("%ds", int(d.Seconds())), "-h", "200000")
	c.cmd.Stdout = &c.out
	if err := c.cmd.Start(); err != nil {
		return nil
	}
	return c
}

// wait waits for cyclictest and summarizes its histogram.
func (c *canary) wait() string {
	if c == nil {
		return "cyclictest not installed"
	}
	if err := c.cmd.Wait(); err != nil {
		return fmt.Sprintf("cyclictest: %v", err)
	}
	h, over, err := parseHistogram(c.out.String())
	if err != nil {
		return err.Error()
	}
	return h.summary(over)
}

// latHist is a histogram of wake-up latencies, one bucket per µs.
type latHist map[int]int

// parseHistogram reads cyclictest -h output: "USEC COUNT" lines and a
// "# Histogram Overflows: N" line.
func parseHistogram(s string) (latHist, int, error) {
	h := latHist{}
	over := 0
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# Histogram Overflows:"); ok {
			over, _ = strconv.Atoi(strings.TrimSpace(rest))
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 || strings.HasPrefix(line, "#") {
			continue
		}
		us, err1 := strconv.Atoi(f[0])
		n, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil {
			continue
		}
		if n > 0 {
			h[us] += n
		}
	}
	if len(h) == 0 && over == 0 {
		return nil, 0, fmt.Errorf("cyclictest printed no histogram")
	}
	return h, over, nil
}

// summary is "n, late > 5/10/20/30 ms, max".
func (h latHist) summary(over int) string {
	n, maxUS := over, 0
	limits := []int{5000, 10000, 20000, 30000}
	late := make([]int, len(limits))
	for us, c := range h {
		n += c
		maxUS = max(maxUS, us)
		for i, l := range limits {
			if us > l {
				late[i] += c
			}
		}
	}
	for i := range late {
		late[i] += over
	}
	m := fmt.Sprintf("%v", time.Duration(maxUS)*time.Microsecond)
	if over > 0 {
		m = "> 200ms"
	}
	return fmt.Sprintf("wake-ups %d, late >5ms %d, >10ms %d, >20ms %d, >30ms %d, max %s", n, late[0], late[1], late[2], late[3], m)
}

// cpuStat is the machine's steal and softirq time so far.
func cpuStat() (steal, softirq time.Duration) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal
	if len(f) < 9 {
		return 0, 0
	}
	tick := func(s string) time.Duration {
		v, _ := strconv.ParseInt(s, 10, 64)
		return time.Duration(v) * 10 * time.Millisecond // USER_HZ 100
	}
	return tick(f[8]), tick(f[7])
}
