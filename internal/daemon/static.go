package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/netif"
)

// This file does what keepalived does with static_ipaddress,
// static_routes and static_rules (configured at start, kept while vipd
// runs, removed at stop) and with an instance's virtual_routes and
// virtual_rules (added when it becomes MASTER, removed when it leaves
// MASTER or vipd stops).
//
// "Kept" follows keepalived: a static address, route or rule someone
// deletes is put back; a tracked virtual route or rule (one without
// no_track) deleted while its instance is MASTER is put back too, where
// keepalived would instead send the instance to BACKUP, after which it
// usually wins the election again and reinstalls it. no_track items stay
// deleted until the instance next becomes MASTER. track_group (faulting
// instances when a static item cannot be restored) is not implemented.

// Kinds of items, in the order they are added (removed in reverse): a
// route may need an address (src, a gateway on its subnet), a rule may
// name a table its routes fill.
const (
	kindAddr = iota
	kindRoute
	kindRule
)

// netItem is one address, route or rule vipd installs.
type netItem struct {
	kind    int
	key     string     // identity: the kind and every attribute
	pos     config.Pos // where the configuration declares it
	block   string     // static_routes, virtual_routes (VI_1), ...
	noTrack bool       // not reinstated when deleted
	addr    netif.Addr
	route   netif.Route
	rule    netif.Rule
}

func (it netItem) String() string {
	switch it.kind {
	case kindAddr:
		return "address " + it.addr.String()
	case kindRoute:
		return "route " + it.route.String()
	}
	return "rule " + it.rule.String()
}

// routingPlan is what the configuration asks for: the static items, and
// the virtual ones of each instance while it is MASTER.
type routingPlan struct {
	static  []netItem
	virtual map[string][]netItem
}

// planNote is a problem found while mapping the configuration, logged
// once per start or reload.
type planNote struct {
	pos  config.Pos
	msg  string
	warn bool // a setting ignored; else the item is skipped
}

func (n planNote) String() string { return n.pos.String() + ": " + n.msg }

// rulePrefs assigns preferences to rules that give none, as keepalived
// does (with a warning at parse time): downwards from 16384, per family,
// in configuration order.
type rulePrefs struct{ next4, next6 uint32 }

func (p *rulePrefs) assign(r *netif.Rule) {
	if r.Priority != 0 {
		return
	}
	next := &p.next4
	if r.Inet6 || (r.From.IsValid() && r.From.Bits() > 0 && r.From.Addr().Is6()) || (r.To.IsValid() && r.To.Bits() > 0 && r.To.Addr().Is6()) {
		next = &p.next6
	}
	r.Priority = *next
	*next--
}

// planRouting maps the configuration onto netif's types. Items that
// cannot be mapped are left out with a note naming their file:line.
func planRouting(cfg *config.Config) (routingPlan, []planNote) {
	plan := routingPlan{virtual: map[string][]netItem{}}
	var notes []planNote
	prefs := &rulePrefs{next4: 16384, next6: 16384}
	for _, v := range cfg.StaticAddresses {
		a, warns := staticAddr(v, cfg.Global.DefaultInterface)
		for _, w := range warns {
			notes = append(notes, planNote{pos: v.Pos, msg: "static_ipaddress " + v.Prefix.String() + ": " + w, warn: true})
		}
		plan.static = append(plan.static, netItem{kind: kindAddr, key: addrKey(a), pos: v.Pos, block: "static_ipaddress", addr: a})
	}
	routes := func(block string, in []config.Route) (out []netItem) {
		for _, r := range in {
			nr, err := routeOf(r)
			if err != nil {
				notes = append(notes, planNote{pos: r.Pos, msg: fmt.Sprintf("%s: route %v: %v - skipping", block, r.Dst, err)})
				continue
			}
			out = append(out, netItem{kind: kindRoute, key: "route " + nr.String(), pos: r.Pos, block: block, noTrack: !tracked(r), route: nr})
		}
		return out
	}
	rules := func(block string, in []config.Rule) (out []netItem) {
		for _, r := range in {
			nr, err := ruleOf(r)
			if err != nil {
				notes = append(notes, planNote{pos: r.Pos, msg: fmt.Sprintf("%s: %v - skipping", block, err)})
				continue
			}
			prefs.assign(&nr)
			out = append(out, netItem{kind: kindRule, key: "rule " + nr.String(), pos: r.Pos, block: block, noTrack: r.NoTrack, rule: nr})
		}
		return out
	}
	plan.static = append(plan.static, routes("static_routes", cfg.StaticRoutes)...)
	plan.static = append(plan.static, rules("static_rules", cfg.StaticRules)...)
	for _, in := range cfg.Instances {
		var items []netItem
		items = append(items, routes("virtual_routes ("+in.Name+")", in.Routes)...)
		items = append(items, rules("virtual_rules ("+in.Name+")", in.Rules)...)
		if len(items) > 0 {
			plan.virtual[in.Name] = items
		}
	}
	return plan, notes
}

