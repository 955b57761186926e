package ipvs

import (
	"bytes"
	"strings"
	"testing"

	cf "github.com/cloudflare/ipvs"

	"github.com/vipd/vipd/internal/ipvsadm"
)

// TestInfoOf: the kernel's GET_INFO answer becomes ipvsadm's first line
// unchanged, whatever the kernel reports (conn_tab_bits=20 makes 1048576
// buckets; old kernels said 1.2.0).
func TestInfoOf(t *testing.T) {
	for _, tc := range []struct {
		in   cf.Info
		want string
	}{
		{cf.Info{Version: [3]int{1, 2, 1}, ConnectionTableSize: 4096}, "IP Virtual Server version 1.2.1 (size=4096)"},
		{cf.Info{Version: [3]int{1, 2, 0}, ConnectionTableSize: 1 << 20}, "IP Virtual Server version 1.2.0 (size=1048576)"},
		{cf.Info{Version: [3]int{1, 2, 1}, ConnectionTableSize: 256}, "IP Virtual Server version 1.2.1 (size=256)"},
	} {
		i := infoOf(tc.in)
		var b bytes.Buffer
		if err := ipvsadm.List(&b, nil, ipvsadm.Options{KernelVersion: i.Version, ConnTabSize: i.ConnTabSize}); err != nil {
			t.Fatal(err)
		}
		if line, _, _ := strings.Cut(b.String(), "\n"); line != tc.want {
			t.Errorf("%+v: first line %q, want %q", tc.in, line, tc.want)
		}
	}
}
