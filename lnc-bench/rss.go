package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// rssInterval is how often the server's RSS is sampled.
const rssInterval = 500 * time.Millisecond

// rssSource reads the server's resident memory now and its peak so far
// (0 when the source does not know it).
type rssSource interface {
	sample(ctx context.Context) (rss, peak uint64, err error)
}

func newRSSSource(cfg *config) rssSource {
	switch {
	case cfg.serverMetrics != "":
		// No keep-alive: a sample every 500 ms needs no idle connection
		// (and its goroutines) left behind when the run ends.
		tr := &http.Transport{DisableKeepAlives: true}
		return &metricsSource{url: cfg.serverMetrics, client: &http.Client{Timeout: 2 * time.Second, Transport: tr}}
	case cfg.serverPID != 0:
		return procSource{path: fmt.Sprintf("/proc/%d/status", cfg.serverPID)}
	}
	return nil
}

// metricsSource reads process_resident_memory_bytes and
// process_resident_memory_peak_bytes from a Prometheus text endpoint
// (the lance server's /metrics on its health port).
type metricsSource struct {
	url    string
	client *http.Client
}

func (m *metricsSource) sample(ctx context.Context) (uint64, uint64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.url, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("server metrics: %w", err)
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("server metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("server metrics: %s answered %s", m.url, resp.Status)
	}
	return parseMetricsRSS(resp.Body)
}

// parseMetricsRSS picks the two RSS series out of Prometheus text.
func parseMetricsRSS(r io.Reader) (rss, peak uint64, err error) {
	found := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		var dst *uint64
		switch name {
		case "process_resident_memory_bytes":
			dst, found = &rss, true
		case "process_resident_memory_peak_bytes":
			dst = &peak
		default:
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil || f < 0 {
			return 0, 0, fmt.Errorf("server metrics: %s has value %q", name, value)
		}
		*dst = uint64(f)
	}
	if err := sc.Err(); err != nil {
		return 0, 0, fmt.Errorf("server metrics: %w", err)
	}
	if !found {
		return 0, 0, errors.New("server metrics: no process_resident_memory_bytes series")
	}
	return rss, peak, nil
}

// procSource reads VmRSS and VmHWM from /proc/PID/status (Linux).
type procSource struct{ path string }

func (p procSource) sample(context.Context) (uint64, uint64, error) {
	data, err := os.ReadFile(p.path)
	if err != nil {
		return 0, 0, fmt.Errorf("server RSS: %w", err)
	}
	return parseProcStatus(data)
}

func parseProcStatus(data []byte) (rss, peak uint64, err error) {
	found := false
	for line := range bytes.Lines(data) {
		name, value, ok := strings.Cut(string(line), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		fields := strings.Fields(value)
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, 0, fmt.Errorf("server RSS: unexpected %s line %q", name, strings.TrimSpace(string(line)))
		}
		kb, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("server RSS: %s: %w", name, err)
		}
		if name == "VmRSS" {
			rss, found = kb<<10, true
		} else {
			peak = kb << 10
		}
	}
	if !found {
		return 0, 0, errors.New("server RSS: no VmRSS line (not a live process?)")
	}
	return rss, peak, nil
}

// rssSampler samples a source every rssInterval in its own goroutine and
// keeps the largest RSS seen.
type rssSampler struct {
	src    rssSource
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex // guards the fields below
	last    uint64
	max     uint64
	peak    uint64
	samples int
	err     error // the last failure
}

// rssReport is what a sampler saw.
type rssReport struct {
	max, peak uint64
	samples   int
	err       error
}

func startRSSSampler(src rssSource) *rssSampler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &rssSampler{src: src, cancel: cancel, done: make(chan struct{})}
	go s.loop(ctx)
	return s
}

func (s *rssSampler) loop(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(rssInterval)
	defer t.Stop()
	for {
		s.take(ctx)
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

func (s *rssSampler) take(ctx context.Context) {
	rss, peak, err := s.src.sample(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			s.err = err
		}
		return
	}
	s.samples++
	s.last = rss
	s.max = max(s.max, rss)
	s.peak = max(s.peak, peak)
}

// current returns the latest sample, if there is one.
func (s *rssSampler) current() (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, s.samples > 0
}

// stop takes a last sample, ends the goroutine and reports.
func (s *rssSampler) stop() rssReport {
	s.cancel()
	<-s.done
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	s.take(ctx)
	cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	return rssReport{max: s.max, peak: s.peak, samples: s.samples, err: s.err}
}
