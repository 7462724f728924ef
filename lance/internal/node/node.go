// Package node assembles a lance node from its configuration: storage
// backend, topic registry (with recovery), client listener, HTTP health
// and metrics, retention, and the drain on shutdown.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lance-go/lance/lance/internal/config"
	"github.com/lance-go/lance/lance/internal/numa"
	"github.com/lance-go/lance/lance/internal/server"
	"github.com/lance-go/lance/lance/internal/topics"
	"github.com/lance-go/lance/lnc-io/backend"
	"github.com/lance-go/lance/lnc-io/topiclog"
	"github.com/lance-go/lance/lnc-io/vfs"
)

// ErrDrainTimeout is returned by Run when the drain did not finish within
// the grace period.
var ErrDrainTimeout = errors.New("node: drain did not finish within the grace period")

// Node is a running lance node.
type Node struct {
	cfg     config.Config
	log     *slog.Logger
	lock    *os.File
	be      backend.Backend
	reg     *topics.Registry
	srv     *server.Server
	health  server.Health
	ln      net.Listener
	httpLn  net.Listener
	httpSrv *http.Server
	cancel  context.CancelFunc
	served  chan error
}

// Start brings a node up: it returns once the node accepts clients, or
// with the error that stopped it.
func Start(cfg config.Config, log *slog.Logger) (_ *Node, err error) {
	// n is not the named result: "return nil, err" must not hide it from
	// the clean-up below.
	n := &Node{cfg: cfg, log: log, served: make(chan error, 1)}
	defer func() {
		if err != nil {
			n.closeAll()
		}
	}()
	switch cfg.Replication.Mode {
	case config.ModeL1, "":
		if len(cfg.Replication.Peers) > 0 {
			log.Warn("replication.peers is not used in l1 mode: this node replicates to no one", "peers", cfg.Replication.Peers)
		}
	default:
		return nil, fmt.Errorf("replication.mode: %q is not available in this build (only l1)", cfg.Replication.Mode)
	}
	dataDir := cfg.Node.DataDir
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("node.data_dir: %w", err)
	}
	if n.lock, err = lockDir(dataDir); err != nil {
		return nil, err
	}

	plan, storagePin, err := numaSetup(cfg, log)
	if err != nil {
		return nil, err
	}
	probe := backend.Probe()
	kind, err := backend.ParseKind(cfg.IO.Backend)
	if err != nil {
		return nil, fmt.Errorf("io.backend: %w", err)
	}
	n.be, err = backend.Open(backend.Config{
		Kind: kind, Workers: cfg.IO.Workers, RingEntries: cfg.IO.UringSQDepth, ThreadInit: storagePin,
	})
	if err != nil {
		return nil, fmt.Errorf("io.backend %s: %w", kind, err)
	}
	attrs := []any{"backend", n.be.Kind(), "configured", kind}
	if probe.Err != nil {
		attrs = append(attrs, "io_uring", probe.Err.Error())
	} else {
		attrs = append(attrs, "io_uring", "available")
	}
	log.Info("storage backend selected", attrs...)

	srvMetrics := new(metricsProxy)
	start := time.Now()
	n.reg, err = topics.Open(dataDir, topics.Options{
		FS: vfs.OS(), Backend: n.be,
		SegmentSize: int64(cfg.IO.SegmentSize), Prealloc: preallocOf(int64(cfg.IO.Prealloc)),
		Direct: cfg.IO.ODirect,
		Node:   cfg.Node.ID, BatchBytes: int64(cfg.IO.BatchSize), QueueBytes: int64(cfg.Limits.TopicQueueBytes),
		DefaultRetention: topiclog.Retention{MaxAge: cfg.Retention.MaxAge, MaxBytes: int64(cfg.Retention.MaxBytes)},
		Logger:           log, Observer: srvMetrics,
	})
	if err != nil {
		return nil, fmt.Errorf("recovery: %w", err)
	}
	log.Info("recovery done", "topics", len(n.reg.List()), "took", time.Since(start).Round(time.Millisecond))

	sec, err := newSecurity(cfg)
	if err != nil {
		return nil, err
	}
	n.srv, err = server.New(server.Options{
		NodeID: cfg.Node.ID, Registry: n.reg, Backend: n.be,
		TLS: sec.tls, Access: sec.access, Principal: sec.principal, Logger: log,
		MaxPayload:        uint32(min(cfg.Limits.MaxFrame, 1<<32-1)),
		MaxConns:          cfg.Limits.MaxConnections,
		ConnBuffer:        int64(cfg.Limits.ConnBufferBytes),
		HandshakeTimeout:  cfg.Limits.HandshakeTimeout,
		IdleTimeout:       idleOf(cfg.Limits.IdleTimeout),
		WriteTimeout:      cfg.Limits.WriteTimeout,
		MaxFetch:          int(cfg.Limits.MaxFetchBytes),
		MaxLongPoll:       cfg.Limits.MaxLongPoll,
		ConsumerRateLimit: int64(cfg.Limits.ConsumerRateLimit),
	})
	if err != nil {
		return nil, err
	}
	srvMetrics.m.Store(n.srv.Metrics)
	n.srv.Metrics.Gauge("lance_numa_pinned_ingest_cpus", func() float64 { return float64(len(plan.IngestCPUs)) })
	n.srv.Metrics.Gauge("lance_numa_pinned_storage_cpus", func() float64 { return float64(len(plan.StorageCPUs)) })

	if cfg.HTTP.Bind != "" {
		if n.httpLn, err = net.Listen("tcp", cfg.HTTP.Bind); err != nil {
			return nil, fmt.Errorf("http.bind: %w", err)
		}
		info := map[string]string{"mode": "l1", "data_dir": dataDir, "numa": numaInfo(cfg, plan)}
		n.httpSrv = &http.Server{Handler: n.srv.HTTPHandler(&n.health, info, cfg.HTTP.Pprof), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := n.httpSrv.Serve(n.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("HTTP server stopped", "err", err)
			}
		}()
		log.Info("HTTP health and metrics listening", "addr", n.httpLn.Addr().String())
	}

	if n.ln, err = net.Listen("tcp", cfg.Network.Bind); err != nil {
		return nil, fmt.Errorf("network.bind: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	go n.reg.RunRetention(ctx, cfg.Retention.CheckInterval)
	go func() { n.served <- n.srv.Serve(n.ln) }()
	n.health.Started.Store(true)
	log.Info("lance node started", "node_id", cfg.Node.ID, "listen", n.ln.Addr().String(),
		"tls", sec.tls != nil, "data_dir", dataDir, "mode", "l1")
	return n, nil
}

// Addr returns the client listener's address.
func (n *Node) Addr() net.Addr { return n.ln.Addr() }

// HTTPAddr returns the HTTP listener's address, or nil.
func (n *Node) HTTPAddr() net.Addr {
	if n.httpLn == nil {
		return nil
	}
	return n.httpLn.Addr()
}

// Wait returns when the client listener stops by itself (an error).
func (n *Node) Wait() <-chan error { return n.served }

// Shutdown drains within grace: stop accepting, finish and ack what was
// received, sync and close the logs. It returns ErrDrainTimeout when it
// had to give up on connections.
func (n *Node) Shutdown(grace time.Duration) error {
	n.health.Stopping.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	start := time.Now()
	err := n.srv.Shutdown(ctx)
	if err != nil {
		err = fmt.Errorf("%w (%v)", ErrDrainTimeout, err)
	}
	n.closeAll()
	n.log.Info("lance node stopped", "drain", time.Since(start).Round(time.Millisecond), "clean", err == nil)
	return err
}

func (n *Node) closeAll() {
	if n.cancel != nil {
		n.cancel()
	}
	if n.ln != nil {
		n.ln.Close()
	}
	if n.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		n.httpSrv.Shutdown(ctx)
		cancel()
	} else if n.httpLn != nil {
		n.httpLn.Close()
	}
	if n.reg != nil {
		if err := n.reg.Close(); err != nil {
			n.log.Error("closing topics", "err", err)
		}
		n.reg = nil
	}
	if n.be != nil {
		n.be.Close()
		n.be = nil
	}
	if n.lock != nil {
		n.lock.Close()
		n.lock = nil
	}
}

// lockDir takes an exclusive flock on dataDir/LOCK so that two nodes never
// share a data directory.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("node.data_dir: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("node.data_dir: %s is in use by another lance process", dir)
		}
		return nil, fmt.Errorf("node.data_dir: lock %s: %w", path, err)
	}
	return f, nil
}

func preallocOf(v int64) int64 {
	if v == 0 {
		return -1 // configured off
	}
	return v
}

func idleOf(d time.Duration) time.Duration {
	if d == 0 {
		return -1 // never
	}
	return d
}

// metricsProxy lets the registry report commits to the server's metrics,
// which exist only once the server does (after recovery).
type metricsProxy struct {
	m atomic.Pointer[server.Metrics]
}

func (p *metricsProxy) Committed(topic string, batches int, bytes int64, d time.Duration, err error) {
	if m := p.m.Load(); m != nil {
		m.Committed(topic, batches, bytes, d, err)
	}
}

// ParseLevel maps a log level name to slog's.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(strings.ToUpper(s)))
	return l, err
}

func numaInfo(cfg config.Config, p numa.Plan) string {
	if !cfg.NUMA.Enabled {
		return "disabled"
	}
	return p.Message
}
