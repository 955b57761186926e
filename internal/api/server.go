package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/vipd/vipd/internal/lvs"
)

// DefaultSocket is where vipd serves its control API and where vipctl looks
// for it unless told otherwise (vipd --control, vipctl --socket).
const DefaultSocket = "/run/vipd/vipd.sock"

// Paths of the control API. They are versioned so that a newer vipctl can
// still talk to an older daemon during a rolling upgrade.
const (
	PathStatus   = "/v1/status"
	PathServices = "/v1/services"
	PathConns    = "/v1/conns"
	PathChecks   = "/v1/checks"
	PathReload   = "/v1/reload"
	PathDump     = "/v1/dump"
	PathReady    = "/v1/ready"
)

// Dump is the full observable state of a daemon in one document: what
// `vipctl dump` prints and what keepalived writes to /tmp/keepalived.data
// on SIGUSR1.
type Dump struct {
	Time       time.Time       `json:"time"`
	Ready      bool            `json:"ready"`
	ReadyError string          `json:"ready_error,omitempty"`
	Status     Status          `json:"status"`
	Conns      []lvs.ConnEntry `json:"conns"`
}

// Readiness is the answer of the readiness endpoints.
type Readiness struct {
	Ready bool   `json:"ready"`
	Error string `json:"error,omitempty"`
}

// ReloadResult is the answer to a successful reload.
type ReloadResult struct {
	ConfigFile   string    `json:"config_file"`
	ConfigLoaded time.Time `json:"config_loaded"`
	Reloads      uint64    `json:"reloads"`
}

// ErrorBody is the JSON body of every non-2xx answer. Diagnostics is set
// when a reload was rejected because of the configuration.
type ErrorBody struct {
	Error       string   `json:"error"`
	Diagnostics []string `json:"diagnostics,omitempty"`
	// Commit is set when a valid configuration failed to apply.
	Commit *CommitError `json:"commit,omitempty"`
	// Upgrade is set when an upgrade failed (the step and why).
	Upgrade *UpgradeError `json:"upgrade,omitempty"`
}

// Options tune a Server. The zero value is usable.
type Options struct {
	// Logger receives one line per failed request; nil means slog.Default.
	Logger *slog.Logger
	// ReloadTimeout bounds a reload requested over the API; 0 means 2
	// minutes. The daemon's Reload should honour the context.
	ReloadTimeout time.Duration
	// Now is the clock used to stamp dumps; nil means time.Now.
	Now func() time.Time
}

// Server is the control API: JSON over HTTP, meant for a unix socket that
// only root can open. It only reads through Source, except for reload.
type Server struct {
	src  Source
	opts Options
	mux  *http.ServeMux
}

// NewServer returns the control API for src.
func NewServer(src Source, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.ReloadTimeout == 0 {
		opts.ReloadTimeout = 2 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{src: src, opts: opts, mux: http.NewServeMux()}
	s.route(http.MethodGet, PathStatus, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.src.Status())
	})
	s.route(http.MethodGet, PathServices, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, nonNil(s.src.Status().Services))
	})
	s.route(http.MethodGet, PathConns, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, nonNil(s.src.Conns()))
	})
	s.route(http.MethodGet, PathChecks, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, nonNil(s.src.Status().Checks))
	})
	s.route(http.MethodGet, PathReady, func(w http.ResponseWriter, r *http.Request) {
		rd := readiness(s.src)
		code := http.StatusOK
		if !rd.Ready {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, rd)
	})
	s.route(http.MethodGet, PathDump, func(w http.ResponseWriter, r *http.Request) {
		rd := readiness(s.src)
		writeJSON(w, http.StatusOK, Dump{
			Time:       s.opts.Now(),
			Ready:      rd.Ready,
			ReadyError: rd.Error,
			Status:     s.src.Status(),
			Conns:      nonNil(s.src.Conns()),
		})
	})
	s.route(http.MethodPost, PathReload, s.reload)
	s.route(http.MethodPost, PathUpgrade, s.upgrade)
	s.routeBGP()
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, ErrorBody{Error: fmt.Sprintf("no such endpoint %s %s", r.Method, r.URL.Path)})
	})
	return s
}

