package e2e

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// TestChecksumDialects runs a whole session in each CRC dialect against a
// fresh server, so that the first topic is id 1 and the §19 frames go on
// the wire unchanged. Every reply is read with the session's dialect:
// the server must detect it from the first frame and answer in it.
func TestChecksumDialects(t *testing.T) {
	t.Parallel()
	for _, d := range []dialect{castagnoli, ieee} {
		t.Run(d.String(), func(t *testing.T) {
			t.Parallel()
			dialectSession(t, d)
		})
	}
}

func dialectSession(t *testing.T, d dialect) {
	s := startServer(t)
	c := s.dialT(t, d)
	controlCRC := map[dialect]uint32{castagnoli: 0x8583F0C6, ieee: 0x1B4BD526}[d]

	expectBytes(t, "keepalive", c.call(keepaliveFrame(d)), keepaliveFrame(d))

	// §19.3: CreateTopic "my-events".
	rep := c.control(codeCreateTopic, []byte("my-events"))
	if rep.HeaderCRC != controlCRC {
		t.Errorf("TopicResponse header CRC %08X, want %08X", rep.HeaderCRC, controlCRC)
	}
	p, ok := expectControl(t, "CreateTopic", rep, codeTopicResponse)
	if !ok {
		t.FailNow()
	}
	expectBytes(t, "TopicResponse", rep, controlFrame(d, codeTopicResponse, p))
	if ti := parseTopic(t, "CreateTopic", decodeJSON(t, "CreateTopic", p)); ti.ID != 1 || ti.Name != "my-events" {
		t.Fatalf("CreateTopic: %+v, want id 1", ti)
	}

	// §19.1 and §19.2: the ingest and its ack.
	expectBytes(t, "ack", c.call(ingestFrame(d, batch{Topic: 1, ID: 1, Timestamp: ts19, Records: 2, Data: helloWorld})), ackFrame(d, 1))
	// §19.5: the fetch and its reply.
	expectBytes(t, "fetch", c.control(codeFetch, fetchPayload(1, 0, 65536)),
		controlFrame(d, codeFetchResponse, fetchResponsePayload(20, helloWorld)))
	// §19.6: an error.
	expectBytes(t, "GetTopic unknown", c.control(codeGetTopic, topicIDPayload(99)), errorFrame(d, "Topic not found"))

	// The rest of the command set, all in this dialect.
	expectBytes(t, "CatchingUp", c.control(codeFetch, fetchPayload(1, 21, 1)), controlFrame(d, codeCatchingUp, le64(nil, 20)))
	expectBytes(t, "tail", c.control(codeFetch, fetchPayload(1, tailOffset, 1)), controlFrame(d, codeFetchResponse, fetchResponsePayload(20, nil)))
	if p, ok := expectControl(t, "SetRetention", c.control(codeSetRetention, setRetentionPayload(1, 0, 0)), codeTopicResponse); ok {
		expectKeys(t, "SetRetention", decodeJSON(t, "SetRetention", p), "max_age_secs", "max_bytes", "topic_id")
	}
	if p, ok := expectControl(t, "ListTopics", c.control(codeListTopics, nil), codeTopicResponse); ok {
		expectKeys(t, "ListTopics", decodeJSON(t, "ListTopics", p), "topics")
	}
	if _, ok := expectControl(t, "GetClusterStatus", c.control(codeGetClusterStatus, nil), codeClusterStatusResponse); !ok {
		t.Error("GetClusterStatus failed")
	}
	expectBytes(t, "CommitOffset", c.control(codeCommitOffset, commitPayload(1, 9, 20)), controlFrame(d, codeCommitAck, pairPayload(9, 20)))
	expectBytes(t, "Subscribe", c.control(codeSubscribe, subscribePayload(1, 0, 1, 9)), controlFrame(d, codeSubscribeAck, pairPayload(9, 20)))
	expectBytes(t, "Unsubscribe", c.control(codeUnsubscribe, unsubscribePayload(1, 9)), ackFrame(d, 9))
	expectBytes(t, "extended ack", c.call(ingestFrame(d, batch{Topic: 1, ID: 2, Timestamp: ts19 + 1, Records: 1, Data: []byte("more"), AckOffset: true})),
		ackOffsetFrame(d, 2, 20))
	if p, ok := expectControl(t, "FetchBatches", c.control(codeFetchBatches, fetchBatchesPayload(1, 0, 1, 0)), codeBatchesResponse); ok {
		if r, err := decodeBatchesReply(p); err != nil || r.Start != 0 || r.Next != 20 || r.Batches != 1 || r.Records != 2 || !bytes.Equal(r.Data, helloWorld) {
			t.Errorf("FetchBatches: %+v %v", r, err)
		}
	}
	if p, ok := expectControl(t, "OffsetForTime", c.control(codeOffsetForTime, offsetForTimePayload(1, ts19+1)), codeOffsetResponse); ok {
		if !bytes.Equal(p, le64(le64(le64(nil, 20), 0), 24)) {
			t.Errorf("OffsetForTime(ts19+1): % X, want offset 20, start 0, end 24", p)
		}
	}
	expectError(t, d, "empty ingest", c.call(ingestFrame(d, batch{Topic: 1, ID: 3})), "Invalid data: empty ingest payload")

	// Another connection of the same server may use the other dialect.
	other := ieee
	if d == ieee {
		other = castagnoli
	}
	c2 := s.dialT(t, other)
	expectBytes(t, "other dialect, other connection", c2.control(codeFetch, fetchPayload(1, 0, 20)),
		controlFrame(other, codeFetchResponse, fetchResponsePayload(20, helloWorld)))

	// Once detected, the dialect is fixed: a frame in the other one fails
	// its header CRC check and the connection is closed without a reply.
	c.send(keepaliveFrame(other))
	c.expectClosed("keepalive in the other dialect")

	// Same for a frame whose header is right but whose payload CRC is in
	// the other dialect.
	c3 := s.dialT(t, d)
	expectBytes(t, "keepalive", c3.call(keepaliveFrame(d)), keepaliveFrame(d))
	mixed := ingestFrame(d, batch{Topic: 1, ID: 4, Data: []byte("mixed")})
	binary.LittleEndian.PutUint32(mixed[36:], other.sum([]byte("mixed")))
	c3.send(mixed)
	c3.expectClosed("payload CRC in the other dialect")
	if end := logEnd(t, c2, 1); end != 24 {
		t.Errorf("log end %d after refused frames, want 24", end)
	}
}
