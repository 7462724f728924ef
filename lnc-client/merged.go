package lance

import (
	"bytes"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"slices"
	"time"

	"github.com/lance-go/lance/lnc-core/tlv"
	"github.com/lance-go/lance/lnc-network/control"
)

// ReplayOption configures a MergedReplay.
type ReplayOption func(*replayConfig)

type replayConfig struct {
	from     time.Time
	maxBytes int
}

// ReplayFrom starts every topic at its first batch whose producer
// timestamp is at or after t, instead of at the beginning of the log.
func ReplayFrom(t time.Time) ReplayOption { return func(c *replayConfig) { c.from = t } }

// ReplayMaxBytes sets how many bytes one fetch per topic asks for,
// default 1 MiB.
func ReplayMaxBytes(n int) ReplayOption { return func(c *replayConfig) { c.maxBytes = n } }

// MergedReplay reads several topics as one sequence of records ordered by
// the 128-bit sort key the server gave each batch when it stored it
// (producer timestamp, node, actor, sequence): records of one batch come
// together, in their order in the batch, and batches of different topics
// interleave by key, with the topic name breaking ties. The replay covers
// what the topics held when Records was called (from the beginning, or
// from ReplayFrom), so the same topics give the same sequence on every
// run: a deterministic replay for training, back-testing or pre-warming
// caches.
//
// It needs the LANCE-Go server's keyed FetchBatches (docs/LWP.md §7); a
// server without it makes Records fail with ErrUnsupported. Like a
// Consumer it uses a connection of its own.
type MergedReplay struct {
	cl     *Client
	topics []string
	cfg    replayConfig
}

// NewMergedReplay returns a replay of topics (at least one, no duplicates).
func NewMergedReplay(c *Client, topics []string, opts ...ReplayOption) (*MergedReplay, error) {
	if len(topics) == 0 {
		return nil, errors.New("lance: merged replay needs at least one topic")
	}
	seen := make(map[string]bool, len(topics))
	for _, t := range topics {
		if err := checkName(t); err != nil {
			return nil, err
		}
		if seen[t] {
			return nil, fmt.Errorf("lance: topic %q named twice in a merged replay", t)
		}
		seen[t] = true
	}
	cfg := replayConfig{maxBytes: 1 << 20}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.maxBytes <= 0 || cfg.maxBytes > control.MaxFetchData {
		return nil, fmt.Errorf("lance: max bytes %d out of range", cfg.maxBytes)
	}
	return &MergedReplay{cl: newClient(c.Addr(), c.cfg), topics: slices.Clone(topics), cfg: cfg}, nil
}

// Close closes the replay's connection.
func (m *MergedReplay) Close() error { return m.cl.Close() }

// Records yields the records of every topic in sort-key order, each with
// its Topic and Offset set, up to the end each topic's log had when
// Records was called. It ends after the last record, or after one
// (Record{}, err) pair when ctx ends or a fetch fails for good.
func (m *MergedReplay) Records(ctx context.Context) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		if err := m.run(ctx, yield); err != nil {
			yield(Record{}, fmt.Errorf("lance: merged replay: %w", err))
		}
	}
}

func (m *MergedReplay) run(ctx context.Context, yield func(Record, error) bool) error {
	var h replayHeap
	for _, name := range m.topics {
		s, err := m.open(ctx, name)
		if err != nil {
			return err
		}
		if err := s.fill(ctx, m); err != nil {
			return err
		}
		if len(s.batches) > 0 {
			h = append(h, s)
		}
	}
	heap.Init(&h)
	var recs []Record
	for len(h) > 0 {
		if err := ctx.Err(); err != nil {
			return ctxErr(ctx)
		}
		s := h[0]
		b := s.batches[0]
		var err error
		recs, err = appendBatchRecords(recs[:0], b.data, Offset(b.dir.Offset))
		if err != nil {
			return fmt.Errorf("topic %q, batch at offset %d: %w", s.topic, b.dir.Offset, err)
		}
		for i := range recs {
			recs[i].Topic = s.topic
			recs[i].BatchKey = b.dir.SortKey
			if !yield(recs[i], nil) {
				return nil
			}
		}
		s.batches[0] = replayBatch{}
		s.batches = s.batches[1:]
		if len(s.batches) == 0 {
			if err := s.fill(ctx, m); err != nil {
				return err
			}
		}
		if len(s.batches) == 0 {
			heap.Pop(&h)
		} else {
			heap.Fix(&h, 0)
		}
	}
	return nil
}

