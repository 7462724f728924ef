package lance

import (
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
	if spec := os.Getenv(crashChildEnv); spec != "" {
		consumerCrashChild(spec)
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "lnc-client-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	lanceBin = filepath.Join(dir, "lance")
	build := exec.Command("go", "build", "-o", lanceBin, "./cmd/lance")
	build.Dir = filepath.Join("..", "lance")
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

type logBuf struct {
	mu sync.Mutex // guards b
	b  strings.Builder
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// server is a lance process on 127.0.0.1 with a data directory that
// survives restarts.
type server struct {
	t        testing.TB
	dir      string
	addr     string
	httpAddr string
	extra    []string
	logs     *logBuf
	cmd      *exec.Cmd
	done     chan struct{}
}

func startServer(t testing.TB, extra ...string) *server {
	t.Helper()
	s := &server{t: t, dir: t.TempDir(), extra: extra, logs: new(logBuf)}
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

// start launches lance; fresh picks new ports (a restart keeps the old).
func (s *server) start(fresh bool) {
	s.t.Helper()
	for attempt := 0; attempt < 5; attempt++ {
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
				hc.CloseIdleConnections()
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

// stop ends the server gracefully (SIGTERM).
func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func dialT(t testing.TB, s *server, opts ...Option) *Client {
	t.Helper()
	c, err := Dial(testCtx(t, 10*time.Second), s.addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
