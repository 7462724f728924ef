package frame

import (
	"encoding/hex"
	"errors"
	"testing"
)

func TestProducerRecord(t *testing.T) {
	b := AppendProducerRecord([]byte{0xAA}, 0x0102030405060708, 9)[1:]
	want := "0e" + "10000000" + "0807060504030201" + "0900000000000000"
	if got := hex.EncodeToString(b); got != want {
		t.Fatalf("bytes %s, want %s", got, want)
	}
	pid, seq, err := ParseProducerRecord(append(b, "records"...))
	if err != nil || pid != 0x0102030405060708 || seq != 9 {
		t.Fatalf("parse: %d %d %v", pid, seq, err)
	}
	for name, p := range map[string][]byte{
		"short":    b[:20],
		"type":     append([]byte{0x0F}, b[1:]...),
		"length":   append([]byte{0x0E, 17, 0, 0, 0}, b[5:]...),
		"pid-0":    AppendProducerRecord(nil, 0, 1),
		"seq-0":    AppendProducerRecord(nil, 1, 0),
		"seq-huge": AppendProducerRecord(nil, 1, MaxProducerSequence+1),
	} {
		if _, _, err := ParseProducerRecord(p); !errors.Is(err, ErrProducerRecord) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
