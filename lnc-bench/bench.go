package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lance-go/lance/lnc-bench/internal/histogram"
	lance "github.com/lance-go/lance/lnc-client"
)

// setupTimeout bounds connecting and creating the topic.
const setupTimeout = 30 * time.Second

// bench runs the phases cfg asks for. It always returns a result; a run
// that could not finish has its Error set.
func bench(ctx context.Context, cfg *config, stderr io.Writer) *result {
	res := newResult(cfg)
	sctx, cancel := context.WithTimeout(ctx, setupTimeout)
	admin, err := lance.Dial(sctx, cfg.endpoint)
	if err != nil {
		cancel()
		res.Error = fmt.Sprintf("connecting to %s: %v", cfg.endpoint, err)
		return res
	}
	defer admin.Close()
	topic, err := admin.EnsureTopic(sctx, cfg.topic)
	cancel()
	if err != nil {
		res.Error = fmt.Sprintf("creating topic %q: %v", cfg.topic, err)
		return res
	}

	var rss *rssSampler
	if src := newRSSSource(cfg); src != nil {
		rss = startRSSSampler(src)
	}
	prog := newProgress(stderr, cfg.reportInterval, rss)

	if cfg.mode == modeProduce || cfg.mode == modeBoth {
		res.Produce, err = producePhase(ctx, cfg, topic.ID, prog)
		if err != nil {
			res.Error = fmt.Sprintf("produce: %v", err)
		}
	}
	if (cfg.mode == modeConsume || cfg.mode == modeBoth) && res.Error == "" && ctx.Err() == nil {
		res.Consume, err = consumePhase(ctx, cfg, admin, topic.ID, prog)
		if err != nil {
			res.Error = fmt.Sprintf("consume: %v", err)
		}
	}
	if ctx.Err() != nil {
		res.Interrupted = true
	}
	if rss != nil {
		res.setRSS(rss.stop())
	}
	res.finish()
	return res
}

// producePhase connects every worker, runs warm-up and the measured
// window, stops, drains and gathers the figures.
func producePhase(ctx context.Context, cfg *config, topicID uint32, prog *progress) (*phaseResult, error) {
	payload := make([]byte, cfg.msgSize)
	for i := range payload {
		payload[i] = byte(i % 251) // upstream's fill
	}
	workers := make([]loadWorker, 0, cfg.connections)
	defer func() {
		for _, w := range workers {
			w.close()
		}
	}()
	// Every connection is open before the load starts (upstream's
	// barrier); the warm-up and the window are placed after that.
	sh := &shared{clock: newClock(), latency: cfg.latency}
	sh.from.Store(math.MaxInt64) // nothing is measured before the window is set
	sctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	for range cfg.connections {
		var w loadWorker
		var err error
		if cfg.client == clientRaw {
			w, err = newRawWorker(sctx, cfg, sh, topicID, payload)
		} else {
			w, err = newLNCWorker(sctx, cfg, sh, payload)
		}
		if err != nil {
			return nil, err
		}
		workers = append(workers, w)
	}
	begin := sh.clock.now()
	from := begin + int64(cfg.warmup)
	to := from + int64(cfg.duration)
	sh.from.Store(from)

	totals := func() (acked, failed uint64) {
		for _, w := range workers {
			a, f := w.counts()
			acked, failed = acked+a, failed+f
		}
		return acked, failed
	}
	var wg sync.WaitGroup
	errs := make([]error, len(workers))
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	st := newStopper(runCtx)
	defer st.stop()
	for i, w := range workers {
		wg.Go(func() {
			if err := w.run(runCtx, st); err != nil {
				errs[i] = fmt.Errorf("connection %d: %w", i+1, err)
				cancelRun() // one broken connection ends the run
			}
		})
	}
	prog.begin("produce", sh.clock, begin, func() counts {
		a, f := totals()
		return counts{msgs: a, bytes: a * uint64(cfg.msgSize), errors: f}
	})
	if cfg.warmup > 0 {
		prog.setStage("warm-up")
	} else {
		prog.setStage("measure")
	}

	// The measured window is the acks counted between two snapshots.
	waitUntil(runCtx, sh.clock, from)
	startAcked, _ := totals()
	startAt := sh.clock.now()
	prog.setStage("measure")
	waitUntil(runCtx, sh.clock, to)
	endAcked, _ := totals()
	endAt := sh.clock.now()
	st.stop()
	prog.setStage("drain")
	wg.Wait()
	prog.end()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	ph := &phaseResult{name: "produce"}
	if startAt >= from { // not interrupted during the warm-up
		ph.Msgs = endAcked - startAcked
		ph.Seconds = time.Duration(endAt - startAt).Seconds()
	}
	ph.Bytes = ph.Msgs * uint64(cfg.msgSize)
	ph.Interrupted = endAt < to
	var hist histogram.Histogram
	for _, w := range workers {
		w.close()
	}
	for _, w := range workers {
		_, f := w.counts()
		ph.Errors += f
		if err := w.firstError(); err != nil && ph.FirstError == "" {
			ph.FirstError = err.Error()
		}
		bp, rc := w.stats()
		ph.Backpressure += bp
		ph.Reconnects += rc
		hist.Merge(w.latencies())
	}
	workers = nil // closed above
	if cfg.latency {
		ph.Latency = latencyFrom(&hist)
	}
	ph.rates()
	return ph, nil
}

