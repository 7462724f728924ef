package lance

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// The coordinator is the one goroutine that owns a member's view of the
// group: the peers memberlist reports, the state each peer last sent, and
// this member's claims on its topics. Everything else (memberlist
// callbacks, received messages, finished releases, Close) reaches it
// through the inbox. docs/client-groups.md describes the protocol.

// groupItemKind says what a groupItem carries.
type groupItemKind int

const (
	itemJoin     groupItemKind = iota // node: a peer appeared
	itemLeave                         // node: a peer left or was declared dead
	itemUpdate                        // node: a peer's address or metadata changed
	itemState                         // msg: a peer's state message
	itemReady                         // joining is over: claims may start
	itemReleased                      // topic, gen: a release finished
	itemClose                         // close: Close was called
)

// groupItem is one piece of work for the coordinator.
type groupItem struct {
	kind  groupItemKind
	node  memberlist.Node
	msg   *groupState
	topic string
	gen   uint64
	close *groupCloseRequest
}

// inbox is an unbounded queue that never blocks its producers, which
// include memberlist callbacks that run under memberlist's locks.
type groupInbox struct {
	mu    sync.Mutex // guards items
	items []groupItem
	wake  chan struct{} // capacity 1: items is not empty
}

func (q *groupInbox) push(it groupItem) {
	q.mu.Lock()
	q.items = append(q.items, it)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *groupInbox) drain() []groupItem {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.items
	q.items = nil
	return items
}

// groupCloseRequest is Close's order to hand everything over.
type groupCloseRequest struct {
	ctx  context.Context
	done chan struct{} // closed by the coordinator once the others know

	mu       sync.Mutex // guards failures
	failures []error
}

func (r *groupCloseRequest) report(err error) {
	if err == nil {
		return
	}
	r.mu.Lock()
	r.failures = append(r.failures, err)
	r.mu.Unlock()
}

func (r *groupCloseRequest) errs() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.failures)
}

// claimState is where this member is with one of its topics.
type claimState int

const (
	claimPending   claimState = iota // wanted, waiting for the others to confirm
	claimReading                     // read by a fetcher
	claimReleasing                   // being given up: stopping, committing
)

// groupClaim is this member's claim on one of its topics.
type groupClaim struct {
	state claimState
	seq   uint64     // pending: the first state number that announced the claim
	part  *groupPart // reading, releasing
}

// groupPeer is another member, as memberlist and its messages describe it.
type groupPeer struct {
	node      memberlist.Node
	sender    *groupSender
	known     bool   // a state message arrived from it
	instance  uint64 // of its last message
	seq       uint64 // of its last message
	acked     uint64 // highest of our state numbers it has processed
	leaving   bool
	topics    map[string]bool
	pending   map[string]bool
	held      map[string]bool
	owesReply bool // it asked for our state
	hello     bool // it is new: send our state and ask for its
}

// groupCoordinator holds the state only its goroutine touches.
type groupCoordinator struct {
	g       *GroupConsumer
	peers   map[string]*groupPeer
	claims  map[string]*groupClaim
	seq     uint64 // our state number, last published
	changed bool   // our state changed since it was last published
	ready   bool   // joining is over
	gen     uint64 // last part generation handed out
	closing *groupCloseRequest
	final   uint64 // state number announcing that we hold nothing, once closing
}

func newGroupCoordinator(g *GroupConsumer) *groupCoordinator {
	return &groupCoordinator{g: g, peers: make(map[string]*groupPeer), claims: make(map[string]*groupClaim)}
}

// run is the coordinator's goroutine.
func (c *groupCoordinator) run() {
	defer c.g.wg.Done()
	tick := time.NewTicker(c.g.refresh)
	defer tick.Stop()
	defer c.stopSenders()
	for {
		select {
		case <-c.g.inbox.wake:
			for _, it := range c.g.inbox.drain() {
				c.handle(it)
			}
		case <-tick.C:
			c.resend()
		case <-c.g.runCtx.Done():
			return
		}
		c.step()
		c.flush()
		c.publishView()
	}
}

