package cli

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lance-go/lance/lnc/internal/exportfile"
)

func readExport(t *testing.T, data []byte) (exportfile.Header, []exportfile.Record) {
	t.Helper()
	rd, err := exportfile.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var recs []exportfile.Record
	for {
		r, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return rd.Header(), recs
		}
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
}

// sameRecords compares type, key, value and timestamp.
func sameRecords(t *testing.T, got, want []exportfile.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		g.Offset, w.Offset = 0, 0
		if !reflect.DeepEqual(g, w) {
			t.Errorf("record %d: %+v, want %+v", i, g, w)
		}
	}
}

func TestExportImport(t *testing.T) {
	s := startServer(t)
	ep := s.ep()
	p := func(a ...string) { ok(t, "", args([]string{"produce", "-t", "src"}, a, ep)...) }
	p("--data", "raw value")
	p("--type", "json", "--data", `{"n":1}`)
	p("--key", "k", "--data", "kv value")
	p("--key", "", "--data", "")
	p("--timestamp", "1ns", "--data", "early")
	p("--key", "kt", "--timestamp", "2026-11-27T08:00:00.123456789Z", "--data", "kt value")
	p("--type", "null", "--data", "")
	p("--type", "0xfe", "--data", "user")
	p("--type", "0x07", "--data", "unassigned")
	dir := t.TempDir()
	bin := append([]byte("binary\x00\xff\n"), bytes.Repeat([]byte{0xaa}, 100000)...)
	binFile := filepath.Join(dir, "bin")
	if err := os.WriteFile(binFile, bin, 0o644); err != nil {
		t.Fatal(err)
	}
	p("--file", binFile)

	file := filepath.Join(dir, "src.lnce")
	out := ok(t, "", args([]string{"export", "-t", "src", "--file", file}, ep)...)
	if !strings.HasPrefix(out, "exported 10 records of src (offsets ") || !strings.HasSuffix(out, " to "+file+"\n") {
		t.Errorf("export: %q", out)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	hdr, recs := readExport(t, data)
	if hdr.Topic != "src" || len(recs) != 10 {
		t.Fatalf("header %+v, %d records", hdr, len(recs))
	}
	if r := recs[5]; r.Type != 0x12 || string(r.Key) != "kt" || r.TimestampNS != 1795766400123456789 {
		t.Errorf("key-timestamped record %+v", r)
	}
	if r := recs[3]; r.Type != 0x10 || r.Key == nil || len(r.Key) != 0 || len(r.Value) != 0 {
		t.Errorf("empty kv record %+v", r)
	}
	if r := recs[4]; r.Type != 0x11 || r.TimestampNS != 1 {
		t.Errorf("timestamped record %+v", r)
	}
	if !bytes.Equal(recs[9].Value, bin) {
		t.Errorf("binary record differs")
	}

	// Import into another topic (created), export that, compare.
	out = ok(t, "", args([]string{"import", "--file", file, "-t", "copy"}, ep)...)
	if !strings.HasPrefix(out, "imported 10 records into copy (offsets ") {
		t.Errorf("import: %q", out)
	}
	var again bytes.Buffer
	r := lnc(t, "", args([]string{"export", "-t", "copy"}, ep)...)
	if r.code != 0 || !strings.HasPrefix(r.err, "exported 10 records of copy") {
		t.Fatalf("export to stdout: %d %q", r.code, r.err)
	}
	again.WriteString(r.out)
	hdr2, recs2 := readExport(t, again.Bytes())
	if hdr2.Topic != "copy" {
		t.Errorf("header %+v", hdr2)
	}
	sameRecords(t, recs2, recs)

	// From standard input, into the topic the file names (src: doubled).
	ok(t, string(data), args([]string{"import"}, ep)...)
	r = lnc(t, "", args([]string{"export", "-t", "src", "--offset", "earliest"}, ep)...)
	_, doubled := readExport(t, []byte(r.out))
	sameRecords(t, doubled, append(append([]exportfile.Record{}, recs...), recs...))

	// --offset and --max select a stretch.
	start := recs[2].Offset
	r = lnc(t, "", args([]string{"export", "-t", "src", "--offset", itoa(start), "--max", "3"}, ep)...)
	hdr3, part := readExport(t, []byte(r.out))
	if hdr3.StartOffset != start {
		t.Errorf("start offset %d, want %d", hdr3.StartOffset, start)
	}
	sameRecords(t, part, recs[2:5])
	// An empty export is a valid file.
	ok(t, "", args([]string{"topics", "create", "none"}, ep)...)
	r = lnc(t, "", args([]string{"export", "-t", "none"}, ep)...)
	if _, none := readExport(t, []byte(r.out)); len(none) != 0 {
		t.Errorf("empty topic exported %d records", len(none))
	}

	// A damaged file imports nothing.
	bad := bytes.Clone(data)
	bad[len(bad)/2] ^= 1
	badFile := filepath.Join(dir, "bad.lnce")
	if err := os.WriteFile(badFile, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	fails(t, ExitError, "nothing was imported", "", args([]string{"import", "--file", badFile, "-t", "fresh"}, ep)...)
	fails(t, ExitError, "topic not found", "", args([]string{"topics", "get", "fresh"}, ep)...)
	cut := filepath.Join(dir, "cut.lnce")
	if err := os.WriteFile(cut, data[:len(data)-10], 0o644); err != nil {
		t.Fatal(err)
	}
	fails(t, ExitError, "cut short", "", args([]string{"import", "--file", cut}, ep)...)
	fails(t, ExitError, "not an lnc export file", "not an export", args([]string{"import"}, ep)...)
	fails(t, ExitError, "topic not found", "", args([]string{"import", "--file", file, "-t", "absent", "--no-create"}, ep)...)
	fails(t, ExitError, "topic not found", "", args([]string{"export", "-t", "absent", "--file", filepath.Join(dir, "absent.lnce")}, ep)...)
	if _, err := os.Stat(filepath.Join(dir, "absent.lnce")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed export left its file: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func itoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}
