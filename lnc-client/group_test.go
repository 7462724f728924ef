package lance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// fastGossip is memberlist.DefaultLocalConfig with shorter probe and
// gossip intervals, so that a failed member is declared dead within a few
// seconds; the suspicion multipliers keep some slack for a busy machine.
func fastGossip(c *memberlist.Config) {
	local := memberlist.DefaultLocalConfig()
	c.TCPTimeout = local.TCPTimeout
	c.IndirectChecks = local.IndirectChecks
	c.RetransmitMult = local.RetransmitMult
	c.SuspicionMult = 5
	c.SuspicionMaxTimeoutMult = 4
	c.PushPullInterval = 2 * time.Second
	c.ProbeInterval = 250 * time.Millisecond
	c.ProbeTimeout = 150 * time.Millisecond
	c.GossipInterval = 50 * time.Millisecond
	c.GossipToTheDeadTime = 2 * time.Second
}

// withLookup replaces DNS resolution in tests.
func withLookup(fn func(ctx context.Context, host string) ([]string, error)) GroupOption {
	return func(c *groupConfig) { c.lookup = fn }
}

func TestGroupConsumerIDFormula(t *testing.T) {
	for _, group := range []string{"g", "billing", strings.Repeat("x", 255)} {
		h := fnv.New64a()
		h.Write([]byte("lance-group\x00" + group))
		if got, want := GroupConsumerID(group), fmix64(h.Sum64()); got != want {
			t.Errorf("GroupConsumerID(%q) = %d, want %d", group, got, want)
		}
	}
	// Pinned values: the id names committed offsets on servers, so it
	// must never change.
	for group, want := range map[string]uint64{
		"g":       8539637485683047192,
		"billing": 17389458886378011715,
	} {
		if got := GroupConsumerID(group); got != want {
			t.Errorf("GroupConsumerID(%q) changed: %d, was %d", group, got, want)
		}
	}
	if GroupConsumerID("a") == GroupConsumerID("b") {
		t.Error("distinct groups share a consumer id")
	}
}

func TestRendezvousWeightPinned(t *testing.T) {
	// Every member of a group must compute the same weights, whatever
	// its version: pin the function.
	h := fnv.New64a()
	h.Write([]byte("orders\x00member-1"))
	if got, want := rendezvousWeight("orders", "member-1"), fmix64(h.Sum64()); got != want {
		t.Fatalf("weight = %#x, want %#x", got, want)
	}
	if rendezvousWeight("orders", "member-1") != 0xa21f54c78d6885d7 {
		t.Fatalf("weight changed: %#x", rendezvousWeight("orders", "member-1"))
	}
	if fmix64(0) != 0 || fmix64(1) != 0xb456bcfc34c2cb2c {
		t.Fatalf("fmix64 differs from murmur3's finalizer: fmix64(1) = %#x", fmix64(1))
	}
}

func rendezvousTestTopics(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "topic-" + strconv.Itoa(i)
	}
	return out
}

func rendezvousTestMembers(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("host-%d-%08x", i, rand.Uint32())
	}
	return out
}

func TestRendezvousDeterministic(t *testing.T) {
	topics, members := rendezvousTestTopics(200), rendezvousTestMembers(7)
	want := rendezvousAssign(topics, members)
	for range 20 {
		shuffled := slices.Clone(members)
		rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if got := rendezvousAssign(topics, shuffled); !maps.Equal(got, want) {
			t.Fatal("assignment depends on the order of members")
		}
	}
	for _, tp := range topics {
		if !slices.Contains(members, want[tp]) {
			t.Fatalf("topic %s assigned to %q, not a member", tp, want[tp])
		}
	}
	if rendezvousOwner("x", nil) != "" {
		t.Fatal("owner among no members")
	}
}

