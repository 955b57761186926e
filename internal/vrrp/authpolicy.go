package vrrp

import (
	"fmt"
	"net/netip"
	"time"
)

// AuthHMACConfig is an instance's auth_hmac block (keepalived 2.4.2+):
// adverts carry a trailer with an HMAC-SHA256 and a time-based sequence
// number (authhmac.go has the wire format).
type AuthHMACConfig struct {
	// Keys by id (1..255), 32 to 64 bytes each; several allow rotation.
	Keys []HMACKey `json:"keys"`
	// ActiveKey signs what this node sends.
	ActiveKey uint8 `json:"active_key"`
	// Mode: "enforce" (default: every advert must carry a valid trailer),
	// "permissive" (sign, accept adverts without a trailer) or
	// "receive-only" (send no trailer, accept adverts without one, verify
	// those that have one): keepalived's three-sweep rollout.
	Mode string `json:"mode,omitempty"`
	// Monotonic is anti_replay monotonic: only strictly growing
	// sequences; the default, time, also rejects a timestamp more than
	// TimeWindow from our clock.
	Monotonic bool `json:"monotonic,omitempty"`
	// TimeWindow in seconds, 1..300; 0 means max(3 × advert_int, 5).
	TimeWindow int `json:"time_window,omitempty"`
}

// HMACKey is one key of auth_hmac.
type HMACKey struct {
	ID  uint8  `json:"id"`
	Key []byte `json:"key"`
}

// auth_hmac modes.
const (
	HMACEnforce     = "enforce"
	HMACPermissive  = "permissive"
	HMACReceiveOnly = "receive-only"
)

// Drop reasons of auth_hmac, named as keepalived's statistics name them.
const (
	DropAuthExtMissing    = "auth_ext_missing"     // enforce: no trailer
	DropAuthExtMalformed  = "auth_ext_malformed"   // unknown scheme or reserved bits set
	DropAuthExtUnknownKey = "auth_ext_unknown_key" // key id not configured
	DropAuthExtBadHMAC    = "auth_ext_invalid_hmac"
	DropAuthExtStale      = "auth_ext_stale"  // timestamp outside the time window
	DropAuthExtReplay     = "auth_ext_replay" // sequence not above the sender's last
)

// validate checks the block as keepalived's parser and checker do.
func (a *AuthHMACConfig) validate(who string, bad func(string, ...any)) {
	seen := map[uint8]bool{}
	for _, k := range a.Keys {
		if k.ID == 0 {
			bad("%s: auth_hmac key id 0 must be between 1 and 255", who)
		}
		if seen[k.ID] {
			bad("%s: duplicate auth_hmac key id %d", who, k.ID)
		}
		seen[k.ID] = true
		if len(k.Key) < HMACKeyMin || len(k.Key) > HMACKeyMax {
			bad("%s: auth_hmac key %d length %d not in range [%d, %d]", who, k.ID, len(k.Key), HMACKeyMin, HMACKeyMax)
		}
	}
	if !seen[a.ActiveKey] {
		bad("%s: auth_hmac active_key %d is not defined", who, a.ActiveKey)
	}
	switch a.Mode {
	case "", HMACEnforce, HMACPermissive, HMACReceiveOnly:
	default:
		bad("%s: auth_hmac mode '%s' must be enforce, permissive or receive-only", who, a.Mode)
	}
	if a.TimeWindow < 0 || a.TimeWindow > 300 {
		bad("%s: auth_hmac time_window %d must be between 1 and 300 seconds", who, a.TimeWindow)
	}
}

func (a *AuthHMACConfig) mode() string {
	if a.Mode == "" {
		return HMACEnforce
	}
	return a.Mode
}

func (a *AuthHMACConfig) key(id uint8) []byte {
	for _, k := range a.Keys {
		if k.ID == id {
			return k.Key
		}
	}
	return nil
}

// window is the freshness window in seconds.
func (a *AuthHMACConfig) window(advertInt time.Duration) int64 {
	if a.TimeWindow > 0 {
		return int64(a.TimeWindow)
	}
	return min(max(3*int64(advertInt/time.Second), 5), 300)
}

// hmacMcastSenders is how many multicast senders an instance keeps the
// replay state of (keepalived's number: more than one sender of a VRID
// only happens during contention).
const hmacMcastSenders = 4

// hmacState is an instance's auth_hmac state: the last sequence number
// sent and, per sender, the last one accepted. It belongs to the Core;
// time is passed in.
type hmacState struct {
	sendSeq uint64
	peers   map[netip.Addr]*replayMark // unicast: per configured peer
	mcast   [hmacMcastSenders]mcastSender
	lru     uint64
}

type replayMark struct {
	valid bool
	seq   uint64
}

type mcastSender struct {
	addr netip.Addr
	mark replayMark
	used uint64 // LRU rank, 0: empty
}

// seqAfter is a > b in serial number arithmetic (RFC 1982).
func seqAfter(a, b uint64) bool { return int64(a-b) > 0 }

