package config

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "lance.toml")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func envMap(m map[string]string) func(string) (string, bool) {
	return func(n string) (string, bool) { v, ok := m[n]; return v, ok }
}

func TestDefault(t *testing.T) {
	d := Default()
	if err := d.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	c, action, err := Load(nil, nil, nil)
	if err != nil || action != ActionRun {
		t.Fatalf("Load() = %v, %v", action, err)
	}
	if !reflect.DeepEqual(c, d) {
		t.Fatalf("Load() with nothing differs from Default():\n%+v\n%+v", c, d)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"data_dir", d.Node.DataDir, "./data"},
		{"network.bind", d.Network.Bind, "0.0.0.0:1992"},
		{"http.bind", d.HTTP.Bind, "0.0.0.0:8080"},
		{"replication.bind", d.Replication.Bind, "0.0.0.0:1993"},
		{"replication.mode", d.Replication.Mode, ModeL1},
		{"node.id", d.Node.ID, uint16(0)},
		{"shutdown_grace", d.Node.ShutdownGrace, 25 * time.Second},
		{"uring_sq_depth", d.IO.UringSQDepth, uint32(256)},
		{"batch_size", d.IO.BatchSize, 4 * MiB},
		{"segment_size", d.IO.SegmentSize, GiB},
		{"prealloc", d.IO.Prealloc, 64 * MiB},
		{"nic_node", d.NUMA.NICNode, -1},
		{"nvme_node", d.NUMA.NVMeNode, -1},
		{"max_frame", d.Limits.MaxFrame, 16 * MiB},
		{"max_fetch_bytes", d.Limits.MaxFetchBytes, ByteSize(16_777_156)},
		{"idle_timeout", d.Limits.IdleTimeout, 5 * time.Minute},
		{"check_interval", d.Retention.CheckInterval, time.Minute},
		{"acl.default", d.ACL.Default, "deny"},
		{"min_version", d.TLS.MinVersion, "1.2"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestSeedReadmeLoads(t *testing.T) {
	for _, via := range []string{"LoadFile", "Load"} {
		t.Run(via, func(t *testing.T) {
			var c Config
			var err error
			if via == "LoadFile" {
				c, err = LoadFile("testdata/seed-readme.toml")
			} else {
				c, _, err = Load([]string{"--config", "testdata/seed-readme.toml"}, nil, nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			want := Default()
			want.Node.ID = 1
			want.Node.DataDir = "/var/lib/lance"
			want.Network.Bind = "0.0.0.0:9000"
			want.Network.NICPCIAddr = "0000:3b:00.0"
			want.IO.UringSQDepth = 4096
			want.IO.BatchSize = 256 * KiB
			want.IO.ODirect = true
			want.NUMA = NUMA{Enabled: true, NICNode: 0, NVMeNode: 0}
			want.Replication.Mode = ModeL1
			want.Replication.Peers = []string{"lance-2:9000", "lance-3:9000"}
			if !reflect.DeepEqual(c, want) {
				t.Fatalf("got\n%+v\nwant\n%+v", c, want)
			}
		})
	}
}

func TestFullFile(t *testing.T) {
	c, err := LoadFile("testdata/full.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Replication.Mode != ModeL3 || c.IO.Backend != BackendPwritev2 || c.ACL.Default != "allow" || c.Log.Level != "warn" {
		t.Errorf("normalization: mode %q backend %q acl %q level %q", c.Replication.Mode, c.IO.Backend, c.ACL.Default, c.Log.Level)
	}
	if c.Retention.MaxBytes != 100*GiB || c.Limits.TopicQueueBytes != 128*MiB || c.Retention.MaxAge != 168*time.Hour {
		t.Errorf("sizes/durations: %v %v %v", c.Retention.MaxBytes, c.Limits.TopicQueueBytes, c.Retention.MaxAge)
	}
	if len(c.ACL.Rules) != 2 || c.ACL.Rules[1].Operations[1] != "admin" {
		t.Errorf("rules: %+v", c.ACL.Rules)
	}
	if c.HTTP.Bind != "" || c.IO.Prealloc != 0 {
		t.Errorf("explicit zero values lost: http %q prealloc %v", c.HTTP.Bind, c.IO.Prealloc)
	}
	// What Marshal writes reads back the same.
	back, err := DecodeTOML(Marshal(c), Default())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, c) {
		t.Fatalf("round trip differs:\n%+v\n%+v", back, c)
	}
}

func TestModeAliases(t *testing.T) {
	for in, want := range map[string]string{
		"l1": ModeL1, "L1": ModeL1, "log": ModeL1, "Log-Based": ModeL1, "standalone": ModeL1,
		"l3": ModeL3, "L3": ModeL3, "sync": ModeL3, "QUORUM": ModeL3, "sync-quorum": ModeL3,
	} {
		c, _, err := Load([]string{"--replication-mode", in}, nil, nil)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if c.Replication.Mode != want {
			t.Errorf("%q -> %q, want %q", in, c.Replication.Mode, want)
		}
	}
	for _, in := range []string{"L2", "l2", "", "raft", "l1 "} {
		_, _, err := Load([]string{"--replication-mode=" + in}, nil, nil)
		if in == "l1 " {
			if err != nil {
				t.Errorf("%q (blanks are trimmed): %v", in, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "replication.mode") {
			t.Errorf("%q: want an error naming replication.mode, got %v", in, err)
		}
	}
}

func TestPrecedenceRepresentative(t *testing.T) {
	file := writeTemp(t, `
[node]
data_dir = "/file"
id = 1
[network]
bind = "127.0.0.1:1000"
[io]
o_direct = true
batch_size = "1MiB"
[replication]
peers = ["f:1"]
[limits]
idle_timeout = "1m"
`)
	env := envMap(map[string]string{
		"LANCE_NODE_DATA_DIR":       "/env",
		"LANCE_NETWORK_BIND":        "127.0.0.1:2000",
		"LANCE_IO_O_DIRECT":         "false",
		"LANCE_REPLICATION_PEERS":   "e:1, e:2",
		"LANCE_LIMITS_IDLE_TIMEOUT": "2m",
	})
	c, _, err := Load([]string{"-c", file, "-l", "127.0.0.1:3000", "--data-dir=/flag", "--limits-idle-timeout", "3m"}, env, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := []any{c.Node.DataDir, c.Node.ID, c.Network.Bind, c.IO.ODirect, c.IO.BatchSize, c.Replication.Peers, c.Limits.IdleTimeout, c.Limits.WriteTimeout}
	want := []any{"/flag", uint16(1), "127.0.0.1:3000", false, MiB, []string{"e:1", "e:2"}, 3 * time.Minute, 30 * time.Second}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	// The last of several names of one key wins.
	c, _, err = Load([]string{"--listen=:1", "--network-bind=:2", "-l", ":3"}, nil, nil)
	if err != nil || c.Network.Bind != ":3" {
		t.Fatalf("last flag should win: %q %v", c.Network.Bind, err)
	}
}

func TestUpstreamFlags(t *testing.T) {
	c, _, err := Load([]string{
		"-l", "0.0.0.0:9000", "-d", "/d", "--health", "127.0.0.1:9001", "-n", "3",
		"--replication-mode", "sync", "--peers", "1@a:1993,b:1993", "--replication", "0.0.0.0:9002",
	}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Network.Bind != "0.0.0.0:9000" || c.Node.DataDir != "/d" || c.HTTP.Bind != "127.0.0.1:9001" || c.Node.ID != 3 ||
		c.Replication.Mode != ModeL3 || len(c.Replication.Peers) != 2 || c.Replication.Bind != "0.0.0.0:9002" {
		t.Fatalf("%+v", c)
	}
	for _, args := range [][]string{{"--metrics", ":9090"}, {"-m"}, {"--wal-enabled"}, {"--consumer-rate-limit=5"}} {
		_, _, err := Load(args, nil, nil)
		if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "not supported") {
			t.Errorf("%q: %v", args, err)
		}
	}
}

func TestCommandLineErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
		is   error
	}{
		{[]string{"--nope"}, "--nope", ErrUsage},
		{[]string{"--io-o-direct=maybe"}, "io.o_direct", ErrInvalid},
		{[]string{"--node-id", "70000"}, "node.id", ErrInvalid},
		{[]string{"--io-batch-size", "4MB"}, "io.batch_size", ErrInvalid},
		{[]string{"--node-shutdown-grace", "25"}, "node.shutdown_grace", ErrInvalid},
		{[]string{"--acl-rules", "[{principal = 1}]"}, "acl.rules", ErrInvalid},
		{[]string{"--acl-rules", `[{principal = "*", topic = ["x"]}]`}, "topic", ErrUnknownKey},
		{[]string{"--io-o-direct", "false"}, `unexpected argument "false"`, ErrUsage},
		{[]string{"stray"}, `"stray"`, ErrUsage},
		{[]string{"--config"}, "config", ErrUsage},
		{[]string{"--config", ""}, "file name", ErrUsage},
		{[]string{"--config", "/does/not/exist.toml"}, "exist.toml", fs.ErrNotExist},
		{[]string{"--gen-config", "x.toml", "-l", ":1"}, "no other flags", ErrUsage},
	} {
		_, _, err := Load(tc.args, nil, nil)
		if err == nil || !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %v naming %q", tc.args, err, tc.is, tc.want)
		}
	}
	// Flag value errors are also usage errors.
	_, _, err := Load([]string{"--io-o-direct=maybe"}, nil, nil)
	if !errors.Is(err, ErrUsage) {
		t.Errorf("bad flag value is not ErrUsage: %v", err)
	}
}

func TestEnvErrors(t *testing.T) {
	_, _, err := Load(nil, envMap(map[string]string{
		"LANCE_IO_URING_SQ_DEPTH": "many",
		"LANCE_LIMITS_MAX_FRAME":  "-1",
		"LANCE_IO_BACKEND":        "foo",
	}), nil)
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("want ErrInvalid, got %v", err)
	}
	for _, want := range []string{"io.uring_sq_depth", "(set by LANCE_IO_URING_SQ_DEPTH)", "limits.max_frame"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
	var ke *KeyError
	if !errors.As(err, &ke) || ke.Key == "" {
		t.Errorf("no *KeyError in %v", err)
	}
	// A value that parses but does not validate names its source.
	_, _, err = Load(nil, envMap(map[string]string{"LANCE_IO_BACKEND": "foo"}), nil)
	if err == nil || err.Error() != `io.backend: "foo" is not one of auto, uring, pwritev2 (set by LANCE_IO_BACKEND)` {
		t.Errorf("got %v", err)
	}
	// ACL rules through the environment.
	c, _, err := Load(nil, envMap(map[string]string{
		"LANCE_ACL_ENABLED": "true",
		"LANCE_ACL_RULES":   `[{principal = "CN=a", topics = ["t-*"], operations = ["Produce"]}]`,
	}), nil)
	if err != nil || len(c.ACL.Rules) != 1 || c.ACL.Rules[0].Operations[0] != "produce" {
		t.Fatalf("rules from env: %+v %v", c.ACL.Rules, err)
	}
	// Empty string values: lists become empty, strings empty, numbers fail.
	c, _, err = Load(nil, envMap(map[string]string{"LANCE_HTTP_BIND": "", "LANCE_REPLICATION_PEERS": ""}), nil)
	if err != nil || c.HTTP.Bind != "" || c.Replication.Peers != nil {
		t.Fatalf("empty env: %+v %v", c, err)
	}
	if _, _, err = Load(nil, envMap(map[string]string{"LANCE_NODE_ID": ""}), nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty LANCE_NODE_ID: %v", err)
	}
}

func TestFileErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		is        error
		want      []string
	}{
		{"unknown key", "[node]\nidd = 1\n", ErrUnknownKey, []string{`node.idd: unknown key`}},
		{"unknown section", "[nodes]\nid = 1\nx = 2\n", ErrUnknownKey, []string{"nodes: unknown key or section"}},
		{"upper case key", "[node]\nID = 1\n", ErrUnknownKey, []string{"node.ID", "keys are lower case: node.id"}},
		{"upper case section", "[NODE]\nid = 1\n", ErrUnknownKey, []string{"NODE", "sections are lower case"}},
		{"top-level key", "id = 1\n", ErrUnknownKey, []string{"id: unknown key"}},
		{"upstream file", mustRead(t, "testdata/upstream.toml"), ErrUnknownKey, []string{"node_id", "use node.id", "listen_addr", "use network.bind", "io.ring_size", "io.uring_sq_depth"}},
		{"unknown rule key", "[[acl.rules]]\nprincipal = \"*\"\ntopic = [\"x\"]\n", ErrUnknownKey, []string{"acl.rules.topic"}},
		{"bad backend", "[io]\nbackend = \"foo\"\n", ErrInvalid, []string{`io.backend: "foo" is not one of auto, uring, pwritev2`}},
		{"wrong type", "[node]\nid = \"one\"\n", ErrInvalid, []string{"node.id"}},
		{"out of range", "[node]\nid = 70000\n", ErrInvalid, []string{"node.id"}},
		{"negative uint", "[io]\nuring_sq_depth = -1\n", ErrInvalid, []string{"io.uring_sq_depth"}},
		{"integer duration", "[node]\nshutdown_grace = 25\n", ErrInvalid, []string{"node.shutdown_grace", "not a bare integer"}},
		{"bad duration", "[limits]\nidle_timeout = \"5 minutes\"\n", ErrInvalid, []string{"limits.idle_timeout"}},
		{"decimal size", "[io]\nbatch_size = \"256KB\"\n", ErrInvalid, []string{"io.batch_size", "KiB"}},
		{"negative size", "[io]\nbatch_size = -5\n", ErrInvalid, []string{"io.batch_size"}},
		{"float size", "[io]\nbatch_size = 1.5\n", ErrInvalid, []string{"io.batch_size"}},
		{"syntax", "[node\nid = 1\n", ErrInvalid, []string{"syntax error on line"}},
		{"duplicate key", "[node]\nid = 1\nid = 2\n", ErrInvalid, []string{"id"}},
		{"L2", "[replication]\nmode = \"L2\"\n", ErrInvalid, []string{`replication.mode: "L2" is not one of l1, l3`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Load([]string{"-c", writeTemp(t, tc.doc)}, nil, nil)
			if !errors.Is(err, tc.is) {
				t.Fatalf("want %v, got %v", tc.is, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q: %v", w, err)
				}
			}
		})
	}
	// An unknown section is reported once, not once per key inside it.
	_, _, err := Load([]string{"-c", writeTemp(t, "[nodes]\nid = 1\nx = 2\n")}, nil, nil)
	if n := strings.Count(err.Error(), "unknown"); n != 1 {
		t.Errorf("unknown section reported %d times: %v", n, err)
	}
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(c *Config)
		key  string // "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"empty data dir", func(c *Config) { c.Node.DataDir = " " }, "node.data_dir"},
		{"negative grace", func(c *Config) { c.Node.ShutdownGrace = -time.Second }, "node.shutdown_grace"},
		{"bind without port", func(c *Config) { c.Network.Bind = "0.0.0.0" }, "network.bind"},
		{"bind bad port", func(c *Config) { c.Network.Bind = ":http" }, "network.bind"},
		{"bind port too big", func(c *Config) { c.Network.Bind = ":70000" }, "network.bind"},
		{"bind empty host", func(c *Config) { c.Network.Bind = ":1992" }, ""},
		{"bind ipv6", func(c *Config) { c.Network.Bind = "[::1]:1992" }, ""},
		{"bind port 0", func(c *Config) { c.Network.Bind = "127.0.0.1:0"; c.HTTP.Bind = "127.0.0.1:0" }, ""},
		{"bad pci", func(c *Config) { c.Network.NICPCIAddr = "../../etc" }, "network.nic_pci_addr"},
		{"sq depth 0", func(c *Config) { c.IO.UringSQDepth = 0 }, "io.uring_sq_depth"},
		{"sq depth too big", func(c *Config) { c.IO.UringSQDepth = 65536 }, "io.uring_sq_depth"},
		{"negative workers", func(c *Config) { c.IO.Workers = -1 }, "io.workers"},
		{"zero batch", func(c *Config) { c.IO.BatchSize = 0 }, "io.batch_size"},
		{"zero segment", func(c *Config) { c.IO.SegmentSize = 0 }, "io.segment_size"},
		{"no prealloc", func(c *Config) { c.IO.Prealloc = 0 }, ""},
		{"numa node -2", func(c *Config) { c.NUMA.NVMeNode = -2 }, "numa.nvme_node"},
		{"peer no port", func(c *Config) { c.Replication.Peers = []string{"lance-2"} }, "replication.peers"},
		{"peer no host", func(c *Config) { c.Replication.Peers = []string{":1993"} }, "replication.peers"},
		{"peer port 0", func(c *Config) { c.Replication.Peers = []string{"a:0"} }, "replication.peers"},
		{"peer bad id", func(c *Config) { c.Replication.Peers = []string{"x@a:1"} }, "replication.peers"},
		{"peer id too big", func(c *Config) { c.Replication.Peers = []string{"70000@a:1"} }, "replication.peers"},
		{"peer twice", func(c *Config) { c.Replication.Peers = []string{"a:1", "2@a:1"} }, "replication.peers"},
		{"peers ok", func(c *Config) { c.Replication.Peers = []string{"1@a:1", "b.svc:2", "[fe80::1]:3"} }, ""},
		{"l3 without bind", func(c *Config) { c.Replication.Mode = ModeL3; c.Replication.Bind = "" }, "replication.bind"},
		{"l1 without bind", func(c *Config) { c.Replication.Bind = "" }, ""},
		{"tls without files", func(c *Config) { c.TLS.Enabled = true }, "tls.cert_file"},
		{"cert without key", func(c *Config) { c.TLS.CertFile = "c" }, "tls.key_file"},
		{"key without cert", func(c *Config) { c.TLS.KeyFile = "k" }, "tls.cert_file"},
		{"tls ok", func(c *Config) { c.TLS.Enabled = true; c.TLS.CertFile = "c"; c.TLS.KeyFile = "k" }, ""},
		{"mtls without ca", func(c *Config) {
			c.TLS = TLS{Enabled: true, CertFile: "c", KeyFile: "k", RequireClientCert: true, MinVersion: "1.2"}
		}, "tls.require_client_cert"},
		{"mtls without tls", func(c *Config) { c.TLS.RequireClientCert = true; c.TLS.CAFile = "ca" }, "tls.require_client_cert"},
		{"tls version", func(c *Config) { c.TLS.MinVersion = "1.1" }, "tls.min_version"},
		{"auth without tokens", func(c *Config) { c.Auth.Enabled = true }, "auth.enabled"},
		{"auth with file", func(c *Config) { c.Auth.Enabled = true; c.Auth.TokenFile = "/t" }, ""},
		{"auth with token", func(c *Config) { c.Auth.Enabled = true; c.Auth.Tokens = []string{"t"} }, ""},
		{"blank token", func(c *Config) { c.Auth.Tokens = []string{" "} }, "auth.tokens"},
		{"write_only without auth", func(c *Config) { c.Auth.WriteOnly = true }, "auth.write_only"},
		{"acl default", func(c *Config) { c.ACL.Default = "maybe" }, "acl.default"},
		{"acl op", func(c *Config) {
			c.ACL.Rules = []ACLRule{{Principal: "*", Topics: []string{"*"}, Operations: []string{"write"}}}
		}, "acl.rules"},
		{"acl no topics", func(c *Config) { c.ACL.Rules = []ACLRule{{Principal: "*", Operations: []string{"*"}}} }, "acl.rules"},
		{"acl inner star", func(c *Config) {
			c.ACL.Rules = []ACLRule{{Principal: "*", Topics: []string{"a*b"}, Operations: []string{"*"}}}
		}, "acl.rules"},
		{"acl principal", func(c *Config) {
			c.ACL.Rules = []ACLRule{{Principal: "bob", Topics: []string{"a"}, Operations: []string{"*"}}}
		}, "acl.rules"},
		{"acl ok", func(c *Config) {
			c.ACL.Rules = []ACLRule{{Principal: "token:bob", Topics: []string{"a", "b-*", "*"}, Operations: []string{"produce", "consume", "admin"}}}
		}, ""},
		{"zero frame", func(c *Config) { c.Limits.MaxFrame = 0 }, "limits.max_frame"},
		{"zero conns", func(c *Config) { c.Limits.MaxConnections = 0 }, "limits.max_connections"},
		{"conn buffer below frame", func(c *Config) { c.Limits.ConnBufferBytes = MiB }, "limits.conn_buffer_bytes"},
		{"topic queue below frame", func(c *Config) { c.Limits.TopicQueueBytes = MiB }, "limits.topic_queue_bytes"},
		{"zero handshake", func(c *Config) { c.Limits.HandshakeTimeout = 0 }, "limits.handshake_timeout"},
		{"idle never", func(c *Config) { c.Limits.IdleTimeout = 0 }, ""},
		{"zero write timeout", func(c *Config) { c.Limits.WriteTimeout = 0 }, "limits.write_timeout"},
		{"zero fetch", func(c *Config) { c.Limits.MaxFetchBytes = 0 }, "limits.max_fetch_bytes"},
		{"negative long poll", func(c *Config) { c.Limits.MaxLongPoll = -1 }, "limits.max_long_poll"},
		{"negative rate", func(c *Config) { c.Limits.ConsumerRateLimit = -1 }, "limits.consumer_rate_limit"},
		{"negative age", func(c *Config) { c.Retention.MaxAge = -1 }, "retention.max_age"},
		{"negative bytes", func(c *Config) { c.Retention.MaxBytes = -1 }, "retention.max_bytes"},
		{"zero check", func(c *Config) { c.Retention.CheckInterval = 0 }, "retention.check_interval"},
		{"http off", func(c *Config) { c.HTTP.Bind = "" }, ""},
		{"http bad", func(c *Config) { c.HTTP.Bind = "localhost" }, "http.bind"},
		{"log level", func(c *Config) { c.Log.Level = "trace" }, "log.level"},
		{"log format", func(c *Config) { c.Log.Format = "xml" }, "log.format"},
		{"http on client port", func(c *Config) { c.HTTP.Bind = "127.0.0.1:1992" }, "http.bind"},
		{"http other ip same port", func(c *Config) { c.Network.Bind = "10.0.0.1:1992"; c.HTTP.Bind = "10.0.0.2:1992" }, ""},
		{"l3 replication on http port", func(c *Config) { c.Replication.Mode = ModeL3; c.Replication.Bind = ":8080" }, "replication.bind"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mod(&c)
			err := c.Validate()
			if tc.key == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("want ErrInvalid, got %v", err)
			}
			if !strings.HasPrefix(err.Error(), tc.key+": ") {
				t.Fatalf("error does not start with %q: %v", tc.key, err)
			}
		})
	}
}

