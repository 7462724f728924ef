package faultfs

import (
	"fmt"
	"math/rand/v2"
	"os"
	"syscall"

	"github.com/lance-go/lance/lnc-io/vfs"
)

// Schedule says which operations of one kind (writes, file syncs or
// directory syncs) an injected error fails (EIO unless WithErrno says
// otherwise). Operations are counted from the moment the schedule is set,
// among those its filter (Only) accepts. The zero Schedule fails nothing:
// setting it clears a fault.
type Schedule struct {
	skip  int                    // operations let through first
	count int                    // operations to fail then; negative: all
	prob  float64                // if > 0, each candidate fails with this probability
	match func(name string) bool // nil: every file
	errno syscall.Errno          // 0: EIO
}

// Once fails the next operation.
func Once() Schedule { return Schedule{count: 1} }

// Times fails the next n operations.
func Times(n int) Schedule { return Schedule{count: n} }

// Nth fails the n-th operation from now (n >= 1) only.
func Nth(n int) Schedule { return Schedule{skip: max(n, 1) - 1, count: 1} }

// From fails the n-th operation from now (n >= 1) and every one after it:
// a sticky failure, as a dying disk gives.
func From(n int) Schedule { return Schedule{skip: max(n, 1) - 1, count: -1} }

// Always fails every operation from now on.
func Always() Schedule { return From(1) }

// Randomly fails each operation with probability p, drawn from the FS's
// seed.
func Randomly(p float64) Schedule { return Schedule{count: -1, prob: p} }

// Only restricts s to the files (or, for directory syncs, directories)
// whose name, as passed to the FS, match accepts; operations on other
// files are neither failed nor counted.
func (s Schedule) Only(match func(name string) bool) Schedule {
	s.match = match
	return s
}

// WithErrno makes the failures of s report errno instead of EIO, for
// example syscall.ENOSPC for a disk that fills up at a random point.
func (s Schedule) WithErrno(errno syscall.Errno) Schedule {
	s.errno = errno
	return s
}

// faultState is an armed Schedule and its counters.
type faultState struct {
	s            Schedule
	seen, failed int
}

// hit tells whether the operation on name fails. Called with FS.mu held.
func (st *faultState) hit(rng *rand.Rand, name string) bool {
	s := &st.s
	if s.count == 0 || (s.match != nil && !s.match(name)) {
		return false
	}
	st.seen++
	if st.seen <= s.skip || (s.count > 0 && st.failed >= s.count) {
		return false
	}
	if s.prob > 0 && rng.Float64() >= s.prob {
		return false
	}
	st.failed++
	return true
}

// errno is what the failures report.
func (st *faultState) errno() syscall.Errno {
	if st.s.errno == 0 {
		return syscall.EIO
	}
	return st.s.errno
}

// FailWrites makes writes (WriteAt and BeforeWrite) fail with an error
// wrapping ErrInjected and syscall.EIO (or s's errno), nothing written, as
// s says.
func (fs *FS) FailWrites(s Schedule) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.writeFaults = faultState{s: s}
}

// FailSyncs makes file syncs (Sync and BeforeSync) fail with an error
// wrapping ErrInjected and syscall.EIO (or s's errno), as s says. What was written to the
// file since its previous sync attempt is then lost: a power cut drops it
// even if a later sync succeeds, unless it was written again after the
// failure (reads keep returning it until the cut, as Linux's page cache
// does).
func (fs *FS) FailSyncs(s Schedule) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.syncFaults = faultState{s: s}
}

// FailSyncDirs makes SyncDir fail with an error wrapping ErrInjected and
// syscall.EIO (or s's errno), as s says; the directory's pending entries stay pending.
func (fs *FS) FailSyncDirs(s Schedule) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.syncDirFaults = faultState{s: s}
}

// SetSpaceLimit bounds the total size of the files the FS knows of (those
// created through it, and those found on disk once it touched them). A
// write that would grow the total past the limit writes what fits and
// fails with an error wrapping ErrInjected and syscall.ENOSPC; overwriting
// within a file's current size never fails. Removing or truncating files
// frees space. A negative limit removes the bound.
func (fs *FS) SetSpaceLimit(bytes int64) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.limit = bytes
}

// FreeSpace removes the space limit.
func (fs *FS) FreeSpace() { fs.SetSpaceLimit(-1) }

// TearMode says how TearTail damages a file's tail.
type TearMode uint8

// The ways to tear a tail.
const (
	// TearTruncate cuts the last n bytes off.
	TearTruncate TearMode = iota + 1
	// TearZero overwrites the last n bytes with zeros.
	TearZero
	// TearGarbage overwrites the last n bytes with bytes drawn from the
	// seed.
	TearGarbage
)

