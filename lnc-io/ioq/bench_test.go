package ioq

import (
	"context"
	"sync"
	"testing"
)

// One goroutine pushes and pops: the cost of the queue without contention.
func BenchmarkPushPop(b *testing.B) {
	q := New[int](Config{})
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := q.Push(ctx, Class(i%NumClasses), i); err != nil {
			b.Fatal(err)
		}
		if _, _, err := q.Pop(ctx); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// 64 TryPush calls and one PopBatch taking all 64, as a backend filling an
// io_uring submission would.
func BenchmarkPopBatch64(b *testing.B) {
	q := New[int](Config{})
	ctx := context.Background()
	buf := make([]int, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		for i := range 64 {
			if err := q.TryPush(Class(i%NumClasses), i); err != nil {
				b.Fatal(err)
			}
		}
		out, err := q.PopBatch(ctx, buf[:0], 64)
		if err != nil || len(out) != 64 {
			b.Fatal(len(out), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(64*b.N), "ns/item")
}

// A producer goroutine pushes b.N items; the benchmark goroutine consumes
// them with Pop, or with PopBatch of up to 64.
func BenchmarkProducerConsumer(b *testing.B) {
	for _, batch := range []int{1, 64} {
		name := "Pop"
		if batch > 1 {
			name = "PopBatch64"
		}
		b.Run(name, func(b *testing.B) {
			q := New[int](Config{Capacity: [NumClasses]int{256, 256, 256}})
			ctx := context.Background()
			buf := make([]int, 0, batch)
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			wg.Go(func() {
				for i := range b.N {
					if err := q.Push(ctx, Class(i%NumClasses), i); err != nil {
						b.Error(err)
						return
					}
				}
			})
			for n := 0; n < b.N; {
				if batch == 1 {
					if _, _, err := q.Pop(ctx); err != nil {
						b.Fatal(err)
					}
					n++
					continue
				}
				out, err := q.PopBatch(ctx, buf[:0], batch)
				if err != nil {
					b.Fatal(err)
				}
				n += len(out)
			}
			wg.Wait()
		})
	}
}
