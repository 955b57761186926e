package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/api"
	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/dataplane"
	"github.com/vipd/vipd/internal/lvs"
)

// refusingDataplane is a stand-in data plane, not a real one: it runs
// (records) what it is given except a service on port refusePort, which
// it refuses the way the proxy refuses a port another program holds:
// the rest is applied and the error returned, so a failed Apply leaves
// it half-way, as the proxy's does. It lets the reload transaction be tested
// without root; e2e/reload_test.go does the same with the real proxy.
type refusingDataplane struct {
	refusePort uint16
	mu         sync.Mutex
	running    []lvs.Service
	applies    int
}

func (f *refusingDataplane) Apply(_ context.Context, desired []lvs.Service) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applies++
	f.running = nil
	var err error
	for _, s := range desired {
		if s.Key.Addr.Port() == f.refusePort {
			err = fmt.Errorf("stand-in: service %s: listen: address already in use", s.Key)
			continue
		}
		f.running = append(f.running, s)
	}
	return err
}

func (f *refusingDataplane) applyCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applies
}

func (f *refusingDataplane) ports() []uint16 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var p []uint16
	for _, s := range f.running {
		p = append(p, s.Key.Addr.Port())
	}
	slices.Sort(p)
	return p
}

func (f *refusingDataplane) Services() []lvs.ServiceStatus { return nil }
func (f *refusingDataplane) Conns() []lvs.ConnEntry        { return nil }
func (f *refusingDataplane) Close() error                  { return nil }

// vsConf is a configuration with one virtual server per port, each with
// one real server and no checker (so it stays up).
func vsConf(ports ...int) string {
	var b strings.Builder
	for _, p := range ports {
		fmt.Fprintf(&b, "virtual_server 127.0.0.1 %d {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n    real_server 127.0.0.1 %d { weight 1 }\n}\n", p, p+1000)
	}
	return b.String()
}

// runDaemon starts a daemon without root (checkers only: no VRRP, no
// routing) on conf, with dp as its data plane.
func runDaemon(t *testing.T, conf string, dp dataplane.Dataplane) (*Daemon, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "keepalived.conf")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := New(Options{ConfigFile: file, Dataplane: config.DataplaneProxy, CheckOnly: true,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	d.openDP = func() (dataplane.Dataplane, error) { return dp, nil }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return")
		}
	})
	ready := func() bool { return (*source)(d).Ready() == nil && !(*source)(d).Status().ConfigLoaded.IsZero() }
	for deadline := time.Now().Add(10 * time.Second); !ready(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("daemon not ready")
		}
	}
	return d, file
}

func reloadWith(t *testing.T, d *Daemon, file, conf string) error {
	t.Helper()
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return d.Reload(ctx)
}

// TestReloadRefusedByDataplane: a valid configuration the data plane
// refuses is not a success: Reload names the step and what runs, the
// data plane runs the previous services, the daemon keeps the previous
// configuration, and the result is counted.
func TestReloadRefusedByDataplane(t *testing.T) {
	t.Parallel()
	dp := &refusingDataplane{refusePort: 8081}
	d, file := runDaemon(t, vsConf(8080), dp)
	src := (*source)(d)
	before := src.Status().ConfigLoaded

	// 8080 goes, 8081 is refused, 8083 is new: half-way, the stand-in
	// runs 8083 alone; the undo brings back 8080.
	err := reloadWith(t, d, file, vsConf(8081, 8083))
	var ce *api.CommitError
	if !errors.As(err, &ce) {
		t.Fatalf("reload the data plane refuses: got %v, want a CommitError", err)
	}
	if ce.Step != "data plane" || !strings.Contains(ce.Reason, "address already in use") || !strings.HasPrefix(ce.Running, "the previous configuration") {
		t.Errorf("CommitError = %+v", ce)
	}
	if got := dp.ports(); !slices.Equal(got, []uint16{8080}) {
		t.Errorf("data plane runs ports %v after the refused reload, want [8080]", got)
	}
	st := src.Status()
	if !st.ConfigLoaded.Equal(before) || st.Reloads != 0 {
		t.Errorf("the refused reload moved the configuration: loaded %v (was %v), reloads %d", st.ConfigLoaded, before, st.Reloads)
	}
	if st.ReloadResults[api.ReloadFailed] != 1 || st.ReloadResults[api.ReloadOK] != 0 {
		t.Errorf("reload results %v, want failed=1", st.ReloadResults)
	}

	// An invalid configuration is refused before any step.
	applies := dp.applyCount()
	err = reloadWith(t, d, file, vsConf(8080)+"virtual_server 127.0.0.1 8082 {\n    lb_kind DR\n    real_server 127.0.0.1 80 { }\n}\n")
	var cfgErr *api.ConfigError
	if !errors.As(err, &cfgErr) {
		t.Fatalf("invalid reload: got %v, want a ConfigError", err)
	}
	if dp.applyCount() != applies {
		t.Errorf("an invalid configuration reached the data plane")
	}

	// A good one commits.
	if err := reloadWith(t, d, file, vsConf(8080, 8082)); err != nil {
		t.Fatalf("good reload: %v", err)
	}
	if got := dp.ports(); !slices.Equal(got, []uint16{8080, 8082}) {
		t.Errorf("data plane runs ports %v, want [8080 8082]", got)
	}
	st = src.Status()
	want := map[string]uint64{api.ReloadOK: 1, api.ReloadRefused: 1, api.ReloadFailed: 1}
	for k, v := range want {
		if st.ReloadResults[k] != v {
			t.Errorf("reload results %v, want %v", st.ReloadResults, want)
			break
		}
	}
	if st.Reloads != 1 {
		t.Errorf("Reloads = %d, want 1", st.Reloads)
	}
}

