package server

import (
	"fmt"

	"github.com/lance-go/lance/lance/internal/topics"
	"github.com/lance-go/lance/lnc-io/index"
	"github.com/lance-go/lance/lnc-io/topiclog"
)

// Reads check what they serve. The read path computes the reply's CRC
// over the bytes it read, so bytes that rotted on disk after recovery
// would reach the client under a valid CRC; verifyRange therefore checks
// every batch the reply touches against the CRC in its index entry. A
// batch cut by the range is read whole to be checked; the last batch
// checked is remembered per connection, so that a consumer reading a
// large batch in small fetches reads it once.

// verified remembers the last batch checked on this connection.
type verified struct {
	topic *topics.Topic
	off   uint64
	end   uint64
}

// verifyRange checks the batches holding data, which was read from l at
// off. It returns an error wrapping topiclog.ErrCorrupt for a batch that
// fails its CRC.
func (c *conn) verifyRange(t *topics.Topic, data []byte, off uint64) error {
	l := t.Log()
	end := off + uint64(len(data))
	var scratch [64]index.Entry
	for next := off; next < end; {
		es, err := l.Batches(next, int(min(end-next, 1<<30)), scratch[:0])
		if err != nil {
			return err
		}
		if len(es) == 0 {
			return fmt.Errorf("%w: no batch holds offset %d", topiclog.ErrCorrupt, next)
		}
		for i := range es {
			e := &es[i]
			if e.Offset >= end {
				return nil
			}
			next = e.End()
			if c.checked.topic == t && c.checked.off == e.Offset && c.checked.end == e.End() {
				continue
			}
			var b []byte
			if e.Offset >= off && e.End() <= end {
				b = data[e.Offset-off : e.End()-off]
			} else {
				// Cut by the range: read the whole batch.
				if cap(c.vbuf) < int(e.Length) {
					c.vbuf = make([]byte, e.Length)
				}
				b = c.vbuf[:e.Length]
				got, err := c.readLog(l, b, e.Offset)
				if err != nil {
					return err
				}
				if got != len(b) {
					return fmt.Errorf("%w: batch at offset %d is cut short on disk", topiclog.ErrCorrupt, e.Offset)
				}
			}
			if e.Dialect.Sum(b) != e.CRC {
				c.s.Metrics.crcFailures.Inc()
				return fmt.Errorf("%w: batch at offset %d (%d bytes) fails its CRC", topiclog.ErrCorrupt, e.Offset, e.Length)
			}
			c.checked = verified{topic: t, off: e.Offset, end: e.End()}
		}
	}
	if cap(c.vbuf) > 4<<20 {
		c.vbuf = nil // do not keep a huge batch's buffer per connection
	}
	return nil
}
