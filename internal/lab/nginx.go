package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// StartNginx starts nginx in h as a real server, from a directory of its
// own that holds files (slash-separated paths relative to the directory,
// to their content) and nginx.conf. The configuration keeps everything
// nginx writes (pid, error log, temporary files) in that directory, logs
// no accesses, and puts servers(dir) in its http block: the server blocks
// or includes, which may root pages in dir. It returns nginx's process
// and the directory, removed at cleanup.
//
// It does not wait for nginx to serve: what "serving" means (HTTP, TLS, a
// given page) is the caller's, which polls for it with Eventually.
func StartNginx(t testing.TB, h *Host, files map[string]string, servers func(dir string) string) (*Proc, string) {
	t.Helper()
	RequireCommand(t, "nginx")
	dir := PublicDir(t, files)
	conf := fmt.Sprintf(`daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
worker_processes 1;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %[1]s;
    proxy_temp_path %[1]s;
    fastcgi_temp_path %[1]s;
    uwsgi_temp_path %[1]s;
    scgi_temp_path %[1]s;
%[2]s
}
`, dir, servers(dir))
	cf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return h.Start("nginx", "-c", cf, "-p", dir), dir
}

// PublicDir makes a directory that every user can read, holding files
// (slash-separated paths relative to the directory, to their content),
// and removes it at cleanup. It is for programs a test runs as another
// user (nginx's workers run as nobody): t.TempDir's parent is private.
func PublicDir(t testing.TB, files map[string]string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "vipd-public-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
