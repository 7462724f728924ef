package lance

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"log"
	"log/slog"
	"net"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// groupConfig is a GroupConsumer's settings, fixed by NewGroupConsumer.
type groupConfig struct {
	name          string // member name; "" means hostname plus a random suffix
	bindAddr      string
	bindPort      int
	advertiseAddr string
	advertisePort int
	seeds         []string // host:port of members to join
	dnsName       string   // resolved to the addresses of members, all on dnsPort
	dnsPort       int
	joinWait      time.Duration
	revokeTimeout time.Duration
	consumerOpts  []ConsumerOption
	store         OffsetStore
	onAssigned    func(ctx context.Context, topic string, from Offset)
	onRevoked     func(ctx context.Context, topic string, at Offset) error
	memberlist    func(*memberlist.Config)
	// lookup resolves a host name to addresses; tests replace it.
	lookup func(ctx context.Context, host string) ([]string, error)
}

// GroupOption configures a GroupConsumer.
type GroupOption func(*groupConfig)

// WithMemberName sets the member's name, which must be unique in the
// group: it is the member's memberlist node name and an input of the
// topic assignment. The default is the host name followed by a random
// suffix, different at every start.
func WithMemberName(name string) GroupOption { return func(c *groupConfig) { c.name = name } }

// WithGroupBind sets the address and port the member listens on for the
// group's gossip (UDP and TCP), default 0.0.0.0:7946. Port 0 picks a free
// port. Each member on a host needs a port of its own.
func WithGroupBind(addr string, port int) GroupOption {
	return func(c *groupConfig) { c.bindAddr, c.bindPort = addr, port }
}

// WithGroupAdvertise sets the address and port the other members use to
// reach this one, when they differ from the bind address (NAT,
// containers). By default memberlist derives them from the bind address.
func WithGroupAdvertise(addr string, port int) GroupOption {
	return func(c *groupConfig) { c.advertiseAddr, c.advertisePort = addr, port }
}

// WithGroupSeeds gives addresses (host:port) of members to join. Host
// names are resolved at every attempt. The member's own address is
// skipped, so every member may be given the same list.
func WithGroupSeeds(addrs ...string) GroupOption {
	return func(c *groupConfig) { c.seeds = append(c.seeds, addrs...) }
}

// WithGroupDNS makes the member find the others by resolving name (for
// example a Kubernetes headless service) to addresses, each reached on
// port. The name is resolved again at every join attempt.
func WithGroupDNS(name string, port int) GroupOption {
	return func(c *groupConfig) { c.dnsName, c.dnsPort = name, port }
}

// WithJoinWait bounds how long a member with seeds or a DNS name waits to
// join the others before it starts consuming on its own, default 5 s. A
// member that starts alone while others consume the same topics reads
// them too until the two groups meet (docs/client-groups.md).
func WithJoinWait(d time.Duration) GroupOption { return func(c *groupConfig) { c.joinWait = d } }

// WithRevokeTimeout bounds how long a member giving a topic up waits for
// the record of that topic being processed (handed out by Records and not
// yet returned from the loop body), default 30 s; past it the member
// commits only the records whose processing was finished. It bounds
// WithOnRevoked and the commit together too; a commit not done by then is
// given up, and the topic with it.
func WithRevokeTimeout(d time.Duration) GroupOption {
	return func(c *groupConfig) { c.revokeTimeout = d }
}

// WithGroupConsumerOptions passes options to the Consumer of each topic
// (WithMaxWait, WithMaxBytes). WithOffsetStore is refused: use
// WithGroupOffsetStore.
func WithGroupConsumerOptions(opts ...ConsumerOption) GroupOption {
	return func(c *groupConfig) { c.consumerOpts = append(c.consumerOpts, opts...) }
}

// WithGroupOffsetStore sets where the group's offsets are kept, under the
// group's consumer id (GroupConsumerID). The default is a
// ServerOffsetStore on the Client given to NewGroupConsumer. Every member
// of a group must use the same store.
func WithGroupOffsetStore(s OffsetStore) GroupOption { return func(c *groupConfig) { c.store = s } }

