package compress

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fuzzLimit is the Decode limit of FuzzDecode.
const fuzzLimit = 1 << 20

// fuzzSeeds returns envelopes worth starting from: a valid one of each
// algorithm for a few inputs, a frame shaped like the Rust encoder's, and
// broken ones.
func fuzzSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	inputs := [][]byte{
		nil,
		[]byte("hello"),
		bytes.Repeat([]byte("lance "), 40),
		semiCompressible(9, 700),
	}
	for _, alg := range algorithms {
		for _, in := range inputs {
			seeds = append(seeds, mustAppend(t, alg, in))
		}
	}
	text := semiCompressible(10, 500)
	seeds = append(seeds,
		zstdEnvelope(len(text), zstdRawFrame(text, 200)),
		zstdEnvelope(16, zstdRLEFrame(2)),
		unhex(t, "01 08000000 08000000 0f 0100"),
		unhex(t, "03 08000000 08 0d 0100"),
		unhex(t, "00 ffffffff"),
		unhex(t, "09 01000000 00"),
	)
	return seeds
}

// FuzzDecode feeds arbitrary envelopes to Decode. It must not panic; every
// error must wrap exactly one sentinel; a success must match the header
// and the limit, must not depend on what dst held, and must survive being
// compressed again with the same algorithm.
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, env []byte) {
		out, err := Decode(nil, env, fuzzLimit)

		// The same call into a buffer holding a prefix, with spare
		// capacity full of junk, must agree byte for byte.
		prefix := []byte("prefix!")
		buf := bytes.Repeat([]byte{0xee}, len(prefix)+len(out)+16)
		copy(buf, prefix)
		buf = buf[:len(prefix)]
		out2, err2 := Decode(buf, env, fuzzLimit)

		if err != nil {
			matched := 0
			for _, s := range sentinels {
				if errors.Is(err, s) {
					matched++
				}
			}
			if matched != 1 {
				t.Fatalf("error %v wraps %d sentinels", err, matched)
			}
			if out != nil {
				t.Fatalf("failed Decode(nil) returned %d bytes", len(out))
			}
			if err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("errors differ with a prefix: %v, then %v", err, err2)
			}
			if !bytes.Equal(out2, prefix) {
				t.Fatalf("failed Decode changed dst to %q", out2)
			}
			return
		}

		alg, size, _, herr := Header(env)
		if herr != nil {
			t.Fatalf("Decode succeeded where Header fails: %v", herr)
		}
		if uint64(len(out)) != uint64(size) || size > fuzzLimit {
			t.Fatalf("%v: decoded %d bytes, header says %d, limit %d", alg, len(out), size, fuzzLimit)
		}
		if err2 != nil || !bytes.Equal(out2[:len(prefix)], prefix) || !bytes.Equal(out2[len(prefix):], out) {
			t.Fatalf("%v: decoding after a prefix gave other bytes (err %v)", alg, err2)
		}

		again, err := Append(nil, alg, out)
		if err != nil {
			t.Fatalf("%v: Append of decoded bytes: %v", alg, err)
		}
		back, err := Decode(nil, again, fuzzLimit)
		if err != nil || !bytes.Equal(back, out) {
			t.Fatalf("%v: round trip of decoded bytes failed (err %v)", alg, err)
		}
	})
}

// FuzzRoundTrip compresses arbitrary data with the algorithm algByte names,
// or ErrUnknownAlgorithm must say it names none, and checks that Decode
// returns the data.
func FuzzRoundTrip(f *testing.F) {
	for i, alg := range algorithms {
		f.Add([]byte(nil), byte(alg))
		f.Add([]byte("hello, hello, hello"), byte(alg))
		f.Add(semiCompressible(uint64(i), 3000), byte(alg))
	}
	f.Add([]byte("x"), byte(0x42))
	f.Fuzz(func(t *testing.T, data []byte, algByte byte) {
		alg := Algorithm(algByte)
		env, err := Append([]byte("dst"), alg, data)
		if !alg.Valid() {
			if !errors.Is(err, ErrUnknownAlgorithm) || string(env) != "dst" {
				t.Fatalf("Append(%v) = %q, %v; want dst and ErrUnknownAlgorithm", alg, env, err)
			}
			alg = algorithms[int(algByte)%len(algorithms)]
			env, err = Append([]byte("dst"), alg, data)
		}
		if err != nil {
			t.Fatalf("Append(%v, %d bytes): %v", alg, len(data), err)
		}
		if string(env[:3]) != "dst" {
			t.Fatalf("Append(%v) overwrote dst: %q", alg, env[:3])
		}
		env = env[3:]
		gotAlg, size, _, err := Header(env)
		if err != nil || gotAlg != alg || uint64(size) != uint64(len(data)) {
			t.Fatalf("Header = %v, %d, %v; want %v, %d", gotAlg, size, err, alg, len(data))
		}
		out, err := Decode(nil, env, len(data))
		if err != nil || !bytes.Equal(out, data) {
			t.Fatalf("%v: Decode gave %d bytes, err %v; want the %d put in", alg, len(out), err, len(data))
		}
		if len(data) > 1 {
			if _, err := Decode(nil, env, len(data)-1); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("%v: Decode one byte under the size: %v, want ErrTooLarge", alg, err)
			}
		}
	})
}

// TestFuzzCorpusSeeds checks the checked-in seed files: they must parse
// and include a valid envelope of every algorithm.
func TestFuzzCorpusSeeds(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzDecode", "*"))
	if err != nil {
		t.Fatal(err)
	}
	valid := map[Algorithm]int{}
	for _, name := range files {
		raw, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
		if len(lines) != 2 || lines[0] != "go test fuzz v1" {
			t.Fatalf("%s: not a one-argument corpus file", name)
		}
		lit, ok := strings.CutPrefix(lines[1], "[]byte(")
		lit, ok2 := strings.CutSuffix(lit, ")")
		if !ok || !ok2 {
			t.Fatalf("%s: argument is not a []byte literal", name)
		}
		env, err := strconv.Unquote(lit)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !strings.HasPrefix(filepath.Base(name), "valid-") {
			continue
		}
		alg, size, _, err := Header([]byte(env))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out, err := Decode(nil, []byte(env), fuzzLimit)
		if err != nil || uint64(len(out)) != uint64(size) {
			t.Fatalf("%s: Decode = %d bytes, %v", name, len(out), err)
		}
		valid[alg]++
	}
	for _, alg := range algorithms {
		if valid[alg] == 0 {
			t.Errorf("no valid %v envelope among the seed files", alg)
		}
	}
}
