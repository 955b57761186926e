package daemon

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/vipd/vipd/internal/config"
)

// promoter carries out promote_secondaries as keepalived does: when an
// instance with the keyword starts, its interface's IPv4 sysctl
// promote_secondaries is set to 1 unless it already is (so that removing
// one VIP does not take the other addresses of its subnet with it); at
// stop, the daemon sets back to 0 only the interfaces it changed.
type promoter struct {
	root string // /proc/sys/net/ipv4/conf; a temporary directory in tests
	log  *slog.Logger
	set  map[string]bool // interfaces whose sysctl vipd turned on
}

func newPromoter(log *slog.Logger) *promoter {
	return &promoter{root: "/proc/sys/net/ipv4/conf", log: log, set: map[string]bool{}}
}

// apply turns promote_secondaries on for the interfaces of cfg's
// instances that ask for it. An interface that does not exist yet is
// tried again at the next reload (keepalived acts when the instance's
// interface appears); a failure is logged, not fatal.
func (p *promoter) apply(cfg *config.Config) {
	if p == nil || cfg == nil {
		return
	}
	for _, in := range cfg.Instances {
		if !in.PromoteSecondaries || in.Interface == "" || p.set[in.Interface] {
			continue
		}
		path := filepath.Join(p.root, in.Interface, "promote_secondaries")
		b, err := os.ReadFile(path)
		if err != nil {
			p.log.Warn(fmt.Sprintf("(%s) promote_secondaries: %v", in.Name, err))
			continue
		}
		if strings.TrimSpace(string(b)) == "1" {
			continue // already on: not ours to reset
		}
		if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
			p.log.Warn(fmt.Sprintf("(%s) promote_secondaries: %v", in.Name, err))
			continue
		}
		p.set[in.Interface] = true
	}
}

// reset sets promote_secondaries back to 0 where apply turned it on.
func (p *promoter) reset() {
	if p == nil {
		return
	}
	for ifname := range p.set {
		path := filepath.Join(p.root, ifname, "promote_secondaries")
		if err := os.WriteFile(path, []byte("0\n"), 0o644); err != nil && !os.IsNotExist(err) {
			p.log.Warn(fmt.Sprintf("promote_secondaries on %s not reset: %v", ifname, err))
		}
		delete(p.set, ifname)
	}
}
