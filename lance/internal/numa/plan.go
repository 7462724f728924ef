package numa

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Options are the inputs of MakePlan, taken from the [numa] section and
// the keys it derives nodes from.
type Options struct {
	Enabled    bool   // numa.enabled
	NICNode    int    // numa.nic_node; -1 derives it from NICPCIAddr
	NVMeNode   int    // numa.nvme_node; -1 derives it from DataDir
	NICPCIAddr string // network.nic_pci_addr
	DataDir    string // node.data_dir
	// Sysfs is the sysfs mount point; "" means DefaultSysfs.
	Sysfs string
	// Allowed are the CPUs the process may run on (a container's cpuset,
	// taskset); planned CPU sets are cut down to them. nil reads the
	// calling thread's affinity.
	Allowed []int
}

// Plan says which CPUs the ingest threads (network side) and the storage
// threads (I/O side) are pinned to. An empty CPU list means that side is
// not pinned. Message explains the plan in one line for the startup log.
type Plan struct {
	Nodes       []Node // the machine's NUMA nodes as read
	IngestNode  int    // -1 when ingest threads are not pinned
	StorageNode int    // -1 when storage threads are not pinned
	IngestCPUs  []int
	StorageCPUs []int
	Message     string
}

// Pinned says whether the plan pins anything.
func (p Plan) Pinned() bool { return len(p.IngestCPUs) > 0 || len(p.StorageCPUs) > 0 }

// Messages of the plans that pin nothing.
const (
	msgDisabled   = "NUMA pinning disabled (numa.enabled = false)"
	msgSingleNode = "single NUMA node: nothing to pin"
)

// MakePlan reads the topology and decides where ingest and storage threads
// run: ingest on the NIC's node (numa.nic_node, else the node sysfs gives
// for network.nic_pci_addr), storage on the data device's node
// (numa.nvme_node, else the node of the block device holding
// node.data_dir). A side whose node cannot be found is left unpinned and
// the message says why. A configured node the machine does not have is
// an error naming the key and wrapping ErrNoSuchNode; a configured node
// without CPUs wraps ErrNoCPUs; a NIC PCI address with no device wraps
// ErrNoDevice. On a single-node machine the plan pins nothing.
func MakePlan(o Options) (Plan, error) {
	p := Plan{IngestNode: -1, StorageNode: -1}
	if !o.Enabled {
		p.Message = msgDisabled
		return p, nil
	}
	sysfs := o.Sysfs
	if sysfs == "" {
		sysfs = DefaultSysfs
	}
	topo, err := ReadTopology(sysfs)
	if err != nil {
		return Plan{}, err
	}
	if len(topo.Nodes) == 0 {
		// No NUMA support in the kernel: the machine is one node, 0.
		topo.Nodes = []Node{{ID: 0}}
	}
	p.Nodes = topo.Nodes

	for _, c := range []struct {
		key  string
		node int
	}{{"numa.nic_node", o.NICNode}, {"numa.nvme_node", o.NVMeNode}} {
		if c.node < -1 {
			return Plan{}, fmt.Errorf("%s: %d is not a node number: %w", c.key, c.node, ErrNoSuchNode)
		}
		if c.node >= 0 {
			if _, ok := topo.Node(c.node); !ok {
				return Plan{}, fmt.Errorf("%s: node %d: %w (this machine has %s)", c.key, c.node, ErrNoSuchNode, nodeList(topo))
			}
		}
	}
	if len(topo.Nodes) == 1 {
		p.Message = msgSingleNode
		return p, nil
	}

	allowed := o.Allowed
	if allowed == nil {
		if a, err := Affinity(); err == nil {
			allowed = a
		}
	}

	ingest := side{role: "ingest", node: o.NICNode, source: "numa.nic_node", configured: o.NICNode >= 0}
	if !ingest.configured {
		if o.NICPCIAddr == "" {
			ingest.why = "NIC node unknown (set numa.nic_node or network.nic_pci_addr)"
		} else {
			n, err := PCIDeviceNode(sysfs, o.NICPCIAddr)
			if err != nil {
				return Plan{}, fmt.Errorf("network.nic_pci_addr: %w", err)
			}
			ingest.node, ingest.source = n, "NIC "+o.NICPCIAddr
			if n < 0 {
				ingest.why = "NIC " + o.NICPCIAddr + " reports no NUMA node"
			}
		}
	}
	storage := side{role: "storage", node: o.NVMeNode, source: "numa.nvme_node", configured: o.NVMeNode >= 0}
	if !storage.configured {
		if o.DataDir == "" {
			storage.why = "data device node unknown (set numa.nvme_node)"
		} else {
			n, err := PathNode(sysfs, o.DataDir)
			storage.node, storage.source = n, "device of "+o.DataDir
			switch {
			case err != nil:
				storage.node, storage.why = -1, "data device node unknown ("+err.Error()+")"
			case n < 0:
				storage.why = "the device of " + o.DataDir + " reports no NUMA node"
			}
		}
	}

	for _, s := range []*side{&ingest, &storage} {
		if s.node < 0 {
			continue
		}
		n, ok := topo.Node(s.node)
		if !ok {
			s.why = fmt.Sprintf("%s names node %d, which is not in the topology", s.source, s.node)
			s.node = -1
			continue
		}
		if len(n.CPUs) == 0 {
			if s.configured {
				return Plan{}, fmt.Errorf("%s: node %d: %w (it is a memory-only node)", s.source, s.node, ErrNoCPUs)
			}
			s.why = fmt.Sprintf("node %d (%s) has no CPUs", s.node, s.source)
			s.node = -1
			continue
		}
		s.cpus = intersect(n.CPUs, allowed)
		if len(s.cpus) == 0 {
			s.why = fmt.Sprintf("none of node %d's CPUs (%s) is allowed to this process", s.node, FormatCPUList(n.CPUs))
			s.node = -1
		}
	}

	p.IngestNode, p.IngestCPUs = ingest.node, ingest.cpus
	p.StorageNode, p.StorageCPUs = storage.node, storage.cpus
	p.Message = fmt.Sprintf("%d NUMA nodes; %s; %s", len(topo.Nodes), ingest.describe(), storage.describe())
	return p, nil
}

type side struct {
	role       string
	node       int
	source     string
	configured bool
	cpus       []int
	why        string
}

func (s side) describe() string {
	if len(s.cpus) == 0 {
		return s.role + " threads not pinned: " + s.why
	}
	return fmt.Sprintf("%s threads on node %d, CPUs %s (from %s)", s.role, s.node, FormatCPUList(s.cpus), s.source)
}

// intersect keeps the CPUs of a that are in allowed (all of a when allowed
// is nil).
func intersect(a, allowed []int) []int {
	if allowed == nil {
		return slices.Clone(a)
	}
	var out []int
	for _, c := range a {
		if slices.Contains(allowed, c) {
			out = append(out, c)
		}
	}
	return out
}

func nodeList(t Topology) string {
	ids := make([]string, len(t.Nodes))
	for i, n := range t.Nodes {
		ids[i] = strconv.Itoa(n.ID)
	}
	if len(ids) == 1 {
		return "only node " + ids[0]
	}
	return "nodes " + strings.Join(ids, ", ")
}