// WithOnAssigned sets a function called when the member starts reading a
// topic, before the topic's first record is handed out, with the offset
// reading starts from. It runs on a goroutine of the group and may run
// concurrently for different topics.
func WithOnAssigned(fn func(ctx context.Context, topic string, from Offset)) GroupOption {
	return func(c *groupConfig) { c.onAssigned = fn }
}

// WithOnRevoked sets a function called when the member gives a topic up,
// after the topic's last record was handed out and (unless the revoke
// timeout passed) processed, and before the member commits at, the offset
// just past that record. Returning an error makes the member give the
// topic up without committing: the next holder starts from the previous
// commit. It runs on a goroutine of the group, within the revoke timeout
// (ctx), and may run concurrently for different topics. It is not called
// for topics the member never started reading.
func WithOnRevoked(fn func(ctx context.Context, topic string, at Offset) error) GroupOption {
	return func(c *groupConfig) { c.onRevoked = fn }
}

// WithMemberlistConfig lets fn adjust the memberlist configuration, which
// starts as memberlist.DefaultLANConfig with the name, bind and advertise
// settings of the other options. fn may change timing (ProbeInterval,
// SuspicionMult, …), encryption (SecretKey) and the like; the group sets
// Delegate, Events, Label and Logger itself after fn. Timing decides how
// fast failures are detected (docs/client-groups.md).
func WithMemberlistConfig(fn func(*memberlist.Config)) GroupOption {
	return func(c *groupConfig) { c.memberlist = fn }
}

// GroupConsumer is one member of a consumer group: the members of a group
// (processes that call NewGroupConsumer with the same group name) share
// its topics, each topic read by one member at a time, and hand topics
// over when members join, leave or fail. docs/client-groups.md describes
// the protocol and its guarantees.
//
// Members find each other with memberlist (WithGroupSeeds, WithGroupDNS)
// and assign every topic by rendezvous hashing over the live members, so
// that all members compute the same assignment. A member gives a topic up
// by stopping reading it and committing its position; the next holder
// starts reading only once that commit is done and released, or once the
// old holder has left or been declared dead. Offsets are committed under
// the group's consumer id (GroupConsumerID) in the server's offset store.
//
// Delivery is at least once. Records handed out after the last commit of
// a topic are handed out again (by this or another member) only when a
// member fails or its commit fails: never a record before a commit, and
// none is skipped.
//
// A GroupConsumer owns goroutines: a coordinator, one fetcher per topic
// it reads (each with a Consumer and a connection of its own), and
// memberlist's. Close ends all of them. Its methods are safe for
// concurrent use; Records may run in one loop at a time.
type GroupConsumer struct {
	cl       *Client
	group    string
	id       uint64
	topics   []string // sorted, distinct
	cfg      groupConfig
	store    OffsetStore
	log      *slog.Logger
	name     string
	instance uint64
	refresh  time.Duration // how often unanswered state messages are sent again

	ml        *memberlist.Memberlist
	advertise string        // own ip:port as the others see it
	mlLabel   string        // value of the pprof label on memberlist's goroutines
	mlDrain   time.Duration // how long memberlist's goroutines may outlive its Shutdown

	inbox   groupInbox         // work for the coordinator
	runCtx  context.Context    // ends when the group shuts down
	stop    context.CancelFunc // ends runCtx
	wg      sync.WaitGroup     // every goroutine the group started
	out     chan groupDelivery // fetchers → Records
	leaving chan struct{}      // closed by the coordinator when Close starts
	closed  chan struct{}      // closed once the group is shut down

	closeOnce sync.Once
	closeErr  error

	// mu guards parts and every field of a part marked as such, members,
	// iterating and leftover. Lock order: a part's commitMu before mu.
	mu        sync.Mutex
	parts     map[string]*groupPart
	members   []string
	iterating bool
	leftover  groupDelivery // records taken from out and not yet handed out
}

