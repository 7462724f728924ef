package hlc

import (
	"errors"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeWall is a settable wall clock in milliseconds (so that it reaches the
// end of the 44-bit range, which int64 nanoseconds cannot), safe for
// concurrent use.
type fakeWall struct{ millis atomic.Int64 }

func newFakeWall(ms int64) *fakeWall {
	w := &fakeWall{}
	w.setMillis(ms)
	return w
}

func (w *fakeWall) now() time.Time     { return time.UnixMilli(w.millis.Load()) }
func (w *fakeWall) setMillis(ms int64) { w.millis.Store(ms) }
func (w *fakeWall) addMillis(ms int64) { w.millis.Add(ms) }

const t0 = 1706918400000 // 2024-02-03T00:00:00Z in ms

func newClock(t *testing.T, w *fakeWall, opts ...Option) *Clock {
	t.Helper()
	c, err := New(append([]Option{WithWallClock(w.now)}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func ts(t *testing.T, phys uint64, logical uint32) Timestamp {
	t.Helper()
	v, err := Pack(phys, logical)
	if err != nil {
		t.Fatalf("Pack(%d, %d): %v", phys, logical, err)
	}
	return v
}

func TestPackUnpack(t *testing.T) {
	cases := []struct {
		phys    uint64
		logical uint32
		raw     uint64
	}{
		{0, 0, 0},
		{0, 1, 1},
		{1, 0, 1 << 20},
		{t0, 5, t0<<20 | 5},
		{MaxPhysical, MaxLogical, math.MaxUint64},
	}
	for _, c := range cases {
		v := ts(t, c.phys, c.logical)
		if uint64(v) != c.raw {
			t.Errorf("Pack(%d, %d) = %#x, want %#x", c.phys, c.logical, uint64(v), c.raw)
		}
		p, l := v.Unpack()
		if p != c.phys || l != c.logical || v.Physical() != c.phys || v.Logical() != c.logical {
			t.Errorf("Unpack(%#x) = %d, %d", uint64(v), p, l)
		}
	}
	if _, err := Pack(MaxPhysical+1, 0); !errors.Is(err, ErrRange) {
		t.Errorf("Pack(MaxPhysical+1) error = %v, want ErrRange", err)
	}
	if _, err := Pack(0, MaxLogical+1); !errors.Is(err, ErrRange) {
		t.Errorf("Pack(logical MaxLogical+1) error = %v, want ErrRange", err)
	}
	// Ordering of the packed integer is (physical, logical) ordering.
	if !(ts(t, 5, MaxLogical) < ts(t, 6, 0)) || !(ts(t, 6, 0) < ts(t, 6, 1)) {
		t.Error("packed order disagrees with (physical, logical) order")
	}
}

func TestTimestampString(t *testing.T) {
	if got := ts(t, t0, 5).String(); got != "2024-02-03T00:00:00.000Z/5" {
		t.Errorf("String = %q", got)
	}
	if got := ts(t, t0+1234, 0).String(); got != "2024-02-03T00:00:01.234Z/0" {
		t.Errorf("String = %q", got)
	}
	if got := ts(t, t0, 0).Time(); !got.Equal(time.Date(2024, 2, 3, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("Time = %v", got)
	}
}

func TestNewOptions(t *testing.T) {
	bad := [][]Option{
		{WithWallClock(nil)},
		{WithMaxDrift(0)},
		{WithMaxDrift(-time.Second)},
		{WithDegradedDrift(0)},
		{WithDegradedDrift(2 * time.Second)},                            // above default max
		{WithMaxDrift(50 * time.Millisecond)},                           // below default degraded
		{WithMaxDrift(time.Second), WithDegradedDrift(time.Second + 1)}, // degraded > max
		{WithDegradedDrift(time.Second + 1), WithMaxDrift(2 * time.Second), WithWallClock(nil)},
	}
	for i, opts := range bad {
		if c, err := New(opts...); !errors.Is(err, ErrConfig) || c != nil {
			t.Errorf("case %d: New = %v, %v, want ErrConfig", i, c, err)
		}
	}
	if _, err := New(WithMaxDrift(time.Second), WithDegradedDrift(time.Second)); err != nil {
		t.Errorf("degraded == max rejected: %v", err)
	}
}

func TestZeroClockUsesSystemTime(t *testing.T) {
	var c Clock
	before := time.Now().UnixMilli()
	got := c.Now()
	after := time.Now().UnixMilli()
	if p := int64(got.Physical()); p < before || p > after {
		t.Errorf("zero Clock Now physical = %d, want within [%d, %d]", p, before, after)
	}
	if c.Last() != got {
		t.Errorf("Last = %v, want %v", c.Last(), got)
	}
}

func TestNowFollowsWallAndTicksLogical(t *testing.T) {
	w := newFakeWall(t0)
	c := newClock(t, w)
	if c.Last() != 0 {
		t.Fatalf("Last of a new clock = %v", c.Last())
	}
	want := []Timestamp{ts(t, t0, 0), ts(t, t0, 1), ts(t, t0, 2)}
	for i, wt := range want {
		if got := c.Now(); got != wt {
			t.Errorf("Now #%d = %v, want %v", i, got, wt)
		}
	}
	w.addMillis(3)
	if got := c.Now(); got != ts(t, t0+3, 0) {
		t.Errorf("Now after wall advance = %v, want %v", got, ts(t, t0+3, 0))
	}
	// Wall clock steps back 10 s: HLC keeps its physical part.
	w.addMillis(-10000)
	if got := c.Now(); got != ts(t, t0+3, 1) {
		t.Errorf("Now after wall step back = %v, want %v", got, ts(t, t0+3, 1))
	}
	// Before the epoch the wall reads as 0; the clock still advances.
	w.setMillis(-5)
	if got := c.Now(); got != ts(t, t0+3, 2) {
		t.Errorf("Now with pre-epoch wall = %v", got)
	}
}

func TestLogicalExhaustion(t *testing.T) {
	w := newFakeWall(t0)
	c := newClock(t, w)
	if first := c.Now(); first != ts(t, t0, 0) {
		t.Fatalf("first = %v", first)
	}
	// Jump close to the end of the logical range rather than making 2^20
	// calls; the remaining steps go through Now as usual.
	const start = MaxLogical - 1000
	c.state.Store(uint64(ts(t, t0, start)))
	prev := ts(t, t0, start)
	for range MaxLogical - start {
		cur := c.Now()
		if cur != prev+1 || cur.Physical() != t0 {
			t.Fatalf("Now = %v after %v", cur, prev)
		}
		prev = cur
	}
	if prev != ts(t, t0, MaxLogical) {
		t.Fatalf("after the loop: %v, want logical MaxLogical", prev)
	}
	if n := c.Stats().LogicalExhaustions; n != 0 {
		t.Fatalf("LogicalExhaustions = %d before exhaustion", n)
	}
	next := c.Now()
	if next != ts(t, t0+1, 0) {
		t.Fatalf("Now at exhaustion = %v, want %v", next, ts(t, t0+1, 0))
	}
	if n := c.Stats().LogicalExhaustions; n != 1 {
		t.Fatalf("LogicalExhaustions = %d, want 1", n)
	}
	// The clock is ahead of the wall now; it keeps counting from there.
	if got := c.Now(); got != ts(t, t0+1, 1) {
		t.Fatalf("Now = %v, want %v", got, ts(t, t0+1, 1))
	}
	// Once the wall passes it, the wall is used again.
	w.addMillis(2)
	if got := c.Now(); got != ts(t, t0+2, 0) {
		t.Fatalf("Now = %v, want %v", got, ts(t, t0+2, 0))
	}
}

func TestReceiveExhaustion(t *testing.T) {
	w := newFakeWall(t0)
	c := newClock(t, w)
	got, err := c.Receive(ts(t, t0, MaxLogical))
	if err != nil {
		t.Fatal(err)
	}
	if got != ts(t, t0+1, 0) {
		t.Fatalf("Receive(logical max) = %v, want %v", got, ts(t, t0+1, 0))
	}
	if n := c.Stats().LogicalExhaustions; n != 1 {
		t.Fatalf("LogicalExhaustions = %d, want 1", n)
	}
}

func TestEndOfTimestampSpace(t *testing.T) {
	w := newFakeWall(MaxPhysical)
	c := newClock(t, w)
	if _, err := c.Receive(math.MaxUint64); !errors.Is(err, ErrExhausted) {
		t.Fatalf("Receive(max) error = %v, want ErrExhausted", err)
	}
	if c.Last() != 0 {
		t.Fatalf("failed Receive changed the clock to %v", c.Last())
	}
	c.state.Store(math.MaxUint64 - 1)
	if got := c.Now(); got != math.MaxUint64 {
		t.Fatalf("Now = %v", got)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Now past the last timestamp did not panic")
			}
		}()
		c.Now()
	}()
	w.setMillis(MaxPhysical + 1)
	func() {
		defer func() {
			if recover() == nil {
				t.Error("wall clock beyond 2^44 ms did not panic")
			}
		}()
		c.Now()
	}()
}

func TestReceiveRule(t *testing.T) {
	cases := []struct {
		name   string
		wall   int64     // ms
		local  Timestamp // clock state before Receive
		remote Timestamp
		want   Timestamp
	}{
		{"remote ahead of local and wall",
			t0, Timestamp(t0<<20 | 7), Timestamp((t0+500)<<20 | 3), Timestamp((t0+500)<<20 | 4)},
		{"remote behind local",
			t0, Timestamp(t0<<20 | 7), Timestamp((t0-500)<<20 | 99), Timestamp(t0<<20 | 8)},
		{"equal physical, remote logical larger",
			t0, Timestamp(t0<<20 | 7), Timestamp(t0<<20 | 20), Timestamp(t0<<20 | 21)},
		{"equal physical, local logical larger",
			t0, Timestamp(t0<<20 | 20), Timestamp(t0<<20 | 7), Timestamp(t0<<20 | 21)},
		{"equal timestamps",
			t0, Timestamp(t0<<20 | 7), Timestamp(t0<<20 | 7), Timestamp(t0<<20 | 8)},
		{"wall ahead of both",
			t0 + 10, Timestamp(t0<<20 | 7), Timestamp((t0+5)<<20 | 9), Timestamp((t0 + 10) << 20)},
		{"local ahead of wall and remote",
			t0, Timestamp((t0+40)<<20 | 2), Timestamp((t0+30)<<20 | 9), Timestamp((t0+40)<<20 | 3)},
		{"fresh clock, remote behind wall",
			t0, 0, Timestamp((t0-1)<<20 | 9), Timestamp(t0 << 20)},
		{"fresh clock, remote equal to wall",
			t0, 0, Timestamp(t0<<20 | 9), Timestamp(t0<<20 | 10)},
		{"remote exactly at max drift",
			t0, 0, Timestamp((t0+1000)<<20 | 1), Timestamp((t0+1000)<<20 | 2)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newFakeWall(tc.wall)
			c := newClock(t, w)
			c.state.Store(uint64(tc.local))
			got, err := c.Receive(tc.remote)
			if err != nil {
				t.Fatalf("Receive: %v", err)
			}
			if got != tc.want {
				t.Fatalf("Receive(%v) with local %v, wall %d = %v, want %v", tc.remote, tc.local, tc.wall, got, tc.want)
			}
			if got <= tc.remote || got <= tc.local {
				t.Fatalf("result %v not above remote %v and local %v", got, tc.remote, tc.local)
			}
			if c.Last() != got {
				t.Fatalf("Last = %v, want %v", c.Last(), got)
			}
			if n := c.Now(); n <= got {
				t.Fatalf("Now after Receive = %v, not above %v", n, got)
			}
		})
	}
}

func TestDriftRejection(t *testing.T) {
	w := newFakeWall(t0)
	c := newClock(t, w)
	before := c.Now()
	far := ts(t, t0+1001, 0)
	got, err := c.Receive(far)
	if !errors.Is(err, ErrClockDrift) {
		t.Fatalf("Receive(1001 ms ahead) = %v, %v, want ErrClockDrift", got, err)
	}
	if got != 0 {
		t.Errorf("rejected Receive returned %v, want 0", got)
	}
	if c.Last() != before {
		t.Errorf("rejected Receive moved the clock from %v to %v", before, c.Last())
	}
	if after := c.Now(); after.Physical() != t0 {
		t.Errorf("Now after rejection = %v: the remote time was adopted", after)
	}
	if s := c.Stats(); s.DriftRejections != 1 || s.DegradedReceives != 0 {
		t.Errorf("Stats = %+v", s)
	}
	// Once the local wall catches up, the same timestamp is accepted.
	w.addMillis(2)
	if got, err := c.Receive(far); err != nil || got != ts(t, t0+1001, 1) {
		t.Errorf("Receive after wall advance = %v, %v", got, err)
	}

	// A configured maximum applies instead of the default.
	w2 := newFakeWall(t0)
	strict := newClock(t, w2, WithMaxDrift(200*time.Millisecond), WithDegradedDrift(50*time.Millisecond))
	if _, err := strict.Receive(ts(t, t0+201, 0)); !errors.Is(err, ErrClockDrift) {
		t.Errorf("strict Receive(201 ms ahead) error = %v, want ErrClockDrift", err)
	}
	if _, err := strict.Receive(ts(t, t0+200, 0)); err != nil {
		t.Errorf("strict Receive(200 ms ahead) error = %v", err)
	}
	// A remote far behind is never rejected.
	if _, err := strict.Receive(ts(t, 1, 0)); err != nil {
		t.Errorf("Receive(far behind) error = %v", err)
	}
}

func TestHealthAndDrift(t *testing.T) {
	w := newFakeWall(t0)
	c := newClock(t, w)
	cases := []struct {
		remote Timestamp
		drift  time.Duration
		health Health
	}{
		{ts(t, t0, 0), 0, Healthy},
		{ts(t, t0-5000, 0), -5 * time.Second, Healthy},
		{ts(t, t0+100, MaxLogical), 100 * time.Millisecond, Healthy},
		{ts(t, t0+101, 0), 101 * time.Millisecond, Degraded},
		{ts(t, t0+1000, 0), time.Second, Degraded},
		{ts(t, t0+1001, 0), 1001 * time.Millisecond, Critical},
		{math.MaxUint64, math.MaxInt64, Critical}, // saturated
	}
	for _, tc := range cases {
		if got := c.Drift(tc.remote); got != tc.drift {
			t.Errorf("Drift(%v) = %v, want %v", tc.remote, got, tc.drift)
		}
		if got := c.Health(tc.remote); got != tc.health {
			t.Errorf("Health(%v) = %v, want %v", tc.remote, got, tc.health)
		}
		_, err := c.Receive(tc.remote)
		if rejected := errors.Is(err, ErrClockDrift); rejected != (tc.health == Critical) {
			t.Errorf("Receive(%v) error = %v, but Health = %v", tc.remote, err, tc.health)
		}
	}
	if s := c.Stats(); s.DegradedReceives != 2 || s.DriftRejections != 2 {
		t.Errorf("Stats = %+v, want 2 degraded, 2 rejected", s)
	}
	// Saturation: a remote at the top of the range against a wall at 0.
	w.setMillis(0)
	if got := c.Drift(ts(t, MaxPhysical, 0)); got != math.MaxInt64 {
		t.Errorf("Drift saturates to %v, want MaxInt64", got)
	}
	w.setMillis(MaxPhysical)
	if got := c.Drift(0); got != math.MinInt64 {
		t.Errorf("Drift saturates to %v, want MinInt64", got)
	}
	if got := c.Health(0); got != Healthy {
		t.Errorf("Health(far behind) = %v, want healthy", got)
	}
	for h, s := range map[Health]string{Healthy: "healthy", Degraded: "degraded", Critical: "critical", 9: "health(9)"} {
		if h.String() != s {
			t.Errorf("Health(%d).String() = %q, want %q", h, h.String(), s)
		}
	}
}

// TestConcurrentMonotonic runs Now and Receive from many goroutines
// against a wall clock that also moves (forwards and backwards) and checks
// that every issued timestamp is unique and each goroutine sees a strictly
// increasing sequence. Run it with -race.
func TestConcurrentMonotonic(t *testing.T) {
	const (
		goroutines = 16
		perG       = 5000
	)
	w := newFakeWall(t0)
	c := newClock(t, w)
	results := make([][]Timestamp, goroutines)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wallDone := make(chan struct{})
	go func() {
		defer close(wallDone)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%5 == 4 {
				w.addMillis(-3)
			} else {
				w.addMillis(1)
			}
			runtime.Gosched() // let the clock users run between steps
		}
	}()
	for g := range goroutines {
		wg.Go(func() {
			out := make([]Timestamp, 0, perG)
			for i := range perG {
				var v Timestamp
				if (g+i)%3 == 0 {
					// Receive a timestamp close to the wall clock; within
					// max drift, so it is never rejected.
					r := Timestamp(uint64(w.now().UnixMilli())<<20 | uint64(i))
					var err error
					if v, err = c.Receive(r); err != nil {
						t.Errorf("Receive(%v): %v", r, err)
						return
					}
					if v <= r {
						t.Errorf("Receive(%v) = %v, not above remote", r, v)
						return
					}
				} else {
					v = c.Now()
				}
				if len(out) > 0 && v <= out[len(out)-1] {
					t.Errorf("goroutine %d: %v after %v", g, v, out[len(out)-1])
					return
				}
				out = append(out, v)
			}
			results[g] = out
		})
	}
	wg.Wait()
	close(stop)
	<-wallDone
	var all []Timestamp
	for _, r := range results {
		all = append(all, r...)
	}
	slices.Sort(all)
	if len(all) != goroutines*perG {
		t.Fatalf("collected %d timestamps, want %d", len(all), goroutines*perG)
	}
	for i := 1; i < len(all); i++ {
		if all[i] == all[i-1] {
			t.Fatalf("timestamp %v issued twice", all[i])
		}
	}
	if last := c.Last(); last != all[len(all)-1] {
		t.Fatalf("Last = %v, largest issued = %v", last, all[len(all)-1])
	}
}

func BenchmarkNow(b *testing.B) {
	var c Clock
	b.ReportAllocs()
	for b.Loop() {
		c.Now()
	}
}

func BenchmarkNowParallel(b *testing.B) {
	var c Clock
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Now()
		}
	})
}

func BenchmarkReceive(b *testing.B) {
	var c Clock
	remote := c.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Receive(remote); err != nil {
			b.Fatal(err)
		}
	}
}