func TestRendezvousBalanced(t *testing.T) {
	for _, c := range []struct{ topics, members int }{{900, 3}, {1000, 5}, {2000, 10}, {9, 3}} {
		topics, members := rendezvousTestTopics(c.topics), rendezvousTestMembers(c.members)
		counts := map[string]int{}
		for _, m := range rendezvousAssign(topics, members) {
			counts[m]++
		}
		mean := float64(c.topics) / float64(c.members)
		for _, m := range members {
			n := counts[m]
			// Rendezvous hashing is balanced in expectation; with few
			// topics only ask that nobody is left out entirely or takes
			// far more than a fair share.
			lo, hi := 0.6*mean, 1.4*mean
			if c.topics < 100 {
				lo, hi = 0, 3*mean
			}
			if float64(n) < lo || float64(n) > hi {
				t.Errorf("%d topics over %d members: %s got %d, mean %.0f", c.topics, c.members, m, n, mean)
			}
		}
	}
}

func TestRendezvousMinimalMovement(t *testing.T) {
	topics, members := rendezvousTestTopics(1000), rendezvousTestMembers(6)
	before := rendezvousAssign(topics, members)
	// A member leaves: only its topics move.
	gone := members[2]
	rest := slices.Delete(slices.Clone(members), 2, 3)
	after := rendezvousAssign(topics, rest)
	moved := 0
	for _, tp := range topics {
		if before[tp] != after[tp] {
			moved++
			if before[tp] != gone {
				t.Errorf("topic %s moved from %s to %s though %s stayed", tp, before[tp], after[tp], before[tp])
			}
		}
	}
	if moved == 0 {
		t.Error("the member that left had no topics")
	}
	// A member joins: topics move only to it.
	newcomer := "newcomer"
	joined := rendezvousAssign(topics, append(slices.Clone(members), newcomer))
	for _, tp := range topics {
		if before[tp] != joined[tp] && joined[tp] != newcomer {
			t.Errorf("topic %s moved from %s to %s, not to the newcomer", tp, before[tp], joined[tp])
		}
	}
}

func TestGroupStateCodec(t *testing.T) {
	m := &groupState{
		group: "g1", member: "m-1", instance: 1 << 60, seq: 42, ackInstance: 7, ack: 41,
		wantReply: true, leaving: true,
		topics: []string{"a", "b", "c-3"}, pending: []string{"c-3"}, held: []string{"a", "b"},
	}
	b := m.encode(nil)
	got, err := decodeGroupState(b)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(*got) != fmt.Sprint(*m) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", *got, *m)
	}
	empty := (&groupState{group: "g", member: "x"}).encode(nil)
	if _, err := decodeGroupState(empty); err != nil {
		t.Fatalf("empty state: %v", err)
	}
	for i := range len(b) {
		if _, err := decodeGroupState(b[:i]); !errors.Is(err, errBadGroupState) {
			t.Fatalf("cut at %d of %d: err %v", i, len(b), err)
		}
	}
	bad := bytes.Clone(b)
	bad[4] = 0x80
	if _, err := decodeGroupState(bad); !errors.Is(err, errBadGroupState) {
		t.Fatalf("unknown flag accepted: %v", err)
	}
	if _, err := decodeGroupState(append(bytes.Clone(b), 0)); !errors.Is(err, errBadGroupState) {
		t.Fatalf("trailing byte accepted: %v", err)
	}
}

func FuzzGroupState(f *testing.F) {
	f.Add((&groupState{group: "g", member: "m", topics: []string{"a", "b"}, held: []string{"b"}}).encode(nil))
	f.Add((&groupState{group: "g", member: "m", seq: 3, wantReply: true}).encode(nil))
	f.Add([]byte(groupStateMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeGroupState(b)
		if err != nil {
			return
		}
		again, err := decodeGroupState(m.encode(nil))
		if err != nil {
			t.Fatalf("re-encoding a decoded state: %v", err)
		}
		if fmt.Sprint(*again) != fmt.Sprint(*m) {
			t.Fatalf("unstable: %+v vs %+v", *again, *m)
		}
	})
}