// waitUntil sleeps until the clock reaches at (ns) or ctx ends.
func waitUntil(ctx context.Context, c clock, at int64) {
	d := time.Duration(at - c.now())
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// consumePhase replays the topic from the beginning to its present end
// on every connection at once, each connection reading the whole topic.
// It has no warm-up: the clock starts with the first fetch and stops when
// the last reader reaches the end or --duration has passed.
func consumePhase(ctx context.Context, cfg *config, admin *lance.Client, topicID uint32, prog *progress) (*phaseResult, error) {
	sctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	end, err := logEnd(sctx, admin, cfg.topic)
	if err != nil {
		return nil, err
	}
	if end == 0 {
		return nil, fmt.Errorf("topic %q is empty: nothing to replay (produce first, or use --mode both)", cfg.topic)
	}
	readers := make([]replayWorker, 0, cfg.connections)
	defer func() {
		for _, r := range readers {
			r.close()
		}
	}()
	for range cfg.connections {
		var r replayWorker
		if cfg.client == clientRaw {
			r, err = newRawReplay(sctx, cfg, topicID)
		} else {
			r, err = newLNCReplay(admin, cfg)
		}
		if err != nil {
			return nil, err
		}
		readers = append(readers, r)
	}
	totals := func() (records, values, logBytes uint64) {
		for _, r := range readers {
			n, v, b := r.counts()
			records, values, logBytes = records+n, values+v, logBytes+b
		}
		return records, values, logBytes
	}
	clk := newClock()
	var stop atomic.Bool
	deadline := time.AfterFunc(cfg.duration, func() { stop.Store(true) })
	defer deadline.Stop()
	prog.begin("consume", clk, 0, func() counts {
		n, v, _ := totals()
		return counts{msgs: n, bytes: v}
	})
	prog.setStage("replay")
	var wg sync.WaitGroup
	errs := make([]error, len(readers))
	var short atomic.Int64 // readers that did not reach the end
	for i, r := range readers {
		wg.Go(func() {
			reached, err := r.run(ctx, &stop, end)
			if err != nil {
				errs[i] = fmt.Errorf("connection %d: %w", i+1, err)
			}
			if !reached {
				short.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := clk.now()
	prog.end()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	records, values, logBytes := totals()
	ph := &phaseResult{name: "consume", Msgs: records, Bytes: values, LogBytes: logBytes, EndOffset: end,
		Seconds: time.Duration(elapsed).Seconds()}
	reached := short.Load() == 0
	ph.ReachedEnd = &reached
	ph.Interrupted = ctx.Err() != nil
	ph.rates()
	return ph, nil
}
