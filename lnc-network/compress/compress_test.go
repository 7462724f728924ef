package compress

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// algorithms lists every valid algorithm, in wire order.
var algorithms = []Algorithm{None, LZ4, Zstd, S2}

// sentinels lists the package's errors; every error Decode returns must
// wrap exactly one of them.
var sentinels = []error{ErrTruncated, ErrUnknownAlgorithm, ErrTooLarge, ErrCorrupt, ErrSizeMismatch}

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// semiCompressible returns n bytes of log-like text: words from a small
// vocabulary mixed with random numbers. At 64 KiB LZ4 and S2 shrink it to
// about 57%, zstd to about 34%.
func semiCompressible(seed uint64, n int) []byte {
	words := strings.Fields("topic offset partition consumer producer batch ack fetch " +
		"segment index leader follower replica commit lag error ok timeout retry " +
		"ingest record key value header stream client server node cluster")
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, 0, n+32)
	for len(b) < n {
		b = append(b, words[r.IntN(len(words))]...)
		if r.IntN(3) == 0 {
			b = fmt.Appendf(b, "=%d", r.Uint32())
		}
		b = append(b, ' ')
	}
	return b[:n]
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mustAppend builds an envelope or fails the test.
func mustAppend(t testing.TB, alg Algorithm, src []byte) []byte {
	t.Helper()
	env, err := Append(nil, alg, src)
	if err != nil {
		t.Fatalf("Append(%v, %d bytes): %v", alg, len(src), err)
	}
	return env
}

// setSize returns a copy of env with original_size replaced.
func setSize(env []byte, size uint32) []byte {
	c := bytes.Clone(env)
	binary.LittleEndian.PutUint32(c[1:], size)
	return c
}

// checkSentinel fails unless err wraps want and no other sentinel.
func checkSentinel(t testing.TB, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
	for _, s := range sentinels {
		if s != want && errors.Is(err, s) {
			t.Fatalf("error %v wraps both %v and %v", err, want, s)
		}
	}
}

// bytesPerCall reports the average number of heap bytes f allocates.
func bytesPerCall(runs int, f func()) float64 {
	f() // warm up lazily built state
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return float64(after.TotalAlloc-before.TotalAlloc) / float64(runs)
}