func (c *groupCoordinator) handle(it groupItem) {
	g := c.g
	switch it.kind {
	case itemJoin, itemUpdate:
		if it.node.Name == g.name {
			return
		}
		p := c.peers[it.node.Name]
		if p == nil {
			p = &groupPeer{hello: true}
			p.sender = newGroupSender(g, it.node)
			c.peers[it.node.Name] = p
			g.log.Info("lance: member joined", "peer", it.node.Name)
		}
		p.node = it.node
		p.sender.setNode(it.node)
	case itemLeave:
		if p := c.peers[it.node.Name]; p != nil {
			p.sender.stop()
			delete(c.peers, it.node.Name)
			g.log.Info("lance: member gone", "peer", it.node.Name, "held", len(p.held))
		}
	case itemState:
		c.onState(it.msg)
	case itemReady:
		c.ready = true
	case itemReleased:
		if cl := c.claims[it.topic]; cl != nil && cl.state == claimReleasing && cl.part.gen == it.gen {
			delete(c.claims, it.topic)
			g.mu.Lock()
			if g.parts[it.topic] == cl.part {
				delete(g.parts, it.topic)
			}
			g.mu.Unlock()
			c.changed = true
		}
	case itemClose:
		c.beginClose(it.close)
	}
}

// onState applies a peer's state message. Messages travel on separate
// connections and may arrive out of order: older ones are ignored, except
// for what they acknowledge.
func (c *groupCoordinator) onState(m *groupState) {
	g := c.g
	if m.group != g.group || m.member == g.name {
		return
	}
	p := c.peers[m.member]
	if p == nil {
		// Not (yet) in our memberlist view: it asks again until we see it.
		return
	}
	switch {
	case !p.known, m.instance > p.instance:
		p.known, p.instance, p.seq, p.acked = true, m.instance, 0, 0
		fallthrough
	case m.instance == p.instance && m.seq > p.seq:
		p.seq = m.seq
		p.leaving = m.leaving
		p.topics, p.pending, p.held = topicSet(m.topics), topicSet(m.pending), topicSet(m.held)
	case m.instance < p.instance:
		return
	}
	if m.ackInstance == g.instance && m.ack > p.acked {
		p.acked = m.ack
	}
	if m.wantReply {
		p.owesReply = true
	}
}

// topicSet makes a set of s.
func topicSet(s []string) map[string]bool {
	out := make(map[string]bool, len(s))
	for _, t := range s {
		out[t] = true
	}
	return out
}

// step moves claims along: new claims on topics assigned to this member,
// reading once the others confirmed, releases of topics assigned
// elsewhere.
func (c *groupCoordinator) step() {
	if c.closing != nil {
		c.stepClose()
		return
	}
	if !c.ready {
		return
	}
	allKnown := true
	for _, p := range c.peers {
		allKnown = allKnown && p.known
	}
	next := c.seq + 1
	for _, t := range c.g.topics {
		mine := c.owner(t) == c.g.name
		cl := c.claims[t]
		switch {
		case cl == nil:
			if mine && allKnown {
				cl = &groupClaim{state: claimPending, seq: next}
				c.claims[t] = cl
				c.changed = true
				c.tryStart(t, cl)
			}
		case cl.state == claimPending:
			if !mine || c.outranked(t) {
				delete(c.claims, t)
				c.changed = true
				continue
			}
			c.tryStart(t, cl)
		case cl.state == claimReading:
			if !mine || c.heldByHeavier(t) {
				c.startRelease(t, cl, nil)
			}
		}
	}
}

// owner returns the member topic t is assigned to: rendezvous hashing
// over this member and every known peer that consumes t and is not
// leaving.
func (c *groupCoordinator) owner(t string) string {
	members := []string{c.g.name}
	for name, p := range c.peers {
		if p.known && !p.leaving && p.topics[t] {
			members = append(members, name)
		}
	}
	return rendezvousOwner(t, members)
}

// outranked reports whether a peer also wants t and outranks us for it.
func (c *groupCoordinator) outranked(t string) bool {
	for name, p := range c.peers {
		if p.pending[t] && rendezvousHeavier(t, name, c.g.name) {
			return true
		}
	}
	return false
}

// heldByHeavier reports whether a peer reads t too and outranks us: two
// holders happen only after a false failure detection or when two groups
// meet, and the lighter one gives way.
func (c *groupCoordinator) heldByHeavier(t string) bool {
	for name, p := range c.peers {
		if p.held[t] && rendezvousHeavier(t, name, c.g.name) {
			return true
		}
	}
	return false
}