func TestValidateReportsAll(t *testing.T) {
	c := Default()
	c.Log.Level = "x"
	c.Log.Format = "y"
	c.IO.Backend = "z"
	err := c.Validate()
	for _, k := range []string{"log.level", "log.format", "io.backend"} {
		if !strings.Contains(err.Error(), k) {
			t.Errorf("%s missing from %v", k, err)
		}
	}
}

func TestParsePeer(t *testing.T) {
	p, err := ParsePeer("12@lance-2.lance.svc:1993")
	if err != nil || !p.HasID || p.ID != 12 || p.Addr != "lance-2.lance.svc:1993" {
		t.Fatalf("%+v %v", p, err)
	}
	p, err = ParsePeer("10.0.0.2:1993")
	if err != nil || p.HasID || p.Addr != "10.0.0.2:1993" {
		t.Fatalf("%+v %v", p, err)
	}
	_, err = ParsePeer("a@b:1")
	var ke *KeyError
	if !errors.Is(err, ErrInvalid) || !errors.As(err, &ke) || ke.Key != "replication.peers" {
		t.Fatalf("%v", err)
	}
}

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	c, action, err := Load([]string{"--help"}, nil, &out)
	if err != nil || action != ActionHelp || !reflect.DeepEqual(c, Default()) {
		t.Fatalf("%v %v", action, err)
	}
	for _, want := range []string{"-c, --config FILE", "--gen-config FILE", "-l, --network-bind, --listen", "(default \"0.0.0.0:1992\")", "[$LANCE_IO_O_DIRECT]", "(default 4MiB)", "(default 25s)", "acl.rules"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
	for _, arg := range []string{"-h", "-help", "--help"} {
		if _, action, err := Load([]string{arg}, nil, nil); err != nil || action != ActionHelp {
			t.Errorf("%s: %v %v", arg, action, err)
		}
	}
}

func TestGenConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "lance.toml")
	_, action, err := Load([]string{"--gen-config", path}, nil, nil)
	if err != nil || action != ActionGenConfig {
		t.Fatalf("%v %v", action, err)
	}
	c, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Fatalf("generated file loads as\n%+v\nnot\n%+v", c, Default())
	}
	data := mustRead(t, path)
	if !strings.Contains(data, "# [[acl.rules]]") {
		t.Error("no commented ACL rule example")
	}
	// The commented example is valid once uncommented.
	uncommented := strings.NewReplacer("# [[acl.rules]]", "[[acl.rules]]", "# principal", "principal", "# topics", "topics", "# operations", "operations").Replace(data)
	c2, err := DecodeTOML([]byte(uncommented), Default())
	if err != nil {
		t.Fatal(err)
	}
	c2.Normalize()
	if err := c2.Validate(); err != nil || len(c2.ACL.Rules) != 1 {
		t.Fatalf("example rule: %+v %v", c2.ACL.Rules, err)
	}
	// Never overwrites.
	_, _, err = Load([]string{"--gen-config", path}, nil, nil)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("overwrite: %v", err)
	}
	if mustRead(t, path) != data {
		t.Fatal("file changed")
	}
	// "-" is stdout.
	var out bytes.Buffer
	if _, _, err := Load([]string{"--gen-config", "-"}, nil, &out); err != nil || out.String() != data {
		t.Fatalf("stdout: %v (%d bytes)", err, out.Len())
	}
	// The environment does not leak into the generated file.
	p2 := filepath.Join(dir, "second.toml")
	if _, _, err := Load([]string{"--gen-config=" + p2}, envMap(map[string]string{"LANCE_AUTH_TOKENS": "secret"}), nil); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(mustRead(t, p2), "secret") {
		t.Fatal("environment leaked into the generated file")
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	c := Default()
	c.Node.DataDir = "C:\\data \"quoted\"\n\x01é"
	c.Replication.Peers = []string{"1@a:1", "b:2"}
	c.Auth.Tokens = []string{"t1", "t\"2"}
	c.ACL.Rules = []ACLRule{{Principal: "CN=a,O=b", Topics: []string{"x-*"}, Operations: []string{"produce"}}, {Principal: "*", Topics: []string{"*"}, Operations: []string{"*"}}}
	c.Limits.MaxFetchBytes = 12345
	c.Limits.MaxLongPoll = 1500 * time.Millisecond
	c.Retention.MaxAge = 49 * time.Hour
	back, err := DecodeTOML(Marshal(c), Default())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, c) {
		t.Fatalf("got\n%+v\nwant\n%+v", back, c)
	}
}

