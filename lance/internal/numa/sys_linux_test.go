//go:build linux

package numa

import (
	"errors"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestPathNode(t *testing.T) {
	data := t.TempDir()
	var st unix.Stat_t
	if err := unix.Stat(data, &st); err != nil {
		t.Fatal(err)
	}
	root := copyTree(t, "testdata/two-node")
	// The fake partition gets this machine's real device number of data.
	addNVMe(t, root, "0000:5e:00.0", "1", 0, devt(unix.Major(st.Dev), unix.Minor(st.Dev)), "")

	for _, p := range []string{data, filepath.Join(data, "not", "yet", "created")} {
		if got, err := PathNode(root, p); err != nil || got != 1 {
			t.Errorf("%s: %d %v, want 1", p, got, err)
		}
	}
	// A tree without that device: unknown, not an error.
	if got, err := PathNode(copyTree(t, "testdata/one-node"), data); err != nil || got != -1 {
		t.Errorf("unknown device: %d %v", got, err)
	}
	// The real sysfs answers without error.
	n, err := PathNode(DefaultSysfs, data)
	if err != nil {
		t.Fatalf("real sysfs: %v", err)
	}
	t.Logf("real node of %s: %d", data, n)
}

func TestMakePlan(t *testing.T) {
	two := copyTree(t, "testdata/two-node")
	addPCI(t, two, "0000:3b:00.0", "0")
	addPCI(t, two, "0000:af:00.0", "1")
	addPCI(t, two, "0000:00:1f.6", "-1")
	data := t.TempDir()
	var st unix.Stat_t
	if err := unix.Stat(data, &st); err != nil {
		t.Fatal(err)
	}
	addNVMe(t, two, "0000:5e:00.0", "1", 0, devt(unix.Major(st.Dev), unix.Minor(st.Dev)), "")
	node0 := []int{0, 1, 2, 3, 8, 9, 10, 11}
	node1 := []int{4, 5, 6, 7, 12, 13, 14, 15}
	all := append(slices.Clone(node0), node1...)

	for _, tc := range []struct {
		name             string
		o                Options
		ingest, storage  []int
		ingNode, stoNode int
		msg              []string
	}{
		{"disabled", Options{Sysfs: two, NICNode: 7}, nil, nil, -1, -1, []string{msgDisabled}},
		{"single node", Options{Enabled: true, Sysfs: "testdata/one-node", NICNode: 0, NVMeNode: 0, NICPCIAddr: "0000:3b:00.0"}, nil, nil, -1, -1, []string{msgSingleNode}},
		{"single node derived", Options{Enabled: true, Sysfs: "testdata/one-node", NICNode: -1, NVMeNode: -1, DataDir: data}, nil, nil, -1, -1, []string{msgSingleNode}},
		{"no numa in kernel", Options{Enabled: true, Sysfs: t.TempDir(), NICNode: 0, NVMeNode: -1}, nil, nil, -1, -1, []string{msgSingleNode}},
		{"configured", Options{Enabled: true, Sysfs: two, NICNode: 0, NVMeNode: 1, Allowed: all}, node0, node1, 0, 1,
			[]string{"2 NUMA nodes", "ingest threads on node 0, CPUs 0-3,8-11 (from numa.nic_node)", "storage threads on node 1, CPUs 4-7,12-15 (from numa.nvme_node)"}},
		{"same node", Options{Enabled: true, Sysfs: two, NICNode: 1, NVMeNode: 1, Allowed: all}, node1, node1, 1, 1, nil},
		{"derived", Options{Enabled: true, Sysfs: two, NICNode: -1, NVMeNode: -1, NICPCIAddr: "0000:af:00.0", DataDir: data, Allowed: all}, node1, node1, 1, 1,
			[]string{"from NIC 0000:af:00.0", "from device of " + data}},
		{"derived, new data dir", Options{Enabled: true, Sysfs: two, NICNode: 0, NVMeNode: -1, DataDir: filepath.Join(data, "new"), Allowed: all}, node0, node1, 0, 1, nil},
		{"nothing known", Options{Enabled: true, Sysfs: two, NICNode: -1, NVMeNode: -1, Allowed: all}, nil, nil, -1, -1,
			[]string{"ingest threads not pinned: NIC node unknown", "storage threads not pinned: data device node unknown"}},
		{"nic without node", Options{Enabled: true, Sysfs: two, NICNode: -1, NVMeNode: 0, NICPCIAddr: "0000:00:1f.6", Allowed: all}, nil, node0, -1, 0,
			[]string{"NIC 0000:00:1f.6 reports no NUMA node"}},
		{"cpuset", Options{Enabled: true, Sysfs: two, NICNode: 0, NVMeNode: 1, Allowed: []int{2, 3, 4}}, []int{2, 3}, []int{4}, 0, 1, nil},
		{"cpuset excludes a node", Options{Enabled: true, Sysfs: two, NICNode: 0, NVMeNode: 1, Allowed: []int{0, 1}}, []int{0, 1}, nil, 0, -1,
			[]string{"none of node 1's CPUs (4-7,12-15) is allowed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := MakePlan(tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(p.IngestCPUs, tc.ingest) || !slices.Equal(p.StorageCPUs, tc.storage) || p.IngestNode != tc.ingNode || p.StorageNode != tc.stoNode {
				t.Errorf("plan %+v; want ingest %d %v storage %d %v", p, tc.ingNode, tc.ingest, tc.stoNode, tc.storage)
			}
			if p.Pinned() != (len(tc.ingest)+len(tc.storage) > 0) {
				t.Errorf("Pinned() = %v", p.Pinned())
			}
			for _, m := range tc.msg {
				if !strings.Contains(p.Message, m) {
					t.Errorf("message %q lacks %q", p.Message, m)
				}
			}
		})
	}

	three := copyTree(t, "testdata/three-node")
	for _, tc := range []struct {
		name string
		o    Options
		is   error
		key  string
	}{
		{"nic node missing on single node", Options{Enabled: true, Sysfs: "testdata/one-node", NICNode: 1, NVMeNode: -1}, ErrNoSuchNode, "numa.nic_node"},
		{"nvme node missing", Options{Enabled: true, Sysfs: two, NICNode: 0, NVMeNode: 2}, ErrNoSuchNode, "numa.nvme_node"},
		{"node below -1", Options{Enabled: true, Sysfs: two, NICNode: -3, NVMeNode: -1}, ErrNoSuchNode, "numa.nic_node"},
		{"no such NIC", Options{Enabled: true, Sysfs: two, NICNode: -1, NVMeNode: -1, NICPCIAddr: "0000:99:00.0"}, ErrNoDevice, "network.nic_pci_addr"},
		{"memory-only node", Options{Enabled: true, Sysfs: three, NICNode: 0, NVMeNode: 2}, ErrNoCPUs, "numa.nvme_node"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := MakePlan(tc.o)
			if !errors.Is(err, tc.is) || !strings.HasPrefix(err.Error(), tc.key+": ") {
				t.Fatalf("got %v; want %v naming %s", err, tc.is, tc.key)
			}
		})
	}
}

