package api

import (
	"github.com/prometheus/client_golang/prometheus"
)

var (
	vBFDUp          = desc("vipd_bfd_session_up", "1 if the bfd_instance's session is Up.", "name", "peer")
	vBFDState       = desc("vipd_bfd_session_state", "BFD session state: 1 on the series of the current state.", "name", "state")
	vBFDDetect      = desc("vipd_bfd_detect_time_seconds", "Negotiated detection time of the BFD session (the peer's multiplier x the agreed interval).", "name")
	vBFDTx          = desc("vipd_bfd_tx_interval_seconds", "Negotiated transmit interval of the BFD session.", "name")
	vBFDSent        = desc("vipd_bfd_packets_sent_total", "BFD control packets sent for the session.", "name")
	vBFDRecv        = desc("vipd_bfd_packets_received_total", "Valid BFD control packets received for the session.", "name")
	bfdStates       = []string{"AdminDown", "Down", "Init", "Up"}
	bfdDescriptions = []*prometheus.Desc{vBFDUp, vBFDState, vBFDDetect, vBFDTx, vBFDSent, vBFDRecv}
)

// collectBFD emits the BFD series of st.
func collectBFD(st Status, emit func(*prometheus.Desc, prometheus.ValueType, float64, []string)) {
	for _, s := range st.BFD {
		emit(vBFDUp, prometheus.GaugeValue, b2f(s.State == "Up"), []string{s.Name, s.Peer.String()})
		for _, state := range bfdStates {
			emit(vBFDState, prometheus.GaugeValue, b2f(s.State == state), []string{s.Name, state})
		}
		emit(vBFDDetect, prometheus.GaugeValue, float64(s.DetectUS)/1e6, []string{s.Name})
		emit(vBFDTx, prometheus.GaugeValue, float64(s.TxIntervalUS)/1e6, []string{s.Name})
		emit(vBFDSent, prometheus.CounterValue, float64(s.SentPackets), []string{s.Name})
		emit(vBFDRecv, prometheus.CounterValue, float64(s.RecvPackets), []string{s.Name})
	}
}
