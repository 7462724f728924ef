package numa

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"testing"
)

func TestParseCPUList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int
	}{
		{"", nil},
		{"\n", nil},
		{"0", []int{0}},
		{"0-3\n", []int{0, 1, 2, 3}},
		{"0-3,8-11", []int{0, 1, 2, 3, 8, 9, 10, 11}},
		{"8-11,0-3", []int{0, 1, 2, 3, 8, 9, 10, 11}},
		{"1,1,0-1", []int{0, 1}},
		{" 2 , 5 ", []int{2, 5}},
		{"0-7:2/4", []int{0, 1, 4, 5}},
		{"0-9:1/3", []int{0, 3, 6, 9}},
		{"1023", []int{1023}},
	} {
		got, err := ParseCPUList(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseCPUList(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"a", "-1", "3-1", "0-", "-", "0,,1", "1024", "0-99999", "0:1/2", "0-7:0/4", "0-7:4/2", "0-7:x", "0-3-5"} {
		if got, err := ParseCPUList(in); !errors.Is(err, ErrBadCPUList) {
			t.Errorf("ParseCPUList(%q) = %v, %v; want ErrBadCPUList", in, got, err)
		}
	}
}

func TestFormatCPUList(t *testing.T) {
	for _, tc := range []struct {
		in   []int
		want string
	}{
		{nil, ""}, {[]int{0}, "0"}, {[]int{0, 1, 2, 3, 8, 9, 10, 11}, "0-3,8-11"}, {[]int{5, 1, 3, 2}, "1-3,5"}, {[]int{4, 4}, "4"},
	} {
		if got := FormatCPUList(tc.in); got != tc.want {
			t.Errorf("FormatCPUList(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzParseCPUList(f *testing.F) {
	for _, s := range []string{"0-3,8-11", "0", "", "0-7:2/4", "1,2,3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cpus, err := ParseCPUList(s)
		if err != nil {
			return
		}
		back, err := ParseCPUList(FormatCPUList(cpus))
		if err != nil || !slices.Equal(back, cpus) {
			t.Fatalf("%q -> %v -> %q -> %v, %v", s, cpus, FormatCPUList(cpus), back, err)
		}
	})
}

func TestReadTopology(t *testing.T) {
	one, err := ReadTopology("testdata/one-node")
	if err != nil {
		t.Fatal(err)
	}
	if want := (Topology{Nodes: []Node{{ID: 0, CPUs: []int{0, 1}}}}); !reflect.DeepEqual(one, want) {
		t.Errorf("one node: %+v", one)
	}
	two, err := ReadTopology("testdata/two-node")
	if err != nil {
		t.Fatal(err)
	}
	want := Topology{Nodes: []Node{
		{ID: 0, CPUs: []int{0, 1, 2, 3, 8, 9, 10, 11}},
		{ID: 1, CPUs: []int{4, 5, 6, 7, 12, 13, 14, 15}},
	}}
	if !reflect.DeepEqual(two, want) {
		t.Errorf("two nodes: %+v", two)
	}
	if !reflect.DeepEqual(two.IDs(), []int{0, 1}) {
		t.Errorf("IDs %v", two.IDs())
	}
	if n, ok := two.Node(1); !ok || n.CPUs[0] != 4 {
		t.Errorf("Node(1) = %v %v", n, ok)
	}
	if _, ok := two.Node(2); ok {
		t.Error("Node(2) found")
	}
	three, err := ReadTopology("testdata/three-node")
	if err != nil {
		t.Fatal(err)
	}
	if len(three.Nodes) != 3 || three.Nodes[2].CPUs != nil {
		t.Errorf("memory-only node: %+v", three)
	}
	// No NUMA directory at all: empty, no error.
	none, err := ReadTopology(t.TempDir())
	if err != nil || len(none.Nodes) != 0 {
		t.Errorf("no sysfs node dir: %+v %v", none, err)
	}
	// A broken cpulist is an error.
	root := copyTree(t, "testdata/one-node")
	writeFile(t, filepath.Join(root, "devices/system/node/node0/cpulist"), "zero\n")
	if _, err := ReadTopology(root); !errors.Is(err, ErrBadCPUList) {
		t.Errorf("broken cpulist: %v", err)
	}
	// Node sorting is numeric, not lexical.
	root = copyTree(t, "testdata/two-node")
	writeFile(t, filepath.Join(root, "devices/system/node/node10/cpulist"), "16\n")
	topo, err := ReadTopology(root)
	if err != nil || !reflect.DeepEqual(topo.IDs(), []int{0, 1, 10}) {
		t.Errorf("ids %v %v", topo.IDs(), err)
	}
}

func TestReadTopologyRealSysfs(t *testing.T) {
	topo, err := ReadTopology(DefaultSysfs)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("this machine: %+v", topo)
	cpus := 0
	for _, n := range topo.Nodes {
		cpus += len(n.CPUs)
	}
	if len(topo.Nodes) > 0 && cpus == 0 {
		t.Error("no CPUs on any node")
	}
}

// copyTree copies a testdata tree into a temporary directory, where tests
// add the PCI and block device parts (their names hold colons, which
// module file names may not).
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "sys")
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// addPCI creates devices/pci0000:00/<addr> with numa_node (unless node is
// "") and the bus/pci/devices/<addr> link to it, as the kernel lays them
// out.
func addPCI(t *testing.T, root, addr, node string) string {
	t.Helper()
	dev := filepath.Join(root, "devices", "pci0000:00", addr)
	if err := os.MkdirAll(dev, 0o755); err != nil {
		t.Fatal(err)
	}
	if node != "" {
		writeFile(t, filepath.Join(dev, "numa_node"), node+"\n")
	}
	symlink(t, "../../../devices/pci0000:00/"+addr, filepath.Join(root, "bus", "pci", "devices", addr))
	return dev
}

// addNVMe creates an NVMe controller under PCI function addr with
// namespace nvme<i>n1 and its partition p1, and links dev/block/<part> to
// the partition and, unless diskDevt is "", dev/block/<disk> to the disk.
func addNVMe(t *testing.T, root, addr, node string, i int, partDevt, diskDevt string) string {
	t.Helper()
	pci := addPCI(t, root, addr, node)
	ctrl := "nvme" + strconv.Itoa(i)
	disk := filepath.Join(pci, "nvme", ctrl, ctrl+"n1")
	part := filepath.Join(disk, ctrl+"n1p1")
	writeFile(t, filepath.Join(part, "partition"), "1\n")
	rel, err := filepath.Rel(filepath.Join(root, "dev", "block"), part)
	if err != nil {
		t.Fatal(err)
	}
	symlink(t, rel, filepath.Join(root, "dev", "block", partDevt))
	if diskDevt != "" {
		relDisk, _ := filepath.Rel(filepath.Join(root, "dev", "block"), disk)
		symlink(t, relDisk, filepath.Join(root, "dev", "block", diskDevt))
	}
	return part
}

func devt(major, minor uint32) string {
	return strconv.Itoa(int(major)) + ":" + strconv.Itoa(int(minor))
}

func TestPCIDeviceNode(t *testing.T) {
	root := copyTree(t, "testdata/two-node")
	addPCI(t, root, "0000:3b:00.0", "0")
	addPCI(t, root, "0000:af:00.0", "1")
	addPCI(t, root, "0000:00:1f.6", "-1")
	addPCI(t, root, "0000:00:03.0", "")
	for addr, want := range map[string]int{"0000:3b:00.0": 0, "0000:af:00.0": 1, "0000:00:1f.6": -1, "0000:00:03.0": -1} {
		if got, err := PCIDeviceNode(root, addr); err != nil || got != want {
			t.Errorf("%s: %d %v, want %d", addr, got, err, want)
		}
	}
	for _, addr := range []string{"0000:99:00.0", "", "..", "../../devices", "a/b"} {
		if _, err := PCIDeviceNode(root, addr); !errors.Is(err, ErrNoDevice) {
			t.Errorf("%q: %v, want ErrNoDevice", addr, err)
		}
	}
	addPCI(t, root, "0000:00:04.0", "zero")
	if _, err := PCIDeviceNode(root, "0000:00:04.0"); err == nil {
		t.Error("garbage numa_node accepted")
	}
}

func TestBlockDeviceNode(t *testing.T) {
	root := copyTree(t, "testdata/two-node")
	addNVMe(t, root, "0000:5e:00.0", "1", 0, "259:1", "259:0")
	addNVMe(t, root, "0000:18:00.0", "0", 1, "260:1", "")
	addNVMe(t, root, "0000:19:00.0", "0", 2, "261:1", "")
	// A virtio disk whose "device" is an attribute file, not a link, under
	// a PCI function with a node.
	vda := filepath.Join(addPCI(t, root, "0000:00:02.0", "1"), "virtio1")
	writeFile(t, filepath.Join(vda, "device"), "0x0002\n")
	writeFile(t, filepath.Join(vda, "block/vda/dev"), "254:0\n")
	symlink(t, "../../devices/pci0000:00/0000:00:02.0/virtio1/block/vda", filepath.Join(root, "dev/block/254:0"))
	// A loop device: virtual, no node.
	writeFile(t, filepath.Join(root, "devices/virtual/block/loop0/dev"), "7:0\n")
	symlink(t, "../../devices/virtual/block/loop0", filepath.Join(root, "dev/block/7:0"))
	// dm-0 on two partitions of node 0; dm-1 spread over nodes 0 and 1.
	dm := func(name, devt string, slaves ...string) {
		dir := filepath.Join(root, "devices/virtual/block", name)
		writeFile(t, filepath.Join(dir, "dev"), devt+"\n")
		for _, s := range slaves {
			dst, err := filepath.EvalSymlinks(filepath.Join(root, "dev/block", s))
			if err != nil {
				t.Fatal(err)
			}
			rel, _ := filepath.Rel(filepath.Join(dir, "slaves"), dst)
			symlink(t, rel, filepath.Join(dir, "slaves", filepath.Base(dst)))
		}
		symlink(t, "../../devices/virtual/block/"+name, filepath.Join(root, "dev/block", devt))
	}
	dm("dm-0", "252:0", "260:1", "261:1")
	dm("dm-1", "252:1", "259:1", "260:1")
	dm("dm-2", "252:2", "252:0") // stacked on dm-0

	for _, tc := range []struct {
		major, minor uint32
		want         int
	}{
		{259, 1, 1}, {259, 0, 1}, {260, 1, 0}, {261, 1, 0}, {254, 0, 1}, {7, 0, -1}, {8, 0, -1},
		{252, 0, 0}, {252, 1, -1}, {252, 2, 0},
	} {
		got, err := BlockDeviceNode(root, tc.major, tc.minor)
		if err != nil || got != tc.want {
			t.Errorf("%d:%d = %d, %v; want %d", tc.major, tc.minor, got, err, tc.want)
		}
	}
}
