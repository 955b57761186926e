package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/api"
	"github.com/vipd/vipd/internal/api/apitest"
	"github.com/vipd/vipd/internal/lab"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// vipctl runs one invocation with the fixed clock and returns its exit
// code, stdout and stderr.
func vipctl(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	a := newApp(&out, &errb)
	a.now = func() time.Time { return apitest.T0 }
	a.getenv = func(k string) string { return env[k] }
	code := a.run(context.Background(), args)
	return code, out.String(), errb.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s:\n--- got\n%s--- want\n%s", name, path, got, want)
	}
}

func TestGolden(t *testing.T) {
	sock := apitest.Serve(t, apitest.NewSource())
	tests := []struct {
		name string
		args []string
	}{
		{"status", []string{"status"}},
		{"status.json", []string{"status", "-o", "json"}},
		{"checks", []string{"checks"}},
		{"checks.json", []string{"-o", "json", "checks"}},
		{"list", []string{"list"}},
		{"list-n", []string{"list", "-n"}},
		{"list-stats", []string{"list", "-n", "--stats"}},
		{"list-stats-exact", []string{"list", "-n", "--stats", "--exact"}},
		{"list-rate", []string{"list", "-n", "--rate"}},
		{"list-persistent-conn", []string{"list", "-n", "--persistent-conn"}},
		{"list-tun-info", []string{"list", "-n", "--tun-info"}},
		{"list-t", []string{"list", "-n", "-t", "198.18.0.100:80"}},
		{"list-f", []string{"list", "-n", "-f", "1"}},
		{"list-timeout", []string{"list", "--timeout"}},
		{"list.json", []string{"list", "-o", "json"}},
		{"conns", []string{"conns"}},
		{"list-c", []string{"list", "-n", "-c"}},
		{"conns.json", []string{"conns", "-o", "json"}},
		{"dump", []string{"dump"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := vipctl(t, nil, append([]string{"--socket", sock}, tt.args...)...)
			if code != 0 || errs != "" {
				t.Fatalf("exit %d, stderr %q", code, errs)
			}
			golden(t, tt.name, out)
		})
	}
}

// TestSocketSelection: the socket can be chosen before or after the
// command, or by environment, so several daemons (one per namespace) can
// be driven from one host.
func TestSocketSelection(t *testing.T) {
	src := apitest.NewSource()
	sock := apitest.Serve(t, src)
	for _, tc := range []struct {
		env  map[string]string
		args []string
	}{
		{nil, []string{"--socket", sock, "status", "-o", "json"}},
		{nil, []string{"status", "--socket", sock, "-o", "json"}},
		{nil, []string{"-o", "json", "status", "--socket=" + sock}},
		{map[string]string{"VIPCTL_SOCKET": sock}, []string{"status", "-o", "json"}},
	} {
		code, out, errs := vipctl(t, tc.env, tc.args...)
		if code != 0 || !strings.Contains(out, `"router_id": "LVS_DEVEL"`) {
			t.Errorf("%v (env %v): exit %d, stdout %.60q, stderr %q", tc.args, tc.env, code, out, errs)
		}
	}
}

