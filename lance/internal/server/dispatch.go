package server

import (
	"context"
	"errors"
	"time"

	"github.com/lance-go/lance/lance/internal/topics"
	"github.com/lance-go/lance/lnc-network/control"
	"github.com/lance-go/lance/lnc-network/frame"
)

// dispatch handles one frame; false stops the reader.
func (c *conn) dispatch(f *frame.Frame) bool {
	switch f.Kind() {
	case frame.KindIngest:
		return c.ingest(f)
	case frame.KindControl:
		return c.control(f)
	case frame.KindKeepalive:
		d := c.replyDialect()
		return c.reply(func(b []byte) []byte { return frame.AppendKeepalive(b, d) })
	case frame.KindBackpressure:
		// A client has nothing to tell us this way; counted, not answered.
		c.s.Metrics.backpressure.Inc()
	}
	// Acks sent by a client and frames of no known kind are ignored, as
	// the reference does.
	return true
}

// errorReply queues an ErrorResponse carrying text.
func (c *conn) errorReply(text string) bool {
	d := c.replyDialect()
	return c.reply(func(b []byte) []byte {
		return frame.AppendControl(b, d, uint8(control.CodeErrorResponse), []byte(text))
	})
}

// controlReply queues a control frame whose payload build appends.
func (c *conn) controlReply(code control.Code, build func([]byte) []byte) bool {
	c.scratch = build(c.scratch[:0])
	p := c.scratch
	d := c.replyDialect()
	return c.reply(func(b []byte) []byte { return frame.AppendControl(b, d, uint8(code), p) })
}

// ingest takes one batch: checks, copies it out of the read buffer, hands
// it to the topic's writer and queues its ack, which the writer sends
// once the batch is durable.
func (c *conn) ingest(f *frame.Frame) bool {
	h := &f.Header
	if len(f.Payload) == 0 {
		// The reference drops these silently; a pipelining client could
		// then never match its acks. Answer instead.
		c.s.Metrics.errInvalid.Inc()
		return c.errorReply(control.EmptyIngest)
	}
	// The token check comes before the topic lookup, so that a client
	// that has not authenticated cannot probe which topic ids exist.
	if err := c.s.opts.Access.CheckAuth(c.id, OpProduce); err != nil {
		c.s.Metrics.errAuth.Inc()
		return c.errorReply(err.Error())
	}
	t := c.s.reg.ByID(h.TopicID)
	if t == nil {
		c.s.Metrics.errTopic.Inc()
		return c.errorReply(control.UnknownTopic)
	}
	if err := c.s.opts.Access.Allow(c.id, OpProduce, t.Name()); err != nil {
		c.s.Metrics.errAuth.Inc()
		return c.errorReply(err.Error())
	}
	if c.s.reg.Failed() != nil {
		c.s.Metrics.errIO.Inc()
		return c.errorReply(control.StorageUnavailable)
	}
	var pid, seq uint64
	if h.Reserved&frame.ReservedIdempotent != 0 {
		var err error
		if pid, seq, err = frame.ParseProducerRecord(f.Payload); err != nil {
			c.s.Metrics.errInvalid.Inc()
			return c.errorReply(control.InvalidProducerRecord)
		}
	}
	n := len(f.Payload)
	if !c.budget.TryAcquire(int64(n)) {
		c.signalBackpressure()
		if err := c.budget.Acquire(c.ctx, int64(n)); err != nil {
			return false
		}
	} else if t.QueueFull(n) {
		c.signalBackpressure()
	} else {
		c.bpSent = false
	}
	pb := c.s.pool.get(n)
	copy(*pb, f.Payload)
	in := c.getIngest()
	in.Data = *pb
	in.CRC = h.PayloadCRC
	in.Dialect = c.replyDialect()
	in.TimestampNS = h.TimestampNS
	in.RecordCount = h.RecordCount
	in.ProducerID, in.Sequence = pid, seq
	if err := t.Submit(c.ctx, in); err != nil {
		c.budget.Release(int64(n))
		c.s.pool.put(pb)
		c.putIngest(in)
		if errors.Is(err, context.Canceled) {
			return false
		}
		c.s.Metrics.countErr(err)
		if errors.Is(err, topics.ErrTopicGone) {
			return c.errorReply(control.UnknownTopic)
		}
		return c.errorReply(storageErrorText(err))
	}
	c.inflight.Add(1)
	return c.push(outItem{
		kind: itemAck, ing: in, payload: pb, batchID: h.BatchID,
		ackOff:   h.Reserved&frame.ReservedAckOffset != 0,
		received: time.Now(),
	})
}