func TestAlgorithmNames(t *testing.T) {
	want := []string{"none", "lz4", "zstd", "s2"}
	for i, a := range algorithms {
		if uint8(a) != uint8(i) {
			t.Errorf("%v has wire value %d, want %d", a, uint8(a), i)
		}
		if a.String() != want[i] {
			t.Errorf("Algorithm(%d).String() = %q, want %q", i, a.String(), want[i])
		}
		if !a.Valid() {
			t.Errorf("%v not valid", a)
		}
		for _, s := range []string{want[i], strings.ToUpper(want[i])} {
			got, err := ParseAlgorithm(s)
			if err != nil || got != a {
				t.Errorf("ParseAlgorithm(%q) = %v, %v; want %v", s, got, err, a)
			}
		}
	}
	if got := Algorithm(7).String(); got != "algorithm(0x07)" {
		t.Errorf("Algorithm(7).String() = %q", got)
	}
	for _, a := range []Algorithm{4, 0x7f, 0xff} {
		if a.Valid() {
			t.Errorf("%v reported valid", a)
		}
	}
	for _, s := range []string{"", "gzip", "lz4 ", "snappy"} {
		if _, err := ParseAlgorithm(s); !errors.Is(err, ErrUnknownAlgorithm) {
			t.Errorf("ParseAlgorithm(%q) error = %v, want ErrUnknownAlgorithm", s, err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	inputs := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"1B", []byte{0x42}},
		{"1KiB-random", randomBytes(r, 1<<10)},
		{"1KiB-repetitive", bytes.Repeat([]byte("abcdefgh"), 128)},
		{"1MiB-text", semiCompressible(1, 1<<20)},
		{"1MiB-random", randomBytes(r, 1<<20)},
	}
	prefix := []byte("prefix")
	for _, alg := range algorithms {
		for _, in := range inputs {
			t.Run(alg.String()+"/"+in.name, func(t *testing.T) {
				env := mustAppend(t, alg, in.data)
				gotAlg, size, body, err := Header(env)
				if err != nil || gotAlg != alg || size != uint32(len(in.data)) {
					t.Fatalf("Header = %v, %d, err %v; want %v, %d", gotAlg, size, err, alg, len(in.data))
				}
				if len(body) != len(env)-HeaderSize {
					t.Fatalf("body is %d bytes, envelope %d", len(body), len(env))
				}
				out, err := Decode(nil, env, 0)
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if !bytes.Equal(out, in.data) {
					t.Fatalf("Decode returned %d bytes that differ from the %d put in", len(out), len(in.data))
				}

				// Appending to a non-empty dst keeps what was there.
				env2, err := Append(bytes.Clone(prefix), alg, in.data)
				if err != nil || !bytes.Equal(env2[:len(prefix)], prefix) || !bytes.Equal(env2[len(prefix):], env) {
					t.Fatalf("Append after a prefix: err %v, or bytes differ from a plain Append", err)
				}
				out2, err := Decode(bytes.Clone(prefix), env, 0)
				if err != nil || !bytes.Equal(out2, append(bytes.Clone(prefix), in.data...)) {
					t.Fatalf("Decode after a prefix: err %v, or bytes differ", err)
				}
			})
		}
	}
}

func TestCompressionShrinks(t *testing.T) {
	data := bytes.Repeat([]byte("abcdefgh"), 128)
	text := semiCompressible(2, 64<<10)
	for _, alg := range []Algorithm{LZ4, Zstd, S2} {
		if env := mustAppend(t, alg, data); len(env) > len(data)/4 {
			t.Errorf("%v: 1 KiB of repeated text became %d bytes", alg, len(env))
		}
		if env := mustAppend(t, alg, text); len(env) > len(text)*2/3 {
			t.Errorf("%v: 64 KiB of log text became %d bytes", alg, len(env))
		}
	}
}

func TestExactBytes(t *testing.T) {
	for _, tc := range []struct {
		alg  Algorithm
		in   string
		want string
	}{
		// The example of the brief and the LWP digest's layout.
		{None, "hello", "00 05000000 68656c6c6f"},
		{None, "", "00 00000000"},
		// lz4_flex::compress_prepend_size writes the size, then a
		// block; a short input is a single literal run: token 0x50.
		{LZ4, "hello", "01 05000000 05000000 50 68656c6c6f"},
		// An empty input still has its one (empty) sequence token.
		{LZ4, "", "01 00000000 00000000 00"},
		// S2: varint length 5, then literal tag (5-1)<<2.
		{S2, "hello", "03 05000000 05 10 68656c6c6f"},
		{S2, "", "03 00000000 00"},
	} {
		got := mustAppend(t, tc.alg, []byte(tc.in))
		if want := unhex(t, tc.want); !bytes.Equal(got, want) {
			t.Errorf("Append(%v, %q) = % x, want % x", tc.alg, tc.in, got, want)
		}
	}

	// Zstd output depends on the encoder, but the frame starts with the
	// zstd magic and records its content size.
	for _, in := range []string{"", "hello"} {
		env := mustAppend(t, Zstd, []byte(in))
		want := append([]byte{0x02}, binary.LittleEndian.AppendUint32(nil, uint32(len(in)))...)
		want = append(want, 0x28, 0xb5, 0x2f, 0xfd)
		if !bytes.HasPrefix(env, want) {
			t.Errorf("Append(Zstd, %q) = % x, want a prefix % x", in, env, want)
		}
	}
}

// zstdRawFrame builds a zstd frame by hand the way a streaming encoder
// such as the Rust side's zstd::encode_all does: no content size in the
// header, a 128 KiB window (descriptor 0x38: exponent 7), and the data cut
// into raw blocks.
func zstdRawFrame(data []byte, blockSize int) []byte {
	return zstdRawFrameWindow(data, blockSize, 0x38)
}

// zstdRawFrameWindow is zstdRawFrame with another window descriptor.
func zstdRawFrameWindow(data []byte, blockSize int, window byte) []byte {
	f := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, window}
	for {
		n := min(blockSize, len(data))
		last := n == len(data)
		h := uint32(n) << 3 // block type 0: raw
		if last {
			h |= 1
		}
		f = append(f, byte(h), byte(h>>8), byte(h>>16))
		f = append(f, data[:n]...)
		data = data[n:]
		if last {
			return f
		}
	}
}