func TestReload(t *testing.T) {
	src := apitest.NewSource()
	sock := apitest.Serve(t, src)

	code, out, errs := vipctl(t, nil, "--socket", sock, "reload")
	if code != 0 || out != "reloaded /etc/keepalived/keepalived.conf (4 reloads since start)\n" || errs != "" {
		t.Errorf("reload: exit %d, stdout %q, stderr %q", code, out, errs)
	}

	src.SetReloadError(&api.ConfigError{Diagnostics: []string{
		`/etc/keepalived/keepalived.conf:12: unknown keyword "virtual_ipaddres"`,
		`/etc/keepalived/conf.d/web.conf:3: real_server 198.18.0.21 80: weight -1 out of range 0..65535`,
	}})
	code, out, errs = vipctl(t, nil, "--socket", sock, "reload")
	if code != 1 || out != "" {
		t.Errorf("rejected reload: exit %d, stdout %q", code, out)
	}
	golden(t, "reload-rejected.stderr", errs)

	code, out, errs = vipctl(t, nil, "--socket", sock, "reload", "-o", "json")
	if code != 1 || errs != "" {
		t.Errorf("rejected reload -o json: exit %d, stderr %q", code, errs)
	}
	golden(t, "reload-rejected.json", out)

	// A valid configuration one of whose commit steps failed: the step,
	// the reason and what runs now, exit 1.
	src.SetReloadError(&api.CommitError{Step: "data plane", Reason: "proxy: service TCP 198.18.0.100:8080: bind: address already in use", Running: "the previous configuration (undone: notifications)"})
	code, out, errs = vipctl(t, nil, "--socket", sock, "reload")
	if code != 1 || out != "" || errs != "vipctl: reload failed at step \"data plane\": proxy: service TCP 198.18.0.100:8080: bind: address already in use\nvipctl: running now: the previous configuration (undone: notifications)\n" {
		t.Errorf("failed commit: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	code, out, _ = vipctl(t, nil, "--socket", sock, "reload", "-o", "json")
	if code != 1 || !strings.Contains(out, `"step": "data plane"`) {
		t.Errorf("failed commit -o json: exit %d, stdout %q", code, out)
	}

	src.SetReloadError(fmt.Errorf("netlink: operation not permitted"))
	code, _, errs = vipctl(t, nil, "--socket", sock, "reload")
	if code != 1 || errs != "vipctl: reload: vipd answered 500 Internal Server Error: netlink: operation not permitted\n" {
		t.Errorf("failed reload: exit %d, stderr %q", code, errs)
	}
}

func TestNotReady(t *testing.T) {
	src := apitest.NewSource()
	src.SetReady(apitest.ErrNotReady)
	sock := apitest.Serve(t, src)
	code, out, _ := vipctl(t, nil, "--socket", sock, "status")
	if code != 0 || !strings.Contains(out, "; NOT READY: data plane not programmed yet\n") {
		t.Errorf("exit %d, status:\n%s", code, out)
	}
}

func TestErrors(t *testing.T) {
	sock := apitest.Serve(t, apitest.NewSource())
	missing := filepath.Join(t.TempDir(), "nope.sock")
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string // prefix
	}{
		{"unreachable", []string{"--socket", missing, "status"}, 1,
			"vipctl: cannot reach vipd at " + missing + ": connect: no such file or directory (is vipd running? --socket)\n"},
		{"unreachable list", []string{"list", "--socket", missing}, 1, "vipctl: cannot reach vipd at " + missing},
		{"no command", nil, 2, "vipctl controls"},
		{"unknown command", []string{"stauts"}, 2, `vipctl: unknown command "stauts" (vipctl help lists them)`},
		{"unknown flag", []string{"--socket", sock, "list", "--bogus"}, 2, "vipctl list: flag provided but not defined: -bogus\nUsage: vipctl list"},
		{"bad output", []string{"--socket", sock, "status", "-o", "yaml"}, 2, `vipctl status: -o "yaml": want text or json`},
		{"bad service", []string{"--socket", sock, "list", "-t", "198.18.0.100"}, 2, `vipctl list: -t "198.18.0.100": want VIP:PORT`},
		{"two services", []string{"--socket", sock, "list", "-t", "198.18.0.100:80", "-f", "1"}, 2, "vipctl list: -t, -u, --sctp-service and -f select one service"},
		{"no such service", []string{"--socket", sock, "list", "-u", "198.18.0.100:80"}, 1, "vipctl: no such service UDP 198.18.0.100:80\n"},
		{"extra argument", []string{"--socket", sock, "status", "now"}, 2, `vipctl status: unexpected argument "now"`},
		// genhash exits 1 on a bad command line, as keepalived's does.
		{"genhash missing", []string{"genhash", "-s", "127.0.0.1"}, 1, "vipctl genhash: -s ADDR, -p PORT and -u PATH are all needed"},
		{"genhash protocol", []string{"genhash", "-s", "127.0.0.1", "-p", "80", "-u", "/", "-P", "2"}, 1, `vipctl genhash: invalid HTTP protocol version '2'`},
		{"genhash flag", []string{"genhash", "--bogus"}, 1, "vipctl genhash: flag provided but not defined: -bogus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errs := vipctl(t, nil, tt.args...)
			if code != tt.code || !strings.HasPrefix(errs, tt.stderr) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d, stderr starting:\n%s", code, errs, tt.code, tt.stderr)
			}
		})
	}
}

