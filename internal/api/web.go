package api

import (
	"context"
	"embed"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The status page's assets are embedded: the page works on a host with no
// route to any CDN, and the binary is the whole deployment.
//
//go:embed web
var webFS embed.FS

// WebOptions tune the HTTP listener. The zero value is usable.
type WebOptions struct {
	// Logger receives scrape errors; nil means slog.Default.
	Logger *slog.Logger
	// Registry is what /metrics serves; nil means NewRegistry(src).
	Registry *prometheus.Registry
	// Now stamps status.json, from which the page computes ages; nil
	// means time.Now.
	Now func() time.Time
	// History is what /history.json serves (the page's graphs); nil
	// means an empty one. ServeWeb creates and feeds one.
	History *History
	// HistoryStep is how often ServeWeb samples the daemon into
	// History; 0 means DefaultHistoryStep.
	HistoryStep time.Duration
}

// PageData is what the status page fetches every second.
type PageData struct {
	Now        time.Time `json:"now"`
	Ready      bool      `json:"ready"`
	ReadyError string    `json:"ready_error,omitempty"`
	Status     Status    `json:"status"`
}

// Paths of the HTTP listener (vipd --metrics ADDR).
const (
	WebMetrics = "/metrics"
	WebHealthz = "/healthz"
	WebReadyz  = "/readyz"
	WebStatus  = "/status.json"
	WebHistory = "/history.json"
)

// NewWebHandler returns the read-only HTTP side of vipd: Prometheus
// metrics, the live status page, and liveness and readiness endpoints for
// orchestrators. Nothing here changes state: reload stays on the
// root-only unix socket.
func NewWebHandler(src Source, opts WebOptions) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Registry == nil {
		opts.Registry = NewRegistry(src)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.History == nil {
		opts.History = NewHistory(DefaultHistoryWindow)
	}
	assets, err := fs.Sub(webFS, "web")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	index, err := fs.ReadFile(assets, "index.html")
	if err != nil {
		panic(err)
	}

	mux := http.NewServeMux()
	mux.Handle("GET "+WebMetrics, promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{
		// A series that fails (a label the registry refuses) must not
		// hide all the others from the scrape.
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
	}))
	mux.HandleFunc("GET "+WebHealthz, func(w http.ResponseWriter, r *http.Request) {
		text(w, http.StatusOK, "ok\n")
	})
	mux.HandleFunc("GET "+WebReadyz, func(w http.ResponseWriter, r *http.Request) {
		if err := src.Ready(); err != nil {
			text(w, http.StatusServiceUnavailable, "not ready: "+err.Error()+"\n")
			return
		}
		text(w, http.StatusOK, "ready\n")
	})
	mux.HandleFunc("GET "+WebStatus, func(w http.ResponseWriter, r *http.Request) {
		rd := readiness(src)
		writeJSON(w, http.StatusOK, PageData{Now: opts.Now(), Ready: rd.Ready, ReadyError: rd.Error, Status: src.Status()})
	})
	mux.HandleFunc("GET "+WebHistory, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, opts.History.Snapshot(opts.Now()))
	})
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServer(http.FS(assets))))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(index)
	})
	return securityHeaders(mux)
}

// securityHeaders forbid inline and foreign scripts: the page only runs
// its own embedded script and only talks to its own origin.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}

func text(w http.ResponseWriter, code int, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(s))
}

// ServeWeb serves NewWebHandler(src, opts) on ln until ctx is done.
func ServeWeb(ctx context.Context, ln net.Listener, src Source, opts WebOptions) error {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.History == nil {
		opts.History = NewHistory(DefaultHistoryWindow)
	}
	if opts.HistoryStep <= 0 {
		opts.HistoryStep = DefaultHistoryStep
	}
	go sampleHistory(ctx, src, opts.History, opts.HistoryStep)
	return serveHTTP(ctx, ln, NewWebHandler(src, opts), opts.Logger)
}

// sampleHistory records src into h every step until ctx is done.
func sampleHistory(ctx context.Context, src Source, h *History, step time.Duration) {
	h.Record(time.Now(), src.Status())
	t := time.NewTicker(step)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			h.Record(now, src.Status())
		}
	}
}