func TestGroupOptionErrors(t *testing.T) {
	s := startServer(t)
	c := dialT(t, s)
	for _, tc := range []struct {
		group  string
		topics []string
		opts   []GroupOption
	}{
		{"", []string{"a"}, nil},
		{"g", nil, nil},
		{"g", []string{"bad_name"}, nil},
		{"g", []string{"a"}, []GroupOption{WithGroupConsumerOptions(WithOffsetStore(NewServerOffsetStore(c), 1))}},
		{"g", []string{"a"}, []GroupOption{WithGroupSeeds("no-port")}},
		{"g", []string{"a"}, []GroupOption{WithGroupDNS("members.local", 0)}},
		{"g", []string{"a"}, []GroupOption{WithRevokeTimeout(0)}},
		// The sockets cannot be bound; then they are bound but memberlist
		// refuses the advertise address: nothing may leak (goleak).
		{"g", []string{"a"}, []GroupOption{WithGroupBind("192.0.2.1", 0)}},
		{"g", []string{"a"}, []GroupOption{WithGroupBind("127.0.0.1", 0), WithGroupAdvertise("not-an-ip", 7946)}},
	} {
		g, err := NewGroupConsumer(c, tc.group, tc.topics, tc.opts...)
		if err == nil {
			g.Close(context.Background())
			t.Errorf("NewGroupConsumer(%q, %q) accepted", tc.group, tc.topics)
		}
	}
}

// groupLedger records what the members of a test group consume and
// commit, and checks the group's promise as it goes: no record is
// consumed again once a commit covered it.
type groupLedger struct {
	mu         sync.Mutex                      // guards every field below
	count      map[string]map[string]int       // topic → value → times consumed
	dupAt      map[string][]Offset             // topic → offsets consumed more than once
	maxCommit  map[string]Offset               // topic → highest offset committed
	lastCommit map[string]map[string]Offset    // member → topic → its last commit
	violations []string                        // records consumed below a commit
	produced   map[string]map[string]bool      // topic → values produced
	byMember   map[string]map[string]time.Time // member → topic → first record consumed
}

func newGroupLedger() *groupLedger {
	return &groupLedger{
		count:      map[string]map[string]int{},
		dupAt:      map[string][]Offset{},
		maxCommit:  map[string]Offset{},
		lastCommit: map[string]map[string]Offset{},
		produced:   map[string]map[string]bool{},
		byMember:   map[string]map[string]time.Time{},
	}
}

func (l *groupLedger) consume(member string, r Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.maxCommit[r.Topic]; r.Offset < c {
		l.violations = append(l.violations, fmt.Sprintf("%s consumed %s@%d after a commit at %d", member, r.Topic, r.Offset, c))
	}
	if l.count[r.Topic] == nil {
		l.count[r.Topic] = map[string]int{}
	}
	l.count[r.Topic][string(r.Value)]++
	if l.count[r.Topic][string(r.Value)] > 1 {
		l.dupAt[r.Topic] = append(l.dupAt[r.Topic], r.Offset)
	}
	if l.byMember[member] == nil {
		l.byMember[member] = map[string]time.Time{}
	}
	if _, ok := l.byMember[member][r.Topic]; !ok {
		l.byMember[member][r.Topic] = time.Now()
	}
}

func (l *groupLedger) commit(member, topic string, off Offset) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.maxCommit[topic] = max(l.maxCommit[topic], off)
	if l.lastCommit[member] == nil {
		l.lastCommit[member] = map[string]Offset{}
	}
	l.lastCommit[member][topic] = off
}

func (l *groupLedger) produce(topic, value string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.produced[topic] == nil {
		l.produced[topic] = map[string]bool{}
	}
	l.produced[topic][value] = true
}

// missing counts produced records nobody consumed yet.
func (l *groupLedger) missing() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for topic, vals := range l.produced {
		for v := range vals {
			if l.count[topic][v] == 0 {
				n++
			}
		}
	}
	return n
}

