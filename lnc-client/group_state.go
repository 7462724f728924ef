package lance

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// This file holds the pure parts of grouped consumption: the consumer id
// of a group, rendezvous assignment, and the state message members send
// each other (docs/client-groups.md describes all three).

// GroupConsumerID returns the consumer id under which the members of
// group commit their offsets: the FNV-1a 64-bit hash of the bytes
// "lance-group", 0x00 and the group name, passed through the murmur3
// 64-bit finalizer (fmix64). Any program can compute it, for example to
// read a group's committed offsets with an OffsetStore.
func GroupConsumerID(group string) uint64 {
	h := groupFNVOffset
	h = groupFNVString(h, "lance-group")
	h = groupFNVByte(h, 0)
	h = groupFNVString(h, group)
	return fmix64(h)
}

const (
	groupFNVOffset uint64 = 14695981039346656037
	groupFNVPrime  uint64 = 1099511628211
)

func groupFNVByte(h uint64, b byte) uint64 { return (h ^ uint64(b)) * groupFNVPrime }

func groupFNVString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h = groupFNVByte(h, s[i])
	}
	return h
}

// fmix64 is murmur3's finalizer: it spreads every input bit over the
// whole word, which FNV alone does poorly for short inputs.
func fmix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// rendezvousWeight is the weight of member for topic in
// highest-random-weight hashing: FNV-1a 64 over the topic, a 0x00 byte
// and the member name, finalized with fmix64.
func rendezvousWeight(topic, member string) uint64 {
	h := groupFNVString(groupFNVOffset, topic)
	h = groupFNVByte(h, 0)
	h = groupFNVString(h, member)
	return fmix64(h)
}

// rendezvousHeavier reports whether member a outranks member b for topic: a higher
// weight, or on equal weights the greater name.
func rendezvousHeavier(topic, a, b string) bool {
	wa, wb := rendezvousWeight(topic, a), rendezvousWeight(topic, b)
	if wa != wb {
		return wa > wb
	}
	return a > b
}

// rendezvousOwner returns the member with the highest weight for topic,
// or "" when members is empty. The order of members does not matter.
func rendezvousOwner(topic string, members []string) string {
	owner := ""
	for _, m := range members {
		if owner == "" || rendezvousHeavier(topic, m, owner) {
			owner = m
		}
	}
	return owner
}

// rendezvousAssign maps every topic to its owner among members.
func rendezvousAssign(topics, members []string) map[string]string {
	out := make(map[string]string, len(topics))
	for _, t := range topics {
		out[t] = rendezvousOwner(t, members)
	}
	return out
}

// groupState is what a member tells the others about itself: which topics
// it consumes, which it wants (pending) and which it holds (reads or is
// still releasing). Members send it over memberlist's reliable
// (TCP) user messages whenever it changes, and in reply to one that asks
// for a reply.
type groupState struct {
	group    string
	member   string
	instance uint64 // start time of the sender's process, in Unix nanoseconds
	seq      uint64 // the sender's state number; grows with every change
	// ackInstance and ack name the receiver's instance and the highest
	// state number of the receiver's that the sender had processed when
	// it sent this message.
	ackInstance uint64
	ack         uint64
	wantReply   bool // the receiver should answer with its own state
	leaving     bool // the sender is closing: assign it nothing
	topics      []string
	pending     []string // subset of topics
	held        []string // subset of topics
}

// State message layout, all integers little-endian or unsigned varints:
//
//	off size
//	  0    4 magic "LGS" and version 1
//	  4    1 flags: 0x01 want reply, 0x02 leaving
//	  5    8 instance
//	 13    8 seq
//	 21    8 ack instance
//	 29    8 ack
//	 37      group: uvarint length, bytes
//	         member: uvarint length, bytes
//	         topics: uvarint count, then per topic uvarint length, bytes
//	         pending: uvarint count, then per topic its uvarint index in topics
//	         held: uvarint count, then indexes as for pending
const (
	groupStateMagic     = "LGS\x01"
	groupStateHead      = 37
	groupFlagWantReply  = 0x01
	groupFlagLeaving    = 0x02
	groupStateMaxString = 1 << 16
)

// errBadGroupState is the cause of every decoding failure of a state message.
var errBadGroupState = errors.New("lance: malformed group state message")

