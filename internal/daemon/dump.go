package daemon

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
)

// WriteData writes the whole state as JSON to the data file (SIGUSR1),
// what keepalived writes to /tmp/keepalived.data, but machine-readable.
func (d *Daemon) WriteData() error {
	st := (*source)(d).Status()
	b, err := json.MarshalIndent(struct {
		Time   time.Time `json:"time"`
		Status any       `json:"status"`
		Conns  any       `json:"conns"`
	}{time.Now(), st, (*source)(d).Conns()}, "", "  ")
	if err != nil {
		return err
	}
	d.log.Info("Writing state to " + d.opts.DataFile)
	return os.WriteFile(d.opts.DataFile, append(b, '\n'), 0o644)
}

// WriteStats writes the VRRP counters in keepalived's keepalived.stats
// layout (SIGUSR2).
func (d *Daemon) WriteStats() error {
	st := (*source)(d).Status()
	var b strings.Builder
	for _, in := range st.Instances {
		s := in.Stats
		fmt.Fprintf(&b, "VRRP Instance: %s\n", in.Name)
		fmt.Fprintf(&b, "  Advertisements:\n    Received: %d\n    Sent: %d\n", s.AdvertRcvd, s.AdvertSent)
		fmt.Fprintf(&b, "  Became master: %d\n  Released master: %d\n", s.BecomeMaster, s.ReleaseMaster)
		fmt.Fprintf(&b, "  Packet Errors:\n    Length: %d\n    TTL: %d\n    Invalid Type: %d\n    Advertisement Interval: %d\n    Address List: %d\n",
			s.PacketLenErr, s.IPTTLErr, s.InvalidTypeRcvd, s.AdvertIntervalErr, s.AddrListErr)
		fmt.Fprintf(&b, "  Authentication Errors:\n    Invalid Type: %d\n    Type Mismatch: %d\n    Failure: %d\n",
			s.InvalidAuthType, s.AuthTypeMismatch, s.AuthFailure)
		fmt.Fprintf(&b, "  Priority Zero:\n    Received: %d\n    Sent: %d\n", s.PriZeroRcvd, s.PriZeroSent)
	}
	d.log.Info("Writing stats to " + d.opts.StatsFile)
	return os.WriteFile(d.opts.StatsFile, []byte(b.String()), 0o644)
}