// TestReloadChecksTheWholeSet: two virtual servers that expand to the
// same service pass one by one but not together; the data plane's check
// refuses the set before anything is committed.
func TestReloadChecksTheWholeSet(t *testing.T) {
	t.Parallel()
	dp := &refusingDataplane{}
	d, file := runDaemon(t, vsConf(8080), dp)
	conf := vsConf(8080) + `virtual_server_group G {
    127.0.0.1 8080
}
virtual_server group G {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 127.0.0.1 9999 { weight 1 }
}
`
	applies := dp.applyCount()
	err := reloadWith(t, d, file, conf)
	var cfgErr *api.ConfigError
	if !errors.As(err, &cfgErr) || !strings.Contains(cfgErr.Error(), "listed twice") {
		t.Fatalf("got %v, want a ConfigError naming the service listed twice", err)
	}
	if dp.applyCount() != applies {
		t.Errorf("the refused set reached the data plane")
	}
}

// TestCommitUndoes: a failing step is undone (it may have done part of
// its work) with the steps before it, newest first, and says what runs; an undo that fails is named.
func TestCommitUndoes(t *testing.T) {
	var log []string
	mk := func(name string, fail, undoFail bool) step {
		return step{name: name,
			do: func() error {
				log = append(log, "do "+name)
				if fail {
					return errors.New(name + " refused")
				}
				return nil
			},
			undo: func() error {
				log = append(log, "undo "+name)
				if undoFail {
					return errors.New("stuck")
				}
				return nil
			}}
	}
	err := commit([]step{mk("a", false, false), mk("b", false, false), mk("c", true, false), mk("d", false, false)})
	var ce *api.CommitError
	if !errors.As(err, &ce) || ce.Step != "c" || ce.Reason != "c refused" || ce.Running != "the previous configuration (undone: c, b, a)" {
		t.Fatalf("got %#v", err)
	}
	if want := []string{"do a", "do b", "do c", "undo c", "undo b", "undo a"}; !slices.Equal(log, want) {
		t.Errorf("ran %v, want %v", log, want)
	}

	log = nil
	err = commit([]step{mk("a", false, true), mk("b", true, false)})
	if !errors.As(err, &ce) || ce.Running != "the previous configuration (undone: b), except a (undo failed: stuck)" {
		t.Fatalf("got %#v", err)
	}

	log = nil
	if err := commit([]step{mk("a", false, false), mk("b", false, false)}); err != nil || len(log) != 2 {
		t.Fatalf("commit: %v, ran %v", err, log)
	}
}

// TestInboxKeepsOrder: what one goroutine pushes (VRRP's MASTER then
// BACKUP for lvs_sync_daemon) runs in that order, while the loop serves
// the queue from nested waits too.
func TestInboxKeepsOrder(t *testing.T) {
	q := newInbox()
	const n = 10000
	var got []int
	pushed := make(chan struct{})
	go func() {
		defer close(pushed)
		for i := range n {
			q.push(func() { got = append(got, i) })
		}
	}()
	deadline := time.After(10 * time.Second)
	for len(got) < n {
		select {
		case <-q.ready:
			// Serve one, then nest a serve, as stopVRRP does.
			if f := q.pop(); f != nil {
				f()
			}
			q.serve()
		case <-deadline:
			t.Fatalf("served %d of %d", len(got), n)
		}
	}
	<-pushed
	for i, v := range got {
		if v != i {
			t.Fatalf("item %d ran as %d: the queue reordered", i, v)
		}
	}
	q.close()
	if q.push(func() {}) {
		t.Error("push after close accepted")
	}
}
