package e2e

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
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
)

var (
	killRounds = flag.Int("e2e.killrounds", 3, "SIGKILL rounds of TestKillUnderLoad")
	seedFlag   = flag.Uint64("e2e.seed", 0, "seed of the randomised tests; 0 picks one (it is logged)")
)

// lanceBin is the server binary TestMain builds.
var lanceBin string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "lance-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	lanceBin = filepath.Join(dir, "lance")
	// The tests run in lance/e2e; the module root is one level up.
	build := exec.Command("go", "build", "-o", lanceBin, "./cmd/lance")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building the lance binary failed: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// seed returns the seed for a randomised test and logs it.
func seed(t testing.TB) uint64 {
	s := *seedFlag
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -e2e.seed=%d)", s, s)
	return s
}

func newRand(s uint64) *rand.Rand { return rand.New(rand.NewPCG(s, s^0x9E3779B97F4A7C15)) }

// logBuffer collects a server's stderr across restarts.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// server is one lance process and its data directory, which survives
// restarts.
type server struct {
	t        *testing.T
	dir      string
	addr     string // LWP listener
	httpAddr string // health and metrics
	extra    []string
	logs     *logBuffer
	gen      int

	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// startServer starts a lance process on free ports with a fresh data
// directory and waits until it is ready. It is killed when the test ends,
// and its log is printed if the test failed.
func startServer(t *testing.T, extra ...string) *server {
	t.Helper()
	s := &server{t: t, dir: t.TempDir(), extra: extra, logs: new(logBuffer)}
	t.Cleanup(s.cleanup)
	s.start()
	return s
}

var errAddrInUse = errors.New("address in use")

// start launches the process on the current data directory, keeping the
// previous ports when it can.
func (s *server) start() {
	s.t.Helper()
	for attempt := 0; ; attempt++ {
		if s.addr == "" || attempt > 0 {
			s.addr, s.httpAddr = freeAddr(s.t), freeAddr(s.t)
		}
		err := s.launch()
		if err == nil {
			return
		}
		if !errors.Is(err, errAddrInUse) || attempt == 4 {
			s.t.Fatalf("starting lance: %v", err)
		}
	}
}

func (s *server) launch() error {
	s.gen++
	args := append([]string{"--listen", s.addr, "--health", s.httpAddr, "--data-dir", s.dir}, s.extra...)
	cmd := exec.Command(lanceBin, args...)
	w := &prefixWriter{w: s.logs, prefix: fmt.Sprintf("[lance #%d] ", s.gen)}
	cmd.Stdout, cmd.Stderr = w, w
	before := len(s.logs.String())
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd, s.done = cmd, make(chan struct{})
	done := s.done
	go func() {
		cmd.Wait()
		close(done)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			out := s.logs.String()[before:]
			if strings.Contains(out, "address already in use") {
				return errAddrInUse
			}
			return fmt.Errorf("lance exited before it was ready (%v):\n%s", cmd.ProcessState, out)
		default:
		}
		if code, _, err := s.get("/health/ready"); err == nil && code == http.StatusOK {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("lance was not ready within 30 s")
}

// running reports whether the current process has not exited.
func (s *server) running() bool {
	if s.done == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and returns the exit code once the process exited.
func (s *server) stop() int {
	s.t.Helper()
	if !s.running() {
		s.t.Fatal("stop: lance is not running")
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(40 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
		s.t.Fatal("lance did not exit within 40 s of SIGTERM")
	}
	return s.cmd.ProcessState.ExitCode()
}

// kill sends SIGKILL and waits for the process to be gone.
func (s *server) kill() {
	s.t.Helper()
	if !s.running() {
		s.t.Fatal("kill: lance is not running")
	}
	s.cmd.Process.Kill()
	<-s.done
}

// restart starts a new process on the same data directory.
func (s *server) restart() {
	s.t.Helper()
	if s.running() {
		s.t.Fatal("restart: lance is still running")
	}
	s.start()
}

func (s *server) cleanup() {
	if s.running() {
		s.cmd.Process.Kill()
		<-s.done
	}
	if s.t.Failed() {
		out := s.logs.String()
		if len(out) > 64<<10 {
			out = "…\n" + out[len(out)-64<<10:]
		}
		s.t.Logf("lance log (%s):\n%s", s.dir, out)
	}
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// get fetches path from the HTTP listener.
func (s *server) get(path string) (int, string, error) {
	resp, err := httpClient.Get("http://" + s.httpAddr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// dial opens an LWP connection to the server.
func (s *server) dial(d dialect) *client {
	s.t.Helper()
	return dial(s.t, s.addr, d)
}

// dialT is dial for a subtest, so that failures and cleanup land on it.
func (s *server) dialT(t testing.TB, d dialect) *client {
	t.Helper()
	return dial(t, s.addr, d)
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago; start retries with fresh ports if another process took it since.
func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// prefixWriter prefixes every line written through it.
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	mid    bool // inside a line
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []byte
	for _, c := range b {
		if !p.mid {
			out = append(out, p.prefix...)
			p.mid = true
		}
		out = append(out, c)
		if c == '\n' {
			p.mid = false
		}
	}
	if _, err := p.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}
