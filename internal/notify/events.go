package notify

import (
	"fmt"
	"net/netip"
	"strconv"

	"github.com/vipd/vipd/internal/lvs"
)

// State is what a VRRP notification reports: a state an instance or sync
// group entered, or one of the events keepalived also reports on its
// FIFOs.
type State int

// States and events, spelled as keepalived spells them to scripts and
// FIFOs.
const (
	StateMaster  State = iota + 1 // MASTER
	StateBackup                   // BACKUP
	StateFault                    // FAULT
	StateStop                     // STOP: the daemon is stopping the instance
	StateDeleted                  // DELETED: the instance was removed by a reload (notify_deleted)

	// Events that go to FIFOs (and notify_master_rx_lower_pri), not to
	// the notify script or mail.
	EventMasterRxLowerPri // MASTER_RX_LOWER_PRI: a master received a lower-priority advert
	EventMasterPriority   // MASTER_PRIORITY: the priority of a master changed
	EventBackupPriority   // BACKUP_PRIORITY: the priority of a backup changed
)

// String returns keepalived's name of the state.
func (s State) String() string {
	switch s {
	case StateMaster:
		return "MASTER"
	case StateBackup:
		return "BACKUP"
	case StateFault:
		return "FAULT"
	case StateStop:
		return "STOP"
	case StateDeleted:
		return "DELETED"
	case EventMasterRxLowerPri:
		return "MASTER_RX_LOWER_PRI"
	case EventMasterPriority:
		return "MASTER_PRIORITY"
	case EventBackupPriority:
		return "BACKUP_PRIORITY"
	}
	return "{UNKNOWN}"
}

// ParseState is the inverse of String: the state or event keepalived
// spells s, and false for a name it does not know.
func ParseState(s string) (State, bool) {
	for st := StateMaster; st <= EventBackupPriority; st++ {
		if st.String() == s {
			return st, true
		}
	}
	return 0, false
}

// isTransition tells whether the state is a state change (which runs the
// generic notify script and may send mail) rather than an event.
func (s State) isTransition() bool { return s >= StateMaster && s <= StateDeleted }

// VRRPScripts are the notify scripts of a vrrp_instance or
// vrrp_sync_group. Nil fields are not configured (or were refused when
// the configuration was loaded).
type VRRPScripts struct {
	Master, Backup, Fault, Stop *Script // notify_master, notify_backup, notify_fault, notify_stop
	Deleted                     *Script // notify_deleted with a script
	MasterRxLowerPri            *Script // notify_master_rx_lower_pri
	Notify                      *Script // notify: called with TYPE NAME STATE PRIORITY appended
}

func (s *VRRPScripts) forState(st State) *Script {
	switch st {
	case StateMaster:
		return s.Master
	case StateBackup:
		return s.Backup
	case StateFault:
		return s.Fault
	case StateStop:
		return s.Stop
	case StateDeleted:
		return s.Deleted
	case EventMasterRxLowerPri:
		return s.MasterRxLowerPri
	}
	return nil
}

// VRRPEvent is a state change of a VRRP instance or sync group.
type VRRPEvent struct {
	Group    bool   // a vrrp_sync_group rather than a vrrp_instance
	Name     string // VI_1
	State    State
	Priority int // the effective priority; keepalived reports 0 for groups
	Scripts  VRRPScripts

	// SMTPAlert is the smtp_alert of the instance or group; nil when not
	// configured there, in which case the global smtp_alert_vrrp /
	// smtp_alert decide (and mail is off when none is set).
	SMTPAlert *bool

	// FIFOOnly writes the FIFO line and nothing else: a state repeated
	// at reload (fifo_write_vrrp_states_on_reload).
	FIFOOnly bool
}

// VirtualServer identifies a virtual_server in notifications.
type VirtualServer struct {
	Key   lvs.ServiceKey
	Group string // virtual_server_group name, when the virtual server is one
}

// String formats the virtual server as keepalived does in FIFO lines, logs
// and mail: "[198.18.0.100]:tcp:80", "FWM 7", "[GROUP]:80".
func (v VirtualServer) String() string {
	switch {
	case v.Group != "":
		return fmt.Sprintf("[%s]:%d", v.Group, v.Key.Addr.Port())
	case v.Key.FWMark != 0:
		return fmt.Sprintf("FWM %d", v.Key.FWMark)
	}
	return trio(v.Key.Addr, v.Key.Proto)
}

// trio formats an address, protocol and port as keepalived's
// inet_sockaddrtotrio: "[1.2.3.4]:tcp:80".
func trio(ap netip.AddrPort, p lvs.Protocol) string {
	proto := "?"
	switch p {
	case lvs.TCP:
		proto = "tcp"
	case lvs.UDP:
		proto = "udp"
	case lvs.SCTP:
		proto = "sctp"
	case 0:
		proto = "none"
	}
	return "[" + ap.Addr().String() + "]:" + proto + ":" + strconv.Itoa(int(ap.Port()))
}

