package hlc

import (
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"
)

// Default drift thresholds, matching the upstream LANCE health levels.
const (
	// DefaultMaxDrift is how far a remote physical time may be ahead of
	// the local wall clock before Receive rejects it. Beyond it the drift
	// is Critical.
	DefaultMaxDrift = time.Second
	// DefaultDegradedDrift is the drift above which Health reports
	// Degraded.
	DefaultDegradedDrift = 100 * time.Millisecond
)

var (
	// ErrClockDrift is wrapped by the error Receive returns when the remote
	// physical time is too far ahead of the local wall clock.
	ErrClockDrift = errors.New("hlc: remote clock drift exceeds maximum")
	// ErrExhausted is wrapped by the error Receive returns when no
	// timestamp after the merged one exists (physical part at MaxPhysical,
	// logical part at MaxLogical).
	ErrExhausted = errors.New("hlc: timestamp space exhausted")
	// ErrConfig is wrapped by the error New returns for an invalid option.
	ErrConfig = errors.New("hlc: invalid configuration")
)

// Health classifies how far a remote clock is ahead of the local wall
// clock. A remote clock that is behind is always Healthy: the local clock
// dominates the merge, so a lagging peer cannot disturb it.
type Health uint8

const (
	// Healthy: the remote physical time is at most the degraded threshold
	// ahead (100 ms by default).
	Healthy Health = iota
	// Degraded: ahead by more than the degraded threshold but no more than
	// the maximum drift (1 s by default). Receive still accepts it.
	Degraded
	// Critical: ahead by more than the maximum drift. Receive rejects it.
	Critical
)

// String returns "healthy", "degraded" or "critical".
func (h Health) String() string {
	switch h {
	case Healthy:
		return "healthy"
	case Degraded:
		return "degraded"
	case Critical:
		return "critical"
	}
	return fmt.Sprintf("health(%d)", uint8(h))
}

// Option configures a Clock in New.
type Option func(*Clock) error

// WithWallClock sets the function the clock reads physical time from. It
// defaults to time.Now; tests pass a fake. Times before the Unix epoch read
// as 0; a time at or after 2^44 ms (about the year 2527) makes the clock
// panic, since no timestamp can represent it.
func WithWallClock(now func() time.Time) Option {
	return func(c *Clock) error {
		if now == nil {
			return fmt.Errorf("%w: nil wall clock", ErrConfig)
		}
		c.wall = now
		return nil
	}
}

// WithMaxDrift sets how far ahead of the local wall clock a remote physical
// time may be for Receive to accept it (DefaultMaxDrift if not set). The
// comparison is done in whole milliseconds, the resolution of the physical
// part. d must be positive.
func WithMaxDrift(d time.Duration) Option {
	return func(c *Clock) error {
		if d <= 0 {
			return fmt.Errorf("%w: max drift %v must be positive", ErrConfig, d)
		}
		c.maxDrift = d
		return nil
	}
}

// WithDegradedDrift sets the drift above which Health reports Degraded
// (DefaultDegradedDrift if not set). d must be positive and no larger than
// the maximum drift.
func WithDegradedDrift(d time.Duration) Option {
	return func(c *Clock) error {
		if d <= 0 {
			return fmt.Errorf("%w: degraded drift %v must be positive", ErrConfig, d)
		}
		c.degradedDrift = d
		return nil
	}
}

// Stats are cumulative event counts of a Clock, for metrics.
type Stats struct {
	// LogicalExhaustions counts timestamps for which the logical counter
	// was full and the physical part was moved one millisecond ahead.
	LogicalExhaustions uint64
	// DegradedReceives counts remote timestamps accepted by Receive with
	// Degraded drift.
	DegradedReceives uint64
	// DriftRejections counts remote timestamps Receive rejected with
	// ErrClockDrift.
	DriftRejections uint64
}

