package lance

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkProducer produces 1 KiB records to a local server with 8
// batches in flight and reports records per second.
func BenchmarkProducer(b *testing.B) {
	s := startServer(b)
	c := dialT(b, s)
	ctx := context.Background()
	if _, err := c.CreateTopic(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	p, err := NewProducer(c, WithMaxInFlight(8), WithBatchBytes(256<<10), WithMaxBufferedBytes(64<<20))
	if err != nil {
		b.Fatal(err)
	}
	value := bytes.Repeat([]byte("x"), 1024)
	var failed atomic.Int64
	cb := func(_ Offset, err error) {
		if err != nil {
			failed.Add(1)
		}
	}
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if err := p.Produce(ctx, "bench", Record{Value: value}, cb); err != nil {
			b.Fatal(err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
	b.StopTimer()
	if err := p.Close(ctx); err != nil {
		b.Fatal(err)
	}
	if f := failed.Load(); f != 0 {
		b.Fatalf("%d records failed", f)
	}
}
