package server

import (
	"io"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lance-go/lance/lnc-io/index"
	"github.com/lance-go/lance/lnc-io/topiclog"
	"github.com/lance-go/lance/lnc-io/vfs"
	"github.com/lance-go/lance/lnc-network/control"
	"github.com/lance-go/lance/lnc-network/frame"
)

// Zero-copy fetch. A reply's frame header carries the CRC of its payload,
// so the server must know the CRC of the data before it sends the data.
// The index holds each batch's CRC; checksum.Combine joins them without
// the bytes, and sendfile(2) then moves the bytes from the page cache to
// the socket. Only the partial batches at the two ends of a classic fetch
// are read and checksummed here. Combining costs about 0.2 µs per batch,
// computing a CRC about 0.07 µs per KiB: the zero-copy path pays off for
// batches of a few KiB and more, so it is taken only when the batches of
// the range average sendfileMinBatch bytes, the CRCs are in the
// connection's dialect, and the connection is plain TCP.
const (
	sendfileMinBytes = 64 << 10
	sendfileMinBatch = 16 << 10
)

// fetchZeroCopy tries to answer a classic fetch of n bytes at off with
// sendfile. It returns false, having sent nothing, when the range does not
// qualify.
func (c *conn) fetchZeroCopy(l *topiclog.Log, off uint64, n int) bool {
	d := c.replyDialect()
	var scratch [64]index.Entry
	var entries []index.Entry
	end := off + uint64(n)
	for next := off; next < end; {
		es, err := l.Batches(next, int(end-next), scratch[:0])
		if err != nil || len(es) == 0 {
			return false
		}
		entries = append(entries, es...)
		next = es[len(es)-1].End()
		if len(entries) > n/sendfileMinBatch+2 {
			return false
		}
	}
	for i := range entries {
		if entries[i].Dialect != d {
			return false
		}
	}
	var hdr [frame.HeaderSize + control.FetchResponseHeaderSize]byte
	control.AppendFetchResponseHeader(hdr[frame.HeaderSize:frame.HeaderSize], end, uint32(n), control.ReferenceRecordCount(n))
	crc := d.Sum(hdr[frame.HeaderSize:])
	var part []byte
	for i := range entries {
		e := &entries[i]
		lo, hi := max(e.Offset, off), min(e.End(), end)
		if lo == e.Offset && hi == e.End() {
			crc = d.Combine(crc, e.CRC, uint64(e.Length))
			continue
		}
		// A batch cut by the range: checksum the part that is sent.
		if cap(part) < int(hi-lo) {
			part = make([]byte, hi-lo)
		}
		part = part[:hi-lo]
		if got, err := c.readLog(l, part, lo); err != nil || got != len(part) {
			return false
		}
		crc = d.Update(crc, part)
	}
	ranges, release, err := l.Ranges(off, n, nil)
	if err != nil {
		return false
	}
	defer release()
	total := 0
	for _, r := range ranges {
		total += r.N
	}
	if total != n {
		return false
	}
	h := frame.Header{
		Flags:         frame.FlagControl,
		BatchID:       uint64(control.CodeFetchResponse),
		PayloadLength: uint32(len(hdr) - frame.HeaderSize + n),
		PayloadCRC:    crc,
	}
	frame.PutHeader(hdr[:], &h, d)
	c.writeFrame(hdr[:])
	for _, r := range ranges {
		if c.dead {
			break
		}
		if err := c.sendfile(r.File, r.Off, r.N); err != nil {
			c.writeFailed(err)
		}
	}
	c.s.Metrics.sendfileBytes.Add(n)
	return true
}

// sendfile copies n bytes of f at off to the socket in the kernel.
func (c *conn) sendfile(f vfs.File, off int64, n int) error {
	rc, err := c.raw.SyscallConn()
	if err != nil {
		return err
	}
	c.nc.SetWriteDeadline(time.Now().Add(c.s.opts.WriteTimeout))
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		for n > 0 {
			m, e := unix.Sendfile(int(fd), int(f.Fd()), &off, n)
			if m > 0 {
				n -= m
			}
			switch {
			case e == unix.EAGAIN:
				return false // wait until the socket is writable
			case e == unix.EINTR:
			case e != nil:
				werr = e
				return true
			case m == 0:
				werr = io.ErrUnexpectedEOF
				return true
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	return werr
}
