package netif

import (
	"os"
	"testing"

	"github.com/vipd/vipd/internal/lab"
)

func TestNetnsPath(t *testing.T) {
	for in, want := range map[string]string{"": "", "d1": "/run/netns/d1", "/proc/1/ns/net": "/proc/1/ns/net"} {
		if got := NetnsPath(in); got != want {
			t.Errorf("NetnsPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestInNetns: fn runs in the namespace asked for, and the caller's
// namespace is left as it was.
func TestInNetns(t *testing.T) {
	l := lab.New(t)
	h := l.Host("d1")
	self := func() string {
		s, err := os.Readlink("/proc/thread-self/ns/net")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	var want, got string
	if err := h.Do(func() error { want = self(); return nil }); err != nil {
		t.Fatal(err)
	}
	before := self()
	for range 3 {
		if err := InNetns(NetnsPath(h.NS), func() error { got = self(); return nil }); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("fn ran in %s, want %s (d1's)", got, want)
		}
	}
	if after := self(); after != before {
		t.Fatalf("the caller's namespace moved from %s to %s", before, after)
	}
	if err := InNetns("/run/netns/no-such-ns", func() error { return nil }); err == nil {
		t.Fatal("InNetns into a missing namespace: no error")
	}
}
