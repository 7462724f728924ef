package lance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/lance-go/lance/lnc-core/checksum"
	"github.com/lance-go/lance/lnc-network/control"
)

// OffsetStore keeps the committed offset of each (topic, consumer id)
// pair, so that a consumer started again continues where an earlier one
// stopped. Implementations must be safe for concurrent use.
//
// A committed offset is a resume point: the offset of the first record
// not yet processed, which is what Consumer.Position returns.
type OffsetStore interface {
	// Load returns the offset committed for consumer on topic. ok is
	// false, with a nil error, when nothing was committed. A stored value
	// that cannot be read back intact is an error, never "nothing".
	Load(ctx context.Context, topic string, consumer uint64) (off Offset, ok bool, err error)
	// Commit durably records off for consumer on topic, replacing what
	// was there. When it returns nil the value survives a crash.
	Commit(ctx context.Context, topic string, consumer uint64, off Offset) error
}

var (
	// ErrCorruptOffset means a stored offset failed its integrity check
	// (checksum, format, or a file that belongs to another topic or
	// consumer). The store refuses to guess a value.
	ErrCorruptOffset = errors.New("lance: stored offset is corrupt")
	// ErrNoOffsetStore is returned by Consumer.Commit on a consumer made
	// without WithOffsetStore.
	ErrNoOffsetStore = errors.New("lance: consumer has no offset store")
)

// FileOffsetStore is an OffsetStore that keeps one small file per
// (topic, consumer) pair in a directory. It is the store to use for a
// consumer that runs alone; it needs nothing from the server.
//
// A commit writes the new value to a temporary file next to the final
// one, syncs it, renames it over the final file and syncs the directory,
// so that after a crash the file holds either the old or the new value,
// whole. Each file carries a CRC-32C over its content together with the
// topic name and consumer id it belongs to; Load reports a damaged or
// misplaced file as an error matching ErrCorruptOffset.
//
// File names are "<topic>.<consumer>.offset", where upper-case letters of
// the topic are written as '_' and the lower-case letter (so that names
// stay distinct on case-insensitive file systems) and long topic names are
// shortened and completed with a hash of the whole name.
//
// One FileOffsetStore serializes commits of the same pair. Two processes
// must not commit the same pair in one directory at the same time.
type FileOffsetStore struct {
	dir string

	mu    sync.Mutex // guards locks
	locks map[string]*sync.Mutex
}

// NewFileOffsetStore returns a store that keeps its files in dir, which it
// creates (with its parents) when missing.
func NewFileOffsetStore(dir string) (*FileOffsetStore, error) {
	if dir == "" {
		return nil, errors.New("lance: offset store directory is empty")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lance: offset store: %w", err)
	}
	return &FileOffsetStore{dir: dir, locks: make(map[string]*sync.Mutex)}, nil
}

// Dir returns the directory the store writes to.
func (s *FileOffsetStore) Dir() string { return s.dir }

// Offset file layout, little-endian:
//
//	off  size field
//	  0     4 magic "LNCO"
//	  4     1 version, 1
//	  5     8 consumer id
//	 13     8 offset
//	 21     1 topic name length n
//	 22     n topic name
//	 22+n   4 CRC-32C of bytes 0 .. 22+n
const (
	offsetMagic   = "LNCO"
	offsetVersion = 1
	offsetHead    = 22
	offsetMaxFile = offsetHead + 255 + 4
	// longName is how many bytes of an encoded topic name a file name
	// keeps as they are; longer ones are cut and given a hash.
	longName = 120
)

func encodeOffsetFile(topic string, consumer uint64, off Offset) []byte {
	b := make([]byte, 0, offsetHead+len(topic)+4)
	b = append(b, offsetMagic...)
	b = append(b, offsetVersion)
	b = binary.LittleEndian.AppendUint64(b, consumer)
	b = binary.LittleEndian.AppendUint64(b, uint64(off))
	b = append(b, byte(len(topic)))
	b = append(b, topic...)
	return binary.LittleEndian.AppendUint32(b, checksum.Castagnoli.Sum(b))
}