// Clock is a hybrid logical clock. It is safe for concurrent use: all of
// its mutable state is one atomic uint64 holding the last Timestamp issued,
// and every update is a compare-and-swap from the value just read to a value
// computed from it (plus the wall clock and the remote timestamp). A CAS
// that loses a race retries from the new value, so the successful updates
// form a single chain in which each value is strictly greater than the one
// it replaced; no two callers can receive the same timestamp, and a
// timestamp returned after another one returned (in real time) is larger.
// The counters in Stats are separate atomics and are only incremented after
// the CAS they describe succeeded.
//
// The zero Clock is ready to use with time.Now and the default thresholds.
// A Clock must not be copied after first use.
type Clock struct {
	state atomic.Uint64 // last Timestamp issued or accepted

	wall          func() time.Time // nil means time.Now
	maxDrift      time.Duration    // 0 means DefaultMaxDrift
	degradedDrift time.Duration    // 0 means DefaultDegradedDrift

	exhaustions atomic.Uint64
	degraded    atomic.Uint64
	rejected    atomic.Uint64
}

// New returns a Clock configured by opts. It returns an error wrapping
// ErrConfig if an option is invalid or the degraded threshold is above the
// maximum drift.
func New(opts ...Option) (*Clock, error) {
	c := &Clock{}
	for _, opt := range opts {
		if err := opt(c); err != nil {
			return nil, err
		}
	}
	if c.degradedThreshold() > c.maxThreshold() {
		return nil, fmt.Errorf("%w: degraded drift %v above max drift %v",
			ErrConfig, c.degradedThreshold(), c.maxThreshold())
	}
	return c, nil
}

func (c *Clock) maxThreshold() time.Duration {
	if c.maxDrift == 0 {
		return DefaultMaxDrift
	}
	return c.maxDrift
}

func (c *Clock) degradedThreshold() time.Duration {
	if c.degradedDrift == 0 {
		return DefaultDegradedDrift
	}
	return c.degradedDrift
}

// wallMillis reads the wall clock in Unix milliseconds, clamped at 0 below
// the epoch. It panics beyond MaxPhysical: a wall clock in the year 2527 is
// a broken clock, and carrying on would break monotonicity.
func (c *Clock) wallMillis() uint64 {
	var t time.Time
	if c.wall != nil {
		t = c.wall()
	} else {
		t = time.Now()
	}
	ms := t.UnixMilli()
	if ms < 0 {
		return 0
	}
	if uint64(ms) > MaxPhysical {
		panic(fmt.Sprintf("hlc: wall clock %v is beyond the 44-bit millisecond range", t))
	}
	return uint64(ms)
}

// Last returns the most recent timestamp issued by Now or Receive, without
// advancing the clock. It is 0 for a new clock.
func (c *Clock) Last() Timestamp { return Timestamp(c.state.Load()) }

// Now returns a new timestamp: strictly greater than every timestamp this
// clock issued before and every remote timestamp it accepted, with a
// physical part no earlier than the wall clock. It panics only if the wall
// clock reads beyond MaxPhysical or the 64-bit timestamp space is used up,
// both of which mean the year 2527.
func (c *Clock) Now() Timestamp {
	wall := c.wallMillis()
	for {
		old := Timestamp(c.state.Load())
		var next Timestamp
		exhausted := false
		if wall > old.Physical() {
			next = pack(wall, 0)
		} else {
			if old == math.MaxUint64 {
				panic("hlc: timestamp space exhausted")
			}
			// Adding one bumps the logical counter, or, when it is
			// full, carries into the physical part with logical 0.
			next = old + 1
			exhausted = old.Logical() == MaxLogical
		}
		if c.state.CompareAndSwap(uint64(old), uint64(next)) {
			if exhausted {
				c.exhaustions.Add(1)
			}
			return next
		}
	}
}

