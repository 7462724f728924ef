//go:build linux

package numa

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// PathNode returns the NUMA node of the block device holding path (see
// BlockDeviceNode), or -1 when it is unknown. A path that does not exist
// yet is looked up through its nearest existing parent, so the data
// directory may be planned before it is created.
func PathNode(sysfs, path string) (int, error) {
	p, err := filepath.Abs(path)
	if err != nil {
		return -1, fmt.Errorf("numa: %s: %w", path, err)
	}
	var st unix.Stat_t
	for {
		err = unix.Stat(p, &st)
		if err == nil {
			break
		}
		parent := filepath.Dir(p)
		if !errors.Is(err, fs.ErrNotExist) || parent == p {
			return -1, fmt.Errorf("numa: %s: %w", path, err)
		}
		p = parent
	}
	return BlockDeviceNode(sysfs, unix.Major(st.Dev), unix.Minor(st.Dev))
}

// Pin binds the calling OS thread to cpus with sched_setaffinity. The
// caller must hold the thread with runtime.LockOSThread first, or the Go
// scheduler may move the goroutine to another, unpinned thread.
func Pin(cpus []int) error {
	if len(cpus) == 0 {
		return fmt.Errorf("numa: pin: %w", ErrNoCPUs)
	}
	var set unix.CPUSet
	set.Zero()
	for _, c := range cpus {
		if c < 0 || c >= maxCPU {
			return fmt.Errorf("numa: pin: CPU %d is outside 0-%d", c, maxCPU-1)
		}
		set.Set(c)
	}
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("numa: pin to CPUs %s: %w", FormatCPUList(cpus), err)
	}
	return nil
}

// Affinity returns the CPUs the calling OS thread may run on.
func Affinity() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("numa: read affinity: %w", err)
	}
	var cpus []int
	for c := range maxCPU {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}
