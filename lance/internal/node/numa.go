package node

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/lance-go/lance/lance/internal/config"
	"github.com/lance-go/lance/lance/internal/numa"
)

// numaSetup plans CPU pinning from [numa] and applies the ingest side to
// every thread the process has now (threads started later inherit the
// mask of the thread that starts them). It returns the hook that pins
// each storage worker thread, or nil.
func numaSetup(cfg config.Config, log *slog.Logger) (numa.Plan, func(), error) {
	if !cfg.NUMA.Enabled {
		return numa.Plan{IngestNode: -1, StorageNode: -1}, nil, nil
	}
	plan, err := numa.MakePlan(numa.Options{
		Enabled: true, NICNode: cfg.NUMA.NICNode, NVMeNode: cfg.NUMA.NVMeNode,
		NICPCIAddr: cfg.Network.NICPCIAddr, DataDir: cfg.Node.DataDir,
	})
	if err != nil {
		return plan, nil, err
	}
	log.Info("numa", "plan", plan.Message, "nodes", len(plan.Nodes),
		"ingest_cpus", numa.FormatCPUList(plan.IngestCPUs), "storage_cpus", numa.FormatCPUList(plan.StorageCPUs))
	if len(plan.IngestCPUs) > 0 {
		if err := pinProcess(plan.IngestCPUs); err != nil {
			return plan, nil, fmt.Errorf("numa: pin ingest threads: %w", err)
		}
	}
	var storage func()
	if cpus := plan.StorageCPUs; len(cpus) > 0 {
		storage = func() {
			if err := numa.Pin(cpus); err != nil {
				log.Error("numa: pinning a storage thread failed", "err", err)
			}
		}
	}
	return plan, storage, nil
}

// pinProcess sets the affinity of every thread of the process.
func pinProcess(cpus []int) error {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		// A thread may exit between the listing and the call.
		if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
			return fmt.Errorf("thread %d: %w", tid, err)
		}
	}
	return nil
}
