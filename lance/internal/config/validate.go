package config

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// modeAliases are the names upstream accepted for the two modes.
var modeAliases = map[string]string{
	"l1": ModeL1, "log": ModeL1, "log-based": ModeL1, "standalone": ModeL1,
	"l3": ModeL3, "sync": ModeL3, "quorum": ModeL3, "sync-quorum": ModeL3,
}

var (
	backends    = []string{BackendAuto, BackendUring, BackendPwritev2}
	aclDefaults = []string{"deny", "allow"}
	aclOps      = []string{"produce", "consume", "admin", "describe", "*"}
	logLevels   = []string{"debug", "info", "warn", "error"}
	logFormats  = []string{"text", "json"}
	tlsVersions = []string{"1.2", "1.3"}
)

// maxSQDepth is the kernel's limit on io_uring submission queue entries.
const maxSQDepth = 32768

// pciAddr is a PCI address as sysfs names it: domain:bus:device.function.
var pciAddr = regexp.MustCompile(`^[0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$`)

// Normalize rewrites the enumerated keys to their canonical spelling:
// lower case, replication mode aliases (log, standalone, sync, quorum, ...)
// to "l1" or "l3", log level "warning" to "warn". Values it does not
// recognize are left as they are for Validate to report.
func (c *Config) Normalize() {
	canon := func(s string, allowed []string) string {
		t := strings.ToLower(strings.TrimSpace(s))
		if slices.Contains(allowed, t) {
			return t
		}
		return s
	}
	if m, ok := modeAliases[strings.ToLower(strings.TrimSpace(c.Replication.Mode))]; ok {
		c.Replication.Mode = m
	}
	c.IO.Backend = canon(c.IO.Backend, backends)
	c.ACL.Default = canon(c.ACL.Default, aclDefaults)
	if strings.EqualFold(strings.TrimSpace(c.Log.Level), "warning") {
		c.Log.Level = "warn"
	}
	c.Log.Level = canon(c.Log.Level, logLevels)
	c.Log.Format = canon(c.Log.Format, logFormats)
	c.TLS.MinVersion = canon(c.TLS.MinVersion, tlsVersions)
	for i := range c.ACL.Rules {
		for j, op := range c.ACL.Rules[i].Operations {
			c.ACL.Rules[i].Operations[j] = canon(op, aclOps)
		}
	}
	c.dropEmptyLists()
}

// Validate checks every key and the rules between keys, on a normalized
// Config. The error is a *KeyError, or several joined, each naming its key
// and wrapping ErrInvalid.
func (c Config) Validate() error {
	return joinKeyErrors(c.validate())
}

func oneOf(key, v string, allowed []string) *KeyError {
	if slices.Contains(allowed, v) {
		return nil
	}
	return invalid(key, fmt.Sprintf("%q is not one of %s", v, strings.Join(allowed, ", ")))
}