// RealServerEvent is a real server of a virtual server going up or down.
type RealServerEvent struct {
	VS     VirtualServer
	RS     netip.AddrPort
	Up     bool
	Script *Script // notify_up when Up, notify_down otherwise; nil when none

	// Checker names the check that decided, for the mail body: "TCP
	// CHECK" gives "=> TCP CHECK succeed on service <=" (keepalived's
	// wording); empty gives "=> CHECK ... <=". Body, when set, replaces
	// the body (keepalived sends "=> Removing <=" and "=> Shutting down
	// <=" when a real server is removed).
	Checker string
	Body    string

	// SMTPAlert is the real server's smtp_alert; nil when not set, in
	// which case smtp_alert_checker / smtp_alert decide, and mail is on
	// when none is set (keepalived's default for real servers).
	SMTPAlert *bool
}

// QuorumEvent is a virtual server gaining or losing its quorum.
type QuorumEvent struct {
	VS     VirtualServer
	Up     bool
	Script *Script // quorum_up when Up, quorum_down otherwise

	// The numbers keepalived puts in the mail body, "=> Gained quorum
	// 1+0=1 <= 2 <=": quorum, hysteresis, threshold, live weight.
	Quorum, Hysteresis int
	Threshold, LiveSum int64
	Init, Stopping     bool // at startup ("Starting with quorum up") / at shutdown ("Shutting down")
	SMTPAlert          *bool
}

// vrrpLine is the FIFO line of a VRRP event: INSTANCE "VI_1" MASTER 100.
func vrrpLine(ev *VRRPEvent) string {
	typ := "INSTANCE"
	if ev.Group {
		typ = "GROUP"
	}
	return fmt.Sprintf("%s \"%s\" %s %d\n", typ, ev.Name, ev.State, ev.Priority)
}

// rsLine is the FIFO line of a real server event:
// RS [198.18.0.21]:tcp:80 [198.18.0.100]:tcp:80 UP.
func rsLine(ev *RealServerEvent) string {
	return fmt.Sprintf("RS %s %s %s\n", trio(ev.RS, ev.VS.Key.Proto), ev.VS, upDown(ev.Up))
}

// vsLine is the FIFO line of a quorum event: VS [198.18.0.100]:tcp:80 UP.
func vsLine(ev *QuorumEvent) string {
	return fmt.Sprintf("VS %s %s\n", ev.VS, upDown(ev.Up))
}

func upDown(up bool) string {
	if up {
		return "UP"
	}
	return "DOWN"
}

// vrrpMail returns keepalived's subject suffix and body for a VRRP state,
// ok false for states that send no mail.
func vrrpMail(group bool, st State) (subject, body string, ok bool) {
	switch st {
	case StateMaster:
		subject = "Entering MASTER state"
		body = "=> VRRP Instance is now owning VRRP VIPs <="
		if group {
			body = "=> All VRRP group instances are now in MASTER state <="
		}
	case StateBackup:
		subject = "Entering BACKUP state"
		body = "=> VRRP Instance is no longer owning VRRP VIPs <="
		if group {
			body = "=> All VRRP group instances are now in BACKUP state <="
		}
	case StateFault:
		subject = "Entering FAULT state"
		body = "=> VRRP Instance is no longer owning VRRP VIPs <="
		if group {
			body = "=> All VRRP group instances are now in FAULT state <="
		}
	case StateStop:
		subject = "Stopping"
		body = "=> VRRP Instance stopping <="
		if group {
			body = "=> All VRRP group instances are now stopping <="
		}
	default:
		return "", "", false
	}
	return subject, body, true
}

// vrrpSubject is "[router_id] VRRP Instance VI_1 - Entering MASTER state"
// (or "VRRP Group G1 - ...").
func vrrpSubject(routerID string, ev *VRRPEvent, what string) string {
	kind := "Instance"
	if ev.Group {
		kind = "Group"
	}
	return fmt.Sprintf("[%s] VRRP %s %s - %s", routerID, kind, ev.Name, what)
}

// rsSubject is "[router_id] Realserver [1.2.3.4]:tcp:80 of virtual server
// [198.18.0.100]:tcp:80 - UP".
func rsSubject(routerID string, ev *RealServerEvent) string {
	return fmt.Sprintf("[%s] Realserver %s of virtual server %s - %s",
		routerID, trio(ev.RS, ev.VS.Key.Proto), ev.VS, upDown(ev.Up))
}

func rsBody(ev *RealServerEvent) string {
	if ev.Body != "" {
		return ev.Body
	}
	checker := ev.Checker
	if checker == "" {
		checker = "CHECK"
	}
	if ev.Up {
		return "=> " + checker + " succeed on service <="
	}
	return "=> " + checker + " failed on service <="
}

// vsSubject is "[router_id] Virtualserver [198.18.0.100]:tcp:80 - UP".
func vsSubject(routerID string, ev *QuorumEvent) string {
	return fmt.Sprintf("[%s] Virtualserver %s - %s", routerID, ev.VS, upDown(ev.Up))
}

func vsBody(ev *QuorumEvent) string {
	if ev.Stopping {
		return "=> Shutting down <="
	}
	var what string
	switch {
	case ev.Up && ev.Init:
		what = "Starting with quorum up"
	case ev.Up:
		what = "Gained quorum"
	case ev.Init:
		what = "Starting with quorum down"
	default:
		what = "Lost quorum"
	}
	return fmt.Sprintf("=> %s %d+%d=%d <= %d <=", what, ev.Quorum, ev.Hysteresis, ev.Threshold, ev.LiveSum)
}