// groupPart is one topic this member reads, or is giving up.
type groupPart struct {
	topic  string
	gen    uint64             // distinguishes successive holdings of a topic
	cancel context.CancelFunc // stops the fetcher
	done   chan struct{}      // closed when the fetcher has returned

	// Guarded by GroupConsumer.mu.
	reading  bool          // records may be handed out; false once the topic is being given up
	started  bool          // the committed offset is loaded; handed is valid
	handed   Offset        // just past the last record handed out
	before   Offset        // handed before the record in flight
	inFlight bool          // a record is being processed by the Records loop body
	idle     chan struct{} // non-nil while someone waits for inFlight to end; closed then

	commitMu  sync.Mutex // serializes commits of the topic; guards committed and released
	committed Offset     // last offset committed or loaded
	released  bool       // given up: commit nothing more
}

// groupDelivery is what a fetcher hands to Records: records of one poll,
// or an error of the topic.
type groupDelivery struct {
	topic string
	gen   uint64
	recs  []Record
	err   error
}

// NewGroupConsumer makes this process a member of group consuming topics,
// and starts its goroutines: it binds the gossip port, joins the other
// members in the background and starts reading the topics assigned to it.
// Records hands the records out; Close leaves the group.
//
// The Client c keeps the group's offsets (unless WithGroupOffsetStore says
// otherwise) and lends its configuration to the topic consumers, which
// open connections of their own; it must stay open until Close returns.
// Members of a group should be given the same topics: a topic is assigned
// only among the members that consume it.
func NewGroupConsumer(c *Client, group string, topics []string, opts ...GroupOption) (*GroupConsumer, error) {
	if group == "" || len(group) > 255 {
		return nil, fmt.Errorf("lance: group name must be 1 to 255 bytes, got %d", len(group))
	}
	if len(topics) == 0 {
		return nil, fmt.Errorf("lance: group %q: no topics", group)
	}
	for _, t := range topics {
		if err := checkName(t); err != nil {
			return nil, fmt.Errorf("lance: group %q: %w", group, err)
		}
	}
	cfg := groupConfig{
		bindAddr:      "0.0.0.0",
		bindPort:      7946,
		joinWait:      5 * time.Second,
		revokeTimeout: 30 * time.Second,
		lookup:        net.DefaultResolver.LookupHost,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("lance: group %q: %w", group, err)
	}
	g := &GroupConsumer{
		cl:       c,
		group:    group,
		id:       GroupConsumerID(group),
		topics:   sortedDistinct(topics),
		cfg:      cfg,
		store:    cfg.store,
		instance: uint64(time.Now().UnixNano()),
		out:      make(chan groupDelivery),
		leaving:  make(chan struct{}),
		closed:   make(chan struct{}),
		parts:    make(map[string]*groupPart),
		inbox:    groupInbox{wake: make(chan struct{}, 1)},
	}
	if g.store == nil {
		g.store = NewServerOffsetStore(c)
	}
	g.name = cfg.name
	if g.name == "" {
		g.name = defaultMemberName()
	}
	mc := g.memberlistConfig()
	g.name = mc.Name
	g.members = []string{g.name}
	g.log = c.cfg.logger.With("group", group, "member", g.name)
	mc.Logger = log.New(memberlistLog{g.log}, "", 0)
	g.refresh = max(mc.ProbeInterval, 10*time.Millisecond)
	// The group makes the transport itself (unless fn of
	// WithMemberlistConfig gave one), so that it can close the sockets if
	// memberlist.Create fails after binding them, which Create does not.
	// Every goroutine memberlist starts, and every one those start,
	// carries the label, so that Close can wait for them to end.
	g.mlLabel = strconv.FormatUint(groupSerial.Add(1), 10) + "-" + g.name
	g.mlDrain = mc.ProbeInterval*time.Duration(max(mc.AwarenessMaxMultiplier, 1)) + mc.TCPTimeout + time.Second
	var ml *memberlist.Memberlist
	var err error
	pprof.Do(context.Background(), pprof.Labels(memberlistLabel, g.mlLabel), func(context.Context) {
		var nt *memberlist.NetTransport
		if mc.Transport == nil {
			if nt, err = newGroupTransport(mc); err != nil {
				err = fmt.Errorf("gossip transport: %w", err)
				return
			}
			mc.Transport = nt
		}
		if ml, err = memberlist.Create(mc); err != nil {
			if nt != nil {
				nt.Shutdown()
			}
			err = fmt.Errorf("start memberlist: %w", err)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("lance: group %q: %w", group, err)
	}
	g.ml = ml
	self := ml.LocalNode()
	g.advertise = net.JoinHostPort(self.Addr.String(), strconv.Itoa(int(self.Port)))
	g.runCtx, g.stop = context.WithCancel(context.Background())
	co := newGroupCoordinator(g)
	g.wg.Add(2)
	go co.run()
	go g.joinLoop()
	g.log.Info("lance: group member started", "gossip", g.advertise, "topics", len(g.topics))
	return g, nil
}

// newGroupTransport binds memberlist's UDP and TCP sockets as memberlist
// itself would: with port 0 it retries a few times, since the port the
// kernel gave the TCP socket may be taken for UDP, and then makes the
// configuration use the port it got.
func newGroupTransport(mc *memberlist.Config) (*memberlist.NetTransport, error) {
	nc := &memberlist.NetTransportConfig{BindAddrs: []string{mc.BindAddr}, BindPort: mc.BindPort, Logger: mc.Logger}
	attempts := 1
	if mc.BindPort == 0 {
		attempts = 10
	}
	var err error
	for range attempts {
		var nt *memberlist.NetTransport
		if nt, err = memberlist.NewNetTransport(nc); err == nil {
			if mc.BindPort == 0 {
				mc.BindPort = nt.GetAutoBindPort()
				if mc.AdvertisePort == 0 {
					mc.AdvertisePort = mc.BindPort
				}
			}
			return nt, nil
		}
	}
	return nil, err
}

func (c *groupConfig) validate() error {
	if c.name != "" && len(c.name) > 255 {
		return fmt.Errorf("member name of %d bytes, at most 255", len(c.name))
	}
	if c.bindPort < 0 || c.bindPort > 65535 || c.advertisePort < 0 || c.advertisePort > 65535 {
		return fmt.Errorf("bad port (bind %d, advertise %d)", c.bindPort, c.advertisePort)
	}
	if c.dnsName != "" && (c.dnsPort <= 0 || c.dnsPort > 65535) {
		return fmt.Errorf("DNS discovery of %q needs a port, got %d", c.dnsName, c.dnsPort)
	}
	for _, s := range c.seeds {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return fmt.Errorf("seed %q: %w", s, err)
		}
	}
	if c.joinWait < 0 || c.revokeTimeout <= 0 {
		return fmt.Errorf("bad durations (join wait %v, revoke timeout %v)", c.joinWait, c.revokeTimeout)
	}
	probe := consumerConfig{maxWait: time.Second, maxBytes: 1 << 20}
	for _, o := range c.consumerOpts {
		o(&probe)
	}
	if probe.storeSet {
		return errors.New("WithOffsetStore does not apply to a group; use WithGroupOffsetStore")
	}
	return nil
}

// defaultMemberName is the host name and 8 random hex digits.
func defaultMemberName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "lance"
	}
	var b [4]byte
	rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}

