//go:build linux

package uring

import (
	"errors"
	"fmt"
)

// requiredFeatures are the setup features the storage backend relies on:
// completions are never dropped, and async operations have consumed their
// arguments by the time submission returns.
const requiredFeatures = FeatNoDrop | FeatSubmitStable

// Available reports whether this process can use io_uring for the storage
// engine: it sets up a small ring, checks FeatNoDrop and FeatSubmitStable,
// probes for every operation in RequiredOps, and round-trips one NOP
// through the rings. Any failure, including io_uring_setup failing with
// ENOSYS or EPERM (kernel without io_uring, sysctl kernel.io_uring_disabled,
// a container's seccomp profile), returns an error wrapping
// ErrUnavailable. It never panics.
//
// The ring it creates lives on the calling goroutine for the duration of
// the call only, so it may be called from any goroutine.
func Available() error {
	r, err := Setup(4)
	if err != nil {
		if errors.Is(err, ErrUnavailable) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	err = check(r)
	if cerr := r.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("%w: %w", ErrUnavailable, cerr)
	}
	return err
}

func check(r *Ring) error {
	if f := r.Features(); !f.Has(requiredFeatures) {
		return fmt.Errorf("%w: kernel lacks io_uring features %v (has %v)", ErrUnavailable, requiredFeatures&^f, f)
	}
	probe, err := r.Probe()
	if err != nil {
		if errors.Is(err, ErrUnavailable) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	var missing []Op
	for _, op := range RequiredOps() {
		if !probe.Supported(op) {
			missing = append(missing, op)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: kernel lacks io_uring operations %v", ErrUnavailable, missing)
	}

	const token = 0x6c616e6365 // "lance"
	sqe := r.GetSQE()
	sqe.PrepNop()
	sqe.UserData = token
	if _, err := r.SubmitAndWait(1); err != nil {
		return fmt.Errorf("%w: NOP submission: %w", ErrUnavailable, err)
	}
	cqe, err := r.WaitCQE()
	if err != nil {
		return fmt.Errorf("%w: NOP completion: %w", ErrUnavailable, err)
	}
	r.CQESeen()
	if cqe.UserData != token || cqe.Res != 0 {
		return fmt.Errorf("%w: NOP completed as %+v", ErrUnavailable, cqe)
	}
	return nil
}
