// Package numa reads the machine's NUMA layout from sysfs, finds the NUMA
// node of the client NIC and of the device holding the data directory,
// plans which CPUs the ingest and storage threads should run on, and pins
// the calling OS thread to a CPU set.
//
// Every sysfs read takes the sysfs mount point as a parameter ("/sys" on a
// real machine, DefaultSysfs) so tests can point it at a fake tree.
package numa

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// DefaultSysfs is where Linux mounts sysfs.
const DefaultSysfs = "/sys"

// maxCPU bounds CPU numbers (the size of the kernel's default cpu_set_t,
// which is what sched_setaffinity takes here).
const maxCPU = 1024

// Sentinels for errors.Is.
var (
	// ErrNoSuchNode: a configured NUMA node is not on this machine.
	ErrNoSuchNode = errors.New("no such NUMA node")
	// ErrNoCPUs: there is no CPU to pin to (empty set, memory-only node).
	ErrNoCPUs = errors.New("no CPUs to pin to")
	// ErrBadCPUList: a CPU list is not in the kernel's cpulist syntax.
	ErrBadCPUList = errors.New("malformed CPU list")
	// ErrNoDevice: a PCI address names no device.
	ErrNoDevice = errors.New("no such device")
)

// Node is one NUMA node and its CPUs (empty for a memory-only node).
type Node struct {
	ID   int
	CPUs []int
}

// Topology is the machine's NUMA nodes, in increasing ID order. It is
// empty when the kernel exposes no NUMA information.
type Topology struct {
	Nodes []Node
}

// Node returns the node with the given ID.
func (t Topology) Node(id int) (Node, bool) {
	for _, n := range t.Nodes {
		if n.ID == id {
			return n, true
		}
	}
	return Node{}, false
}

// IDs lists the node IDs.
func (t Topology) IDs() []int {
	ids := make([]int, len(t.Nodes))
	for i, n := range t.Nodes {
		ids[i] = n.ID
	}
	return ids
}

// ReadTopology reads <sysfs>/devices/system/node/node<N>/cpulist for every
// node. A missing node directory (a kernel without NUMA support) gives an
// empty Topology and no error.
func ReadTopology(sysfs string) (Topology, error) {
	dir := filepath.Join(sysfs, "devices", "system", "node")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return Topology{}, nil
	}
	if err != nil {
		return Topology{}, fmt.Errorf("numa: read topology: %w", err)
	}
	var t Topology
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), "node")
		if !ok {
			continue
		}
		id, err := strconv.Atoi(rest)
		if err != nil || id < 0 {
			continue // "node" followed by something else is not a node
		}
		raw, err := os.ReadFile(filepath.Join(dir, e.Name(), "cpulist"))
		if err != nil {
			return Topology{}, fmt.Errorf("numa: node %d: %w", id, err)
		}
		cpus, err := ParseCPUList(string(raw))
		if err != nil {
			return Topology{}, fmt.Errorf("numa: node %d: %w", id, err)
		}
		t.Nodes = append(t.Nodes, Node{ID: id, CPUs: cpus})
	}
	slices.SortFunc(t.Nodes, func(a, b Node) int { return a.ID - b.ID })
	return t, nil
}

// ParseCPUList reads the kernel's cpulist syntax: comma-separated CPU
// numbers and ranges ("0-3,8-11"), where a range may carry a stride
// "a-b:used/group" (of every group CPUs from a, take the first used). The
// result is sorted without duplicates; blank input is the empty list.
func ParseCPUList(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var cpus []int
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		rng, stride, hasStride := strings.Cut(part, ":")
		loS, hiS, isRange := strings.Cut(rng, "-")
		lo, err := cpuNumber(loS)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %w", ErrBadCPUList, s, err)
		}
		hi := lo
		if isRange {
			if hi, err = cpuNumber(hiS); err != nil {
				return nil, fmt.Errorf("%w: %q: %w", ErrBadCPUList, s, err)
			}
			if hi < lo {
				return nil, fmt.Errorf("%w: %q: range %d-%d runs backwards", ErrBadCPUList, s, lo, hi)
			}
		}
		used, group := 1, 1
		if hasStride {
			if !isRange {
				return nil, fmt.Errorf("%w: %q: a stride needs a range", ErrBadCPUList, s)
			}
			u, g, ok := strings.Cut(stride, "/")
			used, err = strconv.Atoi(u)
			if !ok || err != nil || used < 1 {
				return nil, fmt.Errorf("%w: %q: bad stride %q", ErrBadCPUList, s, stride)
			}
			if group, err = strconv.Atoi(g); err != nil || group < used {
				return nil, fmt.Errorf("%w: %q: bad stride %q", ErrBadCPUList, s, stride)
			}
		}
		for base := lo; base <= hi; base += group {
			for c := base; c < base+used && c <= hi; c++ {
				cpus = append(cpus, c)
			}
		}
	}
	slices.Sort(cpus)
	return slices.Compact(cpus), nil
}

