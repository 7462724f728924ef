package cli

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	lance "github.com/lance-go/lance/lnc-client"
	"github.com/lance-go/lance/lnc-core/tlv"
)

// typeNames are the names --type accepts and consume prints.
var typeNames = []struct {
	name string
	t    lance.RecordType
}{
	{"auto", lance.TypeAuto},
	{"raw", lance.TypeRaw},
	{"json", lance.TypeJSON},
	{"msgpack", lance.TypeMessagePack},
	{"protobuf", lance.TypeProtobuf},
	{"avro", lance.TypeAvro},
	{"kv", lance.TypeKeyValue},
	{"timestamped", lance.TypeTimestamped},
	{"key-timestamped", lance.TypeKeyTimestamped},
	{"null", lance.TypeNull},
}

// typeCompressed is the client's TLV type for a compressed batch, which it
// refuses to produce.
const typeCompressed = tlv.Type(0x0F)

// parseType parses a --type value: a name of typeNames or a type byte
// (0x01..0xFE, hex with 0x or decimal) other than 0x0F.
func parseType(s string) (lance.RecordType, error) {
	for _, tn := range typeNames {
		if s == tn.name {
			return tn.t, nil
		}
	}
	v, err := strconv.ParseUint(s, 0, 8)
	if err != nil {
		return 0, usagef("--type %q: want one of %s, or a type byte such as 0x80", s, typeList())
	}
	switch t := tlv.Type(v); t {
	case tlv.TypeReserved:
		return 0, usagef("--type 0x00 is reserved")
	case typeCompressed:
		return 0, usagef("--type 0x0F is the client's compressed batch")
	default:
		return t, nil
	}
}

func typeList() string {
	names := make([]string, len(typeNames))
	for i, tn := range typeNames {
		names[i] = tn.name
	}
	return strings.Join(names, ", ")
}

// typeName names t as --type would.
func typeName(t lance.RecordType) string {
	for _, tn := range typeNames {
		if t == tn.t {
			return tn.name
		}
	}
	return fmt.Sprintf("0x%02x", uint8(t))
}

// parseTime parses a point in time:
//
//	2026-11-27T08:00:00Z, 2026-11-27T08:00:00.5+01:00   RFC 3339
//	1764230400000ms, 1764230400000000000ns, 1764230400s  Unix time with a unit
//	1764230400000                                        Unix time: ms up to 13 digits, ns above
//	-15m, -2h30m                                         that long before now
//	now                                                  now
func parseTime(s string, now time.Time) (time.Time, error) {
	switch {
	case s == "now":
		return now, nil
	case strings.HasPrefix(s, "-"):
		d, err := time.ParseDuration(s[1:])
		if err != nil || d < 0 {
			return time.Time{}, fmt.Errorf("%q is not a duration before now such as -15m", s)
		}
		return now.Add(-d), nil
	case strings.ContainsAny(s, "T:"):
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time: %w", s, err)
		}
		return t, nil
	}
	digits, unit := s, ""
	for _, u := range []string{"ns", "ms", "s"} {
		if d, ok := strings.CutSuffix(s, u); ok {
			digits, unit = d, u
			break
		}
	}
	v, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || v < 0 || digits == "" || digits[0] == '+' {
		return time.Time{}, fmt.Errorf("%q is not a time: want RFC 3339, Unix time with ns, ms or s, -DURATION or now", s)
	}
	if unit == "" {
		unit = "ns"
		if len(digits) <= 13 {
			unit = "ms"
		}
	}
	switch unit {
	case "ms":
		if v > math.MaxInt64/int64(time.Millisecond) {
			return time.Time{}, fmt.Errorf("%q is out of range", s)
		}
		return time.UnixMilli(v), nil
	case "s":
		if v > math.MaxInt64/int64(time.Second) {
			return time.Time{}, fmt.Errorf("%q is out of range", s)
		}
		return time.Unix(v, 0), nil
	}
	return time.Unix(0, v), nil
}

// start says where consume and export begin.
type start struct {
	kind int
	off  lance.Offset
	t    time.Time
}

const (
	startEarliest = iota
	startLatest
	startOffset
	startTime
)

// parseStart parses --offset: earliest, latest, a byte offset, or @ and a
// time as parseTime reads it.
func parseStart(s string, now time.Time) (start, error) {
	switch {
	case s == "earliest":
		return start{kind: startEarliest}, nil
	case s == "latest":
		return start{kind: startLatest}, nil
	case strings.HasPrefix(s, "@"):
		t, err := parseTime(s[1:], now)
		if err != nil {
			return start{}, usagef("--offset: %w", err)
		}
		return start{kind: startTime, t: t}, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return start{}, usagef("--offset %q: want earliest, latest, a byte offset or @TIME", s)
	}
	return start{kind: startOffset, off: lance.Offset(v)}, nil
}

// seekTarget returns the client's seek target for a start that is not
// latest.
func (s start) seekTarget() lance.SeekTarget {
	switch s.kind {
	case startOffset:
		return lance.SeekOffset(s.off)
	case startTime:
		return lance.SeekTime(s.t)
	case startLatest:
		return lance.SeekEnd
	}
	return lance.SeekBeginning
}

// parseSize parses a byte count: digits, optionally with a unit B, KB,
// MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024).
func parseSize(s string) (uint64, error) {
	units := []struct {
		suffix string
		mult   uint64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
	}
	digits, mult := s, uint64(1)
	for _, u := range units {
		if d, ok := strings.CutSuffix(s, u.suffix); ok {
			digits, mult = strings.TrimSpace(d), u.mult
			break
		}
	}
	v, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size such as 1073741824, 512MiB or 10GB", s)
	}
	if v > math.MaxUint64/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return v * mult, nil
}

// parseAge parses a retention age: a Go duration (90m, 168h) or whole
// days (7d), in whole seconds; 0 means unlimited.
func parseAge(s string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseUint(days, 10, 32)
		if err != nil || n > 100*365 {
			return 0, fmt.Errorf("%q is not a number of days such as 7d", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("%q is not a duration such as 168h or 7d", s)
		}
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	if d%time.Second != 0 {
		return 0, fmt.Errorf("%q is not a whole number of seconds (the server counts seconds)", s)
	}
	return d, nil
}

// formatAge and formatBytes show retention limits, 0 as unlimited.
func formatAge(d time.Duration) string {
	if d == 0 {
		return "unlimited"
	}
	return d.String()
}

func formatBytes(n uint64) string {
	if n == 0 {
		return "unlimited"
	}
	return strconv.FormatUint(n, 10)
}
