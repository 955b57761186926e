package lab

import (
	"net"
	"strings"
	"testing"
	"time"
)

func TestLabPingAndCut(t *testing.T) {
	l := New(t)
	a := l.Host("a")
	b := l.Host("b")
	a.MustRun("ping", "-c1", "-W2", b.Addr.String())

	// A TCP listener created with Do lives in b's namespace.
	var ln net.Listener
	if err := b.Do(func() (err error) { ln, err = net.Listen("tcp", b.Addr.String()+":8080"); return }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Write([]byte("hello"))
			c.Close()
		}
	}()
	out := a.MustRun("bash", "-c", "exec 3<>/dev/tcp/"+b.Addr.String()+"/8080; cat <&3")
	if !strings.Contains(out, "hello") {
		t.Fatalf("got %q", out)
	}

	a.Cut()
	if _, err := a.Run("ping", "-c1", "-W1", b.Addr.String()); err == nil {
		t.Fatal("ping crossed a cut cable")
	}
	Eventually(t, 5*time.Second, func() bool {
		o, _ := a.Run("cat", "/sys/class/net/eth0/carrier")
		return strings.TrimSpace(o) == "0"
	}, "carrier still up after Cut")
	a.Restore()
	Eventually(t, 5*time.Second, func() bool { _, err := a.Run("ping", "-c1", "-W1", b.Addr.String()); return err == nil }, "no ping after Restore")

	p := b.Start("sleep", "60")
	p.Kill()
	select {
	case <-p.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Kill did not stop the process")
	}
}