// memberlistConfig builds the memberlist configuration (see
// WithMemberlistConfig).
func (g *GroupConsumer) memberlistConfig() *memberlist.Config {
	mc := memberlist.DefaultLANConfig()
	mc.Name = g.name
	mc.BindAddr, mc.BindPort = g.cfg.bindAddr, g.cfg.bindPort
	mc.AdvertisePort = g.cfg.bindPort
	if g.cfg.advertiseAddr != "" {
		mc.AdvertiseAddr = g.cfg.advertiseAddr
	}
	if g.cfg.advertisePort != 0 {
		mc.AdvertisePort = g.cfg.advertisePort
	}
	if g.cfg.memberlist != nil {
		g.cfg.memberlist(mc)
	}
	if mc.Name == "" {
		mc.Name = g.name
	}
	d := &groupDelegate{g: g}
	mc.Delegate, mc.Events = d, d
	mc.Label = groupLabel(g.group)
	mc.LogOutput = nil
	return mc
}

// groupLabel is the memberlist label of a group: memberlist drops every
// packet and stream whose label differs, so groups sharing hosts and
// ports by mistake stay apart.
func groupLabel(group string) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], GroupConsumerID(group))
	return "lance-group-" + hex.EncodeToString(b[:])
}

// Group returns the group's name.
func (g *GroupConsumer) Group() string { return g.group }

