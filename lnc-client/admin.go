package lance

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lance-go/lance/lnc-network/control"
)

// Topic describes a topic as the server reports it.
type Topic struct {
	// ID is the topic's wire id; the client resolves names to ids itself.
	ID uint32
	// Name is the topic's name.
	Name string
	// CreatedAt is the creation time, to the second.
	CreatedAt time.Time
	// Epoch is the topic's epoch (1 unless the server says otherwise).
	Epoch uint64
}

func topicFrom(t control.Topic) Topic {
	return Topic{ID: t.ID, Name: t.Name, CreatedAt: time.Unix(int64(t.CreatedAt), 0), Epoch: t.TopicEpoch}
}

// Retention holds a topic's retention limits; zero means no limit.
type Retention struct {
	// MaxAge removes data older than this; the server counts whole
	// seconds.
	MaxAge time.Duration
	// MaxBytes removes the oldest data once the topic holds more.
	MaxBytes uint64
}

// ClusterStatus is the server's view of its cluster. A standalone server
// reports Mode "standalone", one node, itself the leader.
type ClusterStatus struct {
	// NodeID is the answering node's id.
	NodeID uint16
	// IsLeader reports whether the answering node leads.
	IsLeader bool
	// LeaderID is the leader's node id, or nil when none is known.
	LeaderID *uint16
	// Term is the current election term.
	Term uint64
	// NodeCount counts every node; HealthyNodes the reachable ones.
	NodeCount, HealthyNodes uint64
	// QuorumAvailable reports whether writes can reach a quorum.
	QuorumAvailable bool
	// Peers maps peer node ids (decimal) to state names.
	Peers map[string]string
	// Mode is "standalone" for a single server and "" in a cluster.
	Mode string
}

func checkName(name string) error {
	if err := control.ValidateTopicName(name); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidTopicName, err)
	}
	return nil
}

// CreateTopic creates the topic name. It fails with ErrTopicExists when
// the name is taken; use EnsureTopic to accept an existing topic. A
// request lost with a broken connection is not sent again, since the
// server may have created the topic: the error then matches
// ErrConnectionLost.
func (c *Client) CreateTopic(ctx context.Context, name string) (Topic, error) {
	if err := checkName(name); err != nil {
		return Topic{}, err
	}
	rep, err := c.call(ctx, control.CodeCreateTopic, control.CreateTopic{Name: name}.AppendTo(nil), false, 0)
	if err != nil {
		return Topic{}, fmt.Errorf("lance: create topic %q: %w", name, err)
	}
	t, err := decodeTopic("CreateTopic", rep)
	if err != nil {
		return Topic{}, fmt.Errorf("lance: create topic %q: %w", name, err)
	}
	c.remember(t.Name, t.ID)
	return t, nil
}

// CreateTopicWithRetention creates the topic name with retention limits
// in one request (CreateTopicWithRetention, 0x06), so that no record is
// ever kept under the default limits. It fails like CreateTopic.
func (c *Client) CreateTopicWithRetention(ctx context.Context, name string, r Retention) (Topic, error) {
	if err := checkName(name); err != nil {
		return Topic{}, err
	}
	if r.MaxAge < 0 {
		return Topic{}, fmt.Errorf("lance: create topic %q: negative max age", name)
	}
	req, err := control.CreateTopicWithRetention{Name: name, MaxAgeSecs: uint64(r.MaxAge / time.Second), MaxBytes: r.MaxBytes}.AppendTo(nil)
	if err != nil {
		return Topic{}, fmt.Errorf("lance: create topic %q: %w", name, err)
	}
	rep, err := c.call(ctx, control.CodeCreateTopicWithRetention, req, false, 0)
	if err != nil {
		return Topic{}, fmt.Errorf("lance: create topic %q: %w", name, err)
	}
	t, err := decodeTopic("CreateTopicWithRetention", rep)
	if err != nil {
		return Topic{}, fmt.Errorf("lance: create topic %q: %w", name, err)
	}
	c.remember(t.Name, t.ID)
	return t, nil
}

// EnsureTopic returns the topic name, creating it when it does not exist.
// It is idempotent and retries across reconnects until ctx ends.
func (c *Client) EnsureTopic(ctx context.Context, name string) (Topic, error) {
	for {
		t, err := c.GetTopic(ctx, name)
		if !errors.Is(err, ErrTopicNotFound) {
			return t, err
		}
		t, err = c.CreateTopic(ctx, name)
		if err == nil || errors.Is(err, ErrTopicExists) {
			if err == nil {
				return t, nil
			}
			continue // someone else created it; read it back
		}
		if !errors.Is(err, ErrConnectionLost) {
			return Topic{}, err
		}
		// The create may or may not have happened: look again.
	}
}

// ListTopics returns every topic, in no particular order, and refreshes
// the client's name cache.
func (c *Client) ListTopics(ctx context.Context) ([]Topic, error) {
	rep, err := c.call(ctx, control.CodeListTopics, nil, true, 0)
	if err != nil {
		return nil, fmt.Errorf("lance: list topics: %w", err)
	}
	if rep.code != control.CodeTopicResponse {
		return nil, fmt.Errorf("lance: list topics: %w", unexpected("ListTopics", rep))
	}
	l, err := control.DecodeTopicList(rep.payload)
	if err != nil {
		return nil, fmt.Errorf("lance: list topics: %w: %w", ErrProtocol, err)
	}
	out := make([]Topic, len(l.Topics))
	ids := make(map[string]uint32, len(l.Topics))
	for i, t := range l.Topics {
		out[i] = topicFrom(t)
		ids[t.Name] = t.ID
	}
	c.topicMu.Lock()
	c.topics = ids
	c.topicMu.Unlock()
	return out, nil
}

