package api

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// PathUpgrade replaces the daemon with the binary at its path (vipctl
// upgrade).
const PathUpgrade = "/v1/upgrade"

// UpgradeResult is the answer to a successful upgrade: the process that
// answered the request has handed everything to NewPID and exits once
// its open connections have closed.
type UpgradeResult struct {
	Binary     string `json:"binary"`
	OldPID     int    `json:"old_pid"`
	NewPID     int    `json:"new_pid"`
	OldVersion string `json:"old_version"`
	NewVersion string `json:"new_version"`
	// Took is the handover's duration, from starting the new process
	// to its word that it runs.
	Took time.Duration `json:"took_ns"`
	// Draining is the number of proxied connections the old process
	// finishes before it exits.
	Draining int `json:"draining"`
}

// Results of an upgrade, as vipd_upgrades_total counts them.
const (
	UpgradeOK     = "ok"
	UpgradeFailed = "failed"
)

// UpgradeResults lists them in the order metrics print them.
var UpgradeResults = []string{UpgradeOK, UpgradeFailed}

// UpgradeError is an upgrade that did not happen: Step names what
// failed, Reason why; the running daemon kept (or took back) everything.
type UpgradeError struct {
	Step   string `json:"step"`
	Reason string `json:"reason"`
}

func (e *UpgradeError) Error() string {
	return "upgrade failed at step " + quote(e.Step) + ": " + e.Reason + "; the running vipd is unchanged"
}

func quote(s string) string { return "\"" + s + "\"" }

// Upgrader is a Source that can replace its process (the daemon); the
// API answers PathUpgrade with 501 for a Source that is not one.
type Upgrader interface {
	Upgrade(ctx context.Context) (UpgradeResult, error)
}

func (s *Server) upgrade(w http.ResponseWriter, r *http.Request) {
	u, ok := s.src.(Upgrader)
	if !ok {
		writeJSON(w, http.StatusNotImplemented, ErrorBody{Error: "this daemon cannot upgrade itself"})
		return
	}
	res, err := u.Upgrade(r.Context())
	var ue *UpgradeError
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, res)
	case errors.As(err, &ue):
		s.opts.Logger.Error("upgrade failed", "step", ue.Step, "err", ue.Reason)
		writeJSON(w, http.StatusConflict, ErrorBody{Error: ue.Error(), Upgrade: ue})
	default:
		s.opts.Logger.Error("upgrade failed", "err", err)
		writeJSON(w, http.StatusInternalServerError, ErrorBody{Error: err.Error()})
	}
}

// Upgrade asks the daemon to replace itself with the binary at its path.
// A failed upgrade comes back as *UpgradeError.
func (c *Client) Upgrade(ctx context.Context) (UpgradeResult, error) {
	var r UpgradeResult
	err := c.do(ctx, http.MethodPost, PathUpgrade, &r)
	return r, err
}
