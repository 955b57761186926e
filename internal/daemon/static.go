package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
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
	// trackGroup is the track_group whose instances go to FAULT while
	// the item cannot be installed (static items only).
	trackGroup string
	addr       netif.Addr
	route      netif.Route
	rule       netif.Rule
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
		plan.static = append(plan.static, netItem{kind: kindAddr, key: addrKey(a), pos: v.Pos, block: "static_ipaddress", addr: a, trackGroup: v.TrackGroup})
	}
	routes := func(block string, in []config.Route) (out []netItem) {
		for _, r := range in {
			nr := routeOf(r)
			out = append(out, netItem{kind: kindRoute, key: "route " + nr.String(), pos: r.Pos, block: block, noTrack: !tracked(r), route: nr, trackGroup: r.TrackGroup})
		}
		return out
	}
	rules := func(block string, in []config.Rule) (out []netItem) {
		for _, r := range in {
			nr := ruleOf(r)
			prefs.assign(&nr)
			out = append(out, netItem{kind: kindRule, key: "rule " + nr.String(), pos: r.Pos, block: block, noTrack: r.NoTrack, rule: nr, trackGroup: r.TrackGroup})
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

// routeOf maps a virtual_routes / static_routes line. Its options were
// judged when the configuration was read (config/routeopts.go): nothing
// here can refuse one.
func routeOf(r config.Route) netif.Route {
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
		Protocol: protocolOf(r.Protocol),
		TOS:      r.TOS,
		OnLink:   r.OnLink,
		Append:   r.Append,
		Realms:   config.RealmsString(r.Realms),
		Metrics:  netif.Metrics(r.Metrics),
	}
	if out.Type == "unicast" {
		out.Type = ""
	}
	for _, nh := range r.Nexthops {
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
	return out
}

// protocolOf hands netif a routing protocol: "" for keepalived's (which
// netif marks its routes with unless told otherwise), else the number.
func protocolOf(p uint8) string {
	if p == netif.ProtoKeepalived {
		return ""
	}
	return strconv.Itoa(int(p))
}

// ruleOf maps a virtual_rules / static_rules line, judged when the
// configuration was read, as routeOf does.
func ruleOf(r config.Rule) netif.Rule {
	out := netif.NewRule()
	out.Inet6, out.Not = r.Inet6, r.Not
	out.From, out.To = r.From, r.To
	out.Priority, out.Table, out.Goto = r.Priority, r.Table, r.Goto
	out.Action = r.Action
	out.TOS, out.FWMark, out.FWMask = r.TOS, r.FWMark, r.FWMask
	out.Realms, out.Iif, out.Oif = config.RealmsString(r.Realms), r.Iif, r.Oif
	out.SuppressPrefixLen, out.SuppressIfGroup = r.SuppressPrefixLen, r.SuppressIfGroup
	out.Protocol = protocolOf(r.Protocol)
	if r.IPProto != 0 {
		out.IPProto = strconv.Itoa(int(r.IPProto))
	}
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
	return out
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
	// onTrack hears a track_group go down (one of its static items
	// cannot be installed) or up again; groupUp is what it last heard.
	onTrack func(group string, up bool)
	groupUp map[string]bool
}

// startRouting applies the static items of cfg and returns once they are
// in place (or logged as refused).
func startRouting(cfg *config.Config, log *slog.Logger, onTrack func(group string, up bool)) *routing {
	r := &routing{
		onTrack: onTrack,
		groupUp: map[string]bool{},
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

// abandon stops the worker and leaves every address, route and rule in
// place: the next process (vipctl upgrade) runs them now.
func (r *routing) abandon() {
	if r == nil {
		return
	}
	r.cancel()
	r.wait(func() { r.closed = true })
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
	r.reportGroups()
}

// reportGroups tells onTrack which track_groups changed: a group is
// down while one of its static items is failing (deleted and not
// reinstated, or never installed).
func (r *routing) reportGroups() {
	if r.onTrack == nil {
		return
	}
	up := map[string]bool{}
	for _, it := range r.plan.static {
		if it.trackGroup == "" {
			continue
		}
		if _, ok := up[it.trackGroup]; !ok {
			up[it.trackGroup] = true
		}
		if r.failing[it.key] {
			up[it.trackGroup] = false
		}
	}
	for g, u := range up {
		if prev, ok := r.groupUp[g]; !ok || prev != u {
			r.groupUp[g] = u
			if !u {
				r.log.Warn(fmt.Sprintf("track_group %s: a static item cannot be installed; its instances go to FAULT", g))
			}
			r.onTrack(g, u)
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
	return it.apply(r.addrs.Add, r.routes.Add, r.rules.Add)
}

func (r *routing) remove(it netItem) error {
	return it.apply(r.addrs.Remove, r.routes.Remove, r.rules.Remove)
}

// apply calls the one of addr, route or rule that takes the item's kind.
func (it netItem) apply(addr func(netif.Addr) error, route func(netif.Route) error, rule func(netif.Rule) error) error {
	switch it.kind {
	case kindAddr:
		return addr(it.addr)
	case kindRoute:
		return route(it.route)
	}
	return rule(it.rule)
}

func (r *routing) present(it netItem) (bool, error) {
	if it.kind == kindAddr {
		return netif.Present(it.addr)
	}
	return netif.RulePresent(it.rule)
}