// signalBackpressure tells a pipelining producer to slow down, once per
// stall. A producer with nothing else in flight is not told: the Rust
// client turns the frame into an error while it waits for its one ack, and
// may then send the batch again; for it, not reading is the signal.
func (c *conn) signalBackpressure() {
	if c.bpSent || c.inflight.Load() < 1 {
		return
	}
	c.bpSent = true
	c.s.Metrics.backpressure.Inc()
	d := c.replyDialect()
	c.reply(func(b []byte) []byte { return frame.AppendBackpressure(b, d) })
}

// retentionOf converts wire retention values.
func retentionOf(maxAge, maxBytes uint64) *topics.Retention {
	return &topics.Retention{MaxAgeSecs: maxAge, MaxBytes: maxBytes}
}

func topicJSON(t *topics.Topic) control.Topic {
	m := t.Meta()
	return control.Topic{ID: m.ID, Name: m.Name, CreatedAt: m.CreatedAt, TopicEpoch: uint64(m.Epoch)}
}

// decodeFailed answers a request whose payload did not decode.
func (c *conn) decodeFailed(err error) bool {
	c.s.Metrics.errInvalid.Inc()
	d := c.replyDialect()
	code, payload, ok := control.AppendReply(c.scratch[:0], err)
	if !ok {
		return c.errorReply("Invalid request: " + err.Error())
	}
	c.scratch = payload
	return c.reply(func(b []byte) []byte { return frame.AppendControl(b, d, uint8(code), payload) })
}

func (c *conn) denied(err error) bool {
	c.s.Metrics.errAuth.Inc()
	return c.errorReply(err.Error())
}

// createError answers a failed topic creation.
func (c *conn) createError(name string, err error) bool {
	if text, ok := control.ReplyText(err); ok {
		c.s.Metrics.errInvalid.Inc()
		return c.errorReply(text)
	}
	if errors.Is(err, topics.ErrExists) {
		c.s.Metrics.errInvalid.Inc()
		return c.errorReply(control.TopicExists(name))
	}
	c.s.Metrics.countErr(err)
	c.log.Warn("topic creation failed", "topic", name, "err", err)
	return c.errorReply("Storage error: " + err.Error())
}