// tryStart starts reading t once every peer confirmed the claim: each
// peer holds nothing of t, and each peer that could want t has processed
// the state that announced the claim and does not want t itself.
func (c *groupCoordinator) tryStart(t string, cl *groupClaim) {
	for _, p := range c.peers {
		if p.held[t] {
			return
		}
		if p.leaving || (p.known && !p.topics[t] && !p.pending[t]) {
			continue
		}
		if !p.known || p.acked < cl.seq || p.pending[t] {
			return
		}
	}
	g := c.g
	c.gen++
	ctx, cancel := context.WithCancel(g.runCtx)
	p := &groupPart{topic: t, gen: c.gen, cancel: cancel, done: make(chan struct{}), reading: true}
	g.mu.Lock()
	g.parts[t] = p
	g.mu.Unlock()
	cl.state, cl.part = claimReading, p
	c.changed = true
	g.wg.Add(1)
	go g.fetch(ctx, p)
}

// startRelease gives t up in the background. For a rebalance (no close
// request) the release waits for the record in flight, up to the revoke
// timeout; for Close it does not, and Close's context bounds it.
func (c *groupCoordinator) startRelease(t string, cl *groupClaim, req *groupCloseRequest) {
	g := c.g
	cl.state = claimReleasing
	g.mu.Lock()
	cl.part.reading = false
	g.mu.Unlock()
	g.wg.Add(1)
	go func() {
		if req == nil {
			g.release(g.runCtx, cl.part, g.cfg.revokeTimeout, func(error) {})
			return
		}
		// Bounded by Close's context, and by the end of the group should
		// Close give up waiting.
		ctx, cancel := context.WithCancel(req.ctx)
		defer cancel()
		stop := context.AfterFunc(g.runCtx, cancel)
		defer stop()
		g.release(ctx, cl.part, 0, req.report)
	}()
}

// beginClose starts handing everything over.
func (c *groupCoordinator) beginClose(req *groupCloseRequest) {
	c.closing = req
	c.changed = true
	close(c.g.leaving)
	for t, cl := range c.claims {
		switch cl.state {
		case claimPending:
			delete(c.claims, t)
		case claimReading:
			c.startRelease(t, cl, req)
		}
	}
}

// stepClose finishes Close once every topic is released and every peer
// has processed the state saying so (or is gone).
func (c *groupCoordinator) stepClose() {
	switch {
	case len(c.claims) > 0:
		return // releases still running
	case c.final == 0:
		// The next state published is the one that holds nothing.
		c.final = c.seq + 1
		c.changed = true
		return
	case c.changed || c.seq < c.final:
		return
	}
	for _, p := range c.peers {
		if p.acked < c.final {
			return
		}
	}
	select {
	case <-c.closing.done:
	default:
		close(c.closing.done)
	}
}

// flush publishes our state when it changed, and answers peers that
// asked.
func (c *groupCoordinator) flush() {
	if c.changed {
		c.seq++
		c.changed = false
		for _, p := range c.peers {
			c.send(p, true)
		}
		if c.closing != nil {
			// Close may be waiting on acknowledgements it already has.
			c.stepClose()
		}
		return
	}
	for _, p := range c.peers {
		if p.hello || p.owesReply {
			c.send(p, p.hello)
		}
	}
}

// resend repeats our state to peers that have not confirmed it, and asks
// peers we know nothing of: messages to a member that just failed, or that
// did not yet see us, are lost otherwise.
func (c *groupCoordinator) resend() {
	for _, p := range c.peers {
		if !p.known || p.acked < c.seq {
			c.send(p, true)
		}
	}
}

// send queues our current state for p.
func (c *groupCoordinator) send(p *groupPeer, wantReply bool) {
	g := c.g
	m := groupState{
		group:       g.group,
		member:      g.name,
		instance:    g.instance,
		seq:         c.seq,
		ackInstance: p.instance,
		ack:         p.seq,
		wantReply:   wantReply,
		leaving:     c.closing != nil,
		topics:      g.topics,
	}
	for _, t := range g.topics {
		if cl := c.claims[t]; cl != nil {
			if cl.state == claimPending {
				m.pending = append(m.pending, t)
			} else {
				m.held = append(m.held, t)
			}
		}
	}
	p.sender.queue(m.encode(nil))
	p.hello, p.owesReply = false, false
}