func (c Config) validate() []*KeyError {
	var errs []*KeyError
	add := func(e *KeyError) {
		if e != nil {
			errs = append(errs, e)
		}
	}
	positiveSize := func(key string, v ByteSize) {
		if v <= 0 {
			add(invalid(key, fmt.Sprintf("%s must be more than zero", v)))
		}
	}
	nonNegSize := func(key string, v ByteSize) {
		if v < 0 {
			add(invalid(key, fmt.Sprintf("%s is negative", v)))
		}
	}
	positiveDur := func(key string, v int64) {
		if v <= 0 {
			add(invalid(key, "must be longer than zero"))
		}
	}
	nonNegDur := func(key string, v int64) {
		if v < 0 {
			add(invalid(key, "is negative"))
		}
	}

	// [node]
	if strings.TrimSpace(c.Node.DataDir) == "" {
		add(invalid("node.data_dir", "must name a directory"))
	}
	nonNegDur("node.shutdown_grace", int64(c.Node.ShutdownGrace))

	// [network]
	add(checkBind("network.bind", c.Network.Bind))
	if c.Network.NICPCIAddr != "" && !pciAddr.MatchString(c.Network.NICPCIAddr) {
		add(invalid("network.nic_pci_addr", fmt.Sprintf("%q is not a PCI address like 0000:3b:00.0", c.Network.NICPCIAddr)))
	}

	// [io]
	add(oneOf("io.backend", c.IO.Backend, backends))
	if c.IO.UringSQDepth < 1 || c.IO.UringSQDepth > maxSQDepth {
		add(invalid("io.uring_sq_depth", fmt.Sprintf("%d is not between 1 and %d", c.IO.UringSQDepth, maxSQDepth)))
	}
	if c.IO.Workers < 0 {
		add(invalid("io.workers", fmt.Sprintf("%d is negative", c.IO.Workers)))
	}
	positiveSize("io.batch_size", c.IO.BatchSize)
	positiveSize("io.segment_size", c.IO.SegmentSize)
	nonNegSize("io.prealloc", c.IO.Prealloc)

	// [numa]
	for _, n := range []struct {
		key string
		v   int
	}{{"numa.nic_node", c.NUMA.NICNode}, {"numa.nvme_node", c.NUMA.NVMeNode}} {
		if n.v < -1 {
			add(invalid(n.key, fmt.Sprintf("%d is not a node number (or -1 to derive it)", n.v)))
		}
	}

	// [replication]
	if m := c.Replication.Mode; m != ModeL1 && m != ModeL3 {
		add(invalid("replication.mode", fmt.Sprintf("%q is not one of l1, l3 (or their aliases log, log-based, standalone, sync, quorum, sync-quorum)", m)))
	}
	seen := map[string]bool{}
	for _, p := range c.Replication.Peers {
		peer, ke := parsePeer(p)
		if ke != nil {
			add(ke)
			continue
		}
		if seen[peer.Addr] {
			add(invalid("replication.peers", fmt.Sprintf("%s is listed twice", peer.Addr)))
		}
		seen[peer.Addr] = true
	}
	if c.Replication.Mode == ModeL3 || c.Replication.Bind != "" {
		add(checkBind("replication.bind", c.Replication.Bind))
	}

	// [tls]
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		if c.TLS.CertFile == "" {
			add(invalid("tls.cert_file", "tls.key_file is set but tls.cert_file is not; give both or neither"))
		} else {
			add(invalid("tls.key_file", "tls.cert_file is set but tls.key_file is not; give both or neither"))
		}
	} else if c.TLS.Enabled && c.TLS.CertFile == "" {
		add(invalid("tls.cert_file", "tls.enabled needs tls.cert_file and tls.key_file"))
	}
	if c.TLS.RequireClientCert {
		if c.TLS.CAFile == "" {
			add(invalid("tls.require_client_cert", "needs tls.ca_file to check client certificates against"))
		}
		if !c.TLS.Enabled {
			add(invalid("tls.require_client_cert", "needs tls.enabled = true"))
		}
	}
	add(oneOf("tls.min_version", c.TLS.MinVersion, tlsVersions))

	// [auth]
	for i, t := range c.Auth.Tokens {
		if strings.TrimSpace(t) == "" || strings.TrimSpace(t) != t {
			add(invalid("auth.tokens", fmt.Sprintf("token %d is empty or has surrounding blanks", i+1)))
		}
	}
	if c.Auth.Enabled && len(c.Auth.Tokens) == 0 && c.Auth.TokenFile == "" {
		add(invalid("auth.enabled", "needs at least one token in auth.tokens or an auth.token_file"))
	}
	if c.Auth.WriteOnly && !c.Auth.Enabled {
		add(invalid("auth.write_only", "needs auth.enabled = true"))
	}

	// [acl]
	add(oneOf("acl.default", c.ACL.Default, aclDefaults))
	for i, r := range c.ACL.Rules {
		for _, msg := range checkRule(r) {
			add(invalid("acl.rules", fmt.Sprintf("rule %d: %s", i+1, msg)))
		}
	}

	// [limits]
	l := c.Limits
	positiveSize("limits.max_frame", l.MaxFrame)
	if l.MaxConnections <= 0 {
		add(invalid("limits.max_connections", fmt.Sprintf("%d must be more than zero", l.MaxConnections)))
	}
	positiveSize("limits.conn_buffer_bytes", l.ConnBufferBytes)
	positiveSize("limits.topic_queue_bytes", l.TopicQueueBytes)
	if l.MaxFrame > 0 && l.ConnBufferBytes > 0 && l.ConnBufferBytes < l.MaxFrame {
		add(invalid("limits.conn_buffer_bytes", fmt.Sprintf("%s is smaller than limits.max_frame (%s), so a largest frame could never be taken in", l.ConnBufferBytes, l.MaxFrame)))
	}
	if l.MaxFrame > 0 && l.TopicQueueBytes > 0 && l.TopicQueueBytes < l.MaxFrame {
		add(invalid("limits.topic_queue_bytes", fmt.Sprintf("%s is smaller than limits.max_frame (%s), so a largest frame could never be queued", l.TopicQueueBytes, l.MaxFrame)))
	}
	positiveDur("limits.handshake_timeout", int64(l.HandshakeTimeout))
	nonNegDur("limits.idle_timeout", int64(l.IdleTimeout))
	positiveDur("limits.write_timeout", int64(l.WriteTimeout))
	positiveSize("limits.max_fetch_bytes", l.MaxFetchBytes)
	nonNegDur("limits.max_long_poll", int64(l.MaxLongPoll))
	nonNegSize("limits.consumer_rate_limit", l.ConsumerRateLimit)

	// [retention]
	nonNegDur("retention.max_age", int64(c.Retention.MaxAge))
	nonNegSize("retention.max_bytes", c.Retention.MaxBytes)
	positiveDur("retention.check_interval", int64(c.Retention.CheckInterval))

	// [http]
	if c.HTTP.Bind != "" {
		add(checkBind("http.bind", c.HTTP.Bind))
	}

	// [log]
	add(oneOf("log.level", c.Log.Level, logLevels))
	add(oneOf("log.format", c.Log.Format, logFormats))

	// Listeners must not collide.
	if len(errs) == 0 {
		binds := []struct{ key, addr string }{{"network.bind", c.Network.Bind}, {"http.bind", c.HTTP.Bind}}
		if c.Replication.Mode == ModeL3 {
			binds = append(binds, struct{ key, addr string }{"replication.bind", c.Replication.Bind})
		}
		for i := range binds {
			for j := i + 1; j < len(binds); j++ {
				if bindsOverlap(binds[i].addr, binds[j].addr) {
					add(invalid(binds[j].key, fmt.Sprintf("%s uses the same port as %s (%s)", binds[j].addr, binds[i].key, binds[i].addr)))
				}
			}
		}
	}
	return errs
}

