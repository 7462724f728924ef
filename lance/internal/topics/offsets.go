package topics

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"path/filepath"
	"sync"

	"github.com/lance-go/lance/lnc-core/checksum"
	"github.com/lance-go/lance/lnc-io/vfs"
)

// offsets.log, in each topic's directory, keeps the consumers' committed
// offsets. It is a sequence of 20-byte records, appended and fdatasynced
// before a CommitOffset is answered:
//
//	off size field
//	  0    8 consumer_id   little-endian
//	  8    8 offset        little-endian
//	 16    4 crc           CRC-32C of bytes 0..15, little-endian
//
// The last record of a consumer wins. Loading stops at the first record
// whose CRC fails or that is cut short (the tail of a commit that never
// returned) and cuts the file there. When the file holds many more records
// than consumers, it is rewritten with one record per consumer (temporary
// file, sync, rename, directory sync).
const (
	offsetsFile      = "offsets.log"
	offsetRecordSize = 20
	// compactAfter is how many superseded records the file may hold
	// before it is rewritten.
	compactAfter = 4096
)

type offsetStore struct {
	fs   vfs.FS
	path string

	// mu serializes commits (append + fdatasync) and guards the map; a
	// commit holds it across its fdatasync so that records land in order.
	mu      sync.Mutex
	f       vfs.File
	size    int64
	records int
	m       map[uint64]uint64
	buf     [offsetRecordSize]byte
}

func openOffsets(fs vfs.FS, dir string) (*offsetStore, error) {
	s := &offsetStore{fs: fs, path: filepath.Join(dir, offsetsFile), m: map[uint64]uint64{}}
	f, err := fs.OpenRW(s.path)
	if errors.Is(err, iofs.ErrNotExist) {
		if f, err = fs.Create(s.path); err != nil {
			return nil, fmt.Errorf("topics: %w", err)
		}
		if err := fs.SyncDir(dir); err != nil {
			f.Close()
			return nil, fmt.Errorf("topics: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("topics: %w", err)
	}
	s.f = f
	if err := s.load(); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

func (s *offsetStore) load() error {
	size, err := s.f.Size()
	if err != nil {
		return fmt.Errorf("topics: %w", err)
	}
	buf := make([]byte, size)
	if _, err := s.f.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("topics: read %s: %w", s.path, err)
	}
	var good int64
	for len(buf)-int(good) >= offsetRecordSize {
		r := buf[good : good+offsetRecordSize]
		if checksum.Castagnoli.Sum(r[:16]) != binary.LittleEndian.Uint32(r[16:]) {
			break
		}
		s.m[binary.LittleEndian.Uint64(r)] = binary.LittleEndian.Uint64(r[8:])
		s.records++
		good += offsetRecordSize
	}
	if good != size {
		if err := s.f.Truncate(good); err != nil {
			return fmt.Errorf("topics: cut %s: %w", s.path, err)
		}
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("topics: sync %s: %w", s.path, err)
		}
	}
	s.size = good
	return nil
}

func (s *offsetStore) get(consumer uint64) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	off, ok := s.m[consumer]
	return off, ok
}

func (s *offsetStore) commit(consumer, offset uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return ErrTopicGone
	}
	r := s.buf[:]
	binary.LittleEndian.PutUint64(r, consumer)
	binary.LittleEndian.PutUint64(r[8:], offset)
	binary.LittleEndian.PutUint32(r[16:], checksum.Castagnoli.Sum(r[:16]))
	if _, err := s.f.WriteAt(r, s.size); err != nil {
		return fmt.Errorf("topics: write %s: %w", s.path, err)
	}
	if err := s.f.Sync(); err != nil {
		// The record may or may not reach the disk: a failed fsync can
		// drop the bytes it covered while the file keeps its size. The
		// next commit writes its record over this one, so that no hole
		// is left before records acknowledged later (a load stops at
		// the first bad record).
		return fmt.Errorf("topics: sync %s: %w", s.path, err)
	}
	s.size += offsetRecordSize
	s.records++
	s.m[consumer] = offset
	if s.records-len(s.m) > compactAfter {
		if err := s.compact(); err != nil {
			return err
		}
	}
	return nil
}

// compact rewrites the file with one record per consumer; mu is held.
func (s *offsetStore) compact() error {
	tmp := s.path + tmpSuffix
	if err := s.fs.Remove(tmp); err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return fmt.Errorf("topics: %w", err)
	}
	f, err := s.fs.Create(tmp)
	if err != nil {
		return fmt.Errorf("topics: %w", err)
	}
	b := make([]byte, 0, len(s.m)*offsetRecordSize)
	for c, o := range s.m {
		b = binary.LittleEndian.AppendUint64(b, c)
		b = binary.LittleEndian.AppendUint64(b, o)
		b = binary.LittleEndian.AppendUint32(b, checksum.Castagnoli.Sum(b[len(b)-16:]))
	}
	_, err = f.WriteAt(b, 0)
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = s.fs.Rename(tmp, s.path)
	}
	if err == nil {
		err = s.fs.SyncDir(filepath.Dir(s.path))
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("topics: compact %s: %w", s.path, err)
	}
	s.f.Close()
	s.f, s.size, s.records = f, int64(len(b)), len(s.m)
	return nil
}

func (s *offsetStore) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}
