package lab

import (
	"os"
	"testing"
)

// RequireIPVS is the gate of the tests that program the kernel's IPVS.
// They count where the kernel has IPVS: in the QEMU VM that scripts/vmtest
// boots (VIPD_IN_VM=1), or on a host with IPVS, as root. On a host kernel
// without IPVS (no /proc/net/ip_vs) they skip, under CI as well, because
// that is a fact of the machine, not a missing install step; the VM run is
// the one that counts there. In the VM a missing IPVS is a failure.
func RequireIPVS(t testing.TB) {
	t.Helper()
	if _, err := os.Stat("/proc/net/ip_vs"); err == nil {
		RequireRoot(t)
		RequireCommand(t, "ip", "ipvsadm")
		return
	}
	if os.Getenv("VIPD_IN_VM") == "1" {
		t.Fatal("in the VM, but /proc/net/ip_vs is missing: the ip_vs module did not load")
	}
	SkipMachineFact(t, "this kernel has no IPVS (no /proc/net/ip_vs): scripts/vmtest runs this test in a VM whose kernel has it")
}