// publishView copies the member list for Members.
func (c *groupCoordinator) publishView() {
	names := slices.Sorted(maps.Keys(c.peers))
	names = append(names, c.g.name)
	slices.Sort(names)
	c.g.mu.Lock()
	c.g.members = names
	c.g.mu.Unlock()
}

func (c *groupCoordinator) stopSenders() {
	for _, p := range c.peers {
		p.sender.stop()
	}
}

// groupSender sends state messages to one peer on a goroutine of its own,
// so that a slow or unreachable peer delays nobody else. Only the latest
// message matters: a newer one replaces one not yet sent.
type groupSender struct {
	g    *GroupConsumer
	wake chan struct{} // capacity 1: msg is set
	quit chan struct{} // closed by stop

	mu   sync.Mutex // guards node and msg
	node memberlist.Node
	msg  []byte
}

func newGroupSender(g *GroupConsumer, node memberlist.Node) *groupSender {
	s := &groupSender{g: g, node: node, wake: make(chan struct{}, 1), quit: make(chan struct{})}
	g.wg.Add(1)
	go s.run()
	return s
}

func (s *groupSender) setNode(n memberlist.Node) {
	s.mu.Lock()
	s.node = n
	s.mu.Unlock()
}

func (s *groupSender) queue(msg []byte) {
	s.mu.Lock()
	s.msg = msg
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *groupSender) stop() { close(s.quit) }

func (s *groupSender) run() {
	defer s.g.wg.Done()
	for {
		select {
		case <-s.wake:
		case <-s.quit:
			return
		case <-s.g.runCtx.Done():
			return
		}
		s.mu.Lock()
		node, msg := s.node, s.msg
		s.msg = nil
		s.mu.Unlock()
		if msg == nil {
			continue
		}
		// Lost messages are sent again by the coordinator's resend.
		if err := s.g.ml.SendReliable(&node, msg); err != nil {
			s.g.log.Debug("lance: sending group state failed", "peer", node.Name, "err", err)
		}
	}
}

// groupDelegate receives memberlist's callbacks. They run on memberlist's
// goroutines, some under its locks: each only queues work.
type groupDelegate struct{ g *GroupConsumer }

// NodeMeta implements memberlist.Delegate; members carry no metadata.
func (d *groupDelegate) NodeMeta(limit int) []byte { return nil }

// NotifyMsg implements memberlist.Delegate: a state message arrived.
func (d *groupDelegate) NotifyMsg(b []byte) {
	m, err := decodeGroupState(b)
	if err != nil {
		d.g.log.Warn("lance: dropped a group message", "err", err)
		return
	}
	d.g.inbox.push(groupItem{kind: itemState, msg: m})
}

// GetBroadcasts implements memberlist.Delegate; members broadcast nothing.
func (d *groupDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState implements memberlist.Delegate; states travel as messages.
func (d *groupDelegate) LocalState(join bool) []byte { return nil }

// MergeRemoteState implements memberlist.Delegate.
func (d *groupDelegate) MergeRemoteState(buf []byte, join bool) {}

// NotifyJoin implements memberlist.EventDelegate.
func (d *groupDelegate) NotifyJoin(n *memberlist.Node) {
	d.g.inbox.push(groupItem{kind: itemJoin, node: copyNode(n)})
}

// NotifyLeave implements memberlist.EventDelegate.
func (d *groupDelegate) NotifyLeave(n *memberlist.Node) {
	d.g.inbox.push(groupItem{kind: itemLeave, node: copyNode(n)})
}

// NotifyUpdate implements memberlist.EventDelegate.
func (d *groupDelegate) NotifyUpdate(n *memberlist.Node) {
	d.g.inbox.push(groupItem{kind: itemUpdate, node: copyNode(n)})
}

// copyNode copies what the group uses of a node memberlist owns.
func copyNode(n *memberlist.Node) memberlist.Node {
	return memberlist.Node{Name: n.Name, Addr: slices.Clone(n.Addr), Port: n.Port}
}