// tracked says whether a deleted route is put back: not with no_track,
// nor, as keepalived warns at load ("cannot track route ... with no
// interface specified"), a route without a type or a path without a dev.
func tracked(r config.Route) bool {
	if r.NoTrack {
		return false
	}
	if len(r.Nexthops) > 0 {
		if r.Dev != "" {
			return true
		}
		for _, nh := range r.Nexthops {
			if nh.Dev == "" {
				return false
			}
		}
		return true
	}
	return r.Dev != "" || r.Type != ""
}

func addrKey(a netif.Addr) string {
	return fmt.Sprintf("address %v dev %s label %s scope %s brd %v", a.Prefix, a.Dev, a.Label, a.Scope, a.Broadcast)
}

// staticAddr maps a static_ipaddress line; the warnings name settings
// netif.Addr cannot express, which are ignored.
func staticAddr(v config.VIP, defaultDev string) (netif.Addr, []string) {
	dev := v.Dev
	if dev == "" {
		dev = defaultDev
	}
	a := netif.Addr{Prefix: v.Prefix, Dev: dev, Label: v.Label, Scope: string(v.Scope), Broadcast: v.Brd}
	if v.Prefix.Addr().Is4() {
		switch {
		case v.BrdSet:
			a.Broadcast = broadcastOf(v.Prefix)
		case v.BrdClear:
			a.Broadcast = v.Prefix.Masked().Addr()
		}
	}
	var warns []string
	ignored := func(set bool, what string) {
		if set {
			warns = append(warns, what+" is not supported for static addresses and is ignored")
		}
	}
	ignored(v.Peer.IsValid(), "peer")
	ignored(v.Home, "home")
	ignored(v.MngTmpAddr, "mngtmpaddr")
	ignored(v.NoPrefixRoute, "noprefixroute")
	ignored(v.AutoJoin, "autojoin")
	ignored(v.PreferredLft != nil, "preferred_lft")
	ignored(v.UseVMAC, "use_vmac")
	return a, warns
}

// routeOf maps a virtual_routes / static_routes line.
func routeOf(r config.Route) (netif.Route, error) {
	out := netif.Route{
		Type:     r.Type,
		Dst:      r.Dst,
		Src:      r.Src,
		Via:      r.Via,
		Dev:      r.Dev,
		Table:    r.Table,
		VRF:      r.VRF,
		Metric:   r.Metric,
		Scope:    string(r.Scope),
		Protocol: r.Protocol,
		TOS:      r.TOS,
		OnLink:   r.OnLink,
		Append:   r.Append,
	}
	if out.Type == "unicast" {
		out.Type = ""
	}
	if r.Inet6 && r.Dst == netip.PrefixFrom(netip.IPv4Unspecified(), 0) {
		out.Dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0) // "inet6 default"
	}
	if r.Inet6 && out.Dst.Addr().Is4() {
		return out, fmt.Errorf("inet6 with the IPv4 destination %v", r.Dst)
	}
	if r.Encap != "" {
		return out, fmt.Errorf("encap %s is not supported", r.Encap)
	}
	for _, nh := range r.Nexthops {
		if nh.Realms != "" {
			return out, errors.New("nexthop realms are not supported")
		}
		if nh.Dev == "" {
			// "via A or B dev X": every path leaves by X (the kernel
			// refuses a route whose dev differs from its first path's).
			nh.Dev = r.Dev
		}
		out.Nexthops = append(out.Nexthops, netif.Nexthop{Via: nh.Via, Dev: nh.Dev, Weight: nh.Weight, OnLink: nh.OnLink})
	}
	if len(out.Nexthops) > 0 {
		out.Dev = ""
	}
	for _, m := range r.Metrics {
		if err := setMetric(&out, m); err != nil {
			return out, fmt.Errorf("%s %s: %w", m.Name, m.Value, err)
		}
	}
	return out, nil
}

