package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ByteSize is a count of bytes. In lance.toml it is either an integer (a
// byte count) or a string with a binary unit: "512B", "256KiB", "64MiB",
// "1GiB", "2TiB". Environment variables and flags take the same strings.
// Decimal units ("KB", "MB") are refused because people use them for both
// 1000 and 1024; write the IEC unit or the byte count instead.
type ByteSize int64

// Binary units, for building sizes in code.
const (
	KiB ByteSize = 1 << 10
	MiB ByteSize = 1 << 20
	GiB ByteSize = 1 << 30
	TiB ByteSize = 1 << 40
)

// errByteSize is the cause behind every size parse failure.
var errByteSize = errors.New("not a byte size")

var sizeUnits = []struct {
	name string
	mult ByteSize
}{
	{"TiB", TiB},
	{"GiB", GiB},
	{"MiB", MiB},
	{"KiB", KiB},
	{"B", 1},
}

// ParseByteSize reads a byte count ("262144") or a whole number followed by
// one of B, KiB, MiB, GiB, TiB (case-insensitive, optional space between
// number and unit). Negative sizes and overflowing values are errors.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("%w: empty", errByteSize)
	}
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%w: %q does not start with a whole number of bytes", errByteSize, s)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q is too large", errByteSize, s)
	}
	unit := strings.TrimSpace(t[i:])
	if unit == "" {
		return ByteSize(n), nil
	}
	for _, u := range sizeUnits {
		if strings.EqualFold(unit, u.name) {
			if n > math.MaxInt64/int64(u.mult) {
				return 0, fmt.Errorf("%w: %q is too large", errByteSize, s)
			}
			return ByteSize(n) * u.mult, nil
		}
	}
	return 0, fmt.Errorf("%w: %q has unit %q; use B, KiB, MiB, GiB or TiB", errByteSize, s, unit)
}

// String writes the size with the largest binary unit that divides it
// exactly ("64MiB"), or as a plain byte count ("16777156").
func (b ByteSize) String() string {
	if b > 0 {
		for _, u := range sizeUnits[:len(sizeUnits)-1] {
			if b%u.mult == 0 {
				return strconv.FormatInt(int64(b/u.mult), 10) + u.name
			}
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// UnmarshalTOML accepts a TOML integer (bytes) or a string in the form
// ParseByteSize reads.
func (b *ByteSize) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case int64:
		if x < 0 {
			return fmt.Errorf("%w: %d is negative", errByteSize, x)
		}
		*b = ByteSize(x)
		return nil
	case string:
		n, err := ParseByteSize(x)
		if err != nil {
			return err
		}
		*b = n
		return nil
	default:
		return fmt.Errorf("%w: want an integer or a string like \"64MiB\", got %T", errByteSize, v)
	}
}

// UnmarshalText reads the forms ParseByteSize reads.
func (b *ByteSize) UnmarshalText(text []byte) error {
	n, err := ParseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = n
	return nil
}

// MarshalText writes String's form, which ParseByteSize reads back.
func (b ByteSize) MarshalText() ([]byte, error) {
	return []byte(b.String()), nil
}