// String names the mode.
func (m TearMode) String() string {
	switch m {
	case TearTruncate:
		return "truncate"
	case TearZero:
		return "zero"
	case TearGarbage:
		return "garbage"
	}
	return fmt.Sprintf("TearMode(%d)", uint8(m))
}

// TearTail damages the last n bytes of the file name, as a torn write or a
// damaged medium would, in the live file and in its durable image alike
// (meant for files at rest, after a power cut). n is capped at the file's
// size. It is not a mutating operation of the process: it neither counts
// nor can cut the power, but the power must be on.
func (fs *FS) TearTail(name string, mode TearMode, n int) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if mode < TearTruncate || mode > TearGarbage {
		return fmt.Errorf("faultfs: tear %s: unknown mode %v", name, mode)
	}
	return fs.damage("tear", name, func(nd *fileNode, h vfs.File, size int64) error {
		cut := min(max(int64(n), 0), size)
		start := size - cut
		if mode == TearTruncate {
			if err := h.Truncate(start); err != nil {
				return err
			}
			if nd.loaded && start < int64(len(nd.image)) {
				nd.image = nd.image[:start]
			}
			fs.setSize(nd, start)
		} else {
			buf := make([]byte, cut)
			if mode == TearGarbage {
				for i := range buf {
					buf[i] = byte(fs.rng.Uint32())
				}
			}
			if _, err := h.WriteAt(buf, start); err != nil {
				return err
			}
			if nd.loaded && start < int64(len(nd.image)) {
				copy(nd.image[start:], buf)
			}
		}
		fs.stats.TornTails++
		return nil
	})
}

// TearTailRandom tears the tail of name with a mode and a length in
// [1, maxN] (capped at the file's size) drawn from the seed, and returns
// them.
func (fs *FS) TearTailRandom(name string, maxN int) (TearMode, int, error) {
	fs.mu.Lock()
	mode := TearMode(1 + fs.rng.IntN(3))
	n := 1 + fs.rng.IntN(max(maxN, 1))
	fs.mu.Unlock()
	return mode, n, fs.TearTail(name, mode, n)
}

// FlipBit inverts bit (0 = least significant, up to 7) of the byte at off
// in the file name, in the live file and in its durable image alike. off
// must be below the file's size. Like TearTail, it is not an operation of
// the process.
func (fs *FS) FlipBit(name string, off int64, bit uint) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.damage("flip", name, func(nd *fileNode, h vfs.File, size int64) error {
		if off < 0 || off >= size || bit > 7 {
			return fmt.Errorf("faultfs: flip %s: offset %d bit %d, size %d: %w", name, off, bit, size, ErrOutOfRange)
		}
		var b [1]byte
		if err := readFull(h, b[:], off); err != nil {
			return err
		}
		b[0] ^= 1 << bit
		if _, err := h.WriteAt(b[:], off); err != nil {
			return err
		}
		if nd.loaded && off < int64(len(nd.image)) {
			nd.image[off] ^= 1 << bit
		}
		fs.stats.BitFlips++
		return nil
	})
}

// FlipBitRandom flips a bit at an offset and bit number drawn from the seed
// and returns them. The file must not be empty.
func (fs *FS) FlipBitRandom(name string) (int64, uint, error) {
	fs.mu.Lock()
	st, err := fs.inner.Stat(name)
	if err != nil {
		fs.mu.Unlock()
		return 0, 0, err
	}
	if st.Size() == 0 {
		fs.mu.Unlock()
		return 0, 0, fmt.Errorf("faultfs: flip %s: empty file: %w", name, ErrOutOfRange)
	}
	off := fs.rng.Int64N(st.Size())
	bit := uint(fs.rng.IntN(8))
	fs.mu.Unlock()
	return off, bit, fs.FlipBit(name, off, bit)
}

// damage runs fn on the file name, opened read-write on the inner file
// system, with its node and size. Called with fs.mu held.
func (fs *FS) damage(op, name string, fn func(nd *fileNode, h vfs.File, size int64) error) error {
	if err := fs.checkOn(op, name); err != nil {
		return err
	}
	p, err := absPath(name)
	if err != nil {
		return err
	}
	_, _, e := fs.lookup(p)
	nd, ok := e.(*fileNode)
	if !ok {
		if e == nil {
			return &os.PathError{Op: op, Path: name, Err: os.ErrNotExist}
		}
		return &os.PathError{Op: op, Path: name, Err: ErrNotFile}
	}
	h, err := fs.inner.OpenRW(name)
	if err != nil {
		return err
	}
	size, err := h.Size()
	if err == nil {
		err = fn(nd, h, size)
	}
	if cerr := h.Close(); err == nil {
		err = cerr
	}
	return err
}
