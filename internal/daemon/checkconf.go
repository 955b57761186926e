package daemon

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os/user"
	"regexp"
	"syscall"
	"time"

	"github.com/vipd/vipd/internal/check"
	"github.com/vipd/vipd/internal/config"
)

// checkServers maps every real server of the plans to a check.Server with
// its checkers. Errors name the checker's file:line. A MISC_CHECK whose
// script the policy refuses is left out with an error logged, as
// keepalived disables it.
//
// bfdUp answers BFD_CHECK: whether a bfd_instance's session is Up.
func checkServers(c *config.Config, plans []*vsPlan, policy scriptPolicy, bfdUp func(string) bool, log *slog.Logger) ([]check.Server, error) {
	var tlsConf *tls.Config
	trackFiles := map[string]*config.TrackFile{}
	for _, tf := range c.TrackFiles {
		trackFiles[tf.Name] = tf
	}
	var out []check.Server
	for _, p := range plans {
		for _, rs := range p.rss {
			srv := check.Server{Name: rs.check, Weight: int64(rs.cfg.Weight)}
			rsAddr := rs.cfg.Addr
			if rsAddr.Port() == 0 {
				rsAddr = netip.AddrPortFrom(rsAddr.Addr(), p.port())
			}
			for _, ck := range rs.cfg.Checkers {
				spec, err := checkSpec(c, ck, rsAddr, &tlsConf, trackFiles, policy, bfdUp)
				var refused *refusedScript
				if errors.As(err, &refused) {
					log.Error(fmt.Sprintf("%s: MISC_CHECK of %s disabled: %v", ck.Pos, rs.check, refused.err))
					continue
				}
				if err != nil {
					return nil, fmt.Errorf("%s: %s: %w", ck.Pos, ck.Type, err)
				}
				srv.Checkers = append(srv.Checkers, spec)
			}
			// A real server's own track_file entries adjust its weight
			// like FILE_CHECK does.
			for _, ref := range rs.cfg.TrackFiles {
				tf := trackFiles[ref.Name]
				if tf == nil {
					return nil, fmt.Errorf("%s: track_file %s: no track_file block of that name", ref.Pos, ref.Name)
				}
				w := tf.Weight
				if ref.WeightSet {
					w = ref.Weight
				}
				f := &check.File{Path: tf.File, Weight: int64(w), Reverse: ref.Reverse != tf.Reverse}
				srv.Checkers = append(srv.Checkers, check.Spec{
					Name:    fmt.Sprintf("FILE_CHECK %s on %s", tf.File, rs.check),
					Checker: f,
					Timing:  trackFileTiming(rs.cfg),
				})
			}
			out = append(out, srv)
		}
	}
	return out, nil
}

// timing is the checker's timing as the configuration resolved it
// (config.Checker.ResolveTiming): the daemon adds no default of its own,
// so what `vipd -d` prints is what runs.
func timing(ck *config.Checker) check.Timing {
	t := check.Timing{
		DelayLoop: ck.DelayLoop, Retry: ck.Retry, DelayBeforeRetry: ck.DelayBeforeRetry,
		Warmup: ck.Warmup, Timeout: ck.ConnectTimeout, Alpha: ck.Alpha,
	}
	if ck.Type == config.CheckMisc && ck.Misc != nil {
		t.Timeout = ck.Misc.Timeout // misc_timeout bounds a MISC_CHECK
	}
	return t
}

// trackFileTiming is the timing of a real server's track_file entry,
// which runs as a FILE_CHECK with the real server's settings.
func trackFileTiming(rs *config.RealServer) check.Timing {
	fc := &config.Checker{Type: config.CheckFile}
	fc.ResolveTiming(rs.Check)
	return timing(fc)
}

// refusedScript is a script the security policy refuses to run.
type refusedScript struct{ err error }

func (r *refusedScript) Error() string { return r.err.Error() }