// setMetric applies one metric-like option of a route line.
func setMetric(r *netif.Route, m config.RouteMetric) error {
	if m.Lock && m.Name != "mtu" && m.Name != "rto_min" {
		return errors.New("lock is supported for mtu and rto_min only")
	}
	u32 := func() (uint32, error) {
		v, err := strconv.ParseUint(m.Value, 0, 32)
		if err != nil {
			return 0, errors.New("want a number")
		}
		return uint32(v), nil
	}
	var err error
	x := &r.Metrics
	switch m.Name {
	case "mtu":
		x.MTU, err = u32()
		x.MTULock = m.Lock
	case "advmss":
		x.AdvMSS, err = u32()
	case "window":
		x.Window, err = u32()
	case "reordering":
		x.Reordering, err = u32()
	case "cwnd":
		x.Cwnd, err = u32()
	case "ssthresh":
		x.Ssthresh, err = u32()
	case "initcwnd":
		x.InitCwnd, err = u32()
	case "initrwnd":
		x.InitRwnd, err = u32()
	case "hoplimit":
		x.Hoplimit, err = u32()
	case "rtt":
		x.RTT, err = rttValue(m.Value, 8)
	case "rttvar":
		x.RTTVar, err = rttValue(m.Value, 4)
	case "rto_min":
		x.RTOMin, err = rttValue(m.Value, 1)
		x.RTOMinLock = m.Lock
	case "features":
		if m.Value == "ecn" {
			x.Features = 1
		} else {
			x.Features, err = u32()
		}
	case "quickack":
		var v uint32
		v, err = u32()
		x.QuickACK = v != 0
	case "fastopen_no_cookie":
		var v uint32
		v, err = u32()
		x.FastOpenNoCookie = v != 0
	case "congctl":
		x.Congctl = m.Value
	case "realms":
		r.Realms = m.Value
	default: // pref, ttl-propagate, expires
		return errors.New("not supported")
	}
	return err
}

// rttValue reads ip(8)'s time values: a bare number is in the kernel's
// units already; with a unit (s, ms, us, ns and their long forms) it is
// converted to ms and scaled (8 for rtt, 4 for rttvar, 1 for rto_min).
func rttValue(s string, scale float64) (uint32, error) {
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		v, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return 0, errors.New("want a number")
		}
		return uint32(v), nil
	}
	v, err := strconv.ParseFloat(s[:i], 64)
	if err != nil || i == 0 {
		return 0, errors.New("want a number with an optional unit")
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
		return 0, fmt.Errorf("unknown unit %q", s[i:])
	}
	out := ms * scale
	if out > float64(^uint32(0)) {
		return 0, errors.New("too large")
	}
	return uint32(out), nil
}

// ruleOf maps a virtual_rules / static_rules line.
func ruleOf(r config.Rule) (netif.Rule, error) {
	out := netif.NewRule()
	out.Inet6, out.Not = r.Inet6, r.Not
	out.From, out.To = r.From, r.To
	out.Priority, out.Table, out.Goto = r.Priority, r.Table, r.Goto
	out.Action = r.Action
	out.TOS, out.FWMark, out.FWMask = r.TOS, r.FWMark, r.FWMask
	out.Realms, out.Iif, out.Oif = r.Realms, r.Iif, r.Oif
	out.SuppressPrefixLen = r.SuppressPrefixLen
	out.Protocol, out.IPProto = r.Protocol, r.IPProto
	if r.UIDRange != nil {
		u := *r.UIDRange
		out.UIDRange = &u
	}
	if r.SPort != nil {
		out.SPort = &netif.PortRange{Min: r.SPort.Min, Max: r.SPort.Max}
	}
	if r.DPort != nil {
		out.DPort = &netif.PortRange{Min: r.DPort.Min, Max: r.DPort.Max}
	}
	if r.L3mdev {
		return out, fmt.Errorf("rule %v: l3mdev is not supported", out)
	}
	if r.SuppressIfGroup != "" {
		g, err := ifGroup(r.SuppressIfGroup)
		if err != nil {
			return out, fmt.Errorf("rule %v: %w", out, err)
		}
		out.SuppressIfGroup = g
	}
	// "from all" with inet6 is ::/0; both mean no selector.
	for _, p := range []*netip.Prefix{&out.From, &out.To} {
		if p.IsValid() && p.Bits() == 0 {
			*p = netip.Prefix{}
		}
		if r.Inet6 && p.IsValid() && p.Addr().Is4() {
			return out, fmt.Errorf("rule %v: inet6 with an IPv4 address", out)
		}
	}
	return out, nil
}

// ifGroup reads an interface group: a number, or "default" (0).
func ifGroup(s string) (int, error) {
	if s == "default" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 0, 31)
	if err != nil {
		return 0, fmt.Errorf("suppress_ifgroup %q: want a number or default", s)
	}
	return int(v), nil
}

