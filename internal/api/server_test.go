package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vipd/vipd/internal/api"
	"github.com/vipd/vipd/internal/api/apitest"
)

// roundTrip returns the check of what a client call named what returned:
// no error, and want, deeply equal.
func roundTrip[T any](t *testing.T, what string, want T) func(got T, err error) {
	return func(got T, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s round trip differs:\n got %+v\nwant %+v", what, got, want)
		}
	}
}

func TestRoundTrips(t *testing.T) {
	src := apitest.NewSource()
	c := api.NewClient(apitest.Serve(t, src))
	ctx := context.Background()

	roundTrip(t, "Status", apitest.Sample())(c.Status(ctx))
	roundTrip(t, "Services", apitest.Sample().Services)(c.Services(ctx))
	roundTrip(t, "Conns", apitest.SampleConns())(c.Conns(ctx))
	roundTrip(t, "Checks", apitest.Sample().Checks)(c.Checks(ctx))

	d, err := c.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Time.Equal(apitest.T0) || !d.Ready || !reflect.DeepEqual(d.Status, apitest.Sample()) || len(d.Conns) != len(apitest.SampleConns()) {
		t.Errorf("Dump = %+v", d)
	}
}

func TestEmptyListsAreArrays(t *testing.T) {
	src := apitest.NewSource()
	src.Update(func(st *api.Status) { st.Services = nil; st.Checks = nil })
	src.SetConns(nil)
	path := apitest.Serve(t, src)
	for _, p := range []string{api.PathServices, api.PathConns, api.PathChecks} {
		code, body := rawGet(t, path, http.MethodGet, p)
		if code != 200 || strings.TrimSpace(body) != "[]" {
			t.Errorf("GET %s = %d %q, want 200 []", p, code, body)
		}
	}
}

func TestReload(t *testing.T) {
	src := apitest.NewSource()
	c := api.NewClient(apitest.Serve(t, src))
	ctx := context.Background()

	r, err := c.Reload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Reloads != 4 || r.ConfigFile != "/etc/keepalived/keepalived.conf" {
		t.Errorf("reload result %+v", r)
	}

	diags := []string{
		"/etc/keepalived/keepalived.conf:12: unknown keyword \"virtual_ipaddres\"",
		"/etc/keepalived/conf.d/web.conf:3: weight -1 out of range 0..65535",
	}
	src.SetReloadError(fmt.Errorf("daemon: %w", &api.ConfigError{Diagnostics: diags}))
	_, err = c.Reload(ctx)
	var cerr *api.ConfigError
	if !errors.As(err, &cerr) || !reflect.DeepEqual(cerr.Diagnostics, diags) {
		t.Fatalf("rejected reload: err = %v, want ConfigError with %q", err, diags)
	}

	src.SetReloadError(errors.New("netlink: operation not permitted"))
	_, err = c.Reload(ctx)
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != 500 || !strings.Contains(se.Message, "operation not permitted") {
		t.Fatalf("failed reload: err = %v", err)
	}
	if src.Reloads() != 3 {
		t.Errorf("Reload called %d times, want 3", src.Reloads())
	}
}

// TestReloadStatusCodes checks the wire format other clients (curl in a
// script) rely on: a rejected configuration is a 422 with diagnostics.
func TestReloadStatusCodes(t *testing.T) {
	src := apitest.NewSource()
	path := apitest.Serve(t, src)
	src.SetReloadError(&api.ConfigError{Diagnostics: []string{"k.conf:1: bad"}})
	code, body := rawGet(t, path, http.MethodPost, api.PathReload)
	var eb api.ErrorBody
	if err := json.Unmarshal([]byte(body), &eb); err != nil {
		t.Fatal(err)
	}
	if code != http.StatusUnprocessableEntity || len(eb.Diagnostics) != 1 || eb.Diagnostics[0] != "k.conf:1: bad" {
		t.Errorf("POST reload = %d %s", code, body)
	}
}