// control handles a control request.
func (c *conn) control(f *frame.Frame) bool {
	p := f.Payload
	acc := c.s.opts.Access
	reg := c.s.reg
	code := control.CodeFromBatchID(f.BatchID)
	// The token check comes first, before payloads are decoded and topics
	// looked up: a client that has not authenticated learns nothing.
	if op := requestOp(code); op != 0 {
		if err := acc.CheckAuth(c.id, op); err != nil {
			return c.denied(err)
		}
	}
	switch code {
	case control.CodeCreateTopic:
		m, err := control.DecodeCreateTopic(p)
		if err != nil {
			return c.decodeFailed(err)
		}
		if err := acc.Allow(c.id, OpAdmin, m.Name); err != nil {
			return c.denied(err)
		}
		t, err := reg.Create(m.Name, nil)
		if err != nil {
			return c.createError(m.Name, err)
		}
		return c.controlReply(control.CodeTopicResponse, topicJSON(t).AppendTo)

	case control.CodeCreateTopicWithRetention:
		m, err := control.DecodeCreateTopicWithRetention(p)
		if err != nil {
			return c.decodeFailed(err)
		}
		if err := acc.Allow(c.id, OpAdmin, m.Name); err != nil {
			return c.denied(err)
		}
		t, err := reg.Create(m.Name, retentionOf(m.MaxAgeSecs, m.MaxBytes))
		if err != nil {
			return c.createError(m.Name, err)
		}
		reply := control.TopicWithRetention{Topic: topicJSON(t), MaxAgeSecs: m.MaxAgeSecs, MaxBytes: m.MaxBytes}
		return c.controlReply(control.CodeTopicResponse, reply.AppendTo)

	case control.CodeDeleteTopic:
		m, _ := control.DecodeDeleteTopic(p) // short payloads read as topic 0
		t, ok := c.topicFor(m.TopicID, OpAdmin, control.ConfigTopicNotFound)
		if t == nil {
			return ok
		}
		if err := reg.Delete(m.TopicID); err != nil {
			if errors.Is(err, topics.ErrNotFound) {
				return c.errorReply(control.ConfigTopicNotFound(m.TopicID))
			}
			c.s.Metrics.countErr(err)
			return c.errorReply("Storage error: " + err.Error())
		}
		return c.controlReply(control.CodeTopicResponse, control.TopicDeleted{ID: m.TopicID}.AppendTo)

	case control.CodeListTopics:
		var list control.TopicList
		for _, t := range reg.List() {
			if acc.Allow(c.id, OpDescribe, t.Name()) == nil {
				list.Topics = append(list.Topics, topicJSON(t))
			}
		}
		return c.controlReply(control.CodeTopicResponse, list.AppendTo)

	case control.CodeGetTopic:
		m, _ := control.DecodeGetTopic(p) // short payloads read as topic 0
		t, ok := c.topicFor(m.TopicID, OpDescribe, topicNotFoundText)
		if t == nil {
			return ok
		}
		return c.controlReply(control.CodeTopicResponse, topicJSON(t).AppendTo)

	case control.CodeSetRetention:
		m, err := control.DecodeSetRetention(p)
		if err != nil {
			return c.decodeFailed(err)
		}
		t, ok := c.topicFor(m.TopicID, OpAdmin, control.ConfigTopicNotFound)
		if t == nil {
			return ok
		}
		if _, err := reg.SetRetention(m.TopicID, *retentionOf(m.MaxAgeSecs, m.MaxBytes)); err != nil {
			if errors.Is(err, topics.ErrNotFound) {
				return c.errorReply(control.ConfigTopicNotFound(m.TopicID))
			}
			c.s.Metrics.countErr(err)
			return c.errorReply("Storage error: " + err.Error())
		}
		return c.controlReply(control.CodeTopicResponse, control.RetentionSet(m).AppendTo)

	case control.CodeGetClusterStatus:
		st := control.StandaloneClusterStatus()
		st.NodeID = c.s.opts.NodeID
		leader := c.s.opts.NodeID
		st.LeaderID = &leader
		return c.controlReply(control.CodeClusterStatusResponse, st.AppendTo)

	case control.CodeAuthenticate:
		m, err := control.DecodeAuthenticate(p)
		if err != nil {
			return c.decodeFailed(err)
		}
		id, ok := acc.Authenticate(c.id, m.Token)
		reply := control.AuthenticateResponse{Success: ok, Message: control.AuthReplyOK}
		if ok {
			c.id = id
		} else {
			c.s.Metrics.errAuth.Inc()
			reply.Message = control.AuthReplyInvalidToken
		}
		return c.controlReply(control.CodeAuthenticateResponse, reply.AppendTo)

	case control.CodeFetch:
		m, err := control.DecodeFetch(p)
		if err != nil {
			return c.decodeFailed(err)
		}
		t, ok := c.topicFor(m.TopicID, OpConsume, control.FetchTopicNotFound)
		if t == nil {
			return ok
		}
		return c.push(outItem{kind: itemFetch, topic: t, off: m.StartOffset, max: m.MaxBytes})

	case control.CodeFetchBatches:
		m, err := control.DecodeFetchBatches(p)
		if err != nil {
			return c.decodeFailed(err)
		}
		t, ok := c.topicFor(m.TopicID, OpConsume, control.FetchTopicNotFound)
		if t == nil {
			return ok
		}
		return c.push(outItem{kind: itemBatches, topic: t, off: m.StartOffset, max: m.MaxBytes,
			wait: time.Duration(m.MaxWaitMS) * time.Millisecond, keyed: m.Flags&control.FetchWithKeys != 0})

	case control.CodeOffsetForTime:
		m, err := control.DecodeOffsetForTime(p)
		if err != nil {
			return c.decodeFailed(err)
		}
		t, ok := c.topicFor(m.TopicID, OpConsume, control.FetchTopicNotFound)
		if t == nil {
			return ok
		}
		l := t.Log()
		off, err := l.SeekTime(m.TimestampNS)
		if err != nil {
			c.s.Metrics.countErr(err)
			return c.errorReply("Storage error: " + err.Error())
		}
		reply := control.OffsetResponse{Offset: off, Start: l.Start(), End: l.End()}
		return c.controlReply(control.CodeOffsetResponse, reply.AppendTo)

	case control.CodeSubscribe:
		m, err := control.DecodeSubscribe(p)
		if err != nil {
			return c.decodeFailed(err)
		}
		start := m.StartOffset
		if m.TopicID != 0 {
			t, ok := c.topicFor(m.TopicID, OpConsume, topicNotFoundText)
			if t == nil {
				return ok
			}
			if start == 0 {
				if off, ok := t.CommittedOffset(m.ConsumerID); ok {
					start = off
				}
			}
		}
		return c.controlReply(control.CodeSubscribeAck, control.SubscribeAck{ConsumerID: m.ConsumerID, StartOffset: start}.AppendTo)

	case control.CodeUnsubscribe:
		m, err := control.DecodeUnsubscribe(p)
		if err != nil {
			return c.decodeFailed(err)
		}
		if t := reg.ByID(m.TopicID); t != nil {
			if err := acc.Allow(c.id, OpConsume, t.Name()); err != nil {
				return c.denied(err)
			}
		}
		d := c.replyDialect()
		return c.reply(func(b []byte) []byte { return frame.AppendAck(b, d, m.ConsumerID) })

	case control.CodeCommitOffset:
		m, err := control.DecodeCommitOffset(p)
		if err != nil {
			return c.decodeFailed(err)
		}
		// The reference keeps offsets of any topic id in memory; ours are
		// stored with the topic, so the topic must exist.
		t, ok := c.topicFor(m.TopicID, OpConsume, topicNotFoundText)
		if t == nil {
			return ok
		}
		if err := t.CommitOffset(m.ConsumerID, m.Offset); err != nil {
			c.s.Metrics.countErr(err)
			c.log.Warn("offset commit failed", "topic", t.Name(), "err", err)
			return c.errorReply("Storage error: " + err.Error())
		}
		return c.controlReply(control.CodeCommitAck, control.CommitAck{ConsumerID: m.ConsumerID, CommittedOffset: m.Offset}.AppendTo)

	case control.CodeAuthenticateResponse:
		c.s.Metrics.errInvalid.Inc()
		return c.errorReply(control.AuthHandledAtConnectionLevel)

	default:
		c.s.Metrics.errInvalid.Inc()
		return c.errorReply(control.InvalidClientCommand)
	}
}

