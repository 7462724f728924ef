package e2e

import (
	"flag"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var loadFor = flag.Duration("e2e.load", 0, "run TestLoad for this long (0 skips it): durable acks/s and server RSS under pipelined load")

// TestLoad is a measurement, not a check: conns connections keep depth
// 1 KiB batches in flight against a real lance process for -e2e.load and
// the test logs the acks per second and the server's peak resident
// memory. It asserts only that every batch was acked in order.
//
//	go test -count=1 -run TestLoad -v ./e2e/ -e2e.load=20s
func TestLoad(t *testing.T) {
	if *loadFor == 0 {
		t.Skip("a measurement: run with -e2e.load=20s")
	}
	for _, tc := range []struct{ conns, depth int }{{1, 64}, {8, 256}} {
		s := startServer(t)
		setup := s.dialT(t, ieee)
		topic := createTopic(t, setup, "load").ID
		setup.close()
		payload := make([]byte, 1024)
		frameBytes := ingestFrame(ieee, batch{Topic: topic, ID: 1, Records: 1, Data: payload})
		var acked atomic.Int64
		var peak atomic.Int64
		stop := make(chan struct{})
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				if rss := vmRSS(s.cmd.Process.Pid); rss > peak.Load() {
					peak.Store(rss)
				}
			}
		}()
		deadline := time.Now().Add(*loadFor)
		var wg sync.WaitGroup
		for range tc.conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := s.dialT(t, ieee)
				defer c.close()
				window := make(chan struct{}, tc.depth)
				done := make(chan struct{})
				var closing atomic.Bool
				go func() {
					defer close(done)
					for {
						f, err := c.next()
						if err != nil {
							if !closing.Load() {
								t.Error(err)
							}
							return
						}
						if f.Flags&flagAck == 0 {
							t.Errorf("not an ack: %s", f.describe())
							return
						}
						acked.Add(1)
						<-window
					}
				}()
				buf := make([]byte, 0, 64*len(frameBytes))
				for time.Now().Before(deadline) {
					buf = buf[:0]
					window <- struct{}{}
					buf = append(buf, frameBytes...)
				more:
					for len(buf) < cap(buf) {
						select {
						case window <- struct{}{}:
							buf = append(buf, frameBytes...)
						default:
							break more
						}
					}
					if err := c.sendErr(buf); err != nil {
						t.Error(err)
						return
					}
				}
				// Every ack is in once the whole window is free again.
				for range tc.depth {
					window <- struct{}{}
				}
				closing.Store(true)
				c.close()
				<-done
			}()
		}
		start := time.Now()
		wg.Wait()
		close(stop)
		elapsed := time.Since(start)
		t.Logf("conns=%d depth=%d: %d acks in %v = %.0f acks/s (1 KiB, durable); server peak RSS %.1f MiB",
			tc.conns, tc.depth, acked.Load(), elapsed.Round(time.Millisecond),
			float64(acked.Load())/elapsed.Seconds(), float64(peak.Load())/(1<<20))
		s.stop()
	}
}

// vmRSS returns the resident set of process pid in bytes, or 0.
func vmRSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