// replayStream is one topic of a replay.
type replayStream struct {
	topic   string
	id      uint32
	next    uint64 // where the next fetch starts
	end     uint64 // the log's end when the replay started
	batches []replayBatch
	dir     []control.BatchDirEntry
}

type replayBatch struct {
	dir  control.BatchDirEntry
	data []byte
}

// open resolves the topic and finds where its replay starts and ends.
func (m *MergedReplay) open(ctx context.Context, name string) (*replayStream, error) {
	s := &replayStream{topic: name}
	err := m.cl.withTopic(ctx, name, func(id uint32) error {
		s.id = id
		// No batch is this late: the reply gives the start and the end.
		or, err := m.cl.offsetForTime(ctx, id, math.MaxUint64)
		if err != nil {
			return err
		}
		s.next, s.end = or.Start, or.End
		if !m.cfg.from.IsZero() {
			from, err := m.cl.offsetForTime(ctx, id, uint64(max(m.cfg.from.UnixNano(), 0)))
			if err != nil {
				return err
			}
			s.next = min(from.Offset, s.end)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("topic %q: %w", name, err)
	}
	return s, nil
}

// fill fetches the stream's next batches, up to its end.
func (s *replayStream) fill(ctx context.Context, m *MergedReplay) error {
	for len(s.batches) == 0 && s.next < s.end {
		req := control.FetchBatches{TopicID: s.id, StartOffset: s.next, MaxBytes: uint32(m.cfg.maxBytes), Flags: control.FetchWithKeys}
		rep, err := m.cl.call(ctx, control.CodeFetchBatches, req.AppendTo(nil), true, 0)
		if err != nil {
			if errors.Is(err, ErrUnsupported) {
				return fmt.Errorf("topic %q: the server cannot report sort keys: %w", s.topic, err)
			}
			return fmt.Errorf("topic %q: %w", s.topic, err)
		}
		if rep.code != control.CodeKeyedBatchesResponse {
			if rep.code == control.CodeBatchesResponse {
				return fmt.Errorf("topic %q: the server ignored the request for sort keys: %w", s.topic, ErrUnsupported)
			}
			return fmt.Errorf("topic %q: %w", s.topic, fetchReplyErr("FetchBatches", rep))
		}
		kr, err := control.DecodeKeyedBatchesResponse(rep.payload, s.dir[:0])
		if err != nil {
			return fmt.Errorf("%w: %w", ErrProtocol, err)
		}
		s.dir = kr.Dir
		if kr.NextOffset <= s.next && len(kr.Dir) == 0 {
			return fmt.Errorf("topic %q: %w: no progress at offset %d before the end %d", s.topic, ErrProtocol, s.next, s.end)
		}
		for _, e := range kr.Dir {
			if e.Offset >= s.end {
				break
			}
			at := e.Offset - kr.StartOffset
			s.batches = append(s.batches, replayBatch{dir: e, data: kr.Data[at : at+uint64(e.Length)]})
		}
		s.next = kr.NextOffset
	}
	return nil
}

// replayHeap orders streams by the sort key of their first batch, then by
// topic name.
type replayHeap []*replayStream

func (h replayHeap) Len() int { return len(h) }
func (h replayHeap) Less(i, j int) bool {
	a, b := &h[i].batches[0].dir.SortKey, &h[j].batches[0].dir.SortKey
	if c := bytes.Compare(a[:], b[:]); c != 0 {
		return c < 0
	}
	return h[i].topic < h[j].topic
}
func (h replayHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *replayHeap) Push(x any)   { *h = append(*h, x.(*replayStream)) }
func (h *replayHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return s
}

// appendBatchRecords decodes the records of one whole batch that starts at
// base, skipping its producer record and unpacking a compressed batch.
func appendBatchRecords(out []Record, data []byte, base Offset) ([]Record, error) {
	it := tlv.NewIterator(data)
	for it.Next() {
		tr := it.Record()
		off := base + Offset(tr.Offset)
		end := off + Offset(tr.Size())
		switch tr.Type {
		case typeProducer:
			continue
		case typeCompressed:
			recs, err := unpack(tr.Value, off, base, end)
			if err != nil {
				return out, fmt.Errorf("compressed records at offset %d: %w", off, err)
			}
			out = append(out, recs...)
			continue
		}
		r, err := decodeRecord(tr)
		if err != nil {
			return out, fmt.Errorf("record at offset %d: %w", off, err)
		}
		r.Offset, r.BatchOffset, r.next = off, base, end
		out = append(out, r)
	}
	if err := it.Err(); err != nil {
		return out, fmt.Errorf("data at offset %d is not a TLV record: %w", base+Offset(it.Consumed()), err)
	}
	return out, nil
}
