package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/vipd/vipd/internal/netif"
)

// Route and rule option values are judged here, when the configuration
// is read, so that `vipd -t` names the file:line of a bad one; the model
// holds them typed, and the daemon hands them to netif as they are. The
// names netif knows (routing protocols, IP protocols) come from netif
// itself, the one place that encodes them.

// RouteMetrics are a route's metric options (ip route ... mtu 1400),
// typed (field for field netif.Metrics, which the daemon converts it
// to). Zero leaves a metric unset. RTT and RTTVar are in the kernel's
// units (1/8 and 1/4 ms), RTOMin in ms, as ip(8) converts them.
type RouteMetrics struct {
	MTU              uint32 `json:"mtu,omitempty"`
	MTULock          bool   `json:"mtu_lock,omitempty"`
	AdvMSS           uint32 `json:"advmss,omitempty"`
	Window           uint32 `json:"window,omitempty"`
	RTT              uint32 `json:"rtt,omitempty"`
	RTTVar           uint32 `json:"rttvar,omitempty"`
	Reordering       uint32 `json:"reordering,omitempty"`
	Cwnd             uint32 `json:"cwnd,omitempty"`
	Ssthresh         uint32 `json:"ssthresh,omitempty"`
	InitCwnd         uint32 `json:"initcwnd,omitempty"`
	InitRwnd         uint32 `json:"initrwnd,omitempty"`
	RTOMin           uint32 `json:"rto_min,omitempty"`
	RTOMinLock       bool   `json:"rto_min_lock,omitempty"`
	Hoplimit         uint32 `json:"hoplimit,omitempty"`
	Features         uint32 `json:"features,omitempty"`
	QuickACK         bool   `json:"quickack,omitempty"`
	FastOpenNoCookie bool   `json:"fastopen_no_cookie,omitempty"`
	Congctl          string `json:"congctl,omitempty"`
}

// errUnsupported marks an option keepalived takes and vipd cannot
// program: the configuration is judged as keepalived judges it, and the
// daemon refuses it (see routeList).
var errUnsupported = errors.New("not supported by vipd")

// setRouteMetric applies one metric option of a route line.
func setRouteMetric(r *Route, name, value string, lock bool) error {
	if lock && name != "mtu" && name != "rto_min" {
		return fmt.Errorf("%s lock: %w (lock works for mtu and rto_min only)", name, errUnsupported)
	}
	u32 := func() (uint32, error) {
		v, err := strconv.ParseUint(value, 0, 32)
		if err != nil {
			return 0, fmt.Errorf("invalid %s '%s': want a number", name, value)
		}
		return uint32(v), nil
	}
	x := &r.Metrics
	numbers := map[string]*uint32{
		"mtu": &x.MTU, "advmss": &x.AdvMSS, "window": &x.Window, "reordering": &x.Reordering,
		"cwnd": &x.Cwnd, "ssthresh": &x.Ssthresh, "initcwnd": &x.InitCwnd, "initrwnd": &x.InitRwnd,
		"hoplimit": &x.Hoplimit,
	}
	times := map[string]struct {
		dst   *uint32
		scale float64
	}{"rtt": {&x.RTT, 8}, "rttvar": {&x.RTTVar, 4}, "rto_min": {&x.RTOMin, 1}}
	flags := map[string]*bool{"quickack": &x.QuickACK, "fastopen_no_cookie": &x.FastOpenNoCookie}
	var err error
	if p, ok := numbers[name]; ok {
		*p, err = u32()
	} else if t, ok := times[name]; ok {
		*t.dst, err = rttValue(name, value, t.scale)
	} else if p, ok := flags[name]; ok {
		var v uint32
		v, err = u32()
		*p = v != 0
	} else {
		switch name {
		case "features":
			if value == "ecn" {
				x.Features = 1
			} else {
				x.Features, err = u32()
			}
		case "congctl":
			x.Congctl = value
		case "realms":
			r.Realms, err = realmsValue(value)
		default: // pref, ttl-propagate, expires
			return fmt.Errorf("%s %s: %w", name, value, errUnsupported)
		}
	}
	x.MTULock = x.MTULock || (lock && name == "mtu")
	x.RTOMinLock = x.RTOMinLock || (lock && name == "rto_min")
	return err
}

// rttValue reads ip(8)'s time values: a bare number is in the kernel's
// units already; with a unit (s, ms, us, ns and their long forms) it is
// converted to ms and scaled (8 for rtt, 4 for rttvar, 1 for rto_min).
func rttValue(name, s string, scale float64) (uint32, error) {
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		v, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return 0, fmt.Errorf("invalid %s '%s': want a number", name, s)
		}
		return uint32(v), nil
	}
	v, err := strconv.ParseFloat(s[:i], 64)
	if err != nil || i == 0 {
		return 0, fmt.Errorf("invalid %s '%s': want a number with an optional unit", name, s)
	}
	var ms float64
	switch s[i:] {
	case "s", "sec", "secs":
		ms = v * 1000
	case "ms", "msec", "msecs":
		ms = v
	case "us", "usec", "usecs":
		ms = v / 1000
	case "ns", "nsec", "nsecs":
		ms = v / 1e6
	default:
		return 0, fmt.Errorf("invalid %s '%s': unknown unit %q", name, s, s[i:])
	}
	out := ms * scale
	if out > float64(^uint32(0)) {
		return 0, fmt.Errorf("invalid %s '%s': too large", name, s)
	}
	return uint32(out), nil
}

// realmsValue reads "[FROM/]TO" as netif encodes it (FROM<<16|TO).
func realmsValue(s string) (uint32, error) {
	v, err := netif.RealmsValue(s)
	if err != nil || s == "" {
		return 0, fmt.Errorf("invalid realms '%s': want [FROM/]TO with numbers 0..65535", s)
	}
	return v, nil
}

// RealmsString renders realms as ip(8) writes them: FROM/TO.
func RealmsString(v uint32) string {
	if v == 0 {
		return ""
	}
	return fmt.Sprintf("%d/%d", v>>16, v&0xffff)
}

// protocolValue reads a routing protocol: a name of rt_protos or a number.
func protocolValue(s string) (uint8, error) {
	v, err := netif.ProtocolValue(s)
	if err != nil {
		return 0, fmt.Errorf("invalid protocol '%s': want a number 0..255 or a name of rt_protos (static, bird, ...)", s)
	}
	return v, nil
}

// ifGroupValue reads an interface group: a number, or "default" (0).
func ifGroupValue(s string) (int, error) {
	if s == "default" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 0, 31)
	if err != nil {
		return 0, fmt.Errorf("invalid suppress_ifgroup '%s': want a number or default", s)
	}
	return int(v), nil
}
