//go:build !linux

package uring

import (
	"fmt"
	"runtime"
)

// Available reports whether io_uring can be used. io_uring exists only on
// Linux, so on this system it always returns an error wrapping
// ErrUnavailable.
func Available() error {
	return fmt.Errorf("%w: io_uring is Linux-only (GOOS=%s)", ErrUnavailable, runtime.GOOS)
}