// Name returns the member's name.
func (g *GroupConsumer) Name() string { return g.name }

// ConsumerID returns the consumer id of the group's offsets,
// GroupConsumerID(Group()).
func (g *GroupConsumer) ConsumerID() uint64 { return g.id }

// Addr returns the address (ip:port) other members reach this one at;
// give it to WithGroupSeeds of other members.
func (g *GroupConsumer) Addr() string { return g.advertise }

// Members returns the names of the members this one sees, itself
// included, sorted.
func (g *GroupConsumer) Members() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.members)
}

// Assignment returns the topics this member reads now, sorted. A topic
// being given up is not in it.
func (g *GroupConsumer) Assignment() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for t, p := range g.parts {
		if p.reading {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}

// Records iterates over the records of every topic assigned to this
// member, in order within each topic, as they arrive. It runs until ctx
// ends or the group is closed; either ends the sequence after one final
// (Record{}, err) pair, err matching ErrClosed or the context's
// error. An error of one topic (say it was deleted) comes as
// (Record{Topic: topic}, err) and does not end the sequence; the
// topic is retried with backoff.
//
// A record counts as processed once the loop body returns for it: a
// member giving a topic up waits for that (see WithRevokeTimeout) before
// it commits. Commit and Close commit every record handed out so far.
// Only one Records loop may run at a time; records taken out of the group
// by a loop that stops early go to the next one.
//
//	for rec, err := range group.Records(ctx) {
//		if err != nil {
//			return err
//		}
//		handle(rec.Topic, rec.Value)
//	}
func (g *GroupConsumer) Records(ctx context.Context) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		g.mu.Lock()
		if g.iterating {
			g.mu.Unlock()
			yield(Record{}, fmt.Errorf("lance: group %q: another Records loop is running", g.group))
			return
		}
		g.iterating = true
		d := g.leftover
		g.leftover = groupDelivery{}
		g.mu.Unlock()
		defer func() {
			g.mu.Lock()
			g.iterating = false
			g.mu.Unlock()
		}()
		for {
			if ctx.Err() != nil {
				g.keep(d)
				yield(Record{}, fmt.Errorf("lance: group %q: %w", g.group, ctxErr(ctx)))
				return
			}
			if d.topic == "" {
				select {
				case d = <-g.out:
				case <-ctx.Done():
					continue
				case <-g.closed:
					yield(Record{}, fmt.Errorf("lance: group %q: %w", g.group, ErrClosed))
					return
				}
			}
			if d.err != nil {
				err := fmt.Errorf("lance: group %q: %w", g.group, d.err)
				topic := d.topic
				d = groupDelivery{}
				if !yield(Record{Topic: topic}, err) {
					return
				}
				continue
			}
			for len(d.recs) > 0 {
				p := g.handOut(d.topic, d.gen, &d.recs[0])
				if p == nil {
					break // the topic was given up: drop what is left
				}
				tr := d.recs[0] // Topic set by the topic's Consumer
				d.recs = d.recs[1:]
				if !g.yieldOne(yield, p, tr) {
					g.keep(d)
					return
				}
			}
			d = groupDelivery{}
		}
	}
}