func TestMethodsAndUnknownPaths(t *testing.T) {
	src := apitest.NewSource()
	path := apitest.Serve(t, src)
	tests := []struct {
		method, path string
		code         int
	}{
		{http.MethodGet, api.PathReload, http.StatusMethodNotAllowed},
		{http.MethodPost, api.PathStatus, http.StatusMethodNotAllowed},
		{http.MethodDelete, api.PathDump, http.StatusMethodNotAllowed},
		{http.MethodGet, "/v1/nope", http.StatusNotFound},
		{http.MethodGet, "/status", http.StatusNotFound},
		{http.MethodGet, api.PathStatus, http.StatusOK},
		{http.MethodHead, api.PathStatus, http.StatusOK},
	}
	for _, tt := range tests {
		code, body := rawGet(t, path, tt.method, tt.path)
		if code != tt.code {
			t.Errorf("%s %s = %d, want %d", tt.method, tt.path, code, tt.code)
		}
		if tt.code >= 400 {
			var eb api.ErrorBody
			if err := json.Unmarshal([]byte(body), &eb); err != nil || eb.Error == "" {
				t.Errorf("%s %s: body %q is not an ErrorBody", tt.method, tt.path, body)
			}
		}
	}
	if src.Reloads() != 0 {
		t.Error("a GET reached Reload")
	}
}

func TestReadiness(t *testing.T) {
	src := apitest.NewSource()
	c := api.NewClient(apitest.Serve(t, src))
	ctx := context.Background()
	r, err := c.Ready(ctx)
	if err != nil || !r.Ready {
		t.Fatalf("Ready = %+v, %v", r, err)
	}
	src.SetReady(apitest.ErrNotReady)
	r, err = c.Ready(ctx)
	if err != nil || r.Ready || r.Error != apitest.ErrNotReady.Error() {
		t.Fatalf("not ready: Ready = %+v, %v", r, err)
	}
	d, err := c.Dump(ctx)
	if err != nil || d.Ready || d.ReadyError != apitest.ErrNotReady.Error() {
		t.Fatalf("Dump readiness = %v %q, %v", d.Ready, d.ReadyError, err)
	}
}

func TestUnreachable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.sock")
	_, err := api.NewClient(path).Status(context.Background())
	var ue *api.UnreachableError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v (%T), want UnreachableError", err, err)
	}
	want := "cannot reach vipd at " + path + ": connect: no such file or directory (is vipd running? --socket)"
	if err.Error() != want {
		t.Errorf("error\n got %q\nwant %q", err, want)
	}
}

func TestListenPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run", "vipd")
	path := filepath.Join(dir, "vipd.sock")
	ln, err := api.Listen(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want socket 0600", fi.Mode())
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o755 {
		t.Errorf("directory mode %v, want 0755", di.Mode().Perm())
	}
	if ln.Addr().String() != path {
		t.Errorf("Addr = %s", ln.Addr())
	}

	// A second daemon on the same path is refused while the first lives.
	if _, err := api.Listen(path, 0); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Errorf("second Listen: %v", err)
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket still there after Close: %v", err)
	}

	// A stale socket (its daemon died without closing) is replaced.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	ln, err = api.Listen(path, 0o660)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	defer ln.Close()
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o660 {
		t.Errorf("mode %v, want 0660", fi.Mode().Perm())
	}

	// A regular file is never removed.
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := api.Listen(file, 0); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen on a file: %v", err)
	}
	if _, err := os.Stat(file); err != nil {
		t.Errorf("file removed: %v", err)
	}
}

// TestNoTempLeft checks that binding under a temporary name leaves nothing
// behind in the directory.
func TestNoTempLeft(t *testing.T) {
	dir := t.TempDir()
	ln, err := api.Listen(filepath.Join(dir, "vipd.sock"), 0)
	if err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != "vipd.sock" {
		t.Errorf("directory holds %v", ents)
	}
	ln.Close()
}

func rawGet(t *testing.T, socket, method, path string) (int, string) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}}}
	req, _ := http.NewRequest(method, "http://vipd"+path, nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	return resp.StatusCode, string(b)
}
