package lvs

import "testing"

// Buckets (from testdata/sched_reference.py: hash_32(port + fold(addr), 8)):
//
//	198.18.0.1 188   198.18.0.2  30   198.18.0.3 128   198.18.0.4 226
//	198.18.0.5  67   198.18.0.6 165   198.18.0.7   7   198.18.0.8 105
//	2001:db8::1 63   2001:db8::2 160  2001:db8:1::1 184
//
// With weights all 1 the table is A B C A B C ... (bucket % 3); with A 2,
// B 1 it is A A B A A B ... (bucket % 3 == 2 is B).
var shClients = hosts("198.18.0.", 1, 8)

func TestSH(t *testing.T) {
	tests := []struct {
		name    string
		dests   []*Dest
		clients []string
		want    string
	}{
		{"equal", []*Dest{d("A", 1), d("B", 1), d("C", 1)}, shClients, "C A C B B A B A"},
		{"weighted 2:1", []*Dest{d("A", 2), d("B", 1)}, shClients, "B A B A A A A A"},
		{"ipv6", []*Dest{d("A", 1), d("B", 1), d("C", 1)},
			[]string{"2001:db8::1", "2001:db8::2", "2001:db8:1::1"}, "A B B"},
		{"v4-mapped", []*Dest{d("A", 1), d("B", 1), d("C", 1)}, []string{"::ffff:198.18.0.1"}, "C"},
		// Without sh-fallback a quiesced or overloaded bucket owner
		// means no destination (B owns buckets 226, 67, 7 of .4 .5 .7).
		{"quiesced", []*Dest{d("A", 1), d("B", 0), d("C", 1)}, shClients, "C A C - - A - A"},
		{"overloaded", []*Dest{d("A", 1), d("B", 1, overloaded), d("C", 1)}, shClients, "C A C - - A - A"},
		// The port is not hashed without sh-port.
		{"ports ignored", []*Dest{d("A", 1), d("B", 1), d("C", 1)},
			[]string{"198.18.0.1:40000", "198.18.0.1:40001", "198.18.0.1:40002"}, "C C C"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSched(t, "sh", 0, tt.dests)
			if got := clients(s, tt.dests, tt.clients...); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			// Same client, same destination, every time.
			if got := clients(s, tt.dests, tt.clients...); got != tt.want {
				t.Errorf("again: got %q, want %q", got, tt.want)
			}
		})
	}
}

// sh-port: buckets of 198.18.0.1 with source ports 40000..40005 are 96,
// 194, 36, 134, 231, 73.
func TestSHPort(t *testing.T) {
	dests := []*Dest{d("A", 1), d("B", 1), d("C", 1)}
	s := newSched(t, "sh", FlagSHPort, dests)
	cs := hosts("198.18.0.1:4000", 0, 5)
	if got, want := clients(s, dests, cs...), "A C A C A B"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// Protocols without ports hash port 0.
	f := flow("198.18.0.1:40001", "198.18.2.1")
	f.Proto = 1 // ICMP
	if got := name(s.Schedule(dests, f, t0)); got != "C" {
		t.Errorf("ICMP: got %s, want C (bucket 188)", got)
	}
}

// sh-fallback probes bucket (offset + 2*hash) & 255 for offset 0, 1, ...
// (the kernel adds the hash twice): for .4 (hash 226) buckets 196 (B),
// 197 (C); for .5 (67) bucket 134 (C); for .7 (7) bucket 14 (C). With C
// quiesced too, .4 goes on to bucket 198 (A).
func TestSHFallback(t *testing.T) {
	tests := []struct {
		name  string
		dests []*Dest
		want  string
	}{
		{"B quiesced", []*Dest{d("A", 1), d("B", 0), d("C", 1)}, "C A C C C A C A"},
		{"B and C quiesced", []*Dest{d("A", 1), d("B", 0), d("C", 0)}, "A A A A A A A A"},
		{"B overloaded", []*Dest{d("A", 1), d("B", 1, overloaded), d("C", 1)}, "C A C C C A C A"},
		{"all quiesced", []*Dest{d("A", 0), d("B", 0), d("C", 0)}, "- - - - - - - -"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSched(t, "sh", FlagSHFallback, tt.dests)
			if got := clients(s, tt.dests, shClients...); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// The table is rebuilt on every change with the weights of that moment.
func TestSHUpdate(t *testing.T) {
	A, B := d("A", 1), d("B", 1)
	s := newSched(t, "sh", 0, []*Dest{A, B})
	// Buckets % 2: 188 30 128 226 67 165 7 105 -> A A A A B B B B.
	if got, want := clients(s, []*Dest{A, B}, shClients...), "A A A A B B B B"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	B.Weight = 2 // table A B B A B B ...: bucket % 3 == 0 is A
	s.Update([]*Dest{A, B})
	if got, want := clients(s, []*Dest{A, B}, shClients...), "B A B B B A B A"; got != want {
		t.Errorf("after edit: got %q, want %q", got, want)
	}
	s.Update(nil)
	if got := clients(s, nil, shClients[0]); got != "-" {
		t.Errorf("empty: got %q", got)
	}
}
