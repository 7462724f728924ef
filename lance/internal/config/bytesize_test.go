package config

import (
	"errors"
	"math"
	"testing"
)

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{
		"0":          0,
		"262144":     262144,
		" 42 ":       42,
		"512B":       512,
		"256KiB":     256 * KiB,
		"256kib":     256 * KiB,
		"64 MiB":     64 * MiB,
		"1GiB":       GiB,
		"2TiB":       2 * TiB,
		"8388607TiB": 8388607 * TiB,
	} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "KiB", "-1", "1.5GiB", "256KB", "1MB", "1G", "1 GiB x", "8388608TiB", "99999999999999999999"} {
		if got, err := ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) = %d, want an error", in, got)
		} else if !errors.Is(err, errByteSize) {
			t.Errorf("ParseByteSize(%q): error %v does not wrap errByteSize", in, err)
		}
	}
}

func TestByteSizeString(t *testing.T) {
	for _, tc := range []struct {
		in   ByteSize
		want string
	}{
		{0, "0"}, {1, "1"}, {1023, "1023"}, {KiB, "1KiB"}, {1536, "1536"}, {4 * MiB, "4MiB"},
		{3 * GiB, "3GiB"}, {TiB, "1TiB"}, {16_777_156, "16777156"}, {-5, "-5"}, {math.MaxInt64, "9223372036854775807"},
	} {
		if got := tc.in.String(); got != tc.want {
			t.Errorf("%d.String() = %q, want %q", int64(tc.in), got, tc.want)
		}
		if tc.in >= 0 {
			back, err := ParseByteSize(tc.in.String())
			if err != nil || back != tc.in {
				t.Errorf("round trip of %d: %d %v", int64(tc.in), back, err)
			}
		}
	}
}

func TestByteSizeTOML(t *testing.T) {
	var b ByteSize
	if err := b.UnmarshalTOML(int64(4096)); err != nil || b != 4096 {
		t.Fatal(b, err)
	}
	if err := b.UnmarshalTOML("1MiB"); err != nil || b != MiB {
		t.Fatal(b, err)
	}
	for _, v := range []any{int64(-1), 1.5, true, "x"} {
		if err := b.UnmarshalTOML(v); err == nil {
			t.Errorf("%v accepted", v)
		}
	}
	if err := b.UnmarshalText([]byte("2KiB")); err != nil || b != 2*KiB {
		t.Fatal(b, err)
	}
	if txt, _ := b.MarshalText(); string(txt) != "2KiB" {
		t.Fatal(string(txt))
	}
}