func cpuNumber(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a CPU number", s)
	}
	if n >= maxCPU {
		return 0, fmt.Errorf("CPU %d is beyond %d", n, maxCPU-1)
	}
	return n, nil
}

// FormatCPUList writes CPUs in cpulist syntax ("0-3,8-11").
func FormatCPUList(cpus []int) string {
	c := slices.Clone(cpus)
	slices.Sort(c)
	c = slices.Compact(c)
	var b strings.Builder
	for i := 0; i < len(c); {
		j := i
		for j+1 < len(c) && c[j+1] == c[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(c[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(c[j]))
		}
		i = j + 1
	}
	return b.String()
}

// readNodeFile reads a numa_node attribute. ok is false when the file does
// not exist, including when a directory on its path is a plain file (a
// virtio device's "device" is its device ID, not a link).
func readNodeFile(path string) (node int, ok bool, err error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return -1, false, nil
	}
	if err != nil {
		return -1, false, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || n < -1 {
		return -1, false, fmt.Errorf("%s: %q is not a node number", path, strings.TrimSpace(string(raw)))
	}
	return n, true, nil
}

// PCIDeviceNode returns the NUMA node of a PCI device from
// <sysfs>/bus/pci/devices/<addr>/numa_node; -1 means the device has no
// NUMA affinity. A device that does not exist is an error wrapping
// ErrNoDevice.
func PCIDeviceNode(sysfs, addr string) (int, error) {
	if addr == "" || strings.ContainsAny(addr, `/\`) || addr == "." || addr == ".." {
		return -1, fmt.Errorf("numa: %q is not a PCI address: %w", addr, ErrNoDevice)
	}
	dir := filepath.Join(sysfs, "bus", "pci", "devices", addr)
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return -1, fmt.Errorf("numa: PCI device %s: %w", addr, ErrNoDevice)
		}
		return -1, fmt.Errorf("numa: PCI device %s: %w", addr, err)
	}
	n, ok, err := readNodeFile(filepath.Join(dir, "numa_node"))
	if err != nil {
		return -1, fmt.Errorf("numa: PCI device %s: %w", addr, err)
	}
	if !ok {
		return -1, nil
	}
	return n, nil
}

// BlockDeviceNode returns the NUMA node of the block device major:minor
// (a disk or a partition): it resolves <sysfs>/dev/block/<major>:<minor>
// and walks up the device tree to the first numa_node attribute, which is
// normally the PCI function of the controller. A device-mapper or md
// device has no parent of its own; its node is that of the devices under
// it (slaves/) when they all agree. -1 means unknown: no such block device
// (tmpfs, overlay), a virtual device, or a device without affinity.
func BlockDeviceNode(sysfs string, major, minor uint32) (int, error) {
	root, err := filepath.EvalSymlinks(sysfs)
	if err != nil {
		return -1, fmt.Errorf("numa: sysfs: %w", err)
	}
	link := filepath.Join(root, "dev", "block", fmt.Sprintf("%d:%d", major, minor))
	dir, err := filepath.EvalSymlinks(link)
	if errors.Is(err, fs.ErrNotExist) {
		return -1, nil
	}
	if err != nil {
		return -1, fmt.Errorf("numa: block device %d:%d: %w", major, minor, err)
	}
	n, err := deviceDirNode(filepath.Join(root, "devices"), dir, 0)
	if err != nil {
		return -1, fmt.Errorf("numa: block device %d:%d: %w", major, minor, err)
	}
	return n, nil
}

// maxSlaveDepth bounds the descent through stacked virtual block devices.
const maxSlaveDepth = 8

func deviceDirNode(devices, dir string, depth int) (int, error) {
	for d := dir; isUnder(devices, d); d = filepath.Dir(d) {
		for _, attr := range []string{"numa_node", filepath.Join("device", "numa_node")} {
			n, ok, err := readNodeFile(filepath.Join(d, attr))
			if err != nil {
				return -1, err
			}
			if ok {
				return n, nil
			}
		}
	}
	if depth >= maxSlaveDepth {
		return -1, nil
	}
	entries, err := os.ReadDir(filepath.Join(dir, "slaves"))
	if err != nil || len(entries) == 0 {
		return -1, nil
	}
	node := -2
	for _, e := range entries {
		sub, err := filepath.EvalSymlinks(filepath.Join(dir, "slaves", e.Name()))
		if err != nil {
			return -1, nil
		}
		n, err := deviceDirNode(devices, sub, depth+1)
		if err != nil {
			return -1, err
		}
		if n < 0 || (node != -2 && n != node) {
			return -1, nil // unknown, or spread over several nodes
		}
		node = n
	}
	return node, nil
}

// isUnder says whether d is strictly inside dir.
func isUnder(dir, d string) bool {
	rel, err := filepath.Rel(dir, d)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
