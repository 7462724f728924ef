package backend

import (
	"sync"

	"github.com/lance-go/lance/lnc-io/uring"
)

// ProbeResult is what the start-up probe found.
type ProbeResult struct {
	// Kind is what KindAuto selects: KindURing when Err is nil, else
	// KindPwritev2.
	Kind Kind
	// Err says why io_uring cannot be used (it wraps
	// uring.ErrUnavailable), or is nil.
	Err error
}

// probe runs once per process: io_uring support does not change while it
// runs.
var probe = sync.OnceValue(func() ProbeResult {
	if err := uring.Available(); err != nil {
		return ProbeResult{Kind: KindPwritev2, Err: err}
	}
	return ProbeResult{Kind: KindURing}
})

// Probe reports whether the kernel offers io_uring with every operation
// the uring backend uses (set-up of a small ring, the opcode probe, one NOP
// round trip), and so which backend KindAuto picks.
func Probe() ProbeResult { return probe() }