// zstdRLEFrame builds a frame without content size whose count RLE blocks
// each expand one byte into 128 KiB: a small body that decodes to a lot.
func zstdRLEFrame(count int) []byte {
	f := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38}
	for i := range count {
		h := uint32(128<<10)<<3 | 1<<1 // block type 1: RLE
		if i == count-1 {
			h |= 1
		}
		f = append(f, byte(h), byte(h>>8), byte(h>>16), 'x')
	}
	return f
}

func zstdEnvelope(size int, frame []byte) []byte {
	env := binary.LittleEndian.AppendUint32([]byte{byte(Zstd)}, uint32(size))
	return append(env, frame...)
}

func TestZstdWithoutContentSize(t *testing.T) {
	data := semiCompressible(3, 3000)
	for _, bs := range []int{1024, 3000} {
		env := zstdEnvelope(len(data), zstdRawFrame(data, bs))
		out, err := Decode(nil, env, 0)
		if err != nil || !bytes.Equal(out, data) {
			t.Fatalf("blocks of %d: Decode = %d bytes, %v", bs, len(out), err)
		}
		// Without a content size in the frame only the decoder can
		// notice a wrong declaration, in both directions.
		for _, size := range []int{len(data) - 1, len(data) + 1, 0} {
			_, err := Decode(nil, setSize(env, uint32(size)), 0)
			checkSentinel(t, err, ErrSizeMismatch)
		}
	}
	// A large window, as the Rust encoder declares at high levels, costs
	// nothing: the decoder writes into the output buffer. 0x80 is a
	// 64 MiB window; 0x90 (256 MiB) is over the 128 MiB that libzstd
	// accepts by default, and refused.
	small := data[:100]
	env := zstdEnvelope(len(small), zstdRawFrameWindow(small, 100, 0x80))
	var out []byte
	var err error
	if b := bytesPerCall(20, func() { out, err = Decode(nil, env, 0) }); err != nil || !bytes.Equal(out, small) || b > 4096 {
		t.Fatalf("64 MiB window: Decode = %d bytes, %v, %.0f bytes allocated per call", len(out), err, b)
	}
	env = zstdEnvelope(len(small), zstdRawFrameWindow(small, 100, 0x90))
	_, err = Decode(nil, env, 0)
	checkSentinel(t, err, ErrCorrupt)

	// An empty frame as libzstd writes it for empty input: no content
	// size, one empty last raw block.
	env = zstdEnvelope(0, zstdRawFrame(nil, 1))
	if out, err := Decode(nil, env, 0); err != nil || len(out) != 0 {
		t.Fatalf("empty frame: Decode = %q, %v", out, err)
	}
}