// TestHelp keeps --help complete: every command has a help page, listed
// in the overview, and the pages are golden (man pages are generated from
// them).
func TestHelp(t *testing.T) {
	code, out, _ := vipctl(t, nil, "--help")
	if code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	golden(t, "help", out)
	for _, c := range commands {
		if !strings.Contains(out, "\n  "+c.name+" ") {
			t.Errorf("overview lacks %s", c.name)
		}
		code, page, _ := vipctl(t, nil, "help", c.name)
		if code != 0 {
			t.Errorf("help %s: exit %d", c.name, code)
		}
		code, page2, _ := vipctl(t, nil, c.name, "--help")
		if code != 0 || page2 != page {
			t.Errorf("%s --help differs from help %s", c.name, c.name)
		}
		golden(t, "help-"+c.name, page)
	}
}

// TestGenhashMatchesKeepalived runs keepalived's own genhash (Debian's
// keepalived package) and vipctl genhash against the same page.
func TestGenhashMatchesKeepalived(t *testing.T) {
	lab.RequireCommand(t, "genhash")
	pages := map[string]string{
		"/":          "<html><body>hello from 198.18.0.21</body></html>\n",
		"/big":       strings.Repeat("0123456789abcdef", 5000),
		"/empty":     "",
		"/health.sh": "OK\n",
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, body)
	}))
	defer srv.Close()
	host, port, _ := strings.Cut(strings.TrimPrefix(srv.URL, "http://"), ":")
	for _, path := range []string{"/", "/big", "/empty", "/health.sh", "/missing"} {
		for _, proto := range []string{"1.0", "1.1"} {
			args := []string{"-s", host, "-p", port, "-u", path, "-P", proto}
			want, err := exec.Command("genhash", args...).Output()
			if err != nil {
				t.Fatalf("genhash %v: %v", args, err)
			}
			code, got, errs := vipctl(t, nil, append([]string{"genhash"}, args...)...)
			if code != 0 || errs != "" {
				t.Errorf("vipctl genhash %v: exit %d, %s", args, code, errs)
			}
			if got != string(want) {
				t.Errorf("genhash %v:\nkeepalived: %q\nvipctl:     %q", args, want, got)
			}
		}
	}
	// A refused connection.
	want, _ := exec.Command("genhash", "-s", "127.0.0.1", "-p", "1", "-u", "/").Output()
	_, got, _ := vipctl(t, nil, "genhash", "-s", "127.0.0.1", "-p", "1", "-u", "/")
	if got != string(want) {
		t.Errorf("refused: keepalived %q, vipctl %q", want, got)
	}
	// -o json.
	code, got, _ := vipctl(t, nil, "genhash", "-s", host, "-p", port, "-u", "/health.sh", "-o", "json")
	if code != 0 || !strings.Contains(got, `"digest": "`) {
		t.Errorf("genhash -o json: exit %d, %s", code, got)
	}
}

// TestListHeader: the first line of vipctl list is what the kernel
// reports with the ipvs data plane (through the daemon's status), and
// version 1.2.1 with size 0 with the proxy, which has no connection hash
// table (docs/vipctl.md says why).
func TestListHeader(t *testing.T) {
	src := apitest.NewSource()
	sock := apitest.Serve(t, src)
	first := func() (int, string, string) {
		code, out, errs := vipctl(t, nil, "--socket", sock, "list", "-n")
		line, _, _ := strings.Cut(out, "\n")
		return code, line, errs
	}
	if code, line, errs := first(); code != 0 || line != "IP Virtual Server version 1.2.1 (size=0)" {
		t.Errorf("proxy: exit %d, first line %q, stderr %q", code, line, errs)
	}
	src.Update(func(st *api.Status) {
		st.Dataplane = "ipvs"
		st.IPVS = &api.IPVSInfo{Version: "1.2.0", ConnTabSize: 1 << 20}
	})
	if code, line, errs := first(); code != 0 || line != "IP Virtual Server version 1.2.0 (size=1048576)" {
		t.Errorf("ipvs: exit %d, first line %q, stderr %q", code, line, errs)
	}
	// The ipvs data plane without the kernel's answer: an error, never a
	// made-up line.
	src.Update(func(st *api.Status) { st.IPVS = nil })
	if code, line, errs := first(); code != 1 || line != "" || !strings.Contains(errs, "could not read the kernel's IPVS version") {
		t.Errorf("ipvs without info: exit %d, first line %q, stderr %q", code, line, errs)
	}
}
