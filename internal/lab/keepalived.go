package lab

import (
	"os"
	"path/filepath"
	"testing"
)

// StartKeepalived starts Debian's keepalived in h on conf, in the
// foreground, logging to the console (-n -l -D), with pid files of its
// own so that several run side by side; flags come first (e.g. -P: the
// VRRP process only, as this kernel has no IPVS for the checker). It is
// killed at cleanup like any Start; a caller that wants keepalived's
// own shutdown (priority 0, BFD AdminDown) stops it first.
func StartKeepalived(t testing.TB, h *Host, conf string, flags ...string) *Proc {
	t.Helper()
	RequireCommand(t, "keepalived")
	dir := t.TempDir()
	cf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-n", "-l", "-D"}, flags...)
	args = append(args, "-f", cf,
		"-p", filepath.Join(dir, "k.pid"), "-r", filepath.Join(dir, "v.pid"), "-c", filepath.Join(dir, "c.pid"), "-b", filepath.Join(dir, "b.pid"))
	return h.Start("keepalived", args...)
}
