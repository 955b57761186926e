package api_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vipd/vipd/internal/api"
	"github.com/vipd/vipd/internal/api/apitest"
	"github.com/vipd/vipd/internal/lab"
)

// rulesDir holds the alerting rules the package installs in
// /usr/share/vipd/prometheus/.
const rulesDir = "../../packaging/prometheus"

// pendingMetrics are series the rules may use before vipd registers them
// (none now: the BGP speaker's series are registered). Each is accepted only
// while vipd does not register it; once it does, the registered labels are
// what the rules are checked against.
var pendingMetrics = map[string][]string{}

var (
	descName   = regexp.MustCompile(`fqName: "([^"]+)"`)
	descLabels = regexp.MustCompile(`variableLabels: \{([^}]*)\}`)
)

// exportedMetrics returns every metric name vipd's collector can export,
// with its label names, from the collector's own descriptions.
func exportedMetrics(t *testing.T) map[string][]string {
	t.Helper()
	ch := make(chan *prometheus.Desc, 256)
	go func() {
		api.NewCollector(apitest.NewSource()).Describe(ch)
		close(ch)
	}()
	out := map[string][]string{}
	for d := range ch {
		s := d.String()
		n := descName.FindStringSubmatch(s)
		l := descLabels.FindStringSubmatch(s)
		if n == nil || l == nil {
			t.Fatalf("cannot read %s", s)
		}
		var labels []string
		for _, f := range strings.Split(l[1], ",") {
			if f = strings.TrimSpace(f); f != "" {
				labels = append(labels, f)
			}
		}
		out[n[1]] = labels
	}
	if len(out) < 40 {
		t.Fatalf("only %d metrics described", len(out))
	}
	return out
}

var (
	metricRef = regexp.MustCompile(`\b(?:vipd|keepalived|node_ipvs)_[a-z0-9_]+`)
	seriesDef = regexp.MustCompile(`series: '([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}'`)
	labelName = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="`)
)

// TestAlertRules runs promtool on the shipped rules and their unit tests,
// and checks that the rules and the test series only use metric and label
// names that vipd exports: a renamed metric fails here, not silently in
// production.
func TestAlertRules(t *testing.T) {
	t.Parallel()
	lab.RequireCommand(t, "promtool")
	rules := filepath.Join(rulesDir, "vipd-alerts.yml")
	tests := filepath.Join(rulesDir, "vipd-alerts.test.yml")
	for _, args := range [][]string{{"check", "rules", rules}, {"test", "rules", tests}} {
		out, err := exec.Command("promtool", args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	exported := exportedMetrics(t)
	known := func(name string) ([]string, bool) {
		if l, ok := exported[name]; ok {
			if _, p := pendingMetrics[name]; p {
				t.Logf("%s is exported now: remove it from pendingMetrics", name)
			}
			return l, true
		}
		l, ok := pendingMetrics[name]
		return l, ok
	}
	used := map[string]bool{}
	for _, f := range []string{rules, tests} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range metricRef.FindAllString(string(b), -1) {
			used[m] = true
			if _, ok := known(m); !ok {
				t.Errorf("%s: %s is not a metric vipd exports", f, m)
			}
		}
		// Test series: every label is one vipd exports for that metric,
		// or one Prometheus adds (job, instance; vipd's own instance
		// label is stored as exported_instance).
		for _, s := range seriesDef.FindAllStringSubmatch(string(b), -1) {
			labels, ok := known(s[1])
			if !ok {
				continue // reported above
			}
			want := map[string]bool{"job": true}
			for _, l := range labels {
				if l == "instance" {
					l = "exported_instance"
				}
				want[l] = true
			}
			want["instance"] = true
			got := map[string]bool{}
			for _, l := range labelName.FindAllStringSubmatch(s[2], -1) {
				got[l[1]] = true
				if !want[l[1]] {
					t.Errorf("%s: series %s has label %s, which vipd does not export", f, s[1], l[1])
				}
			}
			for l := range want {
				if !got[l] {
					t.Errorf("%s: series %s lacks label %s, which vipd exports", f, s[1], l)
				}
			}
		}
	}
	names := make([]string, 0, len(used))
	for n := range used {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) < 8 {
		t.Errorf("the rules name only %d metrics: %v", len(names), names)
	}
	t.Logf("metrics used by the rules: %v", names)
}