func checkSpec(c *config.Config, ck *config.Checker, rsAddr netip.AddrPort, tlsConf **tls.Config, trackFiles map[string]*config.TrackFile, policy scriptPolicy, bfdUp func(string) bool) (check.Spec, error) {
	ip := ck.ConnectIP
	if !ip.IsValid() {
		ip = rsAddr.Addr()
	}
	port := ck.ConnectPort
	if port == 0 {
		port = rsAddr.Port()
	}
	ep := check.Endpoint{
		Addr:     netip.AddrPortFrom(ip, port),
		BindTo:   ck.BindTo,
		BindPort: ck.BindPort,
		BindIf:   ck.BindIf,
		Fwmark:   ck.FWMark,
		Timeout:  ck.ConnectTimeout,
	}
	if _, err := checkKind(ck.Type); err != nil {
		return check.Spec{}, err
	}
	spec := check.Spec{Name: fmt.Sprintf("%s %s", ck.Type, ep.Addr)}
	switch ck.Type {
	case config.CheckHTTP, config.CheckSSL:
		h := &check.HTTP{Endpoint: ep}
		if hc := ck.HTTP; hc != nil {
			h.Protocol = hc.Protocol
			h.VirtualHost = hc.Virtualhost
			h.EnableSNI = hc.EnableSNI
			for _, u := range hc.URLs {
				cu := check.URL{Path: u.Path, Digest: u.Digest, VirtualHost: u.Virtualhost, RegexNoMatch: u.RegexNoMatch}
				for _, r := range u.StatusCodes {
					cu.Status = append(cu.Status, check.StatusRange{Min: r.Min, Max: r.Max})
				}
				if u.Regex != "" {
					re, err := regexp.Compile(u.Regex)
					if err != nil {
						return spec, fmt.Errorf("%s: regex %q: %w (vipd uses Go RE2 syntax, not PCRE)", u.Pos, u.Regex, err)
					}
					cu.Regex = re
				}
				h.URLs = append(h.URLs, cu)
			}
		}
		if ck.Type == config.CheckSSL {
			if *tlsConf == nil {
				var s check.SSL
				if c.SSL != nil {
					s = check.SSL{CA: c.SSL.CA, Certificate: c.SSL.Certificate, Key: c.SSL.Key, Password: c.SSL.Password}
				}
				tc, err := s.Config()
				if err != nil {
					return spec, fmt.Errorf("SSL block: %w", err)
				}
				*tlsConf = tc
			}
			h.TLS = *tlsConf
		}
		spec.Checker = h
	case config.CheckTCP:
		spec.Checker = &check.TCP{Endpoint: ep}
	case config.CheckPing:
		spec.Checker = &check.Ping{Endpoint: ep}
	case config.CheckSMTP:
		s := &check.SMTP{Endpoint: ep}
		if ck.SMTP != nil {
			s.HeloName = ck.SMTP.HeloName
		}
		spec.Checker = s
	case config.CheckDNS:
		d := &check.DNS{Endpoint: ep}
		if ck.DNS != nil {
			t, err := check.DNSType(ck.DNS.Type)
			if err != nil {
				return spec, err
			}
			d.Type, d.Name = t, ck.DNS.Name
		}
		spec.Checker = d
	case config.CheckUDP:
		u := &check.UDP{Endpoint: ep}
		if uc := ck.UDP; uc != nil {
			u.Payload = uc.Payload
			u.RequireReply = uc.RequireReply
			u.ReplyPattern, u.ReplyMask = uc.ReplyData, uc.ReplyMask
			u.MinReply, u.MaxReply = uc.MinReplyLength, uc.MaxReplyLength
		}
		spec.Checker = u
	case config.CheckMisc:
		if ck.Misc == nil || ck.Misc.Path == nil || len(ck.Misc.Path.Argv) == 0 {
			return spec, fmt.Errorf("misc_path missing")
		}
		m := &check.Misc{Argv: ck.Misc.Path.Argv, Dynamic: ck.Misc.Dynamic, Timeout: ck.Misc.Timeout}
		var cred *syscall.Credential
		var err error
		if policy != nil {
			if cred, err = policy(ck.Misc.Path); err != nil {
				return spec, &refusedScript{err}
			}
		} else if cred, err = scriptCredential(c, ck.Misc.Path); err != nil {
			return spec, err
		}
		m.Credential = cred
		spec.Name = fmt.Sprintf("MISC_CHECK %s", commandLine(ck.Misc.Path))
		spec.Checker = m
	case config.CheckFile:
		if ck.File == nil {
			return spec, fmt.Errorf("track_file missing")
		}
		tf := trackFiles[ck.File.TrackFile]
		if tf == nil {
			return spec, fmt.Errorf("track_file %s: no track_file block of that name", ck.File.TrackFile)
		}
		w := tf.Weight
		if ck.File.WeightSet {
			w = ck.File.Weight
		}
		spec.Name = fmt.Sprintf("FILE_CHECK %s", tf.File)
		spec.Checker = &check.File{Path: tf.File, Weight: int64(w), Reverse: ck.File.Reverse != tf.Reverse}
	case config.CheckBFD:
		// keepalived moves the real server on the session's events;
		// vipd reads the session's state every check.BFDPoll, with no
		// retry: down at the first read after the session fell.
		spec.Name = "BFD_CHECK " + ck.BFD
		spec.Checker = &check.BFD{Name: ck.BFD, Up: bfdUp}
		spec.Timing = check.Timing{DelayLoop: check.BFDPoll, Timeout: time.Second, Alpha: ck.Alpha}
		spec.LogAllFailures = false
		return spec, nil
	default:
		return spec, fmt.Errorf("checker not supported by vipd")
	}
	spec.Timing = timing(ck)
	spec.LogAllFailures = ck.LogAllFailures || c.Global.CheckerLogAllFailures
	return spec, nil
}

// checkKinds maps each checker type vipd runs to its kind.
var checkKinds = map[config.CheckerType]check.Kind{
	config.CheckHTTP: check.KindHTTP,
	config.CheckSSL:  check.KindSSL,
	config.CheckTCP:  check.KindTCP,
	config.CheckSMTP: check.KindSMTP,
	config.CheckDNS:  check.KindDNS,
	config.CheckMisc: check.KindMisc,
	config.CheckPing: check.KindPing,
	config.CheckUDP:  check.KindUDP,
	config.CheckFile: check.KindFile,
	config.CheckBFD:  check.KindBFD,
}

func checkKind(t config.CheckerType) (check.Kind, error) {
	if k, ok := checkKinds[t]; ok {
		return k, nil
	}
	return 0, fmt.Errorf("%s is not supported by vipd", t)
}

// scriptCredential resolves the user a script runs as: its own user
// keyword, else global_defs script_user, else keepalived_script when that
// user exists, else root (nil: the daemon's own).
func scriptCredential(c *config.Config, s *config.Script) (*syscall.Credential, error) {
	name, group := s.User, s.Group
	if name == "" {
		name, group = c.Global.ScriptUser, c.Global.ScriptGroup
	}
	if name == "" {
		if _, err := user.Lookup("keepalived_script"); err != nil {
			return nil, nil
		}
		name = "keepalived_script"
	}
	if name == "root" && group == "" {
		return nil, nil
	}
	return check.LookupCredential(name, group)
}