// keep stores the records of d not yet handed out for the next Records
// loop.
func (g *GroupConsumer) keep(d groupDelivery) {
	if len(d.recs) == 0 {
		return
	}
	g.mu.Lock()
	g.leftover = d
	g.mu.Unlock()
}

// handOut marks r as handed out and in flight, if its topic's holding gen
// is still being read; it returns the part, or nil to drop r.
func (g *GroupConsumer) handOut(topic string, gen uint64, r *Record) *groupPart {
	g.mu.Lock()
	defer g.mu.Unlock()
	p := g.parts[topic]
	if p == nil || p.gen != gen || !p.reading {
		return nil
	}
	p.before, p.handed, p.inFlight = p.handed, r.next, true
	return p
}

// yieldOne hands tr to the loop body and marks the record processed when
// the body returns, even by a panic.
func (g *GroupConsumer) yieldOne(yield func(Record, error) bool, p *groupPart, tr Record) bool {
	defer func() {
		g.mu.Lock()
		p.inFlight = false
		if p.idle != nil {
			close(p.idle)
			p.idle = nil
		}
		g.mu.Unlock()
	}()
	return yield(tr, nil)
}

// Commit stores, for every topic the member reads, the offset just past
// the last record handed out. Like Consumer.Commit, call it once the
// records handed out so far are processed. Topics are committed one after
// the other; the error joins the failures. After Close it fails with
// ErrClosed.
func (g *GroupConsumer) Commit(ctx context.Context) error {
	if g.runCtx.Err() != nil {
		return fmt.Errorf("lance: group %q: commit: %w", g.group, ErrClosed)
	}
	g.mu.Lock()
	ps := make([]*groupPart, 0, len(g.parts))
	for _, p := range g.parts {
		if p.started {
			ps = append(ps, p)
		}
	}
	g.mu.Unlock()
	var errs []error
	for _, p := range ps {
		if err := g.commitPart(ctx, p); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lance: group %q: %w", g.group, err)
	}
	return nil
}

// commitPart commits the handed-out position of p, unless p was given up.
func (g *GroupConsumer) commitPart(ctx context.Context, p *groupPart) error {
	p.commitMu.Lock()
	defer p.commitMu.Unlock()
	if p.released {
		return nil
	}
	if g.runCtx.Err() != nil {
		// Closed or crashed: a member that is gone commits nothing.
		return ErrClosed
	}
	g.mu.Lock()
	at := p.handed
	g.mu.Unlock()
	if at == p.committed {
		return nil
	}
	if err := g.store.Commit(ctx, p.topic, g.id, at); err != nil {
		return err
	}
	p.committed = at
	return nil
}

// Close leaves the group gracefully: the member stops reading, commits
// the position of every topic it holds (every record handed out counts as
// processed, as with Commit), tells the other members that the topics are
// free and that it is leaving, waits until they have heard it (bounded by
// ctx), leaves memberlist and ends its goroutines, memberlist's included
// (see docs/client-groups.md for how long those may take). A Records loop
// ends with ErrClosed. Close returns the commit errors, if any; calling
// it again returns the same result. It may be called from the Records
// loop body, but not from WithOnAssigned or WithOnRevoked.
func (g *GroupConsumer) Close(ctx context.Context) error {
	g.closeOnce.Do(func() { g.closeErr = g.shutdown(ctx) })
	return g.closeErr
}

