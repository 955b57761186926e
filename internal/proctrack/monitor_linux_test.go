package proctrack

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// TestMonitorFollowsProcess: a real sleep with a unique argument is
// counted by the initial scan (started before) and through exec and exit
// events (started and killed after), in the order they happened.
func TestMonitorFollowsProcess(t *testing.T) {
	lab.RequireRoot(t)
	arg := fmt.Sprintf("%d.%d", os.Getpid(), time.Now().UnixNano()%1e6)
	before := exec.Command("sleep", arg+"1")
	if err := before.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { before.Process.Kill(); before.Wait() }()
	ch := make(chan []Change, 64)
	specs := []Spec{
		{Name: "early", Process: "sleep", Params: []string{arg + "1"}, ParamMatch: MatchExact, Quorum: 1, QuorumMax: -1},
		{Name: "late", Process: "sleep", Params: []string{arg + "2"}, ParamMatch: MatchExact, Quorum: 1, QuorumMax: -1},
	}
	m, first, err := Start(specs, func(c []Change) { ch <- c }, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	want := []Change{{Name: "early", Up: true, Count: 1, Quorum: true}, {Name: "late", Up: false, Count: 0, Quorum: true}}
	if fmt.Sprint(first) != fmt.Sprint(want) {
		t.Fatalf("first scan: %v, want %v", first, want)
	}
	wait := func(want Change) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case cs := <-ch:
				for _, c := range cs {
					if c == want {
						return
					}
				}
			case <-deadline:
				t.Fatalf("no change %+v within 10s (stats %+v)", want, m.Stats())
			}
		}
	}
	late := exec.Command("sleep", arg+"2")
	if err := late.Start(); err != nil {
		t.Fatal(err)
	}
	wait(Change{Name: "late", Up: true, Count: 1, Quorum: true})
	late.Process.Kill()
	late.Wait()
	wait(Change{Name: "late", Up: false, Count: 0, Quorum: true})
	before.Process.Kill()
	before.Wait()
	wait(Change{Name: "early", Up: false, Count: 0, Quorum: true})
	if s := m.Stats(); s.Events == 0 || s.Bad != 0 {
		t.Errorf("stats %+v: want events and no bad message", s)
	}
}