// clockSeq packs a wall clock reading: seconds in the top 32 bits, a
// 1/65536 s fraction in the next 16, the counter zero.
func clockSeq(now time.Time) uint64 {
	sub := uint64(now.Nanosecond()) << 16 / 1e9
	return uint64(uint32(now.Unix()))<<32 | sub<<16
}

// nextSeq is the sequence of the next advert: the clock, or the last one
// plus one when the clock has not moved past it (a step back of the
// clock beyond the window restarts from the clock in time mode, as
// keepalived does, since receivers would reject the rest).
func (s *hmacState) nextSeq(cfg *AuthHMACConfig, win int64, now time.Time) uint64 {
	clk := clockSeq(now)
	if seqAfter(clk, s.sendSeq) {
		s.sendSeq = clk
		return clk
	}
	ahead := int32(uint32(s.sendSeq>>32) - uint32(clk>>32))
	if !cfg.Monotonic && int64(ahead) > win {
		s.sendSeq = clk
	} else {
		s.sendSeq++
	}
	return s.sendSeq
}

// trailer returns the trailer of the next advert, nil in receive-only
// mode (which sends none).
func (s *hmacState) trailer(cfg *AuthHMACConfig, win int64, now time.Time) *AuthTrailer {
	if cfg.mode() == HMACReceiveOnly {
		return nil
	}
	t := &AuthTrailer{Type: HMACTypeSHA256, KeyID: cfg.ActiveKey}
	t.SetSeq(s.nextSeq(cfg, win, now))
	return t
}

// hmacVerdict is the outcome of verifying a received advert: reason ""
// accepts it; msg is keepalived's log line (after "(instance) ").
type hmacVerdict struct {
	reason string
	msg    string
}

// verify checks a received advert's trailer: msg is the whole VRRP
// message with the trailer, p its decoding; unicast instances keep the
// replay state of each configured peer, and refuse any other sender.
func (s *hmacState) verify(cfg *AuthHMACConfig, win int64, p *Packet, msg []byte, src netip.Addr, peers []netip.Addr, now time.Time) hmacVerdict {
	tr := p.Trailer
	if tr == nil {
		if cfg.mode() != HMACEnforce {
			return hmacVerdict{}
		}
		return hmacVerdict{DropAuthExtMissing, fmt.Sprintf("missing authentication trailer from %s", src)}
	}
	var mark *replayMark
	if len(peers) > 0 {
		found := false
		for _, a := range peers {
			if a == src {
				found = true
			}
		}
		if !found {
			return hmacVerdict{DropPeer, fmt.Sprintf("unicast source address %s not a unicast peer", src)}
		}
		if s.peers == nil {
			s.peers = map[netip.Addr]*replayMark{}
		}
		if s.peers[src] == nil {
			s.peers[src] = &replayMark{}
		}
		mark = s.peers[src]
	}
	if tr.Type != HMACTypeSHA256 || tr.Reserved != 0 {
		return hmacVerdict{DropAuthExtMalformed, fmt.Sprintf("malformed authentication trailer from %s", src)}
	}
	var skew int64
	if !cfg.Monotonic {
		skew = int64(int32(uint32(now.Unix()) - tr.Sec))
		if skew > win || skew < -win {
			return hmacVerdict{DropAuthExtStale, fmt.Sprintf("stale authentication trailer from %s, clock skew %d sec exceeds window %d sec", src, skew, win)}
		}
	}
	key := cfg.key(tr.KeyID)
	if key == nil {
		return hmacVerdict{DropAuthExtUnknownKey, fmt.Sprintf("unknown authentication key id %d from %s", tr.KeyID, src)}
	}
	if !VerifyAuthDigest(key, src, msg) {
		return hmacVerdict{DropAuthExtBadHMAC, fmt.Sprintf("invalid authentication HMAC from %s", src)}
	}
	// Only now, the HMAC verified, may the sender's state move.
	if mark == nil {
		mark = s.mcastMark(src)
	}
	if mark.valid && !cfg.Monotonic {
		age := int64(int32(uint32(now.Unix()) - uint32(mark.seq>>32)))
		if age > win || age < -win {
			mark.valid = false // a sender reset after a clock step recovers
		}
	}
	if mark.valid && !seqAfter(tr.Seq(), mark.seq) {
		return hmacVerdict{DropAuthExtReplay, fmt.Sprintf("replayed authentication trailer from %s", src)}
	}
	mark.valid, mark.seq = true, tr.Seq()
	if !cfg.Monotonic && (skew > win/2 || skew < -win/2) {
		// Accepted, with keepalived's early warning.
		return hmacVerdict{msg: fmt.Sprintf("authentication clock skew %d sec from %s approaching window %d sec", skew, src, win)}
	}
	return hmacVerdict{}
}

// mcastMark finds or takes (least recently used first) the replay slot
// of a multicast sender.
func (s *hmacState) mcastMark(src netip.Addr) *replayMark {
	s.lru++
	var victim *mcastSender
	for i := range s.mcast {
		sl := &s.mcast[i]
		if sl.used != 0 && sl.addr == src {
			sl.used = s.lru
			return &sl.mark
		}
		if victim == nil || sl.used < victim.used {
			victim = sl
		}
	}
	*victim = mcastSender{addr: src, used: s.lru}
	return &victim.mark
}
