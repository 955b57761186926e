package lvs

import "testing"

func TestForwardLBKind(t *testing.T) {
	for f, want := range map[Forward]string{Masq: "NAT", Route: "DR", Tunnel: "TUN", Local: "Local", Bypass: "Bypass"} {
		if got := f.LBKind(); got != want {
			t.Errorf("%v.LBKind() = %q, want %q", f, got, want)
		}
	}
}