func TestMakePlanThisMachine(t *testing.T) {
	p, err := MakePlan(Options{Enabled: true, NICNode: -1, NVMeNode: -1, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("plan: %+v", p)
	topo, _ := ReadTopology(DefaultSysfs)
	if len(topo.Nodes) <= 1 && (p.Message != msgSingleNode || p.Pinned()) {
		t.Errorf("single-node machine: %+v", p)
	}
}

func TestPin(t *testing.T) {
	if err := Pin(nil); !errors.Is(err, ErrNoCPUs) {
		t.Errorf("Pin(nil): %v", err)
	}
	if err := Pin([]int{maxCPU}); err == nil {
		t.Error("Pin beyond the set size accepted")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		orig, err := Affinity()
		if err != nil {
			t.Error(err)
			return
		}
		if !slices.Contains(orig, 0) {
			t.Log("CPU 0 is not available to this process")
			return
		}
		defer func() {
			if err := Pin(orig); err != nil {
				t.Errorf("restore affinity: %v", err)
			}
		}()
		if err := Pin([]int{0}); err != nil {
			t.Error(err)
			return
		}
		got, err := Affinity()
		if err != nil || !slices.Equal(got, []int{0}) {
			t.Errorf("affinity after Pin([0]) = %v, %v", got, err)
		}
	}()
	<-done
}
