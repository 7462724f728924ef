//go:build !linux

package numa

import (
	"errors"
	"fmt"
)

// PathNode is Linux-only; elsewhere the node is unknown.
func PathNode(sysfs, path string) (int, error) {
	return -1, fmt.Errorf("numa: %s: %w", path, errors.ErrUnsupported)
}

// Pin is Linux-only.
func Pin(cpus []int) error {
	return fmt.Errorf("numa: pin: %w", errors.ErrUnsupported)
}

// Affinity is Linux-only.
func Affinity() ([]int, error) {
	return nil, fmt.Errorf("numa: affinity: %w", errors.ErrUnsupported)
}