func TestDecodeTooLarge(t *testing.T) {
	for _, alg := range algorithms {
		// Declares 4 GiB - 1 with a 10-byte body.
		env := append([]byte{byte(alg), 0xff, 0xff, 0xff, 0xff}, make([]byte, 10)...)
		var err error
		allocs := testing.AllocsPerRun(100, func() { _, err = Decode(nil, env, 1<<20) })
		checkSentinel(t, err, ErrTooLarge)
		// The error message is formatted; nothing else may be allocated.
		if allocs > 4 && !raceEnabled {
			t.Errorf("%v: %v allocations to reject a 4 GiB declaration", alg, allocs)
		}
		if b := bytesPerCall(100, func() { _, err = Decode(nil, env, 0) }); b > 512 {
			t.Errorf("%v: %.0f bytes allocated to reject a 4 GiB declaration", alg, b)
		}
		checkSentinel(t, err, ErrTooLarge)
	}

	// The limit itself is allowed, one more byte is not.
	data := bytes.Repeat([]byte{'z'}, 1000)
	for _, alg := range algorithms {
		env := mustAppend(t, alg, data)
		if _, err := Decode(nil, env, 1000); err != nil {
			t.Errorf("%v: Decode at the limit: %v", alg, err)
		}
		_, err := Decode(nil, env, 999)
		checkSentinel(t, err, ErrTooLarge)
	}

	// A limit of zero or less means MaxOriginalSize; the check comes
	// before the body is looked at.
	env := []byte{byte(None), 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(env[1:], MaxOriginalSize+1)
	for _, limit := range []int{0, -1} {
		_, err := Decode(nil, env, limit)
		checkSentinel(t, err, ErrTooLarge)
	}
	binary.LittleEndian.PutUint32(env[1:], MaxOriginalSize)
	_, err := Decode(nil, env, 0)
	checkSentinel(t, err, ErrTruncated)
}

func TestAppendErrors(t *testing.T) {
	dst := []byte("keep")
	for _, alg := range []Algorithm{4, 0x80, 0xff} {
		got, err := Append(dst, alg, []byte("x"))
		checkSentinel(t, err, ErrUnknownAlgorithm)
		if string(got) != "keep" {
			t.Errorf("Append(%v) changed dst to %q", alg, got)
		}
	}
	big := make([]byte, MaxOriginalSize+1)
	for _, alg := range algorithms {
		got, err := Append(dst, alg, big)
		checkSentinel(t, err, ErrTooLarge)
		if string(got) != "keep" {
			t.Errorf("Append(%v) changed dst to %q", alg, got)
		}
		// Exactly MaxOriginalSize is accepted and comes back.
		env := mustAppend(t, alg, big[:MaxOriginalSize])
		out, err := Decode(nil, env, 0)
		if err != nil || len(out) != MaxOriginalSize {
			t.Errorf("%v: 16 MiB round trip: %d bytes, %v", alg, len(out), err)
		}
	}
}

func TestSizeMismatch(t *testing.T) {
	data := semiCompressible(4, 1<<10)
	for _, alg := range algorithms {
		env := mustAppend(t, alg, data)
		for _, size := range []int{len(data) - 1, len(data) + 1, 0, len(data) * 2} {
			_, err := Decode(nil, setSize(env, uint32(size)), 0)
			want := ErrSizeMismatch
			if alg == None && size > len(data) {
				want = ErrTruncated // the body is too short for the claim
			}
			checkSentinel(t, err, want)
		}
	}

	// LZ4 has a second copy of the size: tamper with it alone, then with
	// both copies together.
	env := mustAppend(t, LZ4, data)
	inner := bytes.Clone(env)
	binary.LittleEndian.PutUint32(inner[HeaderSize:], uint32(len(data)+1))
	_, err := Decode(nil, inner, 0)
	checkSentinel(t, err, ErrSizeMismatch)
	both := setSize(inner, uint32(len(data)+1))
	_, err = Decode(nil, both, 0)
	checkSentinel(t, err, ErrSizeMismatch)
	// Claiming less makes the block overflow its buffer, which the LZ4
	// decoder reports as corrupt input.
	binary.LittleEndian.PutUint32(both[HeaderSize:], uint32(len(data)-1))
	_, err = Decode(nil, setSize(both, uint32(len(data)-1)), 0)
	checkSentinel(t, err, ErrCorrupt)
}

func TestTruncated(t *testing.T) {
	for n := range HeaderSize {
		for _, alg := range algorithms {
			env := mustAppend(t, alg, []byte("hello"))
			if _, _, _, err := Header(env[:n]); !errors.Is(err, ErrTruncated) {
				t.Errorf("Header of %d bytes: %v", n, err)
			}
			_, err := Decode(nil, env[:n], 0)
			checkSentinel(t, err, ErrTruncated)
		}
	}
	for _, tc := range []struct {
		name string
		env  string
	}{
		{"none short body", "00 05000000 68656c6c"},
		{"lz4 empty body", "01 05000000"},
		{"lz4 partial size", "01 05000000 050000"},
		{"lz4 size without block", "01 05000000 05000000"},
		{"zstd empty body", "02 05000000"},
		{"zstd partial magic", "02 05000000 28b52f"},
		{"zstd magic only", "02 05000000 28b52ffd"},
		{"s2 empty body", "03 05000000"},
	} {
		_, err := Decode(nil, unhex(t, tc.env), 0)
		if !errors.Is(err, ErrTruncated) {
			t.Errorf("%s: error = %v, want ErrTruncated", tc.name, err)
		}
	}
}

func TestUnknownAlgorithm(t *testing.T) {
	env := unhex(t, "07 03000000 616263")
	alg, size, body, err := Header(env)
	checkSentinel(t, err, ErrUnknownAlgorithm)
	if alg != 7 || size != 3 || string(body) != "abc" {
		t.Errorf("Header = %v, %d, %q; want the parsed values with the error", alg, size, body)
	}
	out, err := Decode([]byte("x"), env, 0)
	checkSentinel(t, err, ErrUnknownAlgorithm)
	if string(out) != "x" {
		t.Errorf("Decode changed dst to %q", out)
	}
}

func TestGarbageIsCorrupt(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	for i := range 2000 {
		n := r.IntN(2000)
		garbage := randomBytes(r, 1+r.IntN(300))
		var env []byte
		switch i % 3 {
		case 0:
			// LZ4 with a consistent size prefix and a garbage
			// block that does not decode to exactly n bytes.
			env = binary.LittleEndian.AppendUint32([]byte{byte(LZ4), 0, 0, 0, 0}, uint32(n))
		case 1:
			// S2 with a correct length header and garbage after.
			env = binary.AppendUvarint([]byte{byte(S2), 0, 0, 0, 0}, uint64(n))
		case 2:
			// Zstd whose frame does not start with the magic.
			env = []byte{byte(Zstd), 0, 0, 0, 0}
			garbage = append(garbage, 1, 2, 3)
			garbage[0] = 0
		}
		binary.LittleEndian.PutUint32(env[1:], uint32(n))
		env = append(env, garbage...)
		out, err := Decode(nil, env, 0)
		switch {
		case err == nil:
			// A random block may decode; then it must be consistent.
			if len(out) != n {
				t.Fatalf("% x: decoded %d bytes, %d declared", env, len(out), n)
			}
		case errors.Is(err, ErrCorrupt), errors.Is(err, ErrSizeMismatch):
		default:
			t.Fatalf("% x: error %v, want ErrCorrupt or ErrSizeMismatch", env, err)
		}
	}

	// Cases that are corrupt for certain.
	hello := mustAppend(t, Zstd, []byte("hello, hello, hello, hello"))
	badBlock := bytes.Clone(hello)
	_, _, body, _ := Header(badBlock)
	// Leave the magic, descriptor, content size and the block header's
	// first byte; scramble the rest.
	for i := 7; i < len(body); i++ {
		body[i] ^= 0xa5
	}
	for _, tc := range []struct {
		name string
		env  []byte
	}{
		{"lz4 offset before start", unhex(t, "01 08000000 08000000 0f 0100")},
		{"lz4 literal run past end", unhex(t, "01 05000000 05000000 f0 ff")},
		{"s2 copy before start", unhex(t, "03 08000000 08 0d 0100")},
		{"s2 trailing bytes", append(mustAppend(t, S2, []byte("hello")), 0)},
		{"zstd bad magic", unhex(t, "02 05000000 28b52ffe 00 00 010000")},
		{"zstd reserved block type", unhex(t, "02 05000000 28b52ffd 00 00 070000")},
		{"zstd scrambled blocks", badBlock},
	} {
		_, err := Decode(nil, tc.env, 0)
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: error = %v, want ErrCorrupt", tc.name, err)
		}
	}
}

