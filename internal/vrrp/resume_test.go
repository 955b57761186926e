package vrrp

import (
	"testing"
	"time"
)

// TestResumeMaster: a master handed to a new machine carries on with no
// GARP, no advert before its time, no priority 0 and no state change
// for the network; its next advert is the one the old machine had due.
func TestResumeMaster(t *testing.T) {
	old := newHarness(t, v2cfg())
	old.step(Event{Kind: EvStart})
	old.now = old.now.Add(old.m.MasterDownInterval())
	old.step(Event{Kind: EvTick})
	if old.m.State() != StateMaster {
		t.Fatalf("old machine is %v, want MASTER", old.m.State())
	}
	old.now = old.now.Add(300 * time.Millisecond)
	r, ok := old.m.Resumable()
	if !ok || r.State != StateMaster || !r.NextAdvert.Equal(old.m.Deadline()) {
		t.Fatalf("Resumable = %+v, %v; want MASTER with the next advert at %v", r, ok, old.m.Deadline())
	}
	h := newHarness(t, v2cfg())
	h.now = old.now
	acts := h.step(Event{Kind: EvResume, Resume: r})
	var sawAdd, sawState bool
	for _, a := range acts {
		switch a.Kind {
		case ActSendGARP, ActSendAdvert, ActRemoveVIPs:
			t.Errorf("resume did %v: %+v", a.Kind, a)
		case ActAddVIPs:
			sawAdd = true
		case ActStateChange:
			sawState = a.Resumed && a.To == StateMaster
		}
	}
	if !sawAdd || !sawState || h.m.State() != StateMaster {
		t.Fatalf("resume: state %v, actions %+v", h.m.State(), acts)
	}
	if !h.m.Deadline().Equal(r.NextAdvert) {
		t.Fatalf("next deadline %v, want the old advert time %v", h.m.Deadline(), r.NextAdvert)
	}
	h.now = r.NextAdvert
	acts = h.step(Event{Kind: EvTick})
	if len(acts) != 1 || acts[0].Kind != ActSendAdvert || acts[0].Priority != 100 {
		t.Fatalf("at the advert time: %+v, want one advert at priority 100", acts)
	}
}

// TestResumeBackup: a backup keeps its master and its down timer.
func TestResumeBackup(t *testing.T) {
	old := newHarness(t, v2cfg())
	old.step(Event{Kind: EvStart})
	old.advert(peer, 150)
	r, ok := old.m.Resumable()
	if !ok || r.State != StateBackup || r.MasterAddr != peer || r.MasterPrio != 150 || r.DownAt.IsZero() {
		t.Fatalf("Resumable = %+v, %v", r, ok)
	}
	h := newHarness(t, v2cfg())
	h.now = old.now.Add(100 * time.Millisecond)
	acts := h.step(Event{Kind: EvResume, Resume: r})
	for _, a := range acts {
		if a.Kind != ActLog && !(a.Kind == ActStateChange && a.Resumed) {
			t.Errorf("resume did %+v", a)
		}
	}
	if h.m.State() != StateBackup || !h.m.Deadline().Equal(r.DownAt) {
		t.Fatalf("state %v deadline %v, want BACKUP until %v", h.m.State(), h.m.Deadline(), r.DownAt)
	}
	if a, p := h.m.Master(); a != peer || p != 150 {
		t.Fatalf("master %v/%d", a, p)
	}
}

// TestResumeFaultStarts: a state that is not carried starts afresh.
func TestResumeFaultStarts(t *testing.T) {
	h := newHarness(t, v2cfg())
	h.step(Event{Kind: EvResume, Resume: Resume{State: StateFault}})
	if h.m.State() != StateBackup {
		t.Fatalf("state %v, want BACKUP (a normal start)", h.m.State())
	}
}
