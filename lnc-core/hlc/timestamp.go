// Package hlc implements a hybrid logical clock (HLC) whose timestamps pack
// into one uint64.
//
// # Layout
//
//	 bit 63                                   20 19                0
//	+-------------------------------------------+------------------+
//	| physical: Unix time in milliseconds (44)  | logical (20)     |
//	+-------------------------------------------+------------------+
//
// The physical part counts milliseconds since the Unix epoch and lasts until
// about the year 2527 (2^44 ms). The logical part counts events that share
// one physical millisecond, up to 2^20-1. Because the physical part holds
// the high bits, timestamps order correctly as plain uint64 values: compare
// them with <, == and >. When a timestamp is written as bytes (for example
// in replication messages) it is the uint64 in the byte order of the
// enclosing format; this package does not fix one.
//
// # Clock contract
//
// Clock.Now returns a timestamp strictly greater than every timestamp the
// clock returned before and every remote timestamp it accepted through
// Receive, and whose physical part is at least the local wall clock.
// Receive merges a timestamp from another node with the usual HLC rule
// (Kulkarni et al., "Logical Physical Clocks", 2014), but refuses a remote
// physical time that is ahead of the local wall clock by more than the
// configured maximum drift: such a timestamp is not adopted, the clock is left
// unchanged, and the error wraps ErrClockDrift.
//
// # Logical exhaustion
//
// If 2^20 timestamps are needed within one millisecond, the clock does not
// let the logical counter wrap: it moves the physical part forward by one
// millisecond and restarts the logical part at 0. For the packed uint64 this
// is simply "add one" (the carry goes from bit 19 into bit 20), so
// timestamps stay unique and increasing. The physical part then runs ahead of
// the wall clock until the wall clock catches up. Stats counts these
// events.
package hlc

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Field widths and limits of the packed form. They are part of every format
// that stores a Timestamp and must not change.
const (
	// PhysicalBits is the width of the physical (millisecond) part.
	PhysicalBits = 44
	// LogicalBits is the width of the logical counter.
	LogicalBits = 20
	// MaxPhysical is the largest physical value, in Unix milliseconds.
	MaxPhysical = 1<<PhysicalBits - 1
	// MaxLogical is the largest logical counter value.
	MaxLogical = 1<<LogicalBits - 1
)

// ErrRange is returned by Pack when a part does not fit its field.
var ErrRange = errors.New("hlc: value out of range")

// Timestamp is a packed HLC timestamp: physical milliseconds in the high 44
// bits, the logical counter in the low 20. Every uint64 is a valid
// Timestamp, and the zero Timestamp is earlier than all others.
type Timestamp uint64

// Pack builds a Timestamp. It returns an error wrapping ErrRange if
// physicalMillis is above MaxPhysical or logical is above MaxLogical.
func Pack(physicalMillis uint64, logical uint32) (Timestamp, error) {
	if physicalMillis > MaxPhysical {
		return 0, fmt.Errorf("%w: physical %d ms > %d", ErrRange, physicalMillis, uint64(MaxPhysical))
	}
	if logical > MaxLogical {
		return 0, fmt.Errorf("%w: logical %d > %d", ErrRange, logical, MaxLogical)
	}
	return pack(physicalMillis, uint64(logical)), nil
}

// pack combines parts that are already known to be in range.
func pack(physicalMillis, logical uint64) Timestamp {
	return Timestamp(physicalMillis<<LogicalBits | logical)
}

// Physical returns the physical part in Unix milliseconds.
func (t Timestamp) Physical() uint64 { return uint64(t) >> LogicalBits }

// Logical returns the logical counter.
func (t Timestamp) Logical() uint32 { return uint32(t & MaxLogical) }

// Unpack returns both parts; Pack(t.Unpack()) gives back t.
func (t Timestamp) Unpack() (physicalMillis uint64, logical uint32) {
	return t.Physical(), t.Logical()
}

// Time returns the physical part as a time.Time (UTC), dropping the logical
// counter.
func (t Timestamp) Time() time.Time {
	return time.UnixMilli(int64(t.Physical())).UTC()
}

// String formats t as the physical time in RFC 3339 with milliseconds,
// a slash, and the logical counter: "2024-02-03T00:00:00.000Z/5".
func (t Timestamp) String() string {
	b := make([]byte, 0, 40)
	b = t.Time().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, '/')
	b = strconv.AppendUint(b, uint64(t.Logical()), 10)
	return string(b)
}
