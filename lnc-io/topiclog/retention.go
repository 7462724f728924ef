package topiclog

import (
	"fmt"
	"time"
)

// Retention limits a log. Zero means no limit.
type Retention struct {
	// MaxAge removes a sealed segment once its newest batch's timestamp
	// is older than now minus MaxAge.
	MaxAge time.Duration
	// MaxBytes removes the oldest sealed segments while the log holds
	// more than MaxBytes.
	MaxBytes int64
}

// ApplyRetention removes the oldest sealed segments that r no longer
// allows and returns their base offsets. The active segment is never
// removed, and no remaining byte changes its offset. Readers holding a
// removed segment keep reading it until they release it.
func (l *Log) ApplyRetention(r Retention, now time.Time) ([]uint64, error) {
	if r.MaxAge <= 0 && r.MaxBytes <= 0 {
		return nil, nil
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, ErrClosed
	}
	var total int64
	for _, s := range l.segs {
		total += s.size
	}
	var drop []*segment
	for _, s := range l.segs[:len(l.segs)-1] {
		if !s.sealed {
			break
		}
		expired := r.MaxAge > 0 && s.entries > 0 && now.Sub(time.Unix(0, int64(s.maxTS))) > r.MaxAge
		oversize := r.MaxBytes > 0 && total > r.MaxBytes
		if !expired && !oversize {
			break
		}
		drop = append(drop, s)
		total -= s.size
	}
	l.segs = l.segs[len(drop):]
	l.mu.Unlock()

	bases := make([]uint64, 0, len(drop))
	var firstErr error
	for _, s := range drop {
		bases = append(bases, s.base)
		dataPath, idxPath := s.paths(l.dir)
		// Data first: a crash in between leaves an index without data at
		// the start of the log, which recovery removes.
		for _, name := range []string{dataPath, idxPath} {
			if err := l.opts.FS.Remove(name); err != nil && firstErr == nil {
				firstErr = fmt.Errorf("topiclog: retention: %w", err)
			}
		}
		s.release()
	}
	if len(drop) > 0 {
		if err := l.opts.FS.SyncDir(l.dir); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("topiclog: retention: %w", err)
		}
	}
	return bases, firstErr
}
