package ipvs

import (
	"fmt"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
)

// cmdFlush is IPVS_CMD_FLUSH: delete every virtual service (and with
// them their destinations) in the namespace's IPVS table.
const cmdFlush = 17

// Flush empties the whole IPVS table, services vipd does not own
// included: keepalived's lvs_flush at start, and lvs_flush_on_stop
// (without VS) just before Close. Ownership is forgotten: nothing is left
// to own.
func (d *Dataplane) Flush() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("ipvs: flush: closed")
	}
	return d.flush()
}

func (d *Dataplane) flush() error {
	d.writes.Add(1)
	if _, err := d.genl.Execute(genetlink.Message{Header: genetlink.Header{Command: cmdFlush, Version: genlVersion}}, d.family.ID, netlink.Request|netlink.Acknowledge); err != nil {
		return fmt.Errorf("ipvs: FLUSH: %w", err)
	}
	d.log.Info("ipvs: flushed every virtual service", "netns", d.opts.NetNS)
	d.own.clear()
	return nil
}
