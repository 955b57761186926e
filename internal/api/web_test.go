package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/api"
	"github.com/vipd/vipd/internal/api/apitest"
)

func get(t *testing.T, h http.Handler, method, path string) (int, http.Header, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, rec.Header(), string(b)
}

func TestWebEndpoints(t *testing.T) {
	src := apitest.NewSource()
	h := api.NewWebHandler(src, api.WebOptions{Now: func() time.Time { return apitest.T0 }})
	tests := []struct {
		method, path string
		code         int
		ctype        string
		contains     string
	}{
		{"GET", "/healthz", 200, "text/plain; charset=utf-8", "ok"},
		{"GET", "/readyz", 200, "text/plain; charset=utf-8", "ready"},
		{"GET", "/", 200, "text/html; charset=utf-8", `<script src="assets/app.js"`},
		{"GET", "/assets/app.js", 200, "text/javascript; charset=utf-8", "setInterval(refresh, 1000)"},
		{"GET", "/assets/style.css", 200, "text/css; charset=utf-8", "st-MASTER"},
		{"GET", "/status.json", 200, "application/json", `"state": "MASTER"`},
		{"GET", "/metrics", 200, "text/plain; version=0.0.4", "keepalived_vrrp_state{"},
		{"GET", "/nope", 404, "", ""},
		{"GET", "/assets/missing.js", 404, "", ""},
		{"POST", "/status.json", 405, "", ""},
		{"POST", "/", 405, "", ""},
		{"GET", "/v1/reload", 404, "", ""}, // reload never on the HTTP side
	}
	for _, tt := range tests {
		code, hdr, body := get(t, h, tt.method, tt.path)
		if code != tt.code {
			t.Errorf("%s %s = %d, want %d", tt.method, tt.path, code, tt.code)
			continue
		}
		if tt.ctype != "" && !strings.HasPrefix(hdr.Get("Content-Type"), tt.ctype) {
			t.Errorf("%s %s: Content-Type %q, want %q", tt.method, tt.path, hdr.Get("Content-Type"), tt.ctype)
		}
		if !strings.Contains(body, tt.contains) {
			t.Errorf("%s %s: body lacks %q", tt.method, tt.path, tt.contains)
		}
		if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("%s %s: CSP %q", tt.method, tt.path, csp)
		}
	}

	// The page loads nothing from elsewhere.
	for _, p := range []string{"/", "/assets/app.js", "/assets/style.css"} {
		_, _, body := get(t, h, "GET", p)
		// The SVG namespace is a name, not something loaded.
		body = strings.ReplaceAll(body, `"http://www.w3.org/2000/svg"`, "")
		if strings.Contains(body, "http://") || strings.Contains(body, "https://") || strings.Contains(body, "//cdn") {
			t.Errorf("%s refers to another origin", p)
		}
	}
}

func TestWebReadiness(t *testing.T) {
	src := apitest.NewSource()
	h := api.NewWebHandler(src, api.WebOptions{})
	src.SetReady(apitest.ErrNotReady)
	code, _, body := get(t, h, "GET", "/readyz")
	if code != 503 || body != "not ready: "+apitest.ErrNotReady.Error()+"\n" {
		t.Errorf("readyz = %d %q", code, body)
	}
	// Liveness does not depend on readiness: a daemon that is up but not
	// ready must not be restarted by its orchestrator.
	if code, _, _ := get(t, h, "GET", "/healthz"); code != 200 {
		t.Errorf("healthz = %d while not ready", code)
	}
	_, _, body = get(t, h, "GET", "/status.json")
	var pd api.PageData
	if err := json.Unmarshal([]byte(body), &pd); err != nil {
		t.Fatal(err)
	}
	if pd.Ready || pd.ReadyError != apitest.ErrNotReady.Error() || len(pd.Status.Instances) != 3 {
		t.Errorf("status.json = ready %v %q, %d instances", pd.Ready, pd.ReadyError, len(pd.Status.Instances))
	}
}
