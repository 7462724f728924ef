// Package config holds the lance server's configuration: its defaults, the
// lance.toml file, LANCE_* environment variables and command-line flags, in
// that order of increasing precedence (flag > env > file > default).
//
// Every key has a flag and an environment variable; unknown keys and bad
// values are errors that name the key. The section names follow the seed
// README's example file ([node], [network], [io], [numa], [replication])
// plus the sections the server's features need.
package config

import "time"

// Config is the whole server configuration. The toml tags are the keys of
// lance.toml; Flag and Env names are derived from them (see Keys). Sizes
// are ByteSize, durations time.Duration; both take strings with units.
type Config struct {
	Node        Node        `toml:"node"`
	Network     Network     `toml:"network"`
	IO          IO          `toml:"io"`
	NUMA        NUMA        `toml:"numa"`
	Replication Replication `toml:"replication"`
	TLS         TLS         `toml:"tls"`
	Auth        Auth        `toml:"auth"`
	ACL         ACL         `toml:"acl"`
	Limits      Limits      `toml:"limits"`
	Retention   Retention   `toml:"retention"`
	HTTP        HTTP        `toml:"http"`
	Log         Log         `toml:"log"`
}

// Node identifies the node and where it keeps its data.
type Node struct {
	ID      uint16 `toml:"id"`       // default 0
	DataDir string `toml:"data_dir"` // default "./data"
	// ShutdownGrace bounds the drain on SIGTERM/SIGINT (default 25s).
	ShutdownGrace time.Duration `toml:"shutdown_grace"`
}

// Network is the client-facing listener.
type Network struct {
	Bind string `toml:"bind"` // default "0.0.0.0:1992"
	// NICPCIAddr is the PCI address of the client NIC (for example
	// "0000:3b:00.0"); with [numa] enabled its NUMA node is read from
	// /sys/bus/pci/devices/<addr>/numa_node when nic_node is not set.
	NICPCIAddr string `toml:"nic_pci_addr"`
}

// IO configures the storage engine.
type IO struct {
	Backend      string `toml:"backend"`        // auto (default), uring or pwritev2
	UringSQDepth uint32 `toml:"uring_sq_depth"` // submission queue entries per ring, default 256
	Workers      int    `toml:"workers"`        // rings or pwritev2 workers; 0 = backend default
	// BatchSize is the most bytes one group commit of a topic gathers
	// before it syncs (default 4 MiB).
	BatchSize ByteSize `toml:"batch_size"`
	ODirect   bool     `toml:"o_direct"` // write segments with O_DIRECT
	// SegmentSize is the size at which a segment rolls (default 1 GiB).
	SegmentSize ByteSize `toml:"segment_size"`
	// Prealloc is how far ahead segment space is reserved (default
	// 64 MiB; 0 turns it off, unlike topiclog.Options where 0 means its
	// default).
	Prealloc ByteSize `toml:"prealloc"`
}

// NUMA pins storage and ingest threads to one node's CPUs.
type NUMA struct {
	Enabled  bool `toml:"enabled"`
	NICNode  int  `toml:"nic_node"`  // default -1: derive from nic_pci_addr, else unknown
	NVMeNode int  `toml:"nvme_node"` // default -1: derive from the data dir's block device
}

// Replication selects L1 or L3 and the peers.
type Replication struct {
	// Mode is "l1" (default) or "l3", case-insensitive, with upstream's
	// aliases; after Normalize (which Load runs) it is ModeL1 or ModeL3.
	Mode  string   `toml:"mode"`
	Peers []string `toml:"peers"` // host:port or id@host:port
	Bind  string   `toml:"bind"`  // replication listener, default "0.0.0.0:1993"
}

// TLS secures the client port.
type TLS struct {
	Enabled  bool   `toml:"enabled"`
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
	// CAFile holds the CAs that sign client certificates; with it the
	// server asks clients for a certificate.
	CAFile string `toml:"ca_file"`
	// RequireClientCert refuses clients without a valid certificate
	// (mTLS).
	RequireClientCert bool   `toml:"require_client_cert"`
	MinVersion        string `toml:"min_version"` // "1.2" (default) or "1.3"
}

// Auth is the token command (0x08).
type Auth struct {
	Enabled bool `toml:"enabled"`
	// WriteOnly: only writes (ingest, topic administration) need a token;
	// reads do not. Without it every request needs one.
	WriteOnly bool     `toml:"write_only"`
	Tokens    []string `toml:"tokens"`
	TokenFile string   `toml:"token_file"` // one token per line, # comments
}

// ACL holds per-topic access rules, checked on every request when enabled.
type ACL struct {
	Enabled bool `toml:"enabled"`
	// Default is what a request matching no rule gets: "deny" (default)
	// or "allow".
	Default string    `toml:"default"`
	Rules   []ACLRule `toml:"rules"`
}

// ACLRule grants operations on topics to principals.
type ACLRule struct {
	// Principal is a certificate subject common name ("CN=..."), a token
	// name ("token:<name>"), "anonymous", or "*".
	Principal string `toml:"principal"`
	// Topics are names or patterns with a trailing "*" (prefix match);
	// "*" alone matches every topic.
	Topics []string `toml:"topics"`
	// Operations are "produce", "consume", "admin" or "*".
	Operations []string `toml:"operations"`
}

// Limits bound what one client can cost the server.
type Limits struct {
	MaxFrame          ByteSize      `toml:"max_frame"`           // largest payload accepted, default 16 MiB
	MaxConnections    int           `toml:"max_connections"`     // default 10000
	ConnBufferBytes   ByteSize      `toml:"conn_buffer_bytes"`   // in-flight ingest bytes per connection, default 64 MiB
	TopicQueueBytes   ByteSize      `toml:"topic_queue_bytes"`   // bytes waiting for one topic writer, default 256 MiB
	HandshakeTimeout  time.Duration `toml:"handshake_timeout"`   // TLS handshake and first frame, default 10s
	IdleTimeout       time.Duration `toml:"idle_timeout"`        // no frame for this long closes, default 5m (0 = never)
	WriteTimeout      time.Duration `toml:"write_timeout"`       // one reply write, default 30s
	MaxFetchBytes     ByteSize      `toml:"max_fetch_bytes"`     // cap on one fetch reply, default 16,777,156
	MaxLongPoll       time.Duration `toml:"max_long_poll"`       // cap on a long-poll fetch wait, default 30s
	ConsumerRateLimit ByteSize      `toml:"consumer_rate_limit"` // fetch bytes/s per connection, 0 = none
}

// Retention is the defaults for topics created without their own, and the
// enforcement interval.
type Retention struct {
	MaxAge        time.Duration `toml:"max_age"`        // 0 = unlimited (default)
	MaxBytes      ByteSize      `toml:"max_bytes"`      // 0 = unlimited (default)
	CheckInterval time.Duration `toml:"check_interval"` // default 60s
}

// HTTP is the health and metrics listener.
type HTTP struct {
	Bind string `toml:"bind"` // default "0.0.0.0:8080"; "" turns it off
	// Pprof serves Go's runtime profiles under /debug/pprof/ on the same
	// listener. Off by default: profiles reveal internals and cost CPU.
	Pprof bool `toml:"pprof"`
}

// Log configures log/slog output on stderr.
type Log struct {
	Level  string `toml:"level"`  // debug, info (default), warn, error
	Format string `toml:"format"` // text (default) or json
}