// requestOp is the operation a control request is checked for (token
// requirement first, then the topic's ACL); 0 for requests open to all
// (GetClusterStatus, Authenticate) and for codes that are refused anyway.
func requestOp(code control.Code) Op {
	switch code {
	case control.CodeCreateTopic, control.CodeCreateTopicWithRetention,
		control.CodeDeleteTopic, control.CodeSetRetention:
		return OpAdmin
	case control.CodeListTopics, control.CodeGetTopic:
		return OpDescribe
	case control.CodeFetch, control.CodeFetchBatches, control.CodeOffsetForTime,
		control.CodeSubscribe, control.CodeUnsubscribe, control.CodeCommitOffset:
		return OpConsume
	}
	return 0
}

// topicFor looks up the topic a request names and checks op on it. When
// it returns a nil topic the reply (notFound's text, or the denial) is
// queued and ok is what dispatch returns.
func (c *conn) topicFor(id uint32, op Op, notFound func(uint32) string) (t *topics.Topic, ok bool) {
	if t = c.s.reg.ByID(id); t == nil {
		c.s.Metrics.errTopic.Inc()
		return nil, c.errorReply(notFound(id))
	}
	if err := c.s.opts.Access.Allow(c.id, op, t.Name()); err != nil {
		return nil, c.denied(err)
	}
	return t, true
}

// topicNotFoundText is the fixed "Topic not found" text for topicFor.
func topicNotFoundText(uint32) string { return control.TopicNotFound }
