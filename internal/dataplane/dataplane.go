// Package dataplane defines what the daemon needs from a data plane: an
// idempotent reconciliation to a desired set of virtual services, and read
// access to counters and connections. The userspace proxy (package proxy)
// and the kernel IPVS (package ipvs) implement it.
package dataplane

import (
	"context"

	"github.com/vipd/vipd/internal/lvs"
)

// Dataplane runs virtual services.
//
// Apply is idempotent: calling it twice with the same services changes
// nothing the second time. Services absent from desired are removed;
// destinations absent from a service are removed without cutting their
// established connections (they drain, as in IPVS); a destination with
// weight 0 receives no new connections. Services and Conns may be called
// from any goroutine, concurrently with Apply (the API reads them).
type Dataplane interface {
	Apply(ctx context.Context, desired []lvs.Service) error
	// Services returns the running services with their counters, in a
	// stable order (the order ipvsadm would list them).
	Services() []lvs.ServiceStatus
	// Conns returns the connection table, templates included.
	Conns() []lvs.ConnEntry
	// Close stops the data plane and removes what it created.
	Close() error
}

// Check reports, without running or touching anything, why a data plane
// could not run desired as a whole: what its Apply would refuse before
// writing. The daemon calls it on the next configuration's services
// before committing a reload, so a refusal names the configuration and
// nothing runs half-applied. Each data plane package exports one.
type Check func(desired []lvs.Service) error
