package config

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// noteBFD says what vipd's BFD is.
const noteBFD = "BFD (RFC 5880/5881, 5883 with multihop) in vipd itself (no separate BFD process)"

// notePrioChanges says what notify_priority_changes does in vipd.
const notePrioChanges = "a change of the effective priority writes INSTANCE \"NAME\" MASTER_PRIORITY|BACKUP_PRIORITY PRIO to the FIFOs (not to notify scripts, as keepalived); instance, else sync group, else vrrp_notify_priority_changes"

// trackList parses a track_interface / track_script / track_file /
// track_process / track_bfd block: one name per line with an optional
// "weight N [reverse]".
func trackList(name string, lo, hi int64, dst func(c *cx) *[]TrackRef) *Keyword {
	return list(name, "{ NAME [weight "+itoa(lo)+".."+itoa(hi)+" [reverse]] ... }", func(c *cx, n *Node) {
		out := dst(c)
	items:
		for _, it := range n.Children {
			for _, have := range *out {
				if have.Name == it.Name {
					owner := "sync group"
					if c.inst != nil {
						owner = c.inst.Name
					} else if c.sg != nil {
						owner = c.sg.Name
					}
					c.warnf(it, "list each name once", "(%s) duplicate %s %s - ignoring", owner, name, it.Name)
					continue items
				}
			}
			w, set, rev := c.weightArgs(it, 0, lo, hi)
			*out = append(*out, TrackRef{Pos: it.Pos, Name: it.Name, Weight: w, WeightSet: set, Reverse: rev})
		}
	})
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// notifyKw is a notify script keyword of an instance or sync group.
func notifyKw(name string, dst func(c *cx) **Script) *Keyword {
	return kw(name, "STRING|QUOTED_STRING [username [groupname]]", 1, "", func(c *cx, n *Node) {
		setScriptOnce(c, n, dst(c))
	})
}

// setScriptOnce sets a notify-type script; keepalived keeps the first
// and warns about a second one.
func setScriptOnce(c *cx, n *Node, dst **Script) {
	if *dst != nil {
		c.warnf(n, "give "+n.Name+" once", "%s script already specified - ignoring %s", n.Name, arg(n, 0))
		return
	}
	*dst = c.script(n, 0)
}

func notifyOf(c *cx) *Notify {
	if c.inst != nil {
		return &c.inst.Notify
	}
	return &c.sg.Notify
}

var vrrpScriptSection = newSection("vrrp_script", "VRRP tracking script",
	kw("script", "STRING|QUOTED_STRING", 1, "", func(c *cx, n *Node) { c.scr.Script = c.script(n, 0) }).noValue(NoValueIgnored),
	kw("interval", "SECONDS", 1, "1", func(c *cx, n *Node) {
		if v, ok := c.integer(n, 0, 1, 4294); ok {
			c.scr.Interval = time.Duration(v) * time.Second
		}
	}),
	kw("timeout", "SECONDS", 1, "interval", func(c *cx, n *Node) {
		if v, ok := c.integer(n, 0, 0, 1<<32-1); ok {
			c.scr.Timeout = time.Duration(v) * time.Second
		}
	}),
	kw("weight", "-253..253 [reverse]", 1, "0", func(c *cx, n *Node) {
		w, set, rev := c.weightArgs(&Node{Pos: n.Pos, Name: n.Name, Args: append([]string{"weight"}, n.Args...)}, 0, -253, 253)
		if set {
			c.scr.Weight, c.scr.Reverse = w, rev
		}
	}),
	kw("rise", "INTEGER", 1, "1", func(c *cx, n *Node) { c.intVal(n, &c.scr.Rise, 0, 1<<32-1) }),
	kw("fall", "INTEGER", 1, "1", func(c *cx, n *Node) { c.intVal(n, &c.scr.Fall, 0, 1<<32-1) }),
	kw("user", "USERNAME [GROUPNAME]", 1, "script_user", func(c *cx, n *Node) {
		if c.scr.Script == nil {
			c.scr.Script = &Script{Pos: n.Pos}
		}
		c.scr.userPos = n.Pos
		c.scr.user, c.scr.group = n.Args[0], arg(n, 1)
	}),
	flagKw("init_fail", func(c *cx, n *Node) { c.scr.InitFail = true }),
)

var trackProcessSection = newSection("vrrp_track_process", "VRRP process tracking",
	kw("process", "STRING|QUOTED_STRING [PARAM ...]", 1, "", func(c *cx, n *Node) {
		if len(c.tp.Process) > 0 {
			c.errf(n, "give process once", "Process already set for track process %s - ignoring %s", c.tp.Name, n.Args[0])
			return
		}
		c.tp.Process = append([]string(nil), n.Args...)
	}),
	kw("param_match", "[initial|partial]", 0, "exact with parameters", func(c *cx, n *Node) {
		switch a := arg(n, 0); a {
		case "":
			// keepalived: the parameters given (maybe none) exactly.
			c.tp.ParamMatch = "exact"
		case "initial", "partial":
			c.tp.ParamMatch = a
		default:
			c.errf(n, "use initial or partial", "Invalid param_match type %s - ignoring", a)
		}
	}).note("parameters, or param_match, match the command line (/proc/PID/cmdline) as full_command does; param_match alone: the process has no parameters"),
	kw("weight", "-254..254 [reverse]", 1, "0", func(c *cx, n *Node) {
		w, set, rev := c.weightArgs(&Node{Pos: n.Pos, Name: n.Name, Args: append([]string{"weight"}, n.Args...)}, 0, -254, 254)
		if set {
			c.tp.Weight, c.tp.Reverse = w, rev
		}
	}).noValue(NoValueError),
	kw("quorum", "NUM", 1, "1", func(c *cx, n *Node) {
		if v, ok := c.integer(n, 0, 1, 65535); ok {
			if c.tp.QuorumMax >= 0 && int(v) > c.tp.QuorumMax {
				c.errf(n, "give quorum_max after quorum, or a larger one", "Quorum is greater than quorum_max - ignoring")
				return
			}
			c.tp.Quorum = int(v)
		}
	}),
	kw("quorum_max", "NUM", 1, "unlimited", func(c *cx, n *Node) {
		v, ok := c.integer(n, 0, 0, 65535)
		if !ok {
			return
		}
		// keepalived allows quorum_max 0 (no such process may run)
		// unless a quorum above 1 was given.
		if (v != 0 || c.tp.Quorum > 1) && int(v) < c.tp.Quorum {
			c.errf(n, "give a quorum_max of at least quorum", "quorum_max is less than quorum - ignoring")
			return
		}
		c.tp.QuorumMax = int(v)
		if v == 0 {
			c.tp.Quorum = 0
		} else if c.tp.Quorum == 0 {
			c.tp.Quorum = 1
		}
	}),
	kw("fork_delay", "SECONDS", 1, "0", func(c *cx, n *Node) { c.durVal(n, &c.tp.ForkDelay, 0.000001, 3600) }),
	kw("terminate_delay", "SECONDS", 1, "0", func(c *cx, n *Node) { c.durVal(n, &c.tp.TerminateDelay, 0.000001, 3600) }),
	kw("delay", "SECONDS", 1, "0", func(c *cx, n *Node) {
		if c.durVal(n, &c.tp.ForkDelay, 0.000001, 3600) {
			c.tp.TerminateDelay = c.tp.ForkDelay
		}
	}),
	flagKw("full_command", func(c *cx, n *Node) { c.tp.FullCommand = true }),
)

var trackFileSection = newSection("track_file", "Tracked file",
	kw("file", "QUOTED_STRING", 1, "", func(c *cx, n *Node) { c.tf.File = n.Args[0] }).noValue(NoValueError),
	kw("weight", "-2147483647..2147483647 [reverse]", 1, "1", func(c *cx, n *Node) {
		w, set, rev := c.weightArgs(&Node{Pos: n.Pos, Name: n.Name, Args: append([]string{"weight"}, n.Args...)}, 0, -2147483647, 2147483647)
		if set {
			c.tf.Weight, c.tf.Reverse = w, rev
		}
	}).noValue(NoValueError),
	kw("init_file", "[VALUE] [overwrite]", 0, "", func(c *cx, n *Node) {
		f := &InitFile{}
		for i, a := range n.Args {
			if a == "overwrite" {
				f.Overwrite = true
				continue
			}
			if v, ok := c.integer(n, i, -2147483648, 2147483647); ok {
				f.Value = int(v)
			}
		}
		c.tf.InitFile = f
	}),
)

var syncGroupSection = newSection("vrrp_sync_group", "VRRP synchronization group",
	list("group", "{ VRRP_INSTANCE ... }", func(c *cx, n *Node) {
		c.sg.Instances = append(c.sg.Instances, names(n)...)
	}),
	trackList("track_interface", -253, 253, func(c *cx) *[]TrackRef { return &c.sg.Track.Interfaces }),
	trackList("track_script", -253, 253, func(c *cx) *[]TrackRef { return &c.sg.Track.Scripts }),
	trackList("track_file", -254, 254, func(c *cx) *[]TrackRef { return &c.sg.Track.Files }),
	trackList("track_process", -254, 254, func(c *cx) *[]TrackRef { return &c.sg.Track.Processes }),
	trackList("track_bfd", -253, 253, func(c *cx) *[]TrackRef { return &c.sg.Track.BFDs }),
	notifyKw("notify_master", func(c *cx) **Script { return &notifyOf(c).Master }),
	notifyKw("notify_backup", func(c *cx) **Script { return &notifyOf(c).Backup }),
	notifyKw("notify_fault", func(c *cx) **Script { return &notifyOf(c).Fault }),
	notifyKw("notify_stop", func(c *cx) **Script { return &notifyOf(c).Stop }),
	notifyKw("notify", func(c *cx) **Script { return &notifyOf(c).Any }),
	flagKw("notify_priority_changes", func(c *cx, n *Node) { c.boolPtr(n, &c.sg.NotifyPriorityChanges) }).note(notePrioChanges).args("[<BOOL>]", 0),
	flagKw("smtp_alert", func(c *cx, n *Node) { c.boolVal(n, &c.sg.SMTPAlert) }).args("[<BOOL>]", 0),
	&Keyword{Name: "global_tracking", Warn: true, Deprecated: "track_interface/track_script/track_file on the sync group",
		set: func(c *cx, n *Node) { c.sg.GlobalTracking = true }},
	flagKw("sync_group_tracking_weight", func(c *cx, n *Node) { c.sg.SyncGroupTrackingWeight = true }),
)

var garpGroupSection = newSection("garp_group", "Gratuitous ARP / unsolicited NA pacing",
	kw("garp_interval", "SECONDS", 1, "0", func(c *cx, n *Node) {
		if c.durVal(n, &c.gg.Interval, 0, 2147.483647) {
			c.gg.delaySet = true
		}
	}),
	kw("gna_interval", "SECONDS", 1, "0", func(c *cx, n *Node) {
		if c.durVal(n, &c.gg.NAInterval, 0, 2147.483647) {
			c.gg.delaySet = true
		}
	}),
	kw("interface", "IFNAME", 1, "", func(c *cx, n *Node) { c.gg.Interfaces = append(c.gg.Interfaces, n.Args[0]) }),
	list("interfaces", "{ IFNAME ... }", func(c *cx, n *Node) {
		if len(n.Children) == 0 {
			c.warnf(n, "list the interfaces, or remove the block", "empty garp_group interfaces block")
		}
		c.gg.Interfaces = append(c.gg.Interfaces, names(n)...)
	}),
)

var trackGroupSection = newSection("track_group", "Static track group",
	list("group", "{ VRRP_INSTANCE ... }", func(c *cx, n *Node) { c.tg.Instances = append(c.tg.Instances, names(n)...) }),
)

var authSection = newSection("authentication", "VRRPv2 authentication",
	kw("auth_type", "PASS|AH", 1, "", func(c *cx, n *Node) {
		if c.inst.Auth == nil {
			c.inst.Auth = &Auth{}
		}
		switch n.Args[0] {
		case "PASS":
			c.inst.Auth.Type = AuthPass
		case "AH":
			c.inst.Auth.Type = AuthAH
		default:
			c.errf(n, "use PASS (or AH)", "unknown authentication type '%s'", n.Args[0])
		}
	}),
	kw("auth_pass", "PASSWORD", 1, "", func(c *cx, n *Node) {
		if c.inst.Auth == nil {
			c.inst.Auth = &Auth{}
		}
		p := n.Args[0]
		if len(p) > 8 {
			c.warnf(n, "VRRP passwords are 8 bytes; shorten it so all routers agree on what is sent", "truncating auth_pass to 8 characters")
			p = p[:8]
		}
		c.inst.Auth.Pass = p
	}),
)

// authHMACSection is keepalived's auth_hmac block (2.4.2+), with its
// parser's messages.
var authHMACSection = newSection("auth_hmac", "HMAC advert authentication",
	kw("key", "ID hex:HEX|file:PATH|STRING", 0, "", authHMACKey).noValue(NoValueError),
	kw("active_key", "1..255", 0, "", func(c *cx, n *Node) {
		id, err := strconv.Atoi(arg(n, 0))
		if err != nil || id < 1 || id > 255 {
			c.errf(n, "write the id of one of the keys", "(%s) auth_hmac active_key '%s' must be between 1 and 255", c.inst.Name, arg(n, 0))
			return
		}
		c.inst.AuthHMAC.ActiveKey = id
	}).noValue(NoValueError),
	kw("anti_replay", "time|monotonic", 0, "time", func(c *cx, n *Node) {
		switch arg(n, 0) {
		case "time":
			c.inst.AuthHMAC.Monotonic = false
		case "monotonic":
			c.inst.AuthHMAC.Monotonic = true
		default:
			c.errf(n, "time or monotonic", "(%s) auth_hmac anti_replay '%s' must be time or monotonic", c.inst.Name, arg(n, 0))
		}
	}).noValue(NoValueError),
	kw("time_window", "1..300", 0, "max(3 × advert_int, 5)", func(c *cx, n *Node) {
		w, err := strconv.Atoi(arg(n, 0))
		if err != nil || w < 1 || w > 300 {
			c.errf(n, "seconds from 1 to 300", "(%s) auth_hmac time_window '%s' must be between 1 and 300 seconds", c.inst.Name, arg(n, 0))
			return
		}
		c.inst.AuthHMAC.TimeWindow = w
	}).noValue(NoValueError),
	kw("mode", "enforce|permissive|receive-only", 0, "enforce", func(c *cx, n *Node) {
		switch m := arg(n, 0); m {
		case "enforce", "permissive", "receive-only":
			c.inst.AuthHMAC.Mode = m
		default:
			c.errf(n, "enforce, permissive or receive-only", "(%s) auth_hmac mode '%s' must be enforce, permissive or receive-only", c.inst.Name, m)
		}
	}).noValue(NoValueError),
)

// authHMACKey is auth_hmac's key: an id and a value, inline (hex: for raw
// bytes, else the ASCII string) or read from a file (file:PATH, which
// must not be readable by group or others).
func authHMACKey(c *cx, n *Node) {
	a := c.inst.AuthHMAC
	if len(n.Args) < 2 {
		c.errf(n, "write: key ID VALUE", "(%s) auth_hmac key needs an id and a value", c.inst.Name)
		return
	}
	id, err := strconv.Atoi(n.Args[0])
	if err != nil || id < 1 || id > 255 {
		c.errf(n, "key ids are 1 to 255", "(%s) auth_hmac key id '%s' must be between 1 and 255", c.inst.Name, n.Args[0])
		return
	}
	v := n.Args[1]
	if path, ok := strings.CutPrefix(v, "file:"); ok {
		f, err := os.Open(path)
		if err != nil {
			c.errf(n, "the file must exist and be readable", "(%s) auth_hmac key file '%s' cannot be opened", c.inst.Name, path)
			return
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.Mode().Perm()&0o077 != 0 {
			c.b.add(n.Pos, Security, n.Name, "chmod 600 the key file", "(%s) auth_hmac key file '%s' is readable by group or others", c.inst.Name, path)
		}
		buf := make([]byte, 4+HMACKeyMax*2+8)
		k, _ := io.ReadFull(f, buf)
		if k == len(buf)-1 || k == len(buf) {
			c.errf(n, "the file holds one key", "(%s) auth_hmac key file '%s' is too large", c.inst.Name, path)
			return
		}
		v = strings.TrimRight(string(buf[:k]), "\r\n")
	}
	var key []byte
	if h, ok := strings.CutPrefix(v, "hex:"); ok {
		key = hexKey(h)
	} else {
		key = []byte(v)
	}
	if len(key) < HMACKeyMin || len(key) > HMACKeyMax {
		c.errf(n, fmt.Sprintf("keys are %d to %d bytes", HMACKeyMin, HMACKeyMax), "(%s) auth_hmac key %d length %d not in range [%d, %d]", c.inst.Name, id, len(key), HMACKeyMin, HMACKeyMax)
		return
	}
	for _, k := range a.Keys {
		if k.ID == id {
			c.errf(n, "one line per key id", "(%s) duplicate auth_hmac key id %d", c.inst.Name, id)
			return
		}
	}
	a.Keys = append(a.Keys, HMACKey{ID: id, Key: key, Pos: n.Pos})
}

// Key lengths keepalived accepts for auth_hmac.
const (
	HMACKeyMin = 32
	HMACKeyMax = 64
)

// hexKey decodes hex digits, spaces and tabs skipped (keepalived's
// read_hex_str); a bad digit yields no key (reported as its length).
func hexKey(s string) []byte {
	s = strings.NewReplacer(" ", "", "\t", "").Replace(s)
	if len(s)%2 == 1 {
		s = "0" + s
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil
	}
	return b
}

// bfdSection lists bfd_instance's keywords (see kw_bfd.go).
var bfdSection = newSection("bfd_instance", "BFD instance",
	kw("neighbor_ip", "IP", 1, "", func(c *cx, n *Node) { bfdAddr(c, n, &c.bfd.Neighbor, "neighbor") }).noValue(NoValueError),
	kw("neighbour_ip", "IP", 1, "", func(c *cx, n *Node) { bfdAddr(c, n, &c.bfd.Neighbor, "neighbour") }).noValue(NoValueError),
	kw("source_ip", "IP", 1, "", func(c *cx, n *Node) { bfdAddr(c, n, &c.bfd.Source, "source") }),
	kw("min_rx", "MS", 1, "10", func(c *cx, n *Node) { bfdMS(c, n, &c.bfd.MinRx, 1, 10000) }),
	kw("min_tx", "MS", 1, "10", func(c *cx, n *Node) { bfdMS(c, n, &c.bfd.MinTx, 1, 10000) }),
	kw("idle_tx", "MS", 1, "1000", func(c *cx, n *Node) { bfdMS(c, n, &c.bfd.IdleTx, 1000, 10000) }),
	kw("multiplier", "1..255", 1, "5", func(c *cx, n *Node) { bfdInt(c, n, &c.bfd.Multiplier, "multiplier", 1, 255) }),
	flagKw("passive", func(c *cx, n *Node) { c.bfd.Passive = true }),
	kw("ttl", "1..255", 1, "255 (IPv4), 64 (IPv6)", func(c *cx, n *Node) { bfdInt(c, n, &c.bfd.TTL, "ttl/hoplimit", 1, 255) }),
	kw("hoplimit", "1..255", 1, "255 (IPv4), 64 (IPv6)", func(c *cx, n *Node) { bfdInt(c, n, &c.bfd.TTL, "ttl/hoplimit", 1, 255) }),
	kw("max_hops", "-1..255", 1, "0", func(c *cx, n *Node) { bfdInt(c, n, &c.bfd.MaxHops, "max_hops", -1, 255) }),
	kw("weight", "-253..253 [reverse]", 1, "0", func(c *cx, n *Node) {
		w, set, rev := c.weightArgs(&Node{Pos: n.Pos, Name: n.Name, Args: append([]string{"weight"}, n.Args...)}, 0, -253, 253)
		if set {
			c.bfd.Weight, c.bfd.Reverse = w, rev
		}
	}).noValue(NoValueError),
	ign("vrrp", "", 0, "vipd's one process serves VRRP and the checkers alike: both always see the session"),
	ign("checker", "", 0, "vipd's one process serves VRRP and the checkers alike: both always see the session"),
	flagKw("multihop", func(c *cx, n *Node) { c.boolVal(n, &c.bfd.Multihop) }).args("[<BOOL>]", 0).since("2.3"),
)

// instGARPSeconds is an instance's garp_* delay keyword (whole seconds,
// 0..2^32-1): dst gives the field to set and the flag that stops it
// inheriting the global vrrp_garp_* value.
func instGARPSeconds(name, def string, dst func(c *cx) (*time.Duration, *bool)) *Keyword {
	return kw(name, "SECONDS", 1, def, func(c *cx, n *Node) {
		if v, ok := c.integer(n, 0, 0, 1<<32-1); ok {
			d, set := dst(c)
			*d, *set = time.Duration(v)*time.Second, true
		}
	})
}

// instGARPCount is instGARPSeconds for a garp_* repeat count.
func instGARPCount(name, def string, dst func(c *cx) (*int, *bool)) *Keyword {
	return kw(name, "COUNT", 1, def, func(c *cx, n *Node) {
		if v, ok := c.integer(n, 0, 0, 1<<32-1); ok {
			d, set := dst(c)
			*d, *set = int(v), true
		}
	})
}

func (c *cx) inheritGARP() *garpSet {
	s := c.b.instGARP[c.inst]
	if s == nil {
		s = &garpSet{}
		c.b.instGARP[c.inst] = s
	}
	return s
}

func vipList(name string, excluded bool) *Keyword {
	return list(name, "{ IP[/MASK] [brd IP] [dev IF] [scope SCOPE] [label LABEL] ... }", func(c *cx, n *Node) {
		for _, it := range n.Children {
			v, err := parseVIP(append([]string{it.Name}, it.Args...), false)
			if err != nil {
				c.errf(it, "write IP[/MASK] [brd IP] [dev IF] [scope SCOPE] [label LABEL] [no_track] ...", "%s: %v - skipping", name, err)
				continue
			}
			v.Pos = it.Pos
			if c.b.v24() && c.vipDuplicate(it, v, excluded) {
				continue
			}
			if excluded {
				c.inst.ExcludedVIPs = append(c.inst.ExcludedVIPs, v)
			} else {
				c.inst.VIPs = append(c.inst.VIPs, v)
			}
		}
	})
}

// vipDuplicate is keepalived 2.4's check that an instance lists an
// address once (2.2.7 accepts a repeated VIP): a VIP repeating a VIP, or
// an excluded VIP on the same interface, is reported and skipped.
func (c *cx) vipDuplicate(it *Node, v VIP, excluded bool) bool {
	dev := func(d string) string {
		if d == "" {
			return c.inst.Interface
		}
		return d
	}
	kind := ""
	if excluded {
		kind = "Excluded "
	}
	for _, o := range c.inst.VIPs {
		if excluded && dev(o.Dev) != dev(v.Dev) {
			continue
		}
		if o.Prefix.Addr() == v.Prefix.Addr() {
			c.errf(it, "list each address once", "(%s): %sVIP duplicates a VIP %s - ignoring", c.inst.Name, kind, it.Name)
			return true
		}
	}
	for _, o := range c.inst.ExcludedVIPs {
		if dev(o.Dev) == dev(v.Dev) && o.Prefix.Addr() == v.Prefix.Addr() {
			c.errf(it, "list each address once", "(%s): %sVIP duplicates an excluded VIP %s - ignoring", c.inst.Name, kind, it.Name)
			return true
		}
	}
	return false
}

func routeList(name string, dst func(c *cx) *[]Route) *Keyword {
	return list(name, "{ [src IP] [to] PREFIX [via IP] [dev IF] [table T] ... }", func(c *cx, n *Node) {
		for _, it := range n.Children {
			r, warns, unsupported, err := parseRoute(append([]string{it.Name}, it.Args...))
			for _, w := range warns {
				c.warnf(it, w.hint, "%s", w.msg)
			}
			if err != nil {
				c.errf(it, "write routes as ip route add would take them", "%s: %v - skipping", name, err)
				continue
			}
			if c.unsupportedOpts(it, name, unsupported) {
				continue
			}
			r.Pos = it.Pos
			*dst(c) = append(*dst(c), r)
		}
	})
}

func ruleList(name string, dst func(c *cx) *[]Rule) *Keyword {
	return list(name, "{ [from PREFIX] [to PREFIX] [table T] [preference N] ... }", func(c *cx, n *Node) {
		for _, it := range n.Children {
			r, unsupported, err := parseRule(append([]string{it.Name}, it.Args...))
			if err != nil {
				c.errf(it, "write rules as ip rule add would take them", "%s: %v - skipping", name, err)
				continue
			}
			if c.unsupportedOpts(it, name, unsupported) {
				continue
			}
			r.Pos = it.Pos
			if r.Priority == 0 {
				c.b.ruleNoPref++
				c.warnf(it, "add preference N: rules are added in a changing order", "rule has no preference specified - setting to %d. This is probably not what you want", 16385-c.b.ruleNoPref)
			}
			*dst(c) = append(*dst(c), r)
		}
	})
}

// unsupportedOpts reports the options of a route or rule line that
// keepalived takes and vipd cannot program, as refused keywords are: a
// notice for `vipd -t` (keepalived's verdict), an error that stops the
// daemon (which judges for a data plane). The line is left out.
func (c *cx) unsupportedOpts(it *Node, block string, opts []string) bool {
	for _, o := range opts {
		if c.b.opts.Dataplane == "" {
			c.b.add(it.Pos, Notice, block, "remove the option, or program this route outside vipd", "%s; the daemon refuses this configuration", o)
		} else {
			c.b.add(it.Pos, Error, block, "remove the option, or program this route outside vipd", "%s - the daemon cannot run this line", o).Exit = ExitConfig
		}
	}
	return len(opts) > 0
}

func instSrcIP(name string) *Keyword {
	return kw(name, "IPADDR", 1, "primary address of the interface", func(c *cx, n *Node) {
		a, err := netip.ParseAddr(n.Args[0])
		if err != nil {
			c.errf(n, "give an IP address of this host", "(%s) malformed src address %s - skipping", c.inst.Name, n.Args[0])
		} else {
			c.inst.SrcIP = a
		}
		if name == "unicast_src_ip" {
			c.inheritGARP().unicastKeyword = n
		}
	})
}

var instanceSection = newSection("vrrp_instance", "VRRP instance",
	kw("state", "MASTER|BACKUP", 1, "BACKUP", func(c *cx, n *Node) {
		c.inst.statePos = n.Pos
		switch n.Args[0] {
		case "MASTER":
			c.inst.State = StateMaster
		case "BACKUP":
			c.inst.State = StateBackup
		default:
			c.errf(n, "use MASTER or BACKUP", "(%s) unknown state '%s', defaulting to BACKUP", c.inst.Name, n.Args[0])
		}
	}),
	kw("interface", "IFNAME", 1, "", func(c *cx, n *Node) {
		c.inst.Interface = n.Args[0]
		c.inst.ifacePos = n.Pos
	}),
	kw("vrf", "VRF_IF", 1, "", func(c *cx, n *Node) { c.inst.VRF = n.Args[0] }).status(Refused).note("VRFs are not supported by vipd"),
	kw("use_vmac", "[[name] IFNAME] [MAC] [netlink_notify_msg] [group GROUP]", 0, "<vmac_prefix>.<VRID>", func(c *cx, n *Node) {
		v := &VMAC{}
		if c.inst.UseVMAC != nil {
			v.XmitBase = c.inst.UseVMAC.XmitBase
		}
		c.inst.vmacImplicit = false
		for i := 0; i < len(n.Args); i++ {
			switch a := n.Args[i]; {
			case a == "netlink_notify_msg":
				// A netlink message keepalived forces for its own view of
				// the base interface; vipd needs none.
			case a == "group" && i+1 < len(n.Args):
				i++ // the link group: vipd leaves the macvlan in group 0
			case a == "name" && i+1 < len(n.Args):
				i++
				v.Interface = n.Args[i]
			case strings.Count(a, ":") >= 4:
				v.MAC = a
			default:
				v.Interface = a
			}
		}
		c.inst.UseVMAC = v
	}).note("a macvlan (private mode) on the instance's interface with the virtual MAC 00:00:5e:00:01:VRID (IPv6 02:VRID), up in every state; the VIPs without dev live on it; removed at stop. `group` is accepted and not applied; IGMP reports from the macvlan are not moved to the base interface (keepalived does that with nftables)"),
	flagKw("use_vmac_addr", nil).status(Refused).note("per-address VMACs are not implemented"),
	flagKw("vmac_xmit_base", func(c *cx, n *Node) {
		if c.inst.UseVMAC == nil {
			c.inst.UseVMAC = &VMAC{}
			c.inst.vmacImplicit = true
		}
		c.inst.UseVMAC.XmitBase = true
	}).note("adverts go out and come in on the base interface, the VIPs stay on the macvlan"),
	refuse("use_ipvlan", "[IFNAME] [IP] [bridge|private|vepa]", 0, "ipvlan interfaces are not implemented"),
	flagKw("native_ipv6", func(c *cx, n *Node) { c.inst.NativeIPv6 = true }),
	flagKw("dont_track_primary", func(c *cx, n *Node) { c.inst.DontTrackPrimary = true }),
	trackList("track_interface", -253, 253, func(c *cx) *[]TrackRef { return &c.inst.Track.Interfaces }),
	trackList("track_script", -253, 253, func(c *cx) *[]TrackRef { return &c.inst.Track.Scripts }),
	trackList("track_file", -254, 254, func(c *cx) *[]TrackRef { return &c.inst.Track.Files }),
	trackList("track_process", -254, 254, func(c *cx) *[]TrackRef { return &c.inst.Track.Processes }),
	trackList("track_bfd", -253, 253, func(c *cx) *[]TrackRef { return &c.inst.Track.BFDs }),
	instSrcIP("mcast_src_ip"),
	instSrcIP("unicast_src_ip"),
	kw("mcast_dst_ip", "MULTICAST_IPADDR", 1, "vrrp_mcast_group4/6", func(c *cx, n *Node) {
		if a, ok := c.addr(n, 0); ok {
			if !a.IsMulticast() {
				c.errf(n, "give a multicast address", "mcast_dst_ip '%s' is not a multicast address", n.Args[0])
				return
			}
			c.inst.McastDstIP = a
		}
	}).note("adverts go to and are heard on this group only; a group of the wrong family (or IPv6 not link-local) is reported and the default used, as keepalived"),
	flagKw("track_src_ip", func(c *cx, n *Node) { c.inst.TrackSrcIP = true }).note("FAULT (reason \"source address X is not on interface I\") while unicast_src_ip or mcast_src_ip is not on the instance's interface, as the man page says; no effect without either. keepalived 2.2.7 and 2.4.3 do not fault (acassen/keepalived#1847) and go MASTER, deaf to their peer"),
	kw("version", "2|3", 1, "vrrp_version", func(c *cx, n *Node) {
		if c.intVal(n, &c.inst.Version, 2, 3) {
			c.inheritGARP().version = true
		}
	}),
	flagKw("check_unicast_src", func(c *cx, n *Node) {
		c.inst.CheckUnicastSrc = true
		c.inheritGARP().unicastKeyword = n
	}),
	list("unicast_peer", "{ IPADDR [min_ttl 0..255] [max_ttl 0..255] ... }", func(c *cx, n *Node) {
		for _, it := range n.Children {
			a, err := netip.ParseAddr(it.Name)
			if err != nil {
				c.errf(it, "one peer address per line", "invalid unicast_peer address '%s' - skipping", it.Name)
				continue
			}
			p := UnicastPeer{Addr: a}
			for i := 0; i < len(it.Args); i += 2 {
				v, ok := c.integer(it, i+1, 0, 255)
				if !ok {
					continue
				}
				switch it.Args[i] {
				case "min_ttl":
					p.MinTTL = int(v)
				case "max_ttl":
					p.MaxTTL = int(v)
				default:
					c.errf(it, "options are min_ttl and max_ttl", "unknown unicast_peer option '%s'", it.Args[i])
				}
			}
			if p.MinTTL > 0 || p.MaxTTL > 0 {
				c.inst.CheckUnicastSrc = true
			}
			c.inst.UnicastPeers = append(c.inst.UnicastPeers, p)
		}
	}),
	flagKw("v3_checksum_as_v2", func(c *cx, n *Node) {
		c.boolVal(n, &c.inst.V3ChecksumAsV2)
		c.inst.v3set = true
	}).args("[<BOOL>]", 0).since("2.3"),
	kw("timer_expired_backup", "[HIGHEST_PRIORITY_OF_OTHER_INSTANCES]", 0, "254", nil).status(Ignored).
		note("vipd's timers are not run late by a busy scheduler the way keepalived's are").since("2.3"),
	flagKw("no_virtual_ipaddress", func(c *cx, n *Node) { c.inst.NoVIPs = true }).since("2.3"),
	block("auth_hmac", "{ key ID VALUE; active_key ID; anti_replay time|monotonic; time_window S; mode M }", 0, authHMACSection, func(c *cx, n *Node) {
		if c.inst.AuthHMAC == nil {
			c.inst.AuthHMAC = &AuthHMAC{}
			c.inst.authHMACPos = n.Pos
		}
		c.walk(authHMACSection, n.Children)
	}).since("2.4").note("keepalived 2.4.2's wire format; vipd signs its adverts and verifies its peers' (interop tested with keepalived 2.4.3)"),
	flagKw("unicast_fault_no_peer", func(c *cx, n *Node) { c.inst.UnicastFaultNoPeer = true }).note("an instance with no unicast_peer stays in FAULT (reason \"Cannot use unicast without any peers\") instead of running over multicast"),
	kw("unicast_ttl", "0..255", 1, "255", func(c *cx, n *Node) {
		c.intVal(n, &c.inst.UnicastTTL, 0, 255)
		c.inheritGARP().unicastKeyword = n
	}),
	kw("old_unicast_checksum", "[never]", 0, "", func(c *cx, n *Node) {
		switch arg(n, 0) {
		case "":
			c.inst.OldUnicastChecksum = "config"
		case "never":
			c.inst.OldUnicastChecksum = "never"
		default:
			c.errf(n, "write old_unicast_checksum or old_unicast_checksum never", "(%s) Unknown old_unicast_chksum mode %s - ignoring", c.inst.Name, arg(n, 0))
		}
		c.inheritGARP().unicastKeyword = n
	}).note("unicast VRRPv3 IPv4 checksums summed with 224.0.0.18 as destination, as keepalived before 1.3.6; without it vipd switches to that sum when a peer uses it, unless never"),
	instGARPSeconds("garp_master_delay", "vrrp_garp_master_delay", func(c *cx) (*time.Duration, *bool) {
		return &c.inst.GARP.MasterDelay, &c.inheritGARP().masterDelay
	}),
	instGARPCount("garp_master_repeat", "vrrp_garp_master_repeat", func(c *cx) (*int, *bool) {
		return &c.inst.GARP.MasterRepeat, &c.inheritGARP().masterRepeat
	}),
	instGARPSeconds("garp_lower_prio_delay", "garp_master_delay", func(c *cx) (*time.Duration, *bool) {
		return &c.inst.GARP.LowerPrioDelay, &c.inheritGARP().lowerDelay
	}),
	instGARPCount("garp_lower_prio_repeat", "garp_master_repeat", func(c *cx) (*int, *bool) {
		return &c.inst.GARP.LowerPrioRepeat, &c.inheritGARP().lowerRepeat
	}),
	instGARPSeconds("garp_master_refresh", "vrrp_garp_master_refresh", func(c *cx) (*time.Duration, *bool) {
		return &c.inst.GARP.MasterRefresh, &c.inheritGARP().refresh
	}),
	instGARPCount("garp_master_refresh_repeat", "vrrp_garp_master_refresh_repeat", func(c *cx) (*int, *bool) {
		return &c.inst.GARP.MasterRefreshRepeat, &c.inheritGARP().refreshRepeat
	}),
	garpExtraIf("garp_extra_if", func(c *cx) (*time.Duration, *bool) {
		c.inheritGARP().extraIf = true
		return &c.inst.GARPExtraIf, &c.inst.GARPExtraIfAll
	}).noValue(NoValueError).note("while master, every SECONDS, one GARP/NA on each interface other than the instance's that holds one of its VIPs or excluded VIPs; without `all` keepalived sends on VMAC interfaces only, and vipd has none: nothing is sent"),
	kw("down_timer_adverts", "1..100", 1, "vrrp_down_timer_adverts", func(c *cx, n *Node) {
		if c.intVal(n, &c.inst.DownTimerAdverts, 1, 100) {
			c.inheritGARP().downTimer = true
		}
	}),
	flagKw("lower_prio_no_advert", func(c *cx, n *Node) {
		c.boolVal(n, &c.inst.LowerPrioNoAdvert)
		c.inheritGARP().lowerNoAdvert = true
	}).args("[<BOOL>]", 0),
	flagKw("higher_prio_send_advert", func(c *cx, n *Node) {
		c.boolVal(n, &c.inst.HigherPrioSendAdvert)
		c.inheritGARP().higherSend = true
	}).args("[<BOOL>]", 0),
	kw("virtual_router_id", "1..255", 1, "", func(c *cx, n *Node) {
		if v, ok := c.integer(n, 0, 1, 255); ok {
			c.inst.VRID = int(v)
		} else {
			c.errf(n, "give a number between 1 and 255, the same on all routers of the group", "(%s) VRID '%s' not valid - must be between 1 & 255", c.inst.Name, n.Args[0])
		}
	}),
	kw("priority", "1..255", 1, "100", func(c *cx, n *Node) {
		if v, ok := c.integer(n, 0, 1, 255); ok {
			c.inst.Priority = int(v)
			c.inst.prioritySet = true
		} else {
			c.errf(n, "give a number between 1 and 255 (255: address owner)", "(%s) priority not valid, using default 100", c.inst.Name)
		}
	}),
	kw("advert_int", "SECONDS", 1, "1", func(c *cx, n *Node) {
		v, ok := c.seconds(n, 0, 0.01, 255)
		if !ok {
			return
		}
		c.inst.AdvertInt = v
	}),
	block("authentication", "{ auth_type PASS|AH; auth_pass PASSWORD }", 0, authSection, func(c *cx, n *Node) {
		c.walk(authSection, n.Children)
		if c.inst.Auth != nil && c.inst.Auth.Type == AuthAH {
			c.refuse(n, "IPsec AH authentication is not implemented; use auth_type PASS or no authentication")
		}
	}),
	vipList("virtual_ipaddress", false),
	vipList("virtual_ipaddress_excluded", true),
	flagKw("promote_secondaries", func(c *cx, n *Node) { c.inst.PromoteSecondaries = true }).note("sets net.ipv4.conf.IFNAME.promote_secondaries to 1 when the instance starts, and back to 0 at stop if vipd set it"),
	routeList("virtual_routes", func(c *cx) *[]Route { return &c.inst.Routes }),
	ruleList("virtual_rules", func(c *cx) *[]Rule { return &c.inst.Rules }),
	flagKw("accept", func(c *cx, n *Node) { c.inst.Accept = true; c.inheritGARP().accept = true }),
	flagKw("no_accept", func(c *cx, n *Node) { c.inst.Accept = false; c.inheritGARP().accept = true }),
	flagKw("nopreempt", func(c *cx, n *Node) { c.inst.Preempt = false }),
	flagKw("preempt", func(c *cx, n *Node) { c.inst.Preempt = true }),
	kw("preempt_delay", "SECONDS", 1, "0", func(c *cx, n *Node) { c.durVal(n, &c.inst.PreemptDelay, 0, 1000) }),
	flagKw("skip_check_adv_addr", func(c *cx, n *Node) {
		c.boolVal(n, &c.inst.SkipCheckAdvAddr)
		c.inheritGARP().skipCheck = true
	}).args("[<BOOL>]", 0),
	flagKw("strict_mode", func(c *cx, n *Node) {
		c.boolVal(n, &c.inst.Strict)
		c.inheritGARP().strict = true
	}).args("[<BOOL>]", 0),
	kw("debug", "0..4", 1, "0", func(c *cx, n *Node) { c.intVal(n, &c.inst.Debug, 0, 4) }).status(Ignored).note("not implemented in keepalived either"),
	notifyKw("notify_master", func(c *cx) **Script { return &notifyOf(c).Master }),
	notifyKw("notify_backup", func(c *cx) **Script { return &notifyOf(c).Backup }),
	notifyKw("notify_fault", func(c *cx) **Script { return &notifyOf(c).Fault }),
	notifyKw("notify_stop", func(c *cx) **Script { return &notifyOf(c).Stop }),
	notifyKw("notify", func(c *cx) **Script { return &notifyOf(c).Any }),
	notifyKw("notify_master_rx_lower_pri", func(c *cx) **Script { return &notifyOf(c).MasterRxLowerPri }),
	kw("notify_deleted", "[STRING|QUOTED_STRING [username [groupname]]]", 0, "", func(c *cx, n *Node) {
		nt := notifyOf(c)
		nt.Deleted = true
		if len(n.Args) > 0 {
			nt.DeletedScript = c.script(n, 0)
		}
	}),
	flagKw("notify_priority_changes", func(c *cx, n *Node) { c.boolPtr(n, &c.inst.NotifyPriorityChanges) }).note(notePrioChanges).args("[<BOOL>]", 0),
	flagKw("smtp_alert", func(c *cx, n *Node) {
		c.boolVal(n, &c.inst.SMTPAlert)
		c.inst.smtpSet = true
	}).args("[<BOOL>]", 0),
	kw("kernel_rx_buf_size", "BYTES", 1, "", nil).noValue(NoValueError).status(Ignored).note(noEffectNL).checkInt(0, 1<<32-1),
	&Keyword{Name: "linkbeat_use_polling", Warn: true, Deprecated: "the linkbeat_interfaces block", Status: Ignored,
		Note: "vipd follows link state through netlink"},
	&Keyword{Name: "lvs_sync_daemon_interface", Args: "IFNAME", Min: 1, Warn: true, Deprecated: "global_defs lvs_sync_daemon",
		Note: "runs the kernel's sync daemon with the ipvs data plane; see global_defs lvs_sync_daemon"},
)

func init() {
	instanceSection.addKeywords(
		alias("vmac_garp_intvl", garpExtraIf("garp_extra_if", func(c *cx) (*time.Duration, *bool) {
			c.inheritGARP().extraIf = true
			return &c.inst.GARPExtraIf, &c.inst.GARPExtraIfAll
		}), true),
	)
}

// refuse reports a feature vipd cannot run: a notice for `vipd -t`, an
// error once the daemon validates for a data plane.
func (c *cx) refuse(n *Node, why string) {
	sev := Notice
	if c.b.opts.Dataplane != "" {
		sev = Error
	}
	c.b.add(n.Pos, sev, n.Name, why, "not supported by vipd; the daemon refuses this configuration")
}

func newInstance(name string, pos Pos) *Instance {
	return &Instance{
		Pos: pos, Name: name, State: StateBackup, Priority: 100, AdvertInt: time.Second,
		Preempt: true, Accept: true,
	}
}