func TestHostileZstdAllocation(t *testing.T) {
	// 400 bytes of body that would expand to 12.5 MiB; the decoder must
	// stop near the declared size.
	frame := zstdRLEFrame(100)
	for _, size := range []int{16, 1 << 20} {
		env := zstdEnvelope(size, frame)
		var err error
		b := bytesPerCall(20, func() { _, err = Decode(nil, env, 0) })
		checkSentinel(t, err, ErrSizeMismatch)
		// The output buffer, plus the one reallocation the library
		// makes when the overflowing block is appended: the slice grows
		// by a quarter, or to hold one 128 KiB block.
		if limit := float64(size)*2.25 + 256<<10; b > limit && !raceEnabled {
			t.Errorf("declared %d: %.0f bytes allocated per call, want at most %.0f", size, b, limit)
		}
	}
	// For the other algorithms the claim in the body is checked first: a
	// 10-byte body that says 16 MiB is refused without allocating it.
	for _, env := range [][]byte{
		unhex(t, "01 10000000 00000001 00"),      // LZ4 inner size 16 MiB
		unhex(t, "03 10000000 8080800800"),       // S2 header 16 MiB
		unhex(t, "00 00000001 0102030405060708"), // None
	} {
		var err error
		b := bytesPerCall(100, func() { _, err = Decode(nil, env, 0) })
		if err == nil || b > 512 {
			t.Errorf("% x: error %v after %.0f bytes allocated per call", env, err, b)
		}
	}
}

