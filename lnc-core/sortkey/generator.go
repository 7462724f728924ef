package sortkey

import "math"

// Generator hands out strictly increasing keys for one (node, actor) pair.
//
// The caller supplies the timestamp for each key, usually the record's
// timestamp_ns. Next uses it as is when it is later than the timestamp of
// the previous key, with sequence 0. Otherwise (the same nanosecond, or a
// clock that went backwards) Next keeps the previous timestamp and adds one
// to the sequence. So a key's timestamp is never earlier than the one
// supplied for an earlier key, and it may be later than the one supplied for
// it.
//
// When the sequence is already MaxSequence (2^40 keys in one nanosecond,
// which only a clock stuck far in the future can cause), Next moves the
// timestamp forward by one nanosecond and restarts the sequence at 0. Keys
// stay unique and strictly increasing; the price is that the key's timestamp
// runs ahead of the supplied time by a nanosecond. SequenceOverflows counts
// these events so that metrics can report them.
//
// A Generator is not safe for concurrent use: it belongs to the single
// goroutine that runs its actor, which is what the actor_id field names.
// Two goroutines sharing one Generator would need their own lock. The zero
// Generator is usable and generates keys for node 0, actor 0.
type Generator struct {
	node      uint16
	actor     uint8
	started   bool   // last holds a key handed out by Next
	last      Key    // most recent key returned
	overflows uint64 // times the sequence ran out and the timestamp moved on
}

// NewGenerator returns a Generator for the given node and actor.
func NewGenerator(node uint16, actor uint8) *Generator {
	return &Generator{node: node, actor: actor}
}

// Next returns a key larger than every key this Generator returned before,
// built from tsNanos as described on Generator. The only error is
// ErrExhausted, once the largest possible key for the node and actor has
// been handed out (timestamp 2^64-1 and sequence MaxSequence).
func (g *Generator) Next(tsNanos uint64) (Key, error) {
	var k Key
	switch {
	case !g.started || tsNanos > g.last.Timestamp():
		k = makeKey(tsNanos, g.node, g.actor, 0)
	case g.last.Sequence() < MaxSequence:
		// Same actor, same node: the sequence occupies the low bits, so
		// adding one to the packed key adds one to the sequence.
		k = Key{hi: g.last.hi, lo: g.last.lo + 1}
	case g.last.Timestamp() < math.MaxUint64:
		g.overflows++
		k = makeKey(g.last.Timestamp()+1, g.node, g.actor, 0)
	default:
		return Key{}, ErrExhausted
	}
	g.last = k
	g.started = true
	return k, nil
}

// Last returns the most recent key returned by Next, and false if Next has
// not returned a key yet.
func (g *Generator) Last() (Key, bool) { return g.last, g.started }

// SequenceOverflows returns how many times Next found the sequence at
// MaxSequence and moved the timestamp forward by one nanosecond instead.
func (g *Generator) SequenceOverflows() uint64 { return g.overflows }