func (l *groupLedger) dups() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, d := range l.dupAt {
		n += len(d)
	}
	return n
}

// groupRecordingStore commits through inner and tells the ledger.
type groupRecordingStore struct {
	inner  OffsetStore
	ledger *groupLedger
	member string
}

func (s *groupRecordingStore) Load(ctx context.Context, topic string, consumer uint64) (Offset, bool, error) {
	return s.inner.Load(ctx, topic, consumer)
}

func (s *groupRecordingStore) Commit(ctx context.Context, topic string, consumer uint64, off Offset) error {
	if err := s.inner.Commit(ctx, topic, consumer, off); err != nil {
		return err
	}
	s.ledger.commit(s.member, topic, off)
	return nil
}

// groupMember is one member of a test group with its Records loop.
type groupMember struct {
	name     string
	g        *GroupConsumer
	cancel   context.CancelFunc
	loopDone chan struct{}
	assigned atomic.Int64
	revoked  atomic.Int64
}

// stopLoop ends the member's Records loop and waits for it.
func (m *groupMember) stopLoop() {
	m.cancel()
	<-m.loopDone
}

type groupHarness struct {
	t      *testing.T
	s      *server
	group  string
	topics []string
	ledger *groupLedger
	logs   *logBuf
}

// start makes a member that consumes in a loop and commits every few
// records.
func (h *groupHarness) start(name string, opts ...GroupOption) *groupMember {
	t := h.t
	t.Helper()
	logger := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := dialT(t, h.s, WithLogger(logger))
	m := &groupMember{name: name, loopDone: make(chan struct{})}
	base := []GroupOption{
		WithMemberName(name),
		WithGroupBind("127.0.0.1", 0),
		WithMemberlistConfig(fastGossip),
		WithJoinWait(time.Minute),
		WithGroupConsumerOptions(WithMaxWait(200 * time.Millisecond)),
		WithGroupOffsetStore(&groupRecordingStore{inner: NewServerOffsetStore(c), ledger: h.ledger, member: name}),
		WithOnAssigned(func(ctx context.Context, topic string, from Offset) { m.assigned.Add(1) }),
		WithOnRevoked(func(ctx context.Context, topic string, at Offset) error { m.revoked.Add(1); return nil }),
	}
	g, err := NewGroupConsumer(c, h.group, h.topics, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	m.g = g
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() {
		defer close(m.loopDone)
		n := 0
		for rec, err := range g.Records(ctx) {
			if err != nil {
				if errors.Is(err, ErrClosed) || ctx.Err() != nil {
					return
				}
				h.logf("%s: %v", name, err)
				continue
			}
			h.ledger.consume(name, rec)
			if n++; n%7 == 0 {
				if err := g.Commit(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, ErrClosed) {
					h.logf("%s: commit: %v", name, err)
				}
			}
		}
	}()
	t.Cleanup(func() {
		g.crash()
		cancel()
		<-m.loopDone
	})
	return m
}

func (h *groupHarness) logf(format string, args ...any) {
	fmt.Fprintf(h.logs, "TEST "+format+"\n", args...)
}

// waitAssignment waits until the members read exactly the rendezvous
// assignment over their names, every topic once, and returns how long
// that took.
func (h *groupHarness) waitAssignment(what string, members ...*groupMember) time.Duration {
	h.t.Helper()
	start := time.Now()
	names := make([]string, len(members))
	for i, m := range members {
		names[i] = m.name
	}
	want := rendezvousAssign(h.topics, names)
	deadline := time.Now().Add(60 * time.Second)
	var got map[string]string
	for {
		got = map[string]string{}
		dup := false
		for _, m := range members {
			for _, tp := range m.g.Assignment() {
				if _, ok := got[tp]; ok {
					dup = true
				}
				got[tp] = m.name
			}
		}
		if !dup && maps.Equal(got, want) {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s: assignment did not settle\n got %v\nwant %v", what, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// produce writes n records per topic, named by tag, and waits for the
// acks.
func (h *groupHarness) produce(ctx context.Context, p *Producer, tag string, n int) {
	h.t.Helper()
	for i := range n {
		for _, tp := range h.topics {
			v := fmt.Sprintf("%s/%s/%d", tp, tag, i)
			h.ledger.produce(tp, v)
			if err := p.Produce(ctx, tp, Record{Value: []byte(v)}, nil); err != nil {
				h.t.Fatal(err)
			}
		}
	}
	if err := p.Flush(ctx); err != nil {
		h.t.Fatal(err)
	}
}

// produceWhile produces records until stop is closed, then flushes.
func (h *groupHarness) produceWhile(ctx context.Context, p *Producer, tag string, stop <-chan struct{}) error {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return p.Flush(ctx)
		case <-time.After(2 * time.Millisecond):
		}
		tp := h.topics[i%len(h.topics)]
		v := fmt.Sprintf("%s/%s/%d", tp, tag, i)
		h.ledger.produce(tp, v)
		if err := p.Produce(ctx, tp, Record{Value: []byte(v)}, nil); err != nil {
			return err
		}
	}
}

// waitConsumed waits until every produced record was consumed.
func (h *groupHarness) waitConsumed(what string) {
	h.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		n := h.ledger.missing()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s: %d produced records never consumed", what, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (h *groupHarness) checkNoViolations(what string) {
	h.t.Helper()
	h.ledger.mu.Lock()
	defer h.ledger.mu.Unlock()
	if len(h.ledger.violations) > 0 {
		h.t.Fatalf("%s: records consumed again after a commit covered them:\n%s", what, strings.Join(h.ledger.violations, "\n"))
	}
}

// groupNames picks four member names for TestGroupRebalance such that
// each of the first three holds at least two topics, and the fourth takes
// some from the first and from the second when it joins them: with only
// nine topics, some names leave a member with nothing.
func groupNames(topics []string) []string {
	for k := 0; ; k++ {
		n := []string{"m1-" + strconv.Itoa(k), "m2-" + strconv.Itoa(k), "m3-" + strconv.Itoa(k), "m4-" + strconv.Itoa(k)}
		count := map[string]int{}
		for _, m := range rendezvousAssign(topics, n[:3]) {
			count[m]++
		}
		before := rendezvousAssign(topics, []string{n[0], n[1]})
		after := rendezvousAssign(topics, []string{n[0], n[1], n[3]})
		from := map[string]bool{}
		for _, tp := range topics {
			if after[tp] == n[3] {
				from[before[tp]] = true
			}
		}
		if count[n[0]] >= 2 && count[n[1]] >= 2 && count[n[2]] >= 2 && from[n[0]] && from[n[1]] {
			return n
		}
	}
}

// TestGroupRebalance runs a group of three members over nine topics
// through a failure, a join and a graceful leave, checking at each step
// that every topic has one reader, that nothing is skipped and that
// records come again only after a failure, and only past the failed
// member's last commit.
func TestGroupRebalance(t *testing.T) {
	s := startServer(t)
	admin := dialT(t, s)
	ctx := testCtx(t, 5*time.Minute)
	h := &groupHarness{t: t, s: s, group: "rebalance", ledger: newGroupLedger(), logs: new(logBuf)}
	t.Cleanup(func() {
		if t.Failed() {
			out := h.logs.String()
			if len(out) > 256<<10 {
				out = out[len(out)-256<<10:]
			}
			t.Logf("group logs:\n%s", out)
		}
	})
	for i := range 9 {
		tp := "grp-" + strconv.Itoa(i)
		if _, err := admin.EnsureTopic(ctx, tp); err != nil {
			t.Fatal(err)
		}
		h.topics = append(h.topics, tp)
	}
	prod, err := NewProducer(admin)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close(ctx)

	// Three members: every topic is read by exactly one.
	n := groupNames(h.topics)
	m1 := h.start(n[0])
	m2 := h.start(n[1], WithGroupSeeds(m1.g.Addr()))
	m3 := h.start(n[2], WithGroupSeeds(m1.g.Addr()))
	h.waitAssignment("start", m1, m2, m3)
	for _, m := range []*groupMember{m1, m2, m3} {
		if got := len(m.g.Members()); got != 3 {
			t.Fatalf("%s sees %d members, want 3", m.name, got)
		}
	}
	h.produce(ctx, prod, "a", 40)
	h.waitConsumed("start")
	h.checkNoViolations("start")
	if d := h.ledger.dups(); d != 0 {
		t.Fatalf("start: %d records consumed twice", d)
	}

	// m3 fails: it stops consuming without committing and goes silent.
	m3Topics := m3.g.Assignment()
	if len(m3Topics) == 0 {
		t.Fatal("the member to fail holds no topic")
	}
	m3.stopLoop()
	m3.g.crash()
	stop := make(chan struct{})
	prodErr := make(chan error, 1)
	go func() { prodErr <- h.produceWhile(ctx, prod, "b", stop) }()
	took := h.waitAssignment("failure", m1, m2)
	t.Logf("m3's topics %v moved within %v", m3Topics, took)
	close(stop)
	if err := <-prodErr; err != nil {
		t.Fatal(err)
	}
	h.waitConsumed("failure")
	h.checkNoViolations("failure")
	h.ledger.mu.Lock()
	for topic, offs := range h.ledger.dupAt {
		last, committed := h.ledger.lastCommit[m3.name][topic]
		for _, off := range offs {
			if !slices.Contains(m3Topics, topic) || (committed && off < last) {
				t.Errorf("failure: %s@%d consumed twice; m3 held %v, its last commit on the topic %d (%v)",
					topic, off, m3Topics, last, committed)
			}
		}
	}
	dupsAfterFailure := 0
	for _, offs := range h.ledger.dupAt {
		dupsAfterFailure += len(offs)
	}
	h.ledger.mu.Unlock()
	t.Logf("records consumed twice after the failure: %d", dupsAfterFailure)

	// m4 joins: topics move to it with a clean handoff, no duplicates.
	stop = make(chan struct{})
	go func() { prodErr <- h.produceWhile(ctx, prod, "c", stop) }()
	m4 := h.start(n[3], WithGroupSeeds(m2.g.Addr()))
	took = h.waitAssignment("join", m1, m2, m4)
	t.Logf("join settled within %v", took)
	close(stop)
	if err := <-prodErr; err != nil {
		t.Fatal(err)
	}
	h.waitConsumed("join")
	h.checkNoViolations("join")
	if d := h.ledger.dups(); d != dupsAfterFailure {
		t.Fatalf("join: %d more records consumed twice", d-dupsAfterFailure)
	}

	// m1 leaves gracefully while its loop runs: its topics move on, no
	// duplicates.
	stop = make(chan struct{})
	go func() { prodErr <- h.produceWhile(ctx, prod, "d", stop) }()
	time.Sleep(100 * time.Millisecond)
	if err := m1.g.Close(ctx); err != nil {
		t.Fatal(err)
	}
	<-m1.loopDone
	took = h.waitAssignment("leave", m2, m4)
	t.Logf("leave settled within %v", took)
	close(stop)
	if err := <-prodErr; err != nil {
		t.Fatal(err)
	}
	h.waitConsumed("leave")
	h.checkNoViolations("leave")
	if d := h.ledger.dups(); d != dupsAfterFailure {
		t.Fatalf("leave: %d more records consumed twice", d-dupsAfterFailure)
	}
	if a, r := m1.assigned.Load(), m1.revoked.Load(); a == 0 || a != r {
		t.Fatalf("m1 was assigned %d topics and revoked %d", a, r)
	}
	if len(m1.g.Assignment()) != 0 || !errors.Is(m1.g.Commit(ctx), ErrClosed) {
		t.Fatal("a closed member still holds topics or commits")
	}
	for _, m := range []*groupMember{m2, m4} {
		if err := m.g.Close(ctx); err != nil {
			t.Fatal(err)
		}
		<-m.loopDone
	}
}

// TestGroupDNSDiscovery starts three members that know only a DNS name,
// which at first resolves to nothing but each member's own address; they
// find each other once it resolves to all three.
func TestGroupDNSDiscovery(t *testing.T) {
	s := startServer(t)
	admin := dialT(t, s)
	ctx := testCtx(t, 2*time.Minute)
	topics := []string{"dns-0", "dns-1", "dns-2", "dns-3"}
	for _, tp := range topics {
		if _, err := admin.EnsureTopic(ctx, tp); err != nil {
			t.Fatal(err)
		}
	}
	ips := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}
	port := freeGroupPort(t, ips)
	var lookups atomic.Int64
	lookup := func(ctx context.Context, host string) ([]string, error) {
		if host != "members.test" {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		if lookups.Add(1) <= 6 {
			return nil, nil // not published yet
		}
		return slices.Clone(ips), nil
	}
	var gs []*GroupConsumer
	for i, ip := range ips {
		g, err := NewGroupConsumer(admin, "dns", topics,
			WithMemberName("d"+strconv.Itoa(i)),
			WithGroupBind(ip, port),
			WithGroupDNS("members.test", port),
			withLookup(lookup),
			WithJoinWait(time.Minute),
			WithMemberlistConfig(fastGossip))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(g.crash)
		gs = append(gs, g)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		held := map[string]int{}
		full := true
		for _, g := range gs {
			full = full && len(g.Members()) == 3
			for _, tp := range g.Assignment() {
				held[tp]++
			}
		}
		if full && len(held) == len(topics) && !slices.ContainsFunc(slices.Collect(maps.Values(held)), func(n int) bool { return n != 1 }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("members did not form one group: held %v", held)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if lookups.Load() <= 6 {
		t.Fatalf("joined after %d lookups, before the name resolved", lookups.Load())
	}
	for _, g := range gs {
		if err := g.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// freeGroupPort finds a port free for UDP and TCP on every address.
func freeGroupPort(t *testing.T, ips []string) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", ips[0]+":0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		ok := true
		for _, ip := range ips {
			addr := net.JoinHostPort(ip, strconv.Itoa(port))
			l, err := net.Listen("tcp", addr)
			if err != nil {
				ok = false
				break
			}
			u, err := net.ListenPacket("udp", addr)
			l.Close()
			if err != nil {
				ok = false
				break
			}
			u.Close()
		}
		if ok {
			return port
		}
	}
	t.Fatal("no port free on every address")
	return 0
}

// TestGroupRecordsOneLoop checks that a second concurrent Records loop is
// refused and that records left by a loop that stopped early go to the
// next loop.
func TestGroupRecordsOneLoop(t *testing.T) {
	s := startServer(t)
	admin := dialT(t, s)
	ctx := testCtx(t, time.Minute)
	if _, err := admin.EnsureTopic(ctx, "loop"); err != nil {
		t.Fatal(err)
	}
	prod, err := NewProducer(admin)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close(ctx)
	for i := range 10 {
		if err := prod.Produce(ctx, "loop", Record{Value: []byte(strconv.Itoa(i))}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	g, err := NewGroupConsumer(admin, "loop", []string{"loop"}, WithGroupBind("127.0.0.1", 0), WithMemberlistConfig(fastGossip))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.crash)
	var got []string
	for rec, err := range g.Records(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(rec.Value))
		if len(got) == 1 {
			for _, err := range g.Records(ctx) {
				if err == nil || errors.Is(err, ErrClosed) {
					t.Fatalf("second loop: %v", err)
				}
				break
			}
		}
		if len(got) == 3 {
			break
		}
	}
	if err := g.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	for rec, err := range g.Records(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if got = append(got, string(rec.Value)); len(got) == 10 {
			break
		}
	}
	for i, v := range got {
		if v != strconv.Itoa(i) {
			t.Fatalf("records %v, want 0..9 in order", got)
		}
	}
	off, ok, err := NewServerOffsetStore(admin).Load(ctx, "loop", GroupConsumerID("loop"))
	if err != nil || !ok || off == 0 {
		t.Fatalf("group offset after a commit: %d %v %v", off, ok, err)
	}
	if err := g.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, err := range g.Records(ctx) {
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Records after Close: %v", err)
		}
	}
	if err := g.Commit(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Commit after Close: %v", err)
	}
}

// TestGroupRevokeWaitsForInFlight checks the handoff against the record
// being processed: the next holder starts only after the loop body
// returned for it and the position past it was committed; and when the
// body does not return within the revoke timeout, the topic moves anyway
// and the record comes again.
func TestGroupRevokeWaitsForInFlight(t *testing.T) {
	s := startServer(t)
	admin := dialT(t, s)
	ctx := testCtx(t, 2*time.Minute)
	for _, timeout := range []bool{false, true} {
		topic := "inflight-" + strconv.FormatBool(timeout)
		if _, err := admin.EnsureTopic(ctx, topic); err != nil {
			t.Fatal(err)
		}
		prod, err := NewProducer(admin)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			if err := prod.Produce(ctx, topic, Record{Value: []byte(strconv.Itoa(i))}, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := prod.Close(ctx); err != nil {
			t.Fatal(err)
		}
		// Names such that the topic moves to the second member.
		var first, second string
		for k := 0; ; k++ {
			first, second = "holder-"+strconv.Itoa(k), "taker-"+strconv.Itoa(k)
			if rendezvousOwner(topic, []string{first, second}) == second {
				break
			}
		}
		revoke := time.Minute
		if timeout {
			revoke = 300 * time.Millisecond
		}
		opts := func(name string) []GroupOption {
			return []GroupOption{WithMemberName(name), WithGroupBind("127.0.0.1", 0),
				WithMemberlistConfig(fastGossip), WithRevokeTimeout(revoke)}
		}
		g1, err := NewGroupConsumer(admin, topic, []string{topic}, opts(first)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(g1.crash)
		unblock := make(chan struct{})
		processing := make(chan struct{})
		loop1 := make(chan []string)
		go func() {
			var got []string
			for rec, err := range g1.Records(ctx) {
				if err != nil {
					break
				}
				got = append(got, string(rec.Value))
				if len(got) == 3 {
					close(processing)
					<-unblock
				}
			}
			loop1 <- got
		}()
		select {
		case <-processing:
		case <-ctx.Done():
			t.Fatal("the first member never got three records")
		}
		g2, err := NewGroupConsumer(admin, topic, []string{topic}, append(opts(second), WithGroupSeeds(g1.Addr()))...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(g2.crash)
		// The first member gives the topic up as soon as it sees the
		// second; the second must not read while record 2 is in flight.
		for len(g1.Assignment()) != 0 {
			if ctx.Err() != nil {
				t.Fatal("the topic never moved")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if !timeout {
			time.Sleep(200 * time.Millisecond)
			if a := g2.Assignment(); len(a) != 0 {
				t.Fatalf("the second member reads %v while the first still processes a record", a)
			}
			close(unblock)
		}
		var got2 []string
		for rec, err := range g2.Records(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			if got2 = append(got2, string(rec.Value)); got2[len(got2)-1] == "4" {
				break
			}
		}
		want := []string{"3", "4"}
		if timeout {
			want = []string{"2", "3", "4"} // record 2 was never finished
			close(unblock)
		}
		if !slices.Equal(got2, want) {
			t.Fatalf("timeout %v: the second member read %v, want %v", timeout, got2, want)
		}
		for _, g := range []*GroupConsumer{g1, g2} {
			if err := g.Close(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if got1 := <-loop1; !slices.Equal(got1, []string{"0", "1", "2"}) {
			t.Fatalf("the first member read %v", got1)
		}
	}
}
