package e2e

// The process around the server: draining on SIGTERM (docs/server.md
// "Shutdown"), and how it is configured (docs/configuration.md):
// --gen-config, --config, LANCE_NETWORK_BIND, and refusing bad values and
// bad security files at start-up with a message that names the key.

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lance-go/lance/lance/internal/security/testpki"
)

// sdWaitFor polls cond until it holds; it fails the test if it does not
// within 30 s (a bound on a hang, not a timing expectation).
func sdWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s after 30 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sdIngestAll acks every batch in order and records them in l.
func sdIngestAll(t *testing.T, c *client, l *topicLog, bs ...batch) {
	t.Helper()
	for _, b := range bs {
		ingest(t, c, b)
		l.add(b)
	}
}

// sdCheckLog reads a topic after a restart and compares it with what was
// acked before.
func sdCheckLog(t *testing.T, c *client, name string, topic uint32, l *topicLog) {
	t.Helper()
	if end := logEnd(t, c, topic); end != l.end() {
		t.Fatalf("%s after the restart: log end %d, want %d", name, end, l.end())
	}
	if l.end() == 0 {
		return
	}
	if got := readLog(t, c, topic, 0, l.end(), 1<<20); !bytes.Equal(got, l.bytes) {
		t.Fatalf("%s after the restart: %s", name, firstDiff(got, l.bytes))
	}
	expectBatches(t, c, topic, l, 1)
}

// TestShutdownDuringLongPoll: SIGTERM while a FetchBatches waits with a
// max_wait longer than the grace period. Draining stops the wait, so the
// poller gets its (empty) answer and the ack of the batch it sent after
// the poll, the connection closes, and the drain ends within the grace:
// exit status 0. A restart has every acked batch.
func TestShutdownDuringLongPoll(t *testing.T) {
	t.Parallel()
	s := startServer(t, "--node-shutdown-grace", "1s")
	c := s.dial(ieee)
	polled := createTopic(t, c, "polled").ID
	other := createTopic(t, c, "behind-the-poll").ID
	var polledLog, otherLog topicLog
	for i := range 3 {
		sdIngestAll(t, c, &polledLog, batch{Topic: polled, ID: uint64(i + 1), Records: 2, Data: bytes.Repeat([]byte{'p', byte(i)}, 500)})
	}

	poller := s.dial(ieee)
	end := polledLog.end()
	behind := batch{Topic: other, ID: 42, Records: 1, Data: []byte("sent after the long poll")}
	poller.send(
		controlFrame(ieee, codeFetchBatches, fetchBatchesPayload(polled, end, 1<<20, 20_000)),
		ingestFrame(ieee, behind),
	)
	otherLog.add(behind)
	// The batch behind the poll becoming readable shows that the server
	// read both requests; its ack waits behind the poll's reply.
	sdWaitFor(t, "the batch sent behind the long poll", func() bool { return logEnd(t, c, other) == otherLog.end() })

	code := s.stop()
	p, ok := expectControl(t, "FetchBatches cut short by the drain", poller.recv(), codeBatchesResponse)
	if ok {
		r, err := decodeBatchesReply(p)
		if err != nil || r.Start != end || r.Next != end || r.Batches != 0 || r.N != 0 {
			t.Errorf("FetchBatches cut short: %+v (%v), want an empty reply at offset %d", r, err, end)
		}
	}
	if _, err := checkAck(poller.recv(), behind); err != nil {
		t.Errorf("the batch behind the poll: %v", err)
	}
	poller.expectClosed("the poller after the drain")
	if code != 0 {
		t.Errorf("exit status %d after a drain that finished, want 0", code)
	}

	s.restart()
	r := s.dial(ieee)
	sdCheckLog(t, r, "polled", polled, &polledLog)
	sdCheckLog(t, r, "behind-the-poll", other, &otherLog)
}

// TestShutdownStuckWriter: SIGTERM while a client does not read its
// replies, so the connection's writer is stuck on a full socket. The
// drain cannot finish; after the grace period the connection is cut and
// the status is 1. Everything acked before, on any connection, is there
// after a restart.
func TestShutdownStuckWriter(t *testing.T) {
	t.Parallel()
	s := startServer(t, "--node-shutdown-grace", "1s")
	c := s.dial(ieee)
	topic := createTopic(t, c, "stuck").ID
	rng := newRand(seed(t))
	var l topicLog
	sdIngestAll(t, c,
		&l,
		batch{Topic: topic, ID: 1, Records: 10, Data: randomBytes(rng, 1<<20)},
		batch{Topic: topic, ID: 2, Records: 10, Data: randomBytes(rng, 1<<20)},
	)

	// 256 fetches of 1 MiB each: far more than the socket buffers of
	// both sides hold, and the client never reads.
	stuck := s.dial(ieee)
	var reqs [][]byte
	for range 256 {
		reqs = append(reqs, controlFrame(ieee, codeFetch, fetchPayload(topic, 0, 1<<20)))
	}
	stuck.send(reqs...)
	sdWaitFor(t, "the first fetch of the stuck client", func() bool {
		_, body, err := s.get("/metrics")
		v, ok := metricValue(body, "lance_reads_total")
		return err == nil && ok && v >= 1
	})
	// One more acked batch from a well-behaved client just before the
	// signal.
	sdIngestAll(t, c, &l, batch{Topic: topic, ID: 3, Records: 1, Data: []byte("last before SIGTERM")})

	code := s.stop()
	if code != 1 {
		t.Errorf("exit status %d after a drain that had to give up on a client, want 1", code)
	}

	s.restart()
	sdCheckLog(t, s.dial(ieee), "stuck", topic, &l)
}

