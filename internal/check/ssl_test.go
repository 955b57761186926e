package check

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSSLGet runs SSL_GET against a TLS server: the request goes through,
// SNI is sent only when asked, and a CA file makes the certificate count.
func TestSSLGet(t *testing.T) {
	var mu sync.Mutex
	var sni []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("User-Agent") != "KeepAliveClient" {
			w.WriteHeader(400)
		}
		_, _ = w.Write([]byte("tls page"))
	}))
	srv.TLS = &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		mu.Lock()
		sni = append(sni, h.ServerName)
		mu.Unlock()
		return nil, nil
	}}
	srv.StartTLS()
	defer srv.Close()
	addr := netip.MustParseAddrPort(strings.TrimPrefix(srv.URL, "https://"))
	lastSNI := func() string { mu.Lock(); defer mu.Unlock(); return sni[len(sni)-1] }

	// The test server's certificate is for example.com and 127.0.0.1,
	// signed by itself.
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	otherCA, _ := selfSignedCert(t, t.TempDir())

	tests := []struct {
		name    string
		ssl     SSL
		sni     bool
		sniName string
		vhost   string
		up      bool
		wantSNI string
	}{
		{name: "no verification, no SNI", up: true, wantSNI: ""},
		{name: "enable_sni uses the virtual host", sni: true, vhost: "www.example.com", up: true, wantSNI: "www.example.com"},
		{name: "sni_name wins", sni: true, sniName: "sni.example", vhost: "www.example.com", up: true, wantSNI: "sni.example"},
		{name: "CA that signed it", ssl: SSL{CA: caFile}, up: true},
		{name: "another CA", ssl: SSL{CA: otherCA}, up: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := tt.ssl.Config()
			if err != nil {
				t.Fatal(err)
			}
			c := &HTTP{Endpoint: Endpoint{Addr: addr, Timeout: 2 * time.Second}, TLS: cfg, EnableSNI: tt.sni, SNIName: tt.sniName, VirtualHost: tt.vhost,
				URLs: []URL{{Path: "/", Digest: md5hex("tls page")}}}
			r := c.Check(context.Background())
			if r.Up != tt.up {
				t.Fatalf("got %+v, want up=%v", r, tt.up)
			}
			if tt.up && lastSNI() != tt.wantSNI {
				t.Errorf("SNI %q, want %q", lastSNI(), tt.wantSNI)
			}
			if !tt.up && !strings.HasPrefix(r.Reason, "TLS handshake") {
				t.Errorf("reason %q", r.Reason)
			}
		})
	}
	if _, err := (SSL{Certificate: "/nonexistent.pem"}).Config(); err == nil {
		t.Error("missing certificate accepted")
	}
	if _, err := (SSL{Certificate: caFile, Password: "x"}).Config(); err == nil {
		t.Error("password accepted")
	}
}