// Receive merges a timestamp received from another node and returns a new
// local timestamp that is strictly greater than remote, than every
// timestamp this clock issued before, and whose physical part is no earlier
// than the wall clock. With l the largest of the local last physical time,
// the remote physical time and the wall clock:
//
//   - l equal to both the local and the remote physical time: logical is one
//     more than the larger of the two logical counters;
//   - l equal to the local physical time only: local logical + 1;
//   - l equal to the remote physical time only: remote logical + 1;
//   - l from the wall clock alone: logical 0.
//
// A logical result above MaxLogical moves to the next millisecond with
// logical 0, as described in the package documentation.
//
// If remote's physical time is ahead of the wall clock by more than the
// maximum drift, Receive leaves the clock unchanged and returns 0 and an
// error wrapping ErrClockDrift.
func (c *Clock) Receive(remote Timestamp) (Timestamp, error) {
	wall := c.wallMillis()
	switch c.classify(remote, wall) {
	case Critical:
		c.rejected.Add(1)
		return 0, fmt.Errorf("%w: remote %v is %v ahead of local wall clock (max %v)",
			ErrClockDrift, remote, driftOf(remote, wall), c.maxThreshold())
	case Degraded:
		c.degraded.Add(1)
	}
	for {
		old := Timestamp(c.state.Load())
		next, exhausted, ok := merge(old, remote, wall)
		if !ok {
			return 0, fmt.Errorf("%w: cannot advance past %v", ErrExhausted, max(old, remote))
		}
		if c.state.CompareAndSwap(uint64(old), uint64(next)) {
			if exhausted {
				c.exhaustions.Add(1)
			}
			return next, nil
		}
	}
}

// merge applies the HLC receive rule. exhausted reports that the logical
// counter overflowed into the next millisecond; ok is false when even that
// is impossible.
func merge(local, remote Timestamp, wall uint64) (next Timestamp, exhausted, ok bool) {
	lp, rp := local.Physical(), remote.Physical()
	l := max(lp, rp, wall)
	var logical uint64
	switch {
	case l == lp && l == rp:
		logical = uint64(max(local.Logical(), remote.Logical())) + 1
	case l == lp:
		logical = uint64(local.Logical()) + 1
	case l == rp:
		logical = uint64(remote.Logical()) + 1
	default:
		logical = 0
	}
	if logical <= MaxLogical {
		return pack(l, logical), false, true
	}
	if l == MaxPhysical {
		return 0, false, false
	}
	return pack(l+1, 0), true, true
}

// Drift returns how far remote's physical time is ahead of the local wall
// clock, at millisecond resolution; it is negative when remote is behind.
// Values beyond what a time.Duration holds (about 292 years) saturate.
func (c *Clock) Drift(remote Timestamp) time.Duration {
	return driftOf(remote, c.wallMillis())
}

// Health classifies remote against the local wall clock with the clock's
// thresholds: Critical exactly when Receive would reject it.
func (c *Clock) Health(remote Timestamp) Health {
	return c.classify(remote, c.wallMillis())
}

// classify compares in whole milliseconds. For an integer n of milliseconds
// and a threshold d, n ms > d holds exactly when n > floor(d / 1ms), which
// avoids converting a possibly huge n to a Duration.
func (c *Clock) classify(remote Timestamp, wall uint64) Health {
	rp := remote.Physical()
	if rp <= wall {
		return Healthy
	}
	ahead := rp - wall
	switch {
	case ahead > uint64(c.maxThreshold()/time.Millisecond):
		return Critical
	case ahead > uint64(c.degradedThreshold()/time.Millisecond):
		return Degraded
	}
	return Healthy
}

// driftOf returns remote's physical time minus wall as a Duration,
// saturating. Both are below 2^44, so the difference fits an int64.
func driftOf(remote Timestamp, wall uint64) time.Duration {
	const limit = math.MaxInt64 / int64(time.Millisecond)
	ms := int64(remote.Physical()) - int64(wall)
	switch {
	case ms > limit:
		return math.MaxInt64
	case ms < -limit:
		return math.MinInt64
	}
	return time.Duration(ms) * time.Millisecond
}

// Stats returns the clock's event counters.
func (c *Clock) Stats() Stats {
	return Stats{
		LogicalExhaustions: c.exhaustions.Load(),
		DegradedReceives:   c.degraded.Load(),
		DriftRejections:    c.rejected.Load(),
	}
}