// sdRun runs lance to completion with extra environment variables and
// returns its exit status and output. A lance that is still running
// after 30 s is killed and fails the test: every use expects it to stop
// by itself.
func sdRun(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, lanceBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("lance %q was still running after 30 s:\n%s", args, out.String())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running lance %q: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), out.String()
}

// TestGenConfig: --gen-config writes a file that a server then runs
// with, with --listen and --data-dir given as flags on top of it; the
// file is never overwritten.
func TestGenConfig(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "lance.toml")
	code, out := sdRun(t, nil, "--gen-config", path)
	if code != 0 {
		t.Fatalf("--gen-config exited %d:\n%s", code, out)
	}
	gen, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, section := range []string{"[node]", "[network]", "[tls]", "[auth]", "[acl]", "[limits]", "[http]"} {
		if !bytes.Contains(gen, []byte("\n"+section+"\n")) && !bytes.HasPrefix(gen, []byte(section+"\n")) {
			t.Errorf("the generated file has no %s section", section)
		}
	}
	code, out = sdRun(t, nil, "--gen-config", path)
	if code != 2 || !strings.Contains(out, "exists") {
		t.Errorf("a second --gen-config onto the file: exit %d, output %q; want 2 and a message that it exists", code, out)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, gen) {
		t.Error("a second --gen-config changed the existing file")
	}

	s := startServer(t, "--config", path)
	c := s.dial(ieee)
	id := createTopic(t, c, "from-generated-config").ID
	data := []byte("served with the generated configuration")
	ingest(t, c, batch{Topic: id, ID: 1, Records: 1, Data: data})
	if r := fetch(t, c, id, 0, 1024); !bytes.Equal(r.Data, data) {
		t.Errorf("fetch: %q, want %q", r.Data, data)
	}
}

// sdStart starts lance with extra environment variables and exactly the
// given arguments, on data directory dir, and waits until its HTTP
// listener httpAddr reports ready. addr is where the test expects the
// client listener.
func sdStart(t *testing.T, env []string, addr, httpAddr string, args ...string) *server {
	t.Helper()
	s := &server{t: t, dir: t.TempDir(), addr: addr, httpAddr: httpAddr, logs: new(logBuffer), gen: 1}
	t.Cleanup(s.cleanup)
	cmd := exec.Command(lanceBin, append(args, "--data-dir", s.dir)...)
	cmd.Env = append(os.Environ(), env...)
	w := &prefixWriter{w: s.logs, prefix: "[lance #1] "}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	done := s.done
	go func() {
		cmd.Wait()
		close(done)
	}()
	sdWaitFor(t, "lance to be ready", func() bool {
		if !s.running() {
			t.Fatalf("lance exited before it was ready (%v)", cmd.ProcessState)
		}
		code, _, err := s.get("/health/ready")
		return err == nil && code == http.StatusOK
	})
	return s
}

// TestNetworkBindFromEnvironment: LANCE_NETWORK_BIND moves the client
// listener, and a flag still beats it.
func TestNetworkBindFromEnvironment(t *testing.T) {
	t.Parallel()
	envAddr, envHTTP := freeAddr(t), freeAddr(t)
	s := sdStart(t, []string{"LANCE_NETWORK_BIND=" + envAddr}, envAddr, envHTTP, "--health", envHTTP)
	c := s.dial(ieee)
	expectControl(t, "GetClusterStatus on the address from LANCE_NETWORK_BIND", c.control(codeGetClusterStatus, nil), codeClusterStatusResponse)
	createTopic(t, c, "env-bound")

	ignored, flagAddr, httpAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	s2 := sdStart(t, []string{"LANCE_NETWORK_BIND=" + ignored}, flagAddr, httpAddr, "--health", httpAddr, "--listen", flagAddr)
	c2 := s2.dial(ieee)
	expectControl(t, "GetClusterStatus on the --listen address", c2.control(codeGetClusterStatus, nil), codeClusterStatusResponse)
	if nc, err := net.DialTimeout("tcp", ignored, 5*time.Second); err == nil {
		nc.Close()
		t.Errorf("lance also listens on %s from LANCE_NETWORK_BIND although --listen %s was given", ignored, flagAddr)
	}
}

