package cli

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// lanceBin is the server binary TestMain builds.
var lanceBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lnc-cli-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	lanceBin = filepath.Join(dir, "lance")
	build := exec.Command("go", "build", "-o", lanceBin, "./cmd/lance")
	build.Dir = filepath.Join("..", "..", "..", "lance")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building lance: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// syncBuf is a buffer safe for one writer and concurrent readers.
type syncBuf struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *syncBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// server is a lance process on 127.0.0.1 with a data directory that
// survives restarts.
type server struct {
	t        testing.TB
	dir      string // the data directory
	addr     string
	httpAddr string
	extra    []string
	logs     *syncBuf
	cmd      *exec.Cmd
	done     chan struct{}
}

func startServer(t testing.TB, extra ...string) *server {
	t.Helper()
	s := &server{t: t, dir: filepath.Join(t.TempDir(), "data"), extra: extra, logs: new(syncBuf)}
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			out := s.logs.String()
			if len(out) > 32<<10 {
				out = out[len(out)-32<<10:]
			}
			t.Logf("lance log:\n%s", out)
		}
	})
	s.start(true)
	return s
}

func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start launches lance; fresh picks new ports, a restart keeps the old
// ones.
func (s *server) start(fresh bool) {
	s.t.Helper()
	for attempt := range 5 {
		if fresh || attempt > 0 {
			s.addr, s.httpAddr = freeAddr(s.t), freeAddr(s.t)
		}
		args := append([]string{"--listen", s.addr, "--health", s.httpAddr, "--data-dir", s.dir}, s.extra...)
		cmd := exec.Command(lanceBin, args...)
		cmd.Stdout, cmd.Stderr = s.logs, s.logs
		if err := cmd.Start(); err != nil {
			s.t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		s.cmd, s.done = cmd, done
		if s.waitReady() {
			return
		}
		s.kill()
	}
	s.t.Fatal("lance did not start")
}

func (s *server) waitReady() bool {
	hc := &http.Client{Timeout: time.Second}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return false
		default:
		}
		resp, err := hc.Get("http://" + s.httpAddr + "/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func (s *server) kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// stop ends the server gracefully (SIGTERM), which releases the data
// directory's lock.
func (s *server) stop() {
	s.t.Helper()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
		s.t.Fatal("lance did not stop within 30 s of SIGTERM")
	}
	s.cmd = nil
}

// result is what one run of lnc gave.
type result struct {
	out, err string
	code     int
}

// lnc runs the command line in-process with stdin and returns its output
// and exit status.
func lnc(t testing.TB, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return lncCtx(ctx, stdin, args...)
}

func lncCtx(ctx context.Context, stdin string, args ...string) result {
	var out, errb bytes.Buffer
	code := Main(ctx, args, strings.NewReader(stdin), &out, &errb)
	return result{out: out.String(), err: errb.String(), code: code}
}

// ok runs lnc and fails the test unless it exits 0.
func ok(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	r := lnc(t, stdin, args...)
	if r.code != 0 {
		t.Fatalf("lnc %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.out, r.err)
	}
	return r.out
}

// fails runs lnc and fails the test unless it exits with code and its
// stderr contains want.
func fails(t testing.TB, code int, want string, stdin string, args ...string) result {
	t.Helper()
	r := lnc(t, stdin, args...)
	if r.code != code || !strings.Contains(r.err, want) {
		t.Fatalf("lnc %s: exit %d (want %d), stderr %q (want it to contain %q)\nstdout:\n%s", strings.Join(args, " "), r.code, code, r.err, want, r.out)
	}
	if !strings.HasPrefix(r.err, "lnc: ") && !strings.Contains(r.err, "\nlnc: ") && !strings.Contains(r.err, "] lnc: ") {
		t.Fatalf("stderr %q has no line starting with \"lnc: \"", r.err)
	}
	return r
}

// ep returns the --endpoint flag for s.
func (s *server) ep() []string { return []string{"--endpoint", s.addr} }

// args joins argument lists.
func args(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// lines splits output into its lines, without the last empty one.
func lines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