// shutdown is Close's body.
func (g *GroupConsumer) shutdown(ctx context.Context) error {
	req := &groupCloseRequest{ctx: ctx, done: make(chan struct{})}
	g.inbox.push(groupItem{kind: itemClose, close: req})
	var errs []error
	select {
	case <-req.done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("handing topics over: %w", ctxErr(ctx)))
	}
	leaveWait := 2 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		leaveWait = max(min(leaveWait, time.Until(dl)), time.Millisecond)
	}
	if err := g.ml.Leave(leaveWait); err != nil {
		g.log.Debug("lance: leaving memberlist", "err", err)
	}
	g.stop()
	g.wg.Wait()
	if err := g.ml.Shutdown(); err != nil {
		errs = append(errs, fmt.Errorf("stopping memberlist: %w", err))
	}
	g.waitMemberlist(ctx)
	close(g.closed)
	errs = append(errs, req.errs()...)
	g.log.Info("lance: group member left")
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lance: group %q: close: %w", g.group, err)
	}
	return nil
}

// crash stops the member the way a killed process stops: memberlist goes
// silent without leaving, the topics stop without a commit. Tests use it;
// Close afterwards does nothing.
func (g *GroupConsumer) crash() {
	g.closeOnce.Do(func() {
		g.ml.Shutdown()
		g.stop()
		g.wg.Wait()
		g.waitMemberlist(context.Background())
		close(g.closed)
	})
}

// memberlistLabel is the pprof label key on memberlist's goroutines.
const memberlistLabel = "lance-group-memberlist"

// groupSerial numbers the GroupConsumers of the process, for their labels.
var groupSerial atomic.Uint64

// waitMemberlist waits until no goroutine carries the member's memberlist
// label. memberlist's Shutdown stops its loops but returns without
// waiting: a probe in progress ends only at its deadline (ProbeInterval,
// stretched by up to AwarenessMaxMultiplier), a stream being read at its
// TCPTimeout. The wait ends at that bound, or with ctx.
func (g *GroupConsumer) waitMemberlist(ctx context.Context) {
	want := []byte(strconv.Quote(memberlistLabel) + ":" + strconv.Quote(g.mlLabel))
	deadline := time.Now().Add(g.mlDrain)
	var buf bytes.Buffer
	for {
		buf.Reset()
		if err := pprof.Lookup("goroutine").WriteTo(&buf, 1); err != nil || !bytes.Contains(buf.Bytes(), want) {
			return
		}
		if time.Now().After(deadline) {
			g.log.Warn("lance: memberlist goroutines still running after its shutdown", "waited", g.mlDrain)
			return
		}
		if !groupSleep(ctx, 10*time.Millisecond) {
			return
		}
	}
}

// fetch reads p's topic for as long as ctx lasts: it loads the group's
// committed offset, then polls and hands batches to Records.
func (g *GroupConsumer) fetch(ctx context.Context, p *groupPart) {
	defer g.wg.Done()
	defer close(p.done)
	cons, err := NewConsumer(g.cl, p.topic, g.cfg.consumerOpts...)
	if err != nil {
		g.deliver(ctx, groupDelivery{topic: p.topic, gen: p.gen, err: err})
		return
	}
	defer cons.Close()
	var back groupBackoff
	var from Offset
	for {
		off, ok, err := g.store.Load(ctx, p.topic, g.id)
		if err == nil {
			if ok {
				from = off
			}
			break
		}
		if ctx.Err() != nil {
			return
		}
		if !IsRetryable(err) && !g.deliver(ctx, groupDelivery{topic: p.topic, gen: p.gen, err: err}) {
			return
		}
		if !groupSleep(ctx, back.next()) {
			return
		}
	}
	if err := cons.Seek(ctx, SeekOffset(from)); err != nil {
		g.deliver(ctx, groupDelivery{topic: p.topic, gen: p.gen, err: err})
		return
	}
	p.commitMu.Lock()
	p.committed = from
	p.commitMu.Unlock()
	g.mu.Lock()
	p.started, p.handed, p.before = true, from, from
	g.mu.Unlock()
	g.log.Info("lance: reading topic", "topic", p.topic, "from", uint64(from))
	if g.cfg.onAssigned != nil {
		g.cfg.onAssigned(ctx, p.topic, from)
	}
	back = groupBackoff{}
	for {
		recs, err := cons.Poll(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && IsRetryable(err):
			g.log.Debug("lance: fetch failed, retrying", "topic", p.topic, "err", err)
			if !groupSleep(ctx, back.next()) {
				return
			}
		case err != nil:
			if !g.deliver(ctx, groupDelivery{topic: p.topic, gen: p.gen, err: err}) || !groupSleep(ctx, back.next()) {
				return
			}
		case len(recs) > 0:
			back = groupBackoff{}
			if !g.deliver(ctx, groupDelivery{topic: p.topic, gen: p.gen, recs: recs}) {
				return
			}
		default:
			back = groupBackoff{}
		}
	}
}