// checkBind accepts a listener's host:port with a numeric port; an empty
// host means all interfaces and port 0 any free port.
func checkBind(key, addr string) *KeyError {
	if _, _, err := splitAddr(addr, false, true); err != nil {
		return invalidCause(key, err.Error(), err)
	}
	return nil
}

// splitAddr parses host:port. Port 0 is allowed when zeroPort (a listener
// on any free port). Its errors carry no sentinel; callers wrap them.
func splitAddr(addr string, needHost, zeroPort bool) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not host:port", addr)
	}
	if needHost && host == "" {
		return "", 0, fmt.Errorf("%q has no host", addr)
	}
	if strings.ContainsAny(host, " \t/@") {
		return "", 0, fmt.Errorf("%q has a malformed host", addr)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || (n == 0 && !zeroPort) {
		return "", 0, fmt.Errorf("%q has no valid port (1-65535)", addr)
	}
	return host, int(n), nil
}

// bindsOverlap says whether two listener addresses would fight over a
// port: same port and the same host or a wildcard on either side. Port 0
// (any free port) never collides.
func bindsOverlap(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	ha, pa, errA := splitAddr(a, false, true)
	hb, pb, errB := splitAddr(b, false, true)
	if errA != nil || errB != nil || pa == 0 || pa != pb {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || wild(ha) || wild(hb)
}

// Peer is one entry of replication.peers.
type Peer struct {
	// ID is the explicit node id of an "id@host:port" entry.
	ID uint16
	// HasID says the entry gave an id.
	HasID bool
	// Addr is the host:port part.
	Addr string
}

// ParsePeer reads "host:port" or "id@host:port". Its error is a *KeyError
// for replication.peers, wrapping ErrInvalid.
func ParsePeer(s string) (Peer, error) {
	p, ke := parsePeer(s)
	if ke != nil {
		return Peer{}, ke
	}
	return p, nil
}

func parsePeer(s string) (Peer, *KeyError) {
	var p Peer
	addr := s
	if id, rest, ok := strings.Cut(s, "@"); ok {
		n, err := strconv.ParseUint(id, 10, 16)
		if err != nil {
			return Peer{}, invalidCause("replication.peers", fmt.Sprintf("peer %q: %q is not a node id (0-65535)", s, id), err)
		}
		p.ID, p.HasID, addr = uint16(n), true, rest
	}
	if _, _, err := splitAddr(addr, true, false); err != nil {
		return Peer{}, invalidCause("replication.peers", fmt.Sprintf("peer %q: %s", s, err), err)
	}
	p.Addr = addr
	return p, nil
}

// checkRule lists what is wrong with one ACL rule.
func checkRule(r ACLRule) []string {
	var msgs []string
	switch p := r.Principal; {
	case p == "*", p == "anonymous":
	case strings.HasPrefix(p, "CN=") && len(p) > len("CN="):
	case strings.HasPrefix(p, "token:") && len(p) > len("token:"):
	default:
		msgs = append(msgs, fmt.Sprintf("principal %q is not \"CN=<name>\", \"token:<name>\", \"anonymous\" or \"*\"", p))
	}
	if len(r.Topics) == 0 {
		msgs = append(msgs, "topics is empty")
	}
	for _, t := range r.Topics {
		if t == "" || strings.Contains(strings.TrimSuffix(t, "*"), "*") {
			msgs = append(msgs, fmt.Sprintf("topic pattern %q is not a name, a prefix ending in *, or *", t))
		}
	}
	if len(r.Operations) == 0 {
		msgs = append(msgs, "operations is empty")
	}
	for _, op := range r.Operations {
		if !slices.Contains(aclOps, op) {
			msgs = append(msgs, fmt.Sprintf("operation %q is not one of %s", op, strings.Join(aclOps, ", ")))
		}
	}
	return msgs
}
