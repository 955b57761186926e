package api_test

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// filtered is a collector passing on only the series of one metric whose
// labels include a given set, so testutil.ToFloat64 can read one value.
type filtered struct {
	c    prometheus.Collector
	name string
	want map[string]string
}

func (f *filtered) Describe(ch chan<- *prometheus.Desc) { f.c.Describe(ch) }

func (f *filtered) Collect(ch chan<- prometheus.Metric) {
	all := make(chan prometheus.Metric)
	go func() { f.c.Collect(all); close(all) }()
	for m := range all {
		if !strings.Contains(m.Desc().String(), `fqName: "`+f.name+`"`) {
			continue
		}
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			continue
		}
		ok := true
		for k, v := range f.want {
			found := false
			for _, lp := range pb.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			ok = ok && found
		}
		if ok {
			ch <- m
		}
	}
}
