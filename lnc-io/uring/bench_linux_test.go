//go:build linux

package uring

import (
	"bytes"
	"testing"
)

// BenchmarkNop submits 64 NOPs and reaps their 64 completions per op: the
// cost of the rings and one io_uring_enter, without I/O.
func BenchmarkNop(b *testing.B) {
	r := newRing(b, 64)
	var cqes [64]CQE
	b.ReportAllocs()
	for b.Loop() {
		for i := range 64 {
			sqe := r.GetSQE()
			sqe.PrepNop()
			sqe.UserData = uint64(i)
		}
		if _, err := r.SubmitAndWait(64); err != nil {
			b.Fatal(err)
		}
		for got := 0; got < 64; {
			n, err := r.PeekCQEs(cqes[:])
			if err != nil {
				b.Fatal(err)
			}
			r.CQAdvance(uint32(n))
			got += n
		}
	}
}

// BenchmarkWritevFsync writes 256 buffers of 1 KiB with one WRITEV linked
// to an fdatasync, and waits for both, per op: one group commit of 256 KiB.
// Every op overwrites the same file range, so the file stays small.
func BenchmarkWritevFsync(b *testing.B) {
	r := newRing(b, 8)
	f := tempFile(b)
	fd := int(f.Fd())
	bufs := make([][]byte, 256)
	for i := range bufs {
		bufs[i] = bytes.Repeat([]byte{byte(i)}, 1024)
	}
	iovs := AppendIovecs(nil, bufs...)
	var h Holder
	var cqes [2]CQE
	b.SetBytes(256 * 1024)
	b.ReportAllocs()
	for b.Loop() {
		w := r.GetSQE()
		w.PrepWritev(fd, h.Iovecs(iovs), 0)
		w.Flags |= SQEIOLink
		w.UserData = 1
		s := r.GetSQE()
		s.PrepFsync(fd, true)
		s.UserData = 2
		if _, err := r.SubmitAndWait(2); err != nil {
			b.Fatal(err)
		}
		n, err := r.PeekCQEs(cqes[:])
		if err != nil || n != 2 {
			b.Fatalf("PeekCQEs = %d, %v", n, err)
		}
		for _, c := range cqes {
			if (c.UserData == 1 && c.Res != 256*1024) || (c.UserData == 2 && c.Res != 0) {
				b.Fatalf("completion %+v (%v)", c, c.Err())
			}
		}
		r.CQAdvance(2)
		h.Release()
	}
}
