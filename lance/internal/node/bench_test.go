package node

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/lance-go/lance/lnc-core/checksum"
	"github.com/lance-go/lance/lnc-network/control"
	"github.com/lance-go/lance/lnc-network/frame"
)

// BenchmarkIngest measures durable acks per second through a real node
// on loopback: conns connections, each keeping depth 1 KiB batches in
// flight. One op is one acked batch; allocs/op counts the client and the
// server together.
func BenchmarkIngest(b *testing.B) {
	for _, tc := range []struct{ conns, depth int }{{1, 1}, {1, 64}, {8, 256}} {
		b.Run(fmt.Sprintf("conns=%d/depth=%d", tc.conns, tc.depth), func(b *testing.B) {
			benchIngest(b, tc.conns, tc.depth, 1024)
		})
	}
}

func benchIngest(b *testing.B, conns, depth, size int) {
	cfg := testConfig(b)
	n, err := Start(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer n.Shutdown(10 * time.Second)
	d := checksum.IEEE
	setup, err := net.Dial("tcp", n.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	setup.Write(frame.AppendControl(nil, d, uint8(control.CodeCreateTopic), []byte("bench")))
	p := frame.NewParser(frame.Config{})
	var topicID uint32
	for topicID == 0 {
		if _, err := p.Fill(setup); err != nil {
			b.Fatal(err)
		}
		if f, ok, _ := p.Next(); ok {
			tp, err := control.DecodeTopic(f.Payload)
			if err != nil {
				b.Fatal(err)
			}
			topicID = tp.ID
		}
	}
	setup.Close()
	payload := make([]byte, size)
	frameBytes := frame.AppendIngest(nil, d, 1, 1, 1, topicID, payload)
	per := b.N / conns
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for i := range conns {
		count := per
		if i == 0 {
			count += b.N % conns
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, err := net.Dial("tcp", n.Addr().String())
			if err != nil {
				b.Error(err)
				return
			}
			defer nc.Close()
			done := make(chan struct{})
			window := make(chan struct{}, depth)
			go func() {
				defer close(done)
				p := frame.NewParser(frame.Config{})
				for got := 0; got < count; {
					if _, err := p.Fill(nc); err != nil && err != io.EOF {
						b.Error(err)
						return
					}
					for {
						f, ok, err := p.Next()
						if err != nil {
							b.Error(err)
							return
						}
						if !ok {
							break
						}
						if f.Kind() != frame.KindAck {
							continue
						}
						got++
						<-window
					}
				}
			}()
			buf := make([]byte, 0, 64*len(frameBytes))
			for sent := 0; sent < count; {
				buf = buf[:0]
				for k := 0; k < 64 && sent < count; k++ {
					select {
					case window <- struct{}{}:
					default:
						if len(buf) > 0 {
							k = 64
							continue
						}
						window <- struct{}{}
					}
					buf = append(buf, frameBytes...)
					sent++
				}
				if _, err := nc.Write(buf); err != nil {
					b.Error(err)
					return
				}
			}
			<-done
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "acks/s")
}