func TestDecodeAppendsInPlace(t *testing.T) {
	data := semiCompressible(6, 4096)
	for _, alg := range algorithms {
		env := mustAppend(t, alg, data)
		buf := make([]byte, 3, 3+len(data))
		copy(buf, "abc")
		var out []byte
		var err error
		allocs := testing.AllocsPerRun(50, func() { out, err = Decode(buf, env, 0) })
		if err != nil || !bytes.Equal(out[:3], []byte("abc")) || !bytes.Equal(out[3:], data) {
			t.Fatalf("%v: Decode into a buffer: err %v or wrong bytes", alg, err)
		}
		if &out[0] != &buf[0] {
			t.Errorf("%v: Decode did not use the spare capacity of dst", alg)
		}
		if allocs != 0 && !raceEnabled {
			t.Errorf("%v: %v allocations to decode into a large enough buffer", alg, allocs)
		}

		// A failed Decode returns dst as it came.
		bad := setSize(env, uint32(len(data)+7))
		got, err := Decode(buf, bad, 0)
		if err == nil || len(got) != len(buf) || &got[0] != &buf[0] {
			t.Errorf("%v: failed Decode returned %d bytes, err %v", alg, len(got), err)
		}
	}
}

func TestAppendAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	data := semiCompressible(8, 4096)
	for _, alg := range algorithms {
		buf := make([]byte, 0, 2*len(data)+64)
		var err error
		allocs := testing.AllocsPerRun(50, func() { _, err = Append(buf, alg, data) })
		if err != nil || allocs != 0 {
			t.Errorf("%v: Append into a large enough buffer: %v allocations, err %v", alg, allocs, err)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 40 {
				alg := algorithms[(g+i)%len(algorithms)]
				data := semiCompressible(uint64(g*100+i), 1000+37*i)
				env, err := Append(nil, alg, data)
				if err != nil {
					t.Error(err)
					return
				}
				out, err := Decode(make([]byte, 0, len(data)), env, 0)
				if err != nil || !bytes.Equal(out, data) {
					t.Errorf("%v: concurrent round trip failed: %v", alg, err)
					return
				}
			}
		})
	}
	wg.Wait()
}