// GetTopic returns the topic name, or an error matching ErrTopicNotFound.
func (c *Client) GetTopic(ctx context.Context, name string) (Topic, error) {
	if err := checkName(name); err != nil {
		return Topic{}, err
	}
	var t Topic
	err := c.withTopic(ctx, name, func(id uint32) error {
		rep, err := c.call(ctx, control.CodeGetTopic, control.GetTopic{TopicID: id}.AppendTo(nil), true, 0)
		if err != nil {
			return err
		}
		t, err = decodeTopic("GetTopic", rep)
		return err
	})
	if err != nil {
		return Topic{}, fmt.Errorf("lance: get topic %q: %w", name, err)
	}
	return t, nil
}

// DeleteTopic deletes the topic name and all its data.
func (c *Client) DeleteTopic(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	err := c.withTopic(ctx, name, func(id uint32) error {
		rep, err := c.call(ctx, control.CodeDeleteTopic, control.DeleteTopic{TopicID: id}.AppendTo(nil), false, 0)
		if err != nil {
			return err
		}
		if rep.code != control.CodeTopicResponse {
			return unexpected("DeleteTopic", rep)
		}
		if _, err := control.DecodeTopicDeleted(rep.payload); err != nil {
			return fmt.Errorf("%w: %w", ErrProtocol, err)
		}
		return nil
	})
	c.forgetTopic(name)
	if err != nil {
		return fmt.Errorf("lance: delete topic %q: %w", name, err)
	}
	return nil
}

// SetRetention sets the retention limits of the topic name.
func (c *Client) SetRetention(ctx context.Context, name string, r Retention) error {
	if err := checkName(name); err != nil {
		return err
	}
	err := c.withTopic(ctx, name, func(id uint32) error {
		req := control.SetRetention{TopicID: id, MaxAgeSecs: uint64(r.MaxAge / time.Second), MaxBytes: r.MaxBytes}
		rep, err := c.call(ctx, control.CodeSetRetention, req.AppendTo(nil), true, 0)
		if err != nil {
			return err
		}
		if rep.code != control.CodeTopicResponse {
			return unexpected("SetRetention", rep)
		}
		if _, err := control.DecodeRetentionSet(rep.payload); err != nil {
			return fmt.Errorf("%w: %w", ErrProtocol, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("lance: set retention of %q: %w", name, err)
	}
	return nil
}

// ClusterStatus returns the server's cluster status.
func (c *Client) ClusterStatus(ctx context.Context) (ClusterStatus, error) {
	rep, err := c.call(ctx, control.CodeGetClusterStatus, nil, true, 0)
	if err != nil {
		return ClusterStatus{}, fmt.Errorf("lance: cluster status: %w", err)
	}
	if rep.code != control.CodeClusterStatusResponse {
		return ClusterStatus{}, fmt.Errorf("lance: cluster status: %w", unexpected("GetClusterStatus", rep))
	}
	s, err := control.DecodeClusterStatus(rep.payload)
	if err != nil {
		return ClusterStatus{}, fmt.Errorf("lance: cluster status: %w: %w", ErrProtocol, err)
	}
	return ClusterStatus{
		NodeID: s.NodeID, IsLeader: s.IsLeader, LeaderID: s.LeaderID, Term: s.CurrentTerm,
		NodeCount: s.NodeCount, HealthyNodes: s.HealthyNodes, QuorumAvailable: s.QuorumAvailable,
		Peers: s.PeerStates, Mode: s.Mode,
	}, nil
}

func decodeTopic(what string, rep reply) (Topic, error) {
	if rep.code != control.CodeTopicResponse {
		return Topic{}, unexpected(what, rep)
	}
	t, err := control.DecodeTopic(rep.payload)
	if err != nil {
		return Topic{}, fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	return topicFrom(t), nil
}

// resolve returns the id of the topic name, asking the server (ListTopics)
// when the cache does not know it.
func (c *Client) resolve(ctx context.Context, name string) (uint32, error) {
	c.topicMu.Lock()
	id, ok := c.topics[name]
	c.topicMu.Unlock()
	if ok {
		return id, nil
	}
	if _, err := c.ListTopics(ctx); err != nil {
		return 0, err
	}
	c.topicMu.Lock()
	id, ok = c.topics[name]
	c.topicMu.Unlock()
	if !ok {
		return 0, fmt.Errorf("topic %q: %w", name, ErrTopicNotFound)
	}
	return id, nil
}

// withTopic runs fn with the id of name. When the server refuses the id as
// unknown while the cache had it, the topic may have been deleted and
// created again: the cache is refreshed and fn runs once more.
func (c *Client) withTopic(ctx context.Context, name string, fn func(id uint32) error) error {
	c.topicMu.Lock()
	_, cached := c.topics[name]
	c.topicMu.Unlock()
	id, err := c.resolve(ctx, name)
	if err != nil {
		return err
	}
	err = fn(id)
	if cached && errors.Is(err, ErrTopicNotFound) {
		c.forgetTopic(name)
		if id, err = c.resolve(ctx, name); err != nil {
			return err
		}
		err = fn(id)
	}
	return err
}

func (c *Client) remember(name string, id uint32) {
	c.topicMu.Lock()
	c.topics[name] = id
	c.topicMu.Unlock()
}

func (c *Client) forgetTopic(name string) {
	c.topicMu.Lock()
	delete(c.topics, name)
	c.topicMu.Unlock()
}