func appendGroupString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// encode appends m to b. pending and held must be subsets of topics.
func (m *groupState) encode(b []byte) []byte {
	b = append(b, groupStateMagic...)
	var flags byte
	if m.wantReply {
		flags |= groupFlagWantReply
	}
	if m.leaving {
		flags |= groupFlagLeaving
	}
	b = append(b, flags)
	b = binary.LittleEndian.AppendUint64(b, m.instance)
	b = binary.LittleEndian.AppendUint64(b, m.seq)
	b = binary.LittleEndian.AppendUint64(b, m.ackInstance)
	b = binary.LittleEndian.AppendUint64(b, m.ack)
	b = appendGroupString(b, m.group)
	b = appendGroupString(b, m.member)
	b = binary.AppendUvarint(b, uint64(len(m.topics)))
	index := make(map[string]int, len(m.topics))
	for i, t := range m.topics {
		b = appendGroupString(b, t)
		index[t] = i
	}
	for _, set := range [][]string{m.pending, m.held} {
		b = binary.AppendUvarint(b, uint64(len(set)))
		for _, t := range set {
			b = binary.AppendUvarint(b, uint64(index[t]))
		}
	}
	return b
}

// groupStateReader decodes the variable part of a state message.
type groupStateReader struct {
	b   []byte
	err error
}

func (r *groupStateReader) uvarint(limit uint64) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = fmt.Errorf("%w: bad varint", errBadGroupState)
		return 0
	}
	if v > limit {
		r.err = fmt.Errorf("%w: value %d over %d", errBadGroupState, v, limit)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *groupStateReader) str() string {
	n := r.uvarint(groupStateMaxString)
	if r.err != nil {
		return ""
	}
	if uint64(len(r.b)) < n {
		r.err = fmt.Errorf("%w: string of %d bytes, %d left", errBadGroupState, n, len(r.b))
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// subset reads a list of indexes into topics.
func (r *groupStateReader) subset(topics []string) []string {
	// Every index takes at least one byte.
	n := r.uvarint(uint64(len(r.b)))
	if r.err != nil || n == 0 {
		return nil
	}
	out := make([]string, 0, n)
	for range n {
		i := r.uvarint(uint64(len(topics)))
		if r.err != nil {
			return nil
		}
		if i >= uint64(len(topics)) {
			r.err = fmt.Errorf("%w: topic index %d of %d", errBadGroupState, i, len(topics))
			return nil
		}
		out = append(out, topics[i])
	}
	return out
}

// decodeGroupState parses a state message. It copies what it keeps, so b may
// be reused afterwards.
func decodeGroupState(b []byte) (*groupState, error) {
	if len(b) < groupStateHead {
		return nil, fmt.Errorf("%w: %d bytes", errBadGroupState, len(b))
	}
	if string(b[:4]) != groupStateMagic {
		return nil, fmt.Errorf("%w: magic %q", errBadGroupState, b[:4])
	}
	flags := b[4]
	if flags&^(groupFlagWantReply|groupFlagLeaving) != 0 {
		return nil, fmt.Errorf("%w: flags %#x", errBadGroupState, flags)
	}
	m := &groupState{
		wantReply:   flags&groupFlagWantReply != 0,
		leaving:     flags&groupFlagLeaving != 0,
		instance:    binary.LittleEndian.Uint64(b[5:]),
		seq:         binary.LittleEndian.Uint64(b[13:]),
		ackInstance: binary.LittleEndian.Uint64(b[21:]),
		ack:         binary.LittleEndian.Uint64(b[29:]),
	}
	r := &groupStateReader{b: b[groupStateHead:]}
	m.group = r.str()
	m.member = r.str()
	// Every topic takes at least two bytes.
	n := r.uvarint(uint64(len(r.b)) / 2)
	for i := uint64(0); i < n && r.err == nil; i++ {
		t := r.str()
		if r.err == nil && checkName(t) != nil {
			r.err = fmt.Errorf("%w: topic name %q", errBadGroupState, t)
		}
		m.topics = append(m.topics, t)
	}
	m.pending = r.subset(m.topics)
	m.held = r.subset(m.topics)
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%w: %d trailing bytes", errBadGroupState, len(r.b))
	}
	if r.err == nil && m.member == "" {
		r.err = fmt.Errorf("%w: no member name", errBadGroupState)
	}
	if r.err != nil {
		return nil, r.err
	}
	return m, nil
}

// sortedDistinct returns the distinct elements of s, sorted.
func sortedDistinct[T cmp.Ordered](s []T) []T {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}
