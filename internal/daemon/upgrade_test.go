package daemon

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/handover"
	"github.com/vipd/vipd/internal/vrrp"
)

// TestResumeWire: VRRP states survive the wire format as the new
// process needs them (times to the nanosecond, states, the master).
func TestResumeWire(t *testing.T) {
	now := time.Unix(1_765_000_000, 123456789)
	in := map[string]vrrp.Resume{
		"VI_1": {State: vrrp.StateMaster, MasterAdver: time.Second, NextAdvert: now.Add(300 * time.Millisecond)},
		"VI_2": {State: vrrp.StateBackup, MasterAddr: netip.MustParseAddr("198.18.0.2"), MasterPrio: 150, MasterAdver: 20 * time.Millisecond, DownAt: now.Add(time.Second)},
	}
	wire := resumeToWire(in)
	if len(wire) != 2 || wire[0].Name != "VI_1" || wire[1].Name != "VI_2" {
		t.Fatalf("wire %+v: want VI_1 then VI_2", wire)
	}
	// Through the codec, as it travels.
	f, err := handover.DecodeBody(handover.TypeState, mustJSON(t, &handover.State{VRRP: wire}))
	if err != nil {
		t.Fatal(err)
	}
	out := resumeFromWire(f.Msg.(*handover.State).VRRP)
	for name, want := range in {
		got := out[name]
		if got.State != want.State || got.MasterAddr != want.MasterAddr || got.MasterPrio != want.MasterPrio || got.MasterAdver != want.MasterAdver ||
			!got.NextAdvert.Equal(want.NextAdvert) || !got.DownAt.Equal(want.DownAt) {
			t.Errorf("%s: got %+v, want %+v", name, got, want)
		}
	}
	if !reflect.DeepEqual(resumeFromWire([]handover.Instance{{Name: "X", State: "FAULT"}}), map[string]vrrp.Resume{}) {
		t.Error("a state that is not carried came through")
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