// routing owns the addresses, routes and rules of this file. One
// goroutine applies every change, in the order asked: VRRP state changes
// arrive on the VRRP goroutine, which must not block, so they are queued.
type routing struct {
	log *slog.Logger

	mu      sync.Mutex
	jobs    []func()
	stopped bool
	wake    chan struct{}
	done    chan struct{}
	cancel  context.CancelFunc
	// protos are the routing protocols of the planned routes and rules:
	// deletions of others do not concern us.
	protos atomic.Pointer[map[uint8]bool]

	// Owned by the worker goroutine.
	addrs   *netif.Addrs
	routes  *netif.Routes
	rules   *netif.Rules
	plan    routingPlan
	master  map[string]bool
	applied map[string]netItem
	failing map[string]bool
	closed  bool // stopping: nothing is desired any more
}

// startRouting applies the static items of cfg and returns once they are
// in place (or logged as refused).
func startRouting(cfg *config.Config, log *slog.Logger) *routing {
	r := &routing{
		log:     log,
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		addrs:   netif.NewAddrs(),
		routes:  netif.NewRoutes(),
		rules:   netif.NewRules(),
		master:  map[string]bool{},
		applied: map[string]netItem{},
		failing: map[string]bool{},
	}
	r.setPlan(r.planOf(cfg))
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go r.run()
	// Watch before applying, so that nothing deleted meanwhile is missed.
	if changes, err := netif.WatchRouting(ctx, r.ours); err != nil {
		log.Warn("deleted static addresses, routes and rules will not be reinstated", "err", err)
	} else {
		go r.watch(changes)
	}
	r.wait(r.sync)
	return r
}

// setPlan takes a new plan and notes its protocols.
func (r *routing) setPlan(plan routingPlan) {
	protos := map[uint8]bool{}
	note := func(items []netItem) {
		for _, it := range items {
			name := it.route.Protocol
			if it.kind == kindRule {
				name = it.rule.Protocol
			}
			if p, err := netif.ProtocolValue(name); err == nil && it.kind != kindAddr {
				protos[p] = true
			}
		}
	}
	note(plan.static)
	for _, items := range plan.virtual {
		note(items)
	}
	r.plan = plan
	r.protos.Store(&protos)
}

// ours says whether a deleted route or rule of that protocol may be one
// of ours (called on the watcher's goroutine).
func (r *routing) ours(proto uint8) bool {
	m := r.protos.Load()
	return m != nil && (*m)[proto]
}

func (r *routing) planOf(cfg *config.Config) routingPlan {
	plan, notes := planRouting(cfg)
	for _, n := range notes {
		if n.warn {
			r.log.Warn(n.String())
		} else {
			r.log.Error(n.String())
		}
	}
	return plan
}

// vrrpState takes an instance's new state; it never blocks.
func (r *routing) vrrpState(instance, state string) {
	if r == nil {
		return
	}
	switch state {
	case "MASTER", "BACKUP", "FAULT", "STOP":
	default:
		return
	}
	r.enqueue(func() {
		if r.closed {
			return
		}
		if state == "MASTER" {
			// VRRP reports MASTER once the VIPs are in place: a
			// virtual route may need one (src VIP, a gateway on the
			// VIP's subnet), as keepalived adds routes after addresses.
			r.master[instance] = true
		} else {
			delete(r.master, instance)
		}
		r.sync()
	})
}

// reload moves to cfg's static items, and to its virtual ones for the
// instances that are MASTER, and returns when that is done.
func (r *routing) reload(cfg *config.Config) {
	if r == nil {
		return
	}
	plan := r.planOf(cfg)
	r.wait(func() { r.setPlan(plan); r.sync() })
}

// stop removes everything it installed and ends the worker.
func (r *routing) stop() {
	if r == nil {
		return
	}
	r.cancel()
	r.wait(func() {
		r.closed = true
		r.sync()
		// Anything the managers hold that the bookkeeping lost.
		for _, err := range []error{r.rules.RemoveAll(), r.routes.RemoveAll(), r.addrs.RemoveAll()} {
			if err != nil {
				r.log.Error(err.Error())
			}
		}
	})
	r.mu.Lock()
	r.stopped = true
	r.mu.Unlock()
	r.poke()
	<-r.done
}

func (r *routing) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// enqueue hands f to the worker; after stop it is dropped.
func (r *routing) enqueue(f func()) {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return
	}
	r.jobs = append(r.jobs, f)
	r.mu.Unlock()
	r.poke()
}