func TestDecodeDoesNotAliasBase(t *testing.T) {
	base := Default()
	base.Replication.Peers = []string{"a:1", "b:2", "c:3"}
	got, err := DecodeTOML([]byte("[replication]\npeers = [\"x:1\"]\n"), base)
	if err != nil {
		t.Fatal(err)
	}
	if base.Replication.Peers[0] != "a:1" || got.Replication.Peers[0] != "x:1" {
		t.Fatalf("base %v got %v", base.Replication.Peers, got.Replication.Peers)
	}
}

func TestConfigPathPrecedence(t *testing.T) {
	fromFlag := writeTemp(t, "[node]\nid = 1\n")
	fromEnv := writeTemp(t, "[node]\nid = 2\n")
	c, _, err := Load([]string{"-c", fromFlag}, envMap(map[string]string{EnvConfig: fromEnv}), nil)
	if err != nil || c.Node.ID != 1 {
		t.Fatalf("--config should beat LANCE_CONFIG: %d %v", c.Node.ID, err)
	}
	c, _, err = Load(nil, envMap(map[string]string{EnvConfig: fromEnv}), nil)
	if err != nil || c.Node.ID != 2 {
		t.Fatalf("LANCE_CONFIG: %d %v", c.Node.ID, err)
	}
}

func TestErrorNamesSource(t *testing.T) {
	p := writeTemp(t, "[io]\nbackend = \"foo\"\n")
	_, _, err := Load([]string{"-c", p}, nil, nil)
	want := `io.backend: "foo" is not one of auto, uring, pwritev2 (set by ` + p + `)`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	_, _, err = Load([]string{"--log-level=loud"}, nil, nil)
	if err == nil || !strings.HasSuffix(err.Error(), "(set by --log-level)") {
		t.Fatalf("got %v", err)
	}
}
