package topiclog

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/lance-go/lance/lnc-io/backend"
	"github.com/lance-go/lance/lnc-io/vfs"
)

// Direct mode (Options.Direct).
//
// O_DIRECT writes whole blocks from aligned memory at aligned offsets, but
// batches end anywhere. So the writer keeps in memory the durable bytes of
// the active segment's last partial block (the tail, at most 4095 bytes)
// and every Sync writes, from the first byte of that block on: the tail
// again, the new batches, and zeros up to the next block boundary. The
// tail bytes are rewritten with the bytes they already hold, so a write
// torn anywhere leaves them intact: only bytes no Sync acknowledged can
// differ. The zeros past the logical end are never read (readers stop at
// the durable end), are cut by recovery like any unindexed tail of the
// newest segment, and are truncated away when the segment is sealed.

// directBlock is the unit of direct writes.
const directBlock = vfs.DirectAlign

func alignUp(n int64) int64   { return (n + directBlock - 1) &^ (directBlock - 1) }
func alignDown(n int64) int64 { return n &^ (directBlock - 1) }

// notWritten marks a Sync error after which the log is still sound: the
// Sync stopped before writing anything a later Sync does not write again,
// so the error is not made sticky.
type notWritten struct{ err error }

func (e notWritten) Error() string { return e.err.Error() }
func (e notWritten) Unwrap() error { return e.err }

// openDirect opens s's data file with O_DIRECT and loads the tail from
// it: the bytes of its last partial block, up to the segment's durable
// size (what recovery kept, or nothing for a new segment).
func (w *writer) openDirect(s *segment) error {
	dataPath, _ := s.paths(w.l.dir)
	f, err := vfs.OpenDirect(w.l.opts.FS, dataPath)
	if err != nil {
		return fmt.Errorf("topiclog: Options.Direct is set but %s cannot be opened with O_DIRECT (use a file system that supports it, or turn the option off): %w", dataPath, err)
	}
	// The writer owns s.size (it alone changes it, under the Log's mutex),
	// so reading it here needs no lock.
	n := s.size % directBlock
	w.tail = w.tail[:n]
	if n > 0 {
		if _, err := s.data.ReadAt(w.tail, s.size-n); err != nil {
			f.Close()
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("%w: %s is shorter than its index", ErrCorrupt, s.data.Name())
			}
			return fmt.Errorf("topiclog: read the last block of %s: %w", s.data.Name(), err)
		}
	}
	w.direct = f
	return nil
}

// closeDirect closes the O_DIRECT handle of the active data file, if open.
func (w *writer) closeDirect() {
	if w.direct != nil {
		w.direct.Close()
		w.direct = nil
	}
	w.tail = w.tail[:0]
}

// writeDirect writes w.bufs (the tail followed by the pending batches,
// whose first byte is at segment offset start) to the active data file
// from the backend's aligned buffers, then the index entries, and syncs
// both files.
//
// A Sync that does not fit in one buffer is written in buffer-sized
// chunks. The writer waits for one buffer and takes as many more as are
// free at once, up to what the data needs, and writes them in one commit.
// Only when the pool cannot give enough does it go on with further
// commits, reusing buffers: those earlier commits carry no fdatasync; the
// last one carries the index write and the fdatasync of both files, which
// covers every chunk (each was complete when its commit returned). Waiting
// only while holding nothing means writers sharing a pool cannot deadlock,
// and one Sync never needs more than one buffer.
func (l *Log) writeDirect(ctx context.Context, start int64, idx backend.Write) error {
	w := &l.w
	off := start - int64(len(w.tail)) // block-aligned: len(tail) = start % directBlock
	left := int64(totalBytes(w.bufs))
	src := gather{bufs: w.bufs}
	size := int64(w.pool.BufferSize())
	for left > 0 {
		first, err := w.pool.Acquire(ctx)
		if err != nil {
			return notWritten{fmt.Errorf("topiclog: sync: waiting for a direct-write buffer: %w", err)}
		}
		w.held = append(w.held[:0], first)
		for need := (left + size - 1) / size; int64(len(w.held)) < need; {
			b, ok := w.pool.TryAcquire()
			if !ok {
				break
			}
			w.held = append(w.held, b)
		}
		w.commit.Writes = w.commit.Writes[:0]
		w.dirBufs = w.dirBufs[:0]
		var lastN int64
		for _, b := range w.held {
			mem := b.Bytes()
			n := int64(src.copyTo(mem))
			padded := alignUp(n)
			clear(mem[n:padded])
			w.dirBufs = append(w.dirBufs, mem[:padded])
			left -= n
			lastN = n
		}
		for i, b := range w.held {
			chunk := w.dirBufs[i : i+1 : i+1]
			w.commit.Writes = append(w.commit.Writes, backend.Write{File: w.direct, Off: off, Bufs: chunk, Direct: b})
			off += int64(len(chunk[0]))
		}
		last := left == 0
		w.commit.Sync = false
		if last {
			w.commit.Writes = append(w.commit.Writes, idx)
			w.commit.Sync = !testSkipSync
		}
		err = l.opts.Backend.Do(ctx, &w.commit)
		if err == nil && last {
			// The new tail: the bytes after the last block boundary, at
			// the start of that block in the last buffer (buffers hold
			// whole blocks, so boundaries line up).
			mem := w.held[len(w.held)-1].Bytes()
			w.tail = append(w.tail[:0], mem[alignDown(lastN):lastN]...)
		}
		clear(w.commit.Writes)
		clear(w.dirBufs)
		for i, b := range w.held {
			w.pool.Release(b)
			w.held[i] = nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// gather reads a list of byte slices in order.
type gather struct {
	bufs [][]byte
	i, j int // next byte: bufs[i][j]
}

// copyTo copies the next bytes into dst and returns how many.
func (g *gather) copyTo(dst []byte) int {
	n := 0
	for n < len(dst) && g.i < len(g.bufs) {
		k := copy(dst[n:], g.bufs[g.i][g.j:])
		n += k
		g.j += k
		if g.j == len(g.bufs[g.i]) {
			g.i, g.j = g.i+1, 0
		}
	}
	return n
}

func totalBytes(bufs [][]byte) int {
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	return n
}