// decodeOffsetFile checks b against its CRC and against the pair it is
// expected to hold, and returns the offset.
func decodeOffsetFile(b []byte, topic string, consumer uint64) (Offset, error) {
	if len(b) < offsetHead+4 {
		return 0, fmt.Errorf("%w: %d bytes, too short", ErrCorruptOffset, len(b))
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if got := checksum.Castagnoli.Sum(body); got != sum {
		return 0, fmt.Errorf("%w: checksum %#08x, file says %#08x", ErrCorruptOffset, got, sum)
	}
	if string(body[:4]) != offsetMagic || body[4] != offsetVersion {
		return 0, fmt.Errorf("%w: unknown format %q version %d", ErrCorruptOffset, body[:4], body[4])
	}
	n := int(body[21])
	if len(body) != offsetHead+n {
		return 0, fmt.Errorf("%w: topic name of %d bytes in a %d-byte file", ErrCorruptOffset, n, len(b))
	}
	gotConsumer := binary.LittleEndian.Uint64(body[5:])
	gotTopic := body[offsetHead:]
	if gotConsumer != consumer || !bytes.Equal(gotTopic, []byte(topic)) {
		return 0, fmt.Errorf("%w: file belongs to consumer %d of topic %q", ErrCorruptOffset, gotConsumer, gotTopic)
	}
	return Offset(binary.LittleEndian.Uint64(body[13:])), nil
}

// fileName returns the name of the file of one pair (see FileOffsetStore).
func fileName(topic string, consumer uint64) string {
	var sb strings.Builder
	for i := 0; i < len(topic); i++ {
		ch := topic[i]
		if ch >= 'A' && ch <= 'Z' {
			sb.WriteByte('_')
			ch += 'a' - 'A'
		}
		sb.WriteByte(ch)
	}
	name := sb.String()
	if len(name) > longName {
		h := sha256.Sum256([]byte(topic))
		name = name[:longName] + "~" + hex.EncodeToString(h[:16])
	}
	return name + "." + strconv.FormatUint(consumer, 10) + ".offset"
}

func (s *FileOffsetStore) path(topic string, consumer uint64) (string, error) {
	if err := checkName(topic); err != nil {
		return "", err
	}
	return filepath.Join(s.dir, fileName(topic, consumer)), nil
}

// lock returns the mutex that serializes commits to path.
func (s *FileOffsetStore) lock(path string) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.locks[path]
	if !ok {
		m = new(sync.Mutex)
		s.locks[path] = m
	}
	return m
}