// wait runs f on the worker and waits for it.
func (r *routing) wait(f func()) {
	done := make(chan struct{})
	r.enqueue(func() { f(); close(done) })
	select {
	case <-done:
	case <-r.done:
	}
}

func (r *routing) run() {
	defer close(r.done)
	for {
		r.mu.Lock()
		jobs := r.jobs
		r.jobs = nil
		stopped := r.stopped
		r.mu.Unlock()
		for _, f := range jobs {
			f()
		}
		if stopped && len(jobs) == 0 {
			return
		}
		if len(jobs) == 0 {
			<-r.wake
		}
	}
}

// watch turns routing changes into reinstatement passes, one at a time:
// changes during a pass leave one token, hence one more pass.
func (r *routing) watch(changes <-chan struct{}) {
	for range changes {
		// Let a burst (an interface going down takes its routes with it)
		// settle into one pass.
		time.Sleep(20 * time.Millisecond)
		r.wait(r.reinstate)
	}
}

// desired lists the items the plan and the MASTER instances ask for, in
// the order they are added, each once.
func (r *routing) desired() []netItem {
	if r.closed {
		return nil
	}
	var out []netItem
	seen := map[string]bool{}
	add := func(items []netItem) {
		for _, it := range items {
			if !seen[it.key] {
				seen[it.key] = true
				out = append(out, it)
			}
		}
	}
	add(r.plan.static)
	names := make([]string, 0, len(r.master))
	for name := range r.master {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		add(r.plan.virtual[name])
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].kind < out[j].kind })
	return out
}

// sync removes what is installed and no longer desired, then installs
// what is desired and missing. A refusal is logged once (with the item's
// file:line) until the item is installed or no longer desired; it does
// not stop the others.
func (r *routing) sync() {
	want := r.desired()
	wanted := map[string]bool{}
	for _, it := range want {
		wanted[it.key] = true
	}
	for kind := kindRule; kind >= kindAddr; kind-- {
		var keys []string
		for k, it := range r.applied {
			if it.kind == kind && !wanted[k] {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			it := r.applied[k]
			delete(r.applied, k)
			if err := r.remove(it); err != nil {
				r.log.Error(fmt.Sprintf("%s: %s: %v", it.pos, it.block, err))
			}
		}
	}
	for k := range r.failing {
		if !wanted[k] {
			delete(r.failing, k)
		}
	}
	for _, it := range want {
		if _, ok := r.applied[it.key]; ok {
			r.applied[it.key] = it // the same item, maybe declared elsewhere now
			continue
		}
		if err := r.add(it); err != nil {
			if !r.failing[it.key] {
				r.log.Error(fmt.Sprintf("%s: %s: %v", it.pos, it.block, err))
				r.failing[it.key] = true
			}
			continue
		}
		r.applied[it.key] = it
		if r.failing[it.key] {
			delete(r.failing, it.key)
			r.log.Info(fmt.Sprintf("%s: %s: %v installed", it.pos, it.block, it))
		}
	}
}

// reinstate puts back the tracked items someone deleted, then retries
// what could not be installed (an interface or address may be back).
func (r *routing) reinstate() {
	var routes []netItem
	var list []netif.Route
	for k, it := range r.applied {
		if it.noTrack {
			continue
		}
		if it.kind == kindRoute {
			// Checked together below: one dump per table.
			routes = append(routes, it)
			list = append(list, it.route)
			continue
		}
		ok, err := r.present(it)
		if err != nil || ok {
			continue
		}
		r.deleted(k, it)
	}
	if present, err := netif.RoutesPresent(list); err == nil {
		for i, it := range routes {
			if !present[i] {
				r.deleted(it.key, it)
			}
		}
	}
	r.sync()
}

func (r *routing) deleted(key string, it netItem) {
	r.log.Warn(fmt.Sprintf("%s: %s: %v was deleted; reinstating it", it.pos, it.block, it))
	delete(r.applied, key)
}

func (r *routing) add(it netItem) error {
	switch it.kind {
	case kindAddr:
		return r.addrs.Add(it.addr)
	case kindRoute:
		return r.routes.Add(it.route)
	}
	return r.rules.Add(it.rule)
}

func (r *routing) remove(it netItem) error {
	switch it.kind {
	case kindAddr:
		return r.addrs.Remove(it.addr)
	case kindRoute:
		return r.routes.Remove(it.route)
	}
	return r.rules.Remove(it.rule)
}

func (r *routing) present(it netItem) (bool, error) {
	if it.kind == kindAddr {
		return netif.Present(it.addr)
	}
	return netif.RulePresent(it.rule)
}
