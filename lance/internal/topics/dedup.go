package topics

import (
	"errors"
	"fmt"
	"slices"

	"github.com/lance-go/lance/lnc-io/index"
	"github.com/lance-go/lance/lnc-io/topiclog"
)

// De-duplication of idempotent producers' batches (docs/LWP.md §7,
// docs/server.md "Idempotent producers").
//
// For each producer that wrote to the topic recently, the topic's writer
// remembers the largest sequences it stored and their offsets: up to
// dedupWindow; when full, the smaller half is forgotten, so between
// dedupWindow/2 and dedupWindow are known. A batch whose (producer,
// sequence) is remembered is a retry: it is not stored again, and its ack
// carries the offset of the first copy. A sequence above the largest one
// forgotten (the floor) is new. One at or below the floor cannot be told
// apart from a retry of a forgotten batch and is refused with
// ErrSequenceTooOld.
//
// The table is rebuilt at open from the index entries of the log's last
// dedupScanBytes, which carry each batch's producer id and sequence, so
// retries are recognised across restarts too.
const (
	// dedupWindow is the most sequences remembered per producer; at least
	// half as many are. Half of it bounds how far a producer may pipeline
	// idempotent batches to one topic (lnc-client's MaxIdempotentInFlight).
	dedupWindow = 256
	// dedupProducers caps the producers remembered per topic; past it,
	// the one unheard of for the longest is forgotten.
	dedupProducers = 4096
	// dedupScanBytes is how much of the log's tail recovery reads the
	// producers of.
	dedupScanBytes = 256 << 20
)

// ErrSequenceTooOld is the error of an idempotent batch whose sequence is
// below its producer's de-duplication window: it may be a retry of a batch
// already stored, which can no longer be checked.
var ErrSequenceTooOld = errors.New("producer sequence is older than the de-duplication window")

// dedupTable is owned by the topic's writer goroutine (and by openTopic
// before that goroutine starts): no lock.
type dedupTable struct {
	m     map[uint64]*producerWindow
	clock uint64 // counts lookups, for forgetting the least recent producer
}

// producerWindow holds a producer's largest stored sequences, ascending,
// with their offsets, and the largest sequence forgotten.
type producerWindow struct {
	seqs    []uint64
	offs    []uint64
	floor   uint64
	lastUse uint64
}

// verdict is the outcome of a lookup.
type verdict uint8

const (
	verdictNew verdict = iota
	verdictDuplicate
	verdictTooOld
)

// check classifies (pid, seq); for a duplicate it returns the offset of
// the stored copy.
func (d *dedupTable) check(pid, seq uint64) (verdict, uint64) {
	w := d.m[pid]
	if w == nil {
		return verdictNew, 0
	}
	d.clock++
	w.lastUse = d.clock
	if i, found := slices.BinarySearch(w.seqs, seq); found {
		return verdictDuplicate, w.offs[i]
	}
	if seq <= w.floor {
		return verdictTooOld, 0
	}
	return verdictNew, 0
}

// record remembers that (pid, seq) was stored at off.
func (d *dedupTable) record(pid, seq, off uint64) {
	if d.m == nil {
		d.m = make(map[uint64]*producerWindow)
	}
	d.clock++
	w := d.m[pid]
	if w == nil {
		if len(d.m) >= dedupProducers {
			d.forgetOldest()
		}
		w = &producerWindow{seqs: make([]uint64, 0, 8), offs: make([]uint64, 0, 8)}
		d.m[pid] = w
	}
	w.lastUse = d.clock
	if seq <= w.floor {
		return // forgotten already: nothing to remember
	}
	i, found := slices.BinarySearch(w.seqs, seq)
	if found {
		w.offs[i] = off
		return
	}
	w.seqs = slices.Insert(w.seqs, i, seq)
	w.offs = slices.Insert(w.offs, i, off)
	if len(w.seqs) > dedupWindow {
		// Forget the smaller half at once, so that the copying is paid
		// once per dedupWindow/2 batches.
		h := len(w.seqs) / 2
		w.floor = w.seqs[h-1]
		w.seqs = append(w.seqs[:0], w.seqs[h:]...)
		w.offs = append(w.offs[:0], w.offs[h:]...)
	}
}

// forgetOldest drops the producer looked up least recently.
func (d *dedupTable) forgetOldest() {
	var oldest uint64
	var use uint64 = 1<<64 - 1
	for pid, w := range d.m {
		if w.lastUse < use {
			oldest, use = pid, w.lastUse
		}
	}
	delete(d.m, oldest)
}

// load fills the table from the index entries of the log's tail.
func (d *dedupTable) load(l *topiclog.Log) error {
	end := l.End()
	off := l.Start()
	if end-off > dedupScanBytes {
		off = end - dedupScanBytes
	}
	var buf []index.Entry
	for off < end {
		es, err := l.Batches(off, 1<<20, buf[:0])
		if err != nil {
			if errors.Is(err, topiclog.ErrOffset) {
				return nil // retention removed it meanwhile: nothing older to learn
			}
			return fmt.Errorf("reading producers from the index: %w", err)
		}
		if len(es) == 0 {
			break
		}
		for i := range es {
			if e := &es[i]; e.ProducerID != 0 {
				d.record(e.ProducerID, e.Sequence, e.Offset)
			}
		}
		off = es[len(es)-1].End()
		buf = es
	}
	return nil
}