// Load reads the offset committed for consumer on topic. A missing file
// means nothing was committed; a file that is damaged, cut short or
// written for another pair gives an error matching ErrCorruptOffset. A
// temporary file left behind by a commit that did not finish is ignored.
func (s *FileOffsetStore) Load(ctx context.Context, topic string, consumer uint64) (Offset, bool, error) {
	if err := ctx.Err(); err != nil {
		return 0, false, ctxErr(ctx)
	}
	path, err := s.path(topic, consumer)
	if err != nil {
		return 0, false, err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("lance: load offset: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, offsetMaxFile+1))
	if err != nil {
		return 0, false, fmt.Errorf("lance: load offset: %w", err)
	}
	off, err := decodeOffsetFile(b, topic, consumer)
	if err != nil {
		return 0, false, fmt.Errorf("lance: load offset from %s: %w", path, err)
	}
	return off, true, nil
}

// Commit stores off for consumer on topic, crash-safely (see
// FileOffsetStore). The context is checked before the write starts; the
// write itself is not interrupted.
func (s *FileOffsetStore) Commit(ctx context.Context, topic string, consumer uint64, off Offset) error {
	if err := ctx.Err(); err != nil {
		return ctxErr(ctx)
	}
	path, err := s.path(topic, consumer)
	if err != nil {
		return err
	}
	m := s.lock(path)
	m.Lock()
	defer m.Unlock()
	if err := writeFileSynced(path, encodeOffsetFile(topic, consumer, off)); err != nil {
		return fmt.Errorf("lance: commit offset %d of consumer %d on %q: %w", off, consumer, topic, err)
	}
	return nil
}

// writeFileSynced replaces path with data: temporary file, fsync, rename,
// fsync of the directory.
func writeFileSynced(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

// syncDir makes a rename in dir durable. Windows cannot sync a directory
// and does not need to.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// ServerOffsetStore is an OffsetStore kept by the LANCE server: Commit
// sends CommitOffset (0x22), which the server makes durable before it
// answers, and Load sends Subscribe (0x20) with start offset 0, which the
// server answers with the committed offset of the consumer.
//
// The protocol cannot tell a committed offset of 0 from no commit at all:
// both come back as 0, and Load reports them as "nothing committed"
// (ok false). Since 0 is the beginning of every log this only matters to
// a consumer whose fallback is elsewhere (a Seek to the end, say): it
// goes to the fallback instead of the beginning.
//
// The server keeps offsets with the topic: committing to a topic that does
// not exist fails with ErrTopicNotFound, and deleting a topic drops its
// offsets. The requests use c's connection; a Consumer's long polls run
// on a connection of their own, so they do not delay them.
type ServerOffsetStore struct {
	c *Client
}

// NewServerOffsetStore returns a store that keeps offsets on the server c
// is connected to. Closing c makes the store fail with ErrClosed.
func NewServerOffsetStore(c *Client) *ServerOffsetStore { return &ServerOffsetStore{c: c} }

// Load asks the server for the offset committed for consumer on topic.
// A committed 0 is reported as nothing committed (see ServerOffsetStore).
func (s *ServerOffsetStore) Load(ctx context.Context, topic string, consumer uint64) (Offset, bool, error) {
	if err := checkName(topic); err != nil {
		return 0, false, err
	}
	var off uint64
	err := s.c.withTopic(ctx, topic, func(id uint32) error {
		req := control.Subscribe{TopicID: id, StartOffset: 0, ConsumerID: consumer}
		rep, err := s.c.call(ctx, control.CodeSubscribe, req.AppendTo(nil), true, 0)
		if err != nil {
			return err
		}
		if rep.code != control.CodeSubscribeAck {
			return unexpected("Subscribe", rep)
		}
		ack, err := control.DecodeSubscribeAck(rep.payload)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrProtocol, err)
		}
		if ack.ConsumerID != consumer {
			return fmt.Errorf("%w: SubscribeAck for consumer %d, asked for %d", ErrProtocol, ack.ConsumerID, consumer)
		}
		off = ack.StartOffset
		return nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("lance: load offset of consumer %d on %q: %w", consumer, topic, err)
	}
	return Offset(off), off != 0, nil
}

// Commit stores off for consumer on topic on the server. A request lost
// with a broken connection is sent again: committing the same value twice
// does no harm.
func (s *ServerOffsetStore) Commit(ctx context.Context, topic string, consumer uint64, off Offset) error {
	if err := checkName(topic); err != nil {
		return err
	}
	err := s.c.withTopic(ctx, topic, func(id uint32) error {
		req := control.CommitOffset{TopicID: id, ConsumerID: consumer, Offset: uint64(off)}
		rep, err := s.c.call(ctx, control.CodeCommitOffset, req.AppendTo(nil), true, 0)
		if err != nil {
			return err
		}
		if rep.code != control.CodeCommitAck {
			return unexpected("CommitOffset", rep)
		}
		ack, err := control.DecodeCommitAck(rep.payload)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrProtocol, err)
		}
		if ack.ConsumerID != consumer || ack.CommittedOffset != uint64(off) {
			return fmt.Errorf("%w: CommitAck for consumer %d offset %d, sent %d and %d",
				ErrProtocol, ack.ConsumerID, ack.CommittedOffset, consumer, off)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("lance: commit offset %d of consumer %d on %q: %w", off, consumer, topic, err)
	}
	return nil
}
