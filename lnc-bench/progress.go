package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// counts are a phase's running totals, for the progress line.
type counts struct {
	msgs, bytes, errors uint64
}

// progress prints a status line to stderr every interval while a phase
// runs: on a terminal one line rewritten in place, otherwise one line per
// report. The rates are those of the last interval.
type progress struct {
	w        io.Writer
	interval time.Duration
	rss      *rssSampler
	tty      bool

	mu    sync.Mutex // guards stage
	stage string

	stopc chan struct{}
	done  chan struct{}
}

func newProgress(w io.Writer, interval time.Duration, rss *rssSampler) *progress {
	p := &progress{w: w, interval: interval, rss: rss}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

// begin starts reporting a phase whose clock reads start at its
// beginning; totals returns its running counts.
func (p *progress) begin(phase string, clk clock, start int64, totals func() counts) {
	if p.interval <= 0 {
		return
	}
	p.stopc, p.done = make(chan struct{}), make(chan struct{})
	go p.loop(phase, clk, start, totals)
}

// setStage names what the phase is doing (warm-up, measure, drain, …).
func (p *progress) setStage(s string) {
	p.mu.Lock()
	p.stage = s
	p.mu.Unlock()
}

// end stops reporting the phase.
func (p *progress) end() {
	if p.stopc == nil {
		return
	}
	close(p.stopc)
	<-p.done
	p.stopc = nil
	if p.tty {
		fmt.Fprintln(p.w)
	}
}

func (p *progress) loop(phase string, clk clock, start int64, totals func() counts) {
	defer close(p.done)
	t := time.NewTicker(p.interval)
	defer t.Stop()
	prev, prevAt := totals(), clk.now()
	for {
		select {
		case <-t.C:
		case <-p.stopc:
			return
		}
		cur, at := totals(), clk.now()
		secs := time.Duration(at - prevAt).Seconds()
		p.mu.Lock()
		stage := p.stage
		p.mu.Unlock()
		line := fmt.Sprintf("lnc-bench %s [%7.1fs] %-7s %12s msg/s %9.1f MiB/s  total %s  errors %s",
			phase, time.Duration(at-start).Seconds(), stage,
			group(uint64(float64(cur.msgs-prev.msgs)/secs)),
			float64(cur.bytes-prev.bytes)/secs/(1<<20),
			group(cur.msgs), group(cur.errors))
		if p.rss != nil {
			if rss, ok := p.rss.current(); ok {
				line += fmt.Sprintf("  server RSS %.1f MiB", float64(rss)/(1<<20))
			}
		}
		if p.tty {
			fmt.Fprintf(p.w, "\r%s\x1b[K", line)
		} else {
			fmt.Fprintln(p.w, line)
		}
		prev, prevAt = cur, at
	}
}

// group formats n with thousands separators.
func group(n uint64) string {
	s := fmt.Sprint(n)
	out := make([]byte, 0, len(s)+len(s)/3)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