// route registers h for one method; any other method gets a JSON 405, so
// that clients only ever have to decode ErrorBody.
func (s *Server) route(method, path string, h http.HandlerFunc) {
	s.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
			w.Header().Set("Allow", method)
			writeJSON(w, http.StatusMethodNotAllowed, ErrorBody{Error: fmt.Sprintf("%s needs %s, not %s", path, method, r.Method)})
			return
		}
		h(w, r)
	})
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.ReloadTimeout)
	defer cancel()
	err := s.src.Reload(ctx)
	var cerr *ConfigError
	var commit *CommitError
	switch {
	case err == nil:
		st := s.src.Status()
		writeJSON(w, http.StatusOK, ReloadResult{ConfigFile: st.ConfigFile, ConfigLoaded: st.ConfigLoaded, Reloads: st.Reloads})
	case errors.As(err, &cerr):
		s.opts.Logger.Warn("reload rejected", "diagnostics", len(cerr.Diagnostics))
		writeJSON(w, http.StatusUnprocessableEntity, ErrorBody{Error: cerr.Error(), Diagnostics: nonNil(cerr.Diagnostics)})
	case errors.As(err, &commit):
		// 409: the configuration is fine; the system refused it.
		s.opts.Logger.Error("reload failed", "step", commit.Step, "err", commit.Reason, "running", commit.Running)
		writeJSON(w, http.StatusConflict, ErrorBody{Error: commit.Error(), Commit: commit})
	default:
		s.opts.Logger.Error("reload failed", "err", err)
		writeJSON(w, http.StatusInternalServerError, ErrorBody{Error: err.Error()})
	}
}

// ServeHTTP makes Server an http.Handler, for tests and for mounting it
// elsewhere.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Serve answers requests on ln until ctx is done, then shuts down
// gracefully (in-flight requests get 5 seconds) and closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return serveHTTP(ctx, ln, s, s.opts.Logger)
}

// Serve runs the control API for src on ln until ctx is done.
func Serve(ctx context.Context, ln net.Listener, src Source) error {
	return NewServer(src, Options{}).Serve(ctx, ln)
}

func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := hs.Shutdown(sctx); err != nil {
			_ = hs.Close()
		}
	}()
	err := hs.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		<-done
		return nil
	}
	return fmt.Errorf("api: serve %s: %w", ln.Addr(), err)
}

func readiness(src Source) Readiness {
	if err := src.Ready(); err != nil {
		return Readiness{Ready: false, Error: err.Error()}
	}
	return Readiness{Ready: true}
}

// nonNil makes empty lists encode as [] rather than null, so that clients
// in other languages need no special case.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		code = http.StatusInternalServerError
		b, _ = json.Marshal(ErrorBody{Error: "encoding answer: " + err.Error()})
	}
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// Listen opens the control socket at path: its directory is created with
// mode 0755 when missing, the socket gets mode perm (0 means 0600, root
// only) before anyone can connect, and a stale socket left by a daemon that
// died is replaced. A socket some process still answers on is an error:
// two daemons must not share one control path. Closing the listener
// removes the socket file.
func Listen(path string, perm os.FileMode) (net.Listener, error) {
	if perm == 0 {
		perm = 0o600
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("api: control socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("api: control socket %s: exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			_ = c.Close()
			return nil, fmt.Errorf("api: control socket %s: another process is listening on it (another vipd? use --control)", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("api: removing stale control socket: %w", err)
		}
	}
	// Bind under a temporary name, set the mode, then rename into place:
	// the socket is never reachable at path with the umask's looser mode.
	tmp := filepath.Join(dir, fmt.Sprintf(".%s.%d.tmp", filepath.Base(path), os.Getpid()))
	_ = os.Remove(tmp)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("api: control socket: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, perm); err != nil {
		_ = ln.Close()
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("api: control socket mode: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = ln.Close()
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("api: control socket: %w", err)
	}
	return &socketListener{UnixListener: ln, path: path}, nil
}

// socketListener removes its socket file on Close, since the kernel only
// knows the temporary name it was bound under.
type socketListener struct {
	*net.UnixListener
	path string
	keep atomic.Bool
}

// SocketFromListener wraps the control socket another process opened at
// path (vipctl upgrade) as Listen's listener: closing it removes the
// file.
func SocketFromListener(ln *net.UnixListener, path string) net.Listener {
	ln.SetUnlinkOnClose(false)
	return &socketListener{UnixListener: ln, path: path}
}

// KeepFile makes Close leave the socket file: another process serves
// on the same socket now (vipctl upgrade).
func (l *socketListener) KeepFile() { l.keep.Store(true) }

func (l *socketListener) Close() error {
	err := l.UnixListener.Close()
	if l.keep.Load() {
		return err
	}
	if rerr := os.Remove(l.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
		err = rerr
	}
	return err
}

func (l *socketListener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }
