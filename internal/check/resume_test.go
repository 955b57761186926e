package check

import "testing"

// TestSchedulerResume: verdicts handed over by the previous process hold
// from the first event: a down server starts down (not up, then down
// after its retries), an alpha checker that was up starts up.
func TestSchedulerResume(t *testing.T) {
	servers := []Server{
		{Name: "down", Weight: 1, Checkers: []Spec{{Name: "c", Timing: Timing{}}}},
		{Name: "up", Weight: 1, Checkers: []Spec{{Name: "c", Timing: Timing{Alpha: true}}}},
		{Name: "new", Weight: 1, Checkers: []Spec{{Name: "c", Timing: Timing{}}}},
	}
	s := NewScheduler(servers, t0, nil)
	s.Resume(map[CheckerKey]bool{{"down", "c"}: false, {"up", "c"}: true, {"gone", "c"}: true})
	got := map[string]bool{}
	for _, e := range s.Initial(t0) {
		got[e.Server] = e.Up
	}
	if got["down"] || !got["up"] || !got["new"] {
		t.Fatalf("initial states %v, want down=false up=true new=true", got)
	}
	for _, st := range s.Status() {
		if st.Up != got[st.Server] {
			t.Errorf("status of %s says up=%v, the event %v", st.Server, st.Up, got[st.Server])
		}
	}
}