// TestBadValuesExit2: a bad value from a flag, an environment variable or
// the file stops lance before it serves, with status 2 and a message that
// names the key.
func TestBadValuesExit2(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	badFile := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(badFile, []byte("[limits]\nmax_frame = \"16MB\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		env  []string
		args []string
		key  string
	}{
		{nil, []string{"--limits-max-frame", "10MB"}, "limits.max_frame"},
		{nil, []string{"--limits-conn-buffer-bytes", "1KiB"}, "limits.conn_buffer_bytes"},
		{nil, []string{"--limits-max-frame", "64KiB", "--limits-topic-queue-bytes", "32KiB"}, "limits.topic_queue_bytes"},
		{nil, []string{"--node-shutdown-grace", "25"}, "node.shutdown_grace"},
		{nil, []string{"--node-id", "70000"}, "node.id"},
		{nil, []string{"--tls-min-version", "1.1"}, "tls.min_version"},
		{nil, []string{"--tls-require-client-cert"}, "tls.require_client_cert"},
		{nil, []string{"--auth-enabled"}, "auth.enabled"},
		{nil, []string{"--acl-default", "maybe"}, "acl.default"},
		{nil, []string{"--acl-rules", `[{principal = "cn=alice", topics = ["a"], operations = ["produce"]}]`}, "acl.rules"},
		{[]string{"LANCE_LIMITS_IDLE_TIMEOUT=-1s"}, nil, "limits.idle_timeout"},
		{nil, []string{"--config", badFile}, "limits.max_frame"},
	}
	for _, tc := range cases {
		args := append([]string{"--listen", "127.0.0.1:0", "--http-bind=", "--data-dir", filepath.Join(dir, "data")}, tc.args...)
		code, out := sdRun(t, tc.env, args...)
		if code != 2 || !strings.Contains(out, tc.key) {
			t.Errorf("env %q flags %q: exit %d, output %q; want status 2 and a message naming %s", tc.env, tc.args, code, out, tc.key)
		}
	}
}

// TestStartupErrorsNameTheKey: security files that cannot be used, and a
// data directory another lance holds, stop the server at start-up with a
// message naming the key (docs/security.md: "nothing is silently
// switched off"), as an error, not a crash.
func TestStartupErrorsNameTheKey(t *testing.T) {
	t.Parallel()
	pki := secPKI(t)
	expired, err := pki.Issue("server-expired", testpki.Spec{CN: "localhost", Server: true,
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyInBundle := filepath.Join(dir, "bundle.pem")
	caPEM, _ := os.ReadFile(pki.CA.CertFile)
	keyPEM, _ := os.ReadFile(pki.Client.KeyFile)
	if err := os.WriteFile(keyInBundle, append(caPEM, keyPEM...), 0o600); err != nil {
		t.Fatal(err)
	}
	held := startServer(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	cases := []struct {
		name string
		args []string
		key  string
	}{
		{"missing certificate file", []string{"--tls-enabled", "--tls-cert-file", filepath.Join(dir, "none.pem"), "--tls-key-file", pki.Server.KeyFile}, "tls.cert_file"},
		{"key of another certificate", []string{"--tls-enabled", "--tls-cert-file", pki.Server.CertFile, "--tls-key-file", pki.Client.KeyFile}, "tls.key_file"},
		{"expired server certificate", []string{"--tls-enabled", "--tls-cert-file", expired.CertFile, "--tls-key-file", expired.KeyFile}, "tls.cert_file"},
		{"key inside the CA bundle", []string{"--tls-enabled", "--tls-cert-file", pki.Server.CertFile, "--tls-key-file", pki.Server.KeyFile, "--tls-ca-file", keyInBundle}, "tls.ca_file"},
		{"missing token file", []string{"--auth-enabled", "--auth-token-file", filepath.Join(dir, "no-tokens")}, "auth.token_file"},
		{"data directory in use", []string{"--data-dir", held.dir}, "node.data_dir"},
		{"client port in use", []string{"--listen", busy.Addr().String()}, "network.bind"},
	}
	for _, tc := range cases {
		args := append([]string{"--listen", "127.0.0.1:0", "--http-bind=", "--data-dir", filepath.Join(dir, "data")}, tc.args...)
		code, out := sdRun(t, nil, args...)
		if code != 0 && !strings.Contains(out, "panic:") && strings.Contains(out, tc.key) {
			continue
		}
		t.Errorf("%s: exit status %d, message naming %s: %v; %s", tc.name, code, tc.key, strings.Contains(out, tc.key), sdSummary(out))
	}
	if !held.running() {
		t.Error("the lance holding the data directory stopped")
	}
}

// sdSummary shortens lance's output for a failure message: a crash is
// given as its panic line and the function it happened in.
func sdSummary(out string) string {
	i := strings.Index(out, "panic:")
	if i < 0 {
		return "output:\n" + out
	}
	lines := strings.Split(out[i:], "\n")
	sum := "crashed: " + lines[0]
	for k, l := range lines {
		if strings.HasPrefix(l, "goroutine ") && k+1 < len(lines) {
			sum += " in " + strings.TrimSpace(lines[k+1])
			if k+3 < len(lines) {
				sum += " called from " + strings.TrimSpace(lines[k+3])
			}
			break
		}
	}
	return sum
}