// deliver hands d to Records; false when ctx ended first.
func (g *GroupConsumer) deliver(ctx context.Context, d groupDelivery) bool {
	select {
	case g.out <- d:
		return true
	case <-ctx.Done():
		return false
	}
}

// release gives p up: it stops the fetcher, waits up to wait (0: not at
// all) for the record in flight, then calls WithOnRevoked and commits
// within the revoke timeout, and tells the coordinator. ctx bounds it all
// (the group's end, or Close's context). report receives the commit
// error, if any.
func (g *GroupConsumer) release(ctx context.Context, p *groupPart, wait time.Duration, report func(error)) {
	defer g.wg.Done()
	p.cancel()
	<-p.done
	timedOut := false
	if wait > 0 {
		g.mu.Lock()
		var idle chan struct{}
		if p.inFlight {
			if p.idle == nil {
				p.idle = make(chan struct{})
			}
			idle = p.idle
		}
		g.mu.Unlock()
		if idle != nil {
			t := time.NewTimer(wait)
			select {
			case <-idle:
			case <-g.leaving:
				// Close counts every record handed out as processed,
				// and may be called from the loop body itself.
			case <-t.C:
				timedOut = true
			case <-ctx.Done():
				timedOut = true
			}
			t.Stop()
		}
	}
	g.mu.Lock()
	started, at := p.started, p.handed
	if timedOut && p.inFlight {
		at = p.before // the record in flight is not processed: leave it to the next holder
	}
	g.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, g.cfg.revokeTimeout)
	defer cancel()
	var err error
	if started && g.cfg.onRevoked != nil {
		if herr := g.cfg.onRevoked(ctx, p.topic, at); herr != nil {
			err = fmt.Errorf("revoke hook of %q: %w", p.topic, herr)
		}
	}
	p.commitMu.Lock()
	if started && err == nil && at != p.committed {
		err = g.commitRetry(ctx, p.topic, at)
		if err == nil {
			p.committed = at
		}
	}
	p.released = true
	p.commitMu.Unlock()
	if err != nil {
		g.log.Warn("lance: gave a topic up without committing", "topic", p.topic, "at", uint64(at), "err", err)
	} else {
		g.log.Info("lance: gave a topic up", "topic", p.topic, "at", uint64(at))
	}
	report(err)
	g.inbox.push(groupItem{kind: itemReleased, topic: p.topic, gen: p.gen})
}

// commitRetry commits, trying again after retryable errors until ctx
// ends.
func (g *GroupConsumer) commitRetry(ctx context.Context, topic string, at Offset) error {
	var back groupBackoff
	for {
		err := g.store.Commit(ctx, topic, g.id, at)
		if err == nil || !IsRetryable(err) || ctx.Err() != nil {
			return err
		}
		if !groupSleep(ctx, back.next()) {
			return err
		}
	}
}

// groupBackoff yields waits from 100 ms doubling up to 5 s.
type groupBackoff struct{ d time.Duration }

func (b *groupBackoff) next() time.Duration {
	b.d = min(max(2*b.d, 100*time.Millisecond), 5*time.Second)
	return b.d
}

// groupSleep waits d; false when ctx ended first.
func groupSleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
