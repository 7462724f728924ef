// Package checksum holds the two CRC-32 dialects that LANCE frames and
// storage may be protected with.
//
// The Rust reference implementation computes every frame checksum with
// CRC-32/IEEE (reflected polynomial 0xEDB88320) behind a function named
// crc32c; the published LWP specification asks for CRC-32C (Castagnoli,
// reflected polynomial 0x82F63B78). Both are spoken: a Dialect value names
// one of them and computes it. Nothing else in the code base calls
// hash/crc32 directly for frames, so the choice lives in one place.
package checksum

import (
	"errors"
	"fmt"
	"hash/crc32"
)

// Dialect selects a CRC-32 polynomial. The zero value is "not chosen yet";
// Sum and Update panic on it, because computing a checksum without knowing
// the dialect is a programming error, never an input error.
type Dialect uint8

// These values are never written on the wire or on disk, but other packages
// index small per-dialect tables with them: keep them 1 and 2, and the zero
// value meaning "unset".
const (
	// IEEE is CRC-32/IEEE (ISO-HDLC), what the Rust client and server
	// use. Check value for "123456789": 0xCBF43926.
	IEEE Dialect = 1
	// Castagnoli is CRC-32C, what the LWP specification names.
	// Check value for "123456789": 0xE3069283.
	Castagnoli Dialect = 2
)

// ErrUnknownDialect is returned by ParseDialect for a name it does not know.
var ErrUnknownDialect = errors.New("checksum: unknown dialect")

// castagnoli is built once; hash/crc32 recognises this exact table and
// takes its SSE4.2 / ARMv8 path for it.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Valid reports whether d names a dialect.
func (d Dialect) Valid() bool { return d == IEEE || d == Castagnoli }

// String returns the name ParseDialect accepts.
func (d Dialect) String() string {
	switch d {
	case IEEE:
		return "ieee"
	case Castagnoli:
		return "crc32c"
	default:
		return fmt.Sprintf("dialect(%d)", uint8(d))
	}
}

// ParseDialect maps a configuration string to a Dialect. It accepts
// "ieee" and "crc32c" (also "castagnoli").
func ParseDialect(s string) (Dialect, error) {
	switch s {
	case "ieee", "IEEE":
		return IEEE, nil
	case "crc32c", "CRC32C", "castagnoli", "Castagnoli":
		return Castagnoli, nil
	}
	return 0, fmt.Errorf("%w: %q (want ieee or crc32c)", ErrUnknownDialect, s)
}

// Sum returns the CRC of b in dialect d.
func (d Dialect) Sum(b []byte) uint32 { return d.Update(0, b) }

// Update continues crc (a previous result of Sum or Update, or 0) over b,
// so that Update(Sum(a), b) == Sum(a ++ b).
func (d Dialect) Update(crc uint32, b []byte) uint32 {
	switch d {
	case IEEE:
		return crc32.Update(crc, crc32.IEEETable, b)
	case Castagnoli:
		return crc32.Update(crc, castagnoli, b)
	}
	panic(fmt.Sprintf("checksum: Sum with invalid %v", d))
}
