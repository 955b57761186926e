package daemon

import (
	"fmt"
	"strings"

	"github.com/vipd/vipd/internal/api"
)

// step is one part of committing a configuration: do moves one
// subsystem to the next generation, undo moves it back (nil when do
// leaves nothing to undo). undo runs after a failed do too, since a do
// may fail half-way (a data plane that started some services and not
// others), so it must work from whatever do left.
type step struct {
	name string
	do   func() error
	undo func() error
}

// commit runs steps in their fixed order. When one fails, it and the
// steps already done are undone, newest first, and the answer names the
// failing step and what runs now: the previous configuration, or, when
// an undo failed too, which parts do not.
//
// Like Caddy's config reload: everything that can be checked without
// side effects was checked before (build); commit is only for what the
// system itself may refuse (a port in use, a netlink error).
func commit(steps []step) error {
	for i, s := range steps {
		err := s.do()
		if err == nil {
			continue
		}
		var undone, stuck []string
		for j := i; j >= 0; j-- {
			if steps[j].undo == nil {
				continue
			}
			if uerr := steps[j].undo(); uerr != nil {
				stuck = append(stuck, fmt.Sprintf("%s (undo failed: %v)", steps[j].name, uerr))
			} else {
				undone = append(undone, steps[j].name)
			}
		}
		running := "the previous configuration"
		if len(undone) > 0 {
			running += " (undone: " + strings.Join(undone, ", ") + ")"
		}
		if len(stuck) > 0 {
			running += ", except " + strings.Join(stuck, "; ")
		}
		return &api.CommitError{Step: s.name, Reason: err.Error(), Running: running}
	}
	return nil
}
