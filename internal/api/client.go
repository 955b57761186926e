package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/vipd/vipd/internal/lvs"
)

// Client talks to a daemon's control API over its unix socket. It is what
// vipctl uses; other programs may use it too.
type Client struct {
	Socket string
	hc     *http.Client
}

// NewClient returns a client of the daemon listening on socket.
func NewClient(socket string) *Client {
	c := &Client{Socket: socket}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "unix", socket)
			if err != nil {
				return nil, &UnreachableError{Socket: socket, Err: dialCause(err)}
			}
			return conn, nil
		},
		DisableCompression: true,
		MaxIdleConns:       1,
		IdleConnTimeout:    30 * time.Second,
	}
	c.hc = &http.Client{Transport: tr}
	return c
}

// UnreachableError says the daemon's socket could not be opened: most
// often the daemon is not running, or listens elsewhere.
type UnreachableError struct {
	Socket string
	Err    error
}

func (e *UnreachableError) Error() string {
	hint := "is vipd running? --socket"
	if errors.Is(e.Err, syscall.EACCES) || errors.Is(e.Err, syscall.EPERM) {
		hint = "the control socket is root-only: run vipctl as root"
	}
	return fmt.Sprintf("cannot reach vipd at %s: %v (%s)", e.Socket, e.Err, hint)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// dialCause drops the "dial unix PATH:" prefix that UnreachableError
// already says.
func dialCause(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		var se *os.SyscallError
		if errors.As(op.Err, &se) {
			return se
		}
		return op.Err
	}
	return err
}

// StatusError is a non-2xx answer from the daemon.
type StatusError struct {
	Code    int
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("vipd answered %d %s: %s", e.Code, http.StatusText(e.Code), e.Message)
}

// Status returns the daemon's whole state.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.do(ctx, http.MethodGet, PathStatus, &st)
	return st, err
}

// Services returns the virtual services with counters and rates.
func (c *Client) Services(ctx context.Context) ([]lvs.ServiceStatus, error) {
	var s []lvs.ServiceStatus
	err := c.do(ctx, http.MethodGet, PathServices, &s)
	return s, err
}

// Conns returns the connection table.
func (c *Client) Conns(ctx context.Context) ([]lvs.ConnEntry, error) {
	var s []lvs.ConnEntry
	err := c.do(ctx, http.MethodGet, PathConns, &s)
	return s, err
}

// Checks returns every health checker's state.
func (c *Client) Checks(ctx context.Context) ([]Check, error) {
	var s []Check
	err := c.do(ctx, http.MethodGet, PathChecks, &s)
	return s, err
}

// Ready returns the daemon's readiness; a daemon that is not ready is not
// an error here.
func (c *Client) Ready(ctx context.Context) (Readiness, error) {
	var r Readiness
	err := c.do(ctx, http.MethodGet, PathReady, &r)
	var se *StatusError
	if errors.As(err, &se) && se.Code == http.StatusServiceUnavailable {
		return Readiness{Ready: false, Error: se.Message}, nil
	}
	return r, err
}

// Dump returns the full state document.
func (c *Client) Dump(ctx context.Context) (Dump, error) {
	var d Dump
	err := c.do(ctx, http.MethodGet, PathDump, &d)
	return d, err
}

// DumpRaw returns the full state document exactly as the daemon sent it,
// so that fields this client does not know survive `vipctl dump`.
func (c *Client) DumpRaw(ctx context.Context) (json.RawMessage, error) {
	var d json.RawMessage
	err := c.do(ctx, http.MethodGet, PathDump, &d)
	return d, err
}

// Reload asks the daemon to reload its configuration. A rejected
// configuration comes back as *ConfigError with every diagnostic; a
// valid one that failed to apply as *CommitError.
func (c *Client) Reload(ctx context.Context) (ReloadResult, error) {
	var r ReloadResult
	err := c.do(ctx, http.MethodPost, PathReload, &r)
	return r, err
}

func (c *Client) do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://vipd"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *UnreachableError
		if errors.As(err, &ue) {
			return ue
		}
		return fmt.Errorf("vipd at %s: %s %s: %w", c.Socket, method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("vipd at %s: reading %s: %w", c.Socket, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var eb ErrorBody
		if err := json.Unmarshal(body, &eb); err != nil || eb.Error == "" {
			eb.Error = string(bytes.TrimSpace(body))
		}
		if resp.StatusCode == http.StatusUnprocessableEntity && len(eb.Diagnostics) > 0 {
			return &ConfigError{Diagnostics: eb.Diagnostics}
		}
		if eb.Commit != nil {
			return eb.Commit
		}
		if eb.Upgrade != nil {
			return eb.Upgrade
		}
		return &StatusError{Code: resp.StatusCode, Message: eb.Error}
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("vipd at %s: decoding %s: %w", c.Socket, path, err)
	}
	return nil
}
