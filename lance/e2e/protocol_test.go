package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// invalidName is the error text for a topic name with a bad character.
func invalidName(name string) string {
	return "Invalid data: Topic name '" + name + "' contains invalid characters. Only alphanumeric characters (a-z, A-Z, 0-9) and dashes (-) are allowed"
}

// TestProtocolCommands walks every command of lwp.md §6.2 against one
// fresh server, checking reply frames, JSON keys and values and the error
// texts of §6.3 and §10.2, with the decisions of this server (one reply per
// request, in order; CommitOffset needs an existing topic; ingest to topic
// 0 is refused).
func TestProtocolCommands(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	d := ieee
	before := uint64(time.Now().Unix())

	// Ids come from the order of creation in these subtests.
	var myEvents, events, longTopic topicInfo

	t.Run("ListTopicsEmpty", func(t *testing.T) {
		c := s.dialT(t, d)
		p, ok := expectControl(t, "ListTopics", c.control(codeListTopics, nil), codeTopicResponse)
		if !ok {
			return
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(p, &raw); err != nil || len(raw) != 1 || string(raw["topics"]) != "[]" {
			t.Errorf("ListTopics on a fresh server: %s, want {\"topics\":[]}", p)
		}
	})

	t.Run("CreateTopic", func(t *testing.T) {
		c := s.dialT(t, d)
		myEvents = createTopic(t, c, "my-events")
		after := uint64(time.Now().Unix())
		if myEvents.ID != 1 {
			t.Errorf("first topic got id %d, want 1", myEvents.ID)
		}
		if myEvents.CreatedAt+2 < before || myEvents.CreatedAt > after+2 {
			t.Errorf("created_at %d is not a Unix time in seconds between %d and %d", myEvents.CreatedAt, before, after)
		}
		expectError(t, d, "duplicate", c.control(codeCreateTopic, []byte("my-events")), "Topic 'my-events' already exists")
		expectError(t, d, "empty name", c.control(codeCreateTopic, nil), "Topic name required")
		for _, name := range []string{"bad name", "under_score", "a/b", "dot.ted", "..", "caf\u00e9", "tab\t"} {
			expectError(t, d, "name "+name, c.control(codeCreateTopic, []byte(name)), invalidName(name))
		}
		// Bytes that are not UTF-8 come back as U+FFFD, one per bad byte.
		expectError(t, d, "non-UTF-8 name", c.control(codeCreateTopic, []byte("a\xffb\xfe")), invalidName("a\uFFFDb\uFFFD"))

		// docs/LWP.md §3.3: names of up to 255 bytes are valid.
		long := strings.Repeat("L", 255)
		lf := c.control(codeCreateTopic, []byte(long))
		if p, ok := expectControl(t, "CreateTopic with a 255-byte name", lf, codeTopicResponse); ok {
			longTopic = parseTopic(t, "255-byte name", decodeJSON(t, "255-byte name", p))
		}
		expectError(t, d, "256-byte name", c.control(codeCreateTopic, []byte(long+"L")),
			"Invalid data: Topic name is 256 bytes long; at most 255 bytes are allowed")
	})

	t.Run("CreateTopicWithRetention", func(t *testing.T) {
		c := s.dialT(t, d)
		what := "CreateTopicWithRetention events"
		p, ok := expectControl(t, what, c.control(codeCreateTopicWithRetention, createWithRetentionPayload("events", 86400, 0)), codeTopicResponse)
		if !ok {
			t.FailNow()
		}
		m := decodeJSON(t, what, p)
		events = parseTopic(t, what, m, "max_age_secs", "max_bytes")
		if events.Name != "events" || events.ID <= myEvents.ID || events.Epoch != 1 {
			t.Errorf("%s: %+v, want a new id, name events, epoch 1", what, events)
		}
		if a, b := jsonUint(t, what, m, "max_age_secs"), jsonUint(t, what, m, "max_bytes"); a != 86400 || b != 0 {
			t.Errorf("%s: max_age_secs %d, max_bytes %d; want 86400, 0", what, a, b)
		}

		full := createWithRetentionPayload("events", 1, 2)
		expectError(t, d, "17-byte payload", c.control(codeCreateTopicWithRetention, full[:17]), "Invalid create topic payload")
		expectError(t, d, "empty payload", c.control(codeCreateTopicWithRetention, nil), "Invalid create topic payload")
		short := createWithRetentionPayload("events", 1, 2)
		short[0] = 10 // name_len 10, but 6 name bytes and 16 retention bytes follow
		expectError(t, d, "name_len past the end", c.control(codeCreateTopicWithRetention, short), "Invalid payload length")
		expectError(t, d, "duplicate", c.control(codeCreateTopicWithRetention, full), "Topic 'events' already exists")
		expectError(t, d, "invalid name", c.control(codeCreateTopicWithRetention, createWithRetentionPayload("a b", 1, 2)), invalidName("a b"))
		expectError(t, d, "empty name", c.control(codeCreateTopicWithRetention, createWithRetentionPayload("", 1, 2)), "Topic name required")

		// Bytes past the fixed layout are ignored.
		extra := append(createWithRetentionPayload("events-x", 7, 9), 0xEE, 0xEE, 0xEE)
		p, ok = expectControl(t, "with trailing bytes", c.control(codeCreateTopicWithRetention, extra), codeTopicResponse)
		if ok {
			m := decodeJSON(t, "with trailing bytes", p)
			ti := parseTopic(t, "with trailing bytes", m, "max_age_secs", "max_bytes")
			if ti.Name != "events-x" || jsonUint(t, "x", m, "max_age_secs") != 7 || jsonUint(t, "x", m, "max_bytes") != 9 {
				t.Errorf("with trailing bytes: %s", p)
			}
		}
	})

	t.Run("GetTopic", func(t *testing.T) {
		c := s.dialT(t, d)
		what := "GetTopic my-events"
		p, ok := expectControl(t, what, c.control(codeGetTopic, topicIDPayload(myEvents.ID)), codeTopicResponse)
		if ok {
			if got := parseTopic(t, what, decodeJSON(t, what, p)); got != myEvents {
				t.Errorf("%s: %+v, CreateTopic said %+v", what, got, myEvents)
			}
		}
		// Trailing bytes are ignored.
		p, ok = expectControl(t, what, c.control(codeGetTopic, append(topicIDPayload(myEvents.ID), 1, 2, 3)), codeTopicResponse)
		if ok {
			if got := parseTopic(t, what, decodeJSON(t, what, p)); got != myEvents {
				t.Errorf("%s with trailing bytes: %+v", what, got)
			}
		}
		// A topic created with retention is described like any other.
		p, ok = expectControl(t, "GetTopic events", c.control(codeGetTopic, topicIDPayload(events.ID)), codeTopicResponse)
		if ok {
			if got := parseTopic(t, "GetTopic events", decodeJSON(t, "GetTopic events", p)); got != events {
				t.Errorf("GetTopic events: %+v, CreateTopicWithRetention said %+v", got, events)
			}
		}
		expectError(t, d, "unknown topic", c.control(codeGetTopic, topicIDPayload(999)), "Topic not found")
		expectError(t, d, "topic 0", c.control(codeGetTopic, topicIDPayload(0)), "Topic not found")
		// A payload shorter than 4 bytes means topic 0, even when its
		// bytes would spell an existing id.
		expectError(t, d, "2-byte payload", c.control(codeGetTopic, []byte{1, 0}), "Topic not found")
		expectError(t, d, "no payload", c.control(codeGetTopic, nil), "Topic not found")
	})

	t.Run("ListTopics", func(t *testing.T) {
		c := s.dialT(t, d)
		p, ok := expectControl(t, "ListTopics", c.control(codeListTopics, nil), codeTopicResponse)
		if !ok {
			return
		}
		m := decodeJSON(t, "ListTopics", p)
		expectKeys(t, "ListTopics", m, "topics")
		list, _ := m["topics"].([]any)
		byName := map[string]topicInfo{}
		for i, e := range list {
			o, ok := e.(map[string]any)
			if !ok {
				t.Fatalf("ListTopics entry %d is %T", i, e)
			}
			ti := parseTopic(t, "ListTopics entry", o)
			byName[ti.Name] = ti
		}
		want := 3
		if longTopic.ID != 0 {
			want++
			if byName[longTopic.Name] != longTopic {
				t.Errorf("ListTopics lacks the 255-byte name")
			}
		}
		if len(list) != want || byName["my-events"] != myEvents || byName["events"].ID != events.ID || byName["events-x"].ID == 0 {
			t.Errorf("ListTopics: %s", p)
		}
		// Only the low byte of batch_id is the command: 0x0103 is ListTopics.
		p2, ok := expectControl(t, "ListTopics as 0x0103", c.control(0xAB00000000000103, nil), codeTopicResponse)
		if ok && len(decodeJSON(t, "0x0103", p2)) != 1 {
			t.Errorf("0x0103: %s", p2)
		}
	})

	t.Run("SetRetention", func(t *testing.T) {
		c := s.dialT(t, d)
		what := "SetRetention"
		p, ok := expectControl(t, what, c.control(codeSetRetention, setRetentionPayload(events.ID, 3600, 1<<30)), codeTopicResponse)
		if ok {
			m := decodeJSON(t, what, p)
			expectKeys(t, what, m, "max_age_secs", "max_bytes", "topic_id")
			if jsonUint(t, what, m, "max_age_secs") != 3600 || jsonUint(t, what, m, "max_bytes") != 1<<30 || jsonUint(t, what, m, "topic_id") != uint64(events.ID) {
				t.Errorf("%s: %s", what, p)
			}
		}
		full := setRetentionPayload(events.ID, 1, 1)
		expectError(t, d, "19-byte payload", c.control(codeSetRetention, full[:19]), "Invalid set retention payload")
		expectError(t, d, "no payload", c.control(codeSetRetention, nil), "Invalid set retention payload")
		expectError(t, d, "unknown topic", c.control(codeSetRetention, setRetentionPayload(999, 1, 1)), "Configuration error: Topic 999 not found")
		expectError(t, d, "topic 0", c.control(codeSetRetention, setRetentionPayload(0, 1, 1)), "Configuration error: Topic 0 not found")
	})

	t.Run("DeleteTopic", func(t *testing.T) {
		c := s.dialT(t, d)
		doomed := createTopic(t, c, "doomed")
		ingest(t, c, batch{Topic: doomed.ID, ID: 1, Data: []byte("x")})
		what := "DeleteTopic"
		p, ok := expectControl(t, what, c.control(codeDeleteTopic, topicIDPayload(doomed.ID)), codeTopicResponse)
		if ok {
			m := decodeJSON(t, what, p)
			expectKeys(t, what, m, "deleted")
			if jsonUint(t, what, m, "deleted") != uint64(doomed.ID) {
				t.Errorf("%s: %s", what, p)
			}
		}
		gone := "Configuration error: Topic " + itoa(doomed.ID) + " not found"
		expectError(t, d, "get after delete", c.control(codeGetTopic, topicIDPayload(doomed.ID)), "Topic not found")
		expectError(t, d, "delete again", c.control(codeDeleteTopic, topicIDPayload(doomed.ID)), gone)
		expectError(t, d, "ingest after delete", c.call(ingestFrame(d, batch{Topic: doomed.ID, ID: 2, Data: []byte("y")})), "Unknown topic")
		expectError(t, d, "fetch after delete", c.control(codeFetch, fetchPayload(doomed.ID, 0, 10)), "Topic "+itoa(doomed.ID)+" not found")
		expectError(t, d, "unknown topic", c.control(codeDeleteTopic, topicIDPayload(999)), "Configuration error: Topic 999 not found")
		expectError(t, d, "no payload", c.control(codeDeleteTopic, nil), "Configuration error: Topic 0 not found")
		expectError(t, d, "3-byte payload", c.control(codeDeleteTopic, []byte{byte(myEvents.ID), 0, 0}), "Configuration error: Topic 0 not found")

		// A long name (within the 255-byte cap) can be deleted too.
		long := createTopic(t, c, strings.Repeat("D", 250))
		p, ok = expectControl(t, "DeleteTopic with a 250-byte name", c.control(codeDeleteTopic, topicIDPayload(long.ID)), codeTopicResponse)
		if ok {
			if m := decodeJSON(t, what, p); jsonUint(t, what, m, "deleted") != uint64(long.ID) {
				t.Errorf("%s: %s", what, p)
			}
		}

		// The name is free again; the id is not reused.
		again := createTopic(t, c, "doomed")
		if again.ID <= doomed.ID {
			t.Errorf("recreated topic got id %d, the deleted one had %d", again.ID, doomed.ID)
		}
		if r := fetch(t, c, again.ID, 0, 100); len(r.Data) != 0 || r.Next != 0 {
			t.Errorf("recreated topic is not empty: next %d, %d bytes", r.Next, len(r.Data))
		}
	})

	t.Run("GetClusterStatus", func(t *testing.T) {
		c := s.dialT(t, d)
		p, ok := expectControl(t, "GetClusterStatus", c.control(codeGetClusterStatus, nil), codeClusterStatusResponse)
		if !ok {
			return
		}
		var got map[string]any
		if err := json.Unmarshal(p, &got); err != nil {
			t.Fatalf("GetClusterStatus: %v: %q", err, p)
		}
		want := map[string]any{
			"current_term": 0.0, "healthy_nodes": 1.0, "is_leader": true, "leader_id": 0.0,
			"mode": "standalone", "node_count": 1.0, "node_id": 0.0, "peer_states": map[string]any{},
			"quorum_available": true,
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("GetClusterStatus: %s\nwant %v", p, want)
		}
	})

	t.Run("Authenticate", func(t *testing.T) {
		c := s.dialT(t, d)
		// Auth is off, so any token is accepted.
		expectBytes(t, "Authenticate", c.control(codeAuthenticate, []byte("some-token")),
			controlFrame(d, codeAuthenticateResponse, append([]byte{1}, "Authenticated"...)))
		expectBytes(t, "Authenticate without a token", c.control(codeAuthenticate, nil),
			controlFrame(d, codeAuthenticateResponse, append([]byte{0}, "No token provided"...)))
		expectBytes(t, "Authenticate with a non-UTF-8 token", c.control(codeAuthenticate, []byte{0xff, 0xfe}),
			controlFrame(d, codeAuthenticateResponse, append([]byte{0}, "Invalid token encoding"...)))
		expectError(t, d, "AuthenticateResponse from a client", c.control(codeAuthenticateResponse, []byte{1}),
			"Authentication handled at connection level")
	})

	t.Run("InvalidCommands", func(t *testing.T) {
		c := s.dialT(t, d)
		// Server-only codes, then codes nobody defines.
		codes := []uint64{codeFetchResponse, codeCatchingUp, codeBatchesResponse, codeOffsetResponse, codeSubscribeAck,
			codeCommitAck, codeTopicResponse, codeClusterStatusResponse, codeErrorResponse,
			0x00, 0x0A, 0x0F, 0x17, 0x1F, 0x25, 0x30, 0x7F, 0x82, 0xFE}
		for _, code := range codes {
			expectError(t, d, "code "+hex2(code), c.control(code, []byte{1, 2, 3}), "Invalid client command")
		}
		// The connection is still usable.
		expectBytes(t, "keepalive after invalid commands", c.call(keepaliveFrame(d)), keepaliveFrame(d))
	})

	t.Run("Fetch", func(t *testing.T) {
		c := s.dialT(t, d)
		ft := createTopic(t, c, "fetch-t").ID
		expectBytes(t, "empty topic", c.control(codeFetch, fetchPayload(ft, 0, 100)),
			controlFrame(d, codeFetchResponse, fetchResponsePayload(0, nil)))
		expectBytes(t, "empty topic, tail", c.control(codeFetch, fetchPayload(ft, tailOffset, 1)),
			controlFrame(d, codeFetchResponse, fetchResponsePayload(0, nil)))
		expectBytes(t, "empty topic, past the end", c.control(codeFetch, fetchPayload(ft, 5, 100)),
			controlFrame(d, codeCatchingUp, le64(nil, 0)))
		expectError(t, d, "no payload", c.control(codeFetch, nil), "Fetch request payload required")
		expectError(t, d, "15-byte payload", c.control(codeFetch, fetchPayload(ft, 0, 1)[:15]), "Protocol error: Fetch request payload too small")
		expectError(t, d, "unknown topic", c.control(codeFetch, fetchPayload(999, 0, 1)), "Topic 999 not found")
		expectError(t, d, "topic 0", c.control(codeFetch, fetchPayload(0, 0, 1)), "Topic 0 not found")

		expectBytes(t, "ingest", c.call(ingestFrame(d, batch{Topic: ft, ID: 1, Timestamp: ts19, Records: 2, Data: helloWorld})), ackFrame(d, 1))
		expectBytes(t, "fetch all", c.control(codeFetch, fetchPayload(ft, 0, 65536)),
			controlFrame(d, codeFetchResponse, fetchResponsePayload(20, helloWorld)))
		expectBytes(t, "fetch with trailing bytes", c.control(codeFetch, append(fetchPayload(ft, 0, 65536), 9, 9, 9, 9)),
			controlFrame(d, codeFetchResponse, fetchResponsePayload(20, helloWorld)))
		expectBytes(t, "fetch [5,8)", c.control(codeFetch, fetchPayload(ft, 5, 3)),
			controlFrame(d, codeFetchResponse, fetchResponsePayload(8, helloWorld[5:8])))
		expectBytes(t, "max_bytes 0", c.control(codeFetch, fetchPayload(ft, 4, 0)),
			controlFrame(d, codeFetchResponse, fetchResponsePayload(4, nil)))
		expectBytes(t, "at the end", c.control(codeFetch, fetchPayload(ft, 20, 100)),
			controlFrame(d, codeFetchResponse, fetchResponsePayload(20, nil)))
		expectBytes(t, "past the end", c.control(codeFetch, fetchPayload(ft, 21, 100)),
			controlFrame(d, codeCatchingUp, le64(nil, 20)))
		expectBytes(t, "far past the end", c.control(codeFetch, fetchPayload(ft, tailOffset-1, 100)),
			controlFrame(d, codeCatchingUp, le64(nil, 20)))
		expectBytes(t, "tail sentinel", c.control(codeFetch, fetchPayload(ft, tailOffset, 1)),
			controlFrame(d, codeFetchResponse, fetchResponsePayload(20, nil)))

		second := []byte("0123456789")
		expectBytes(t, "second ingest", c.call(ingestFrame(d, batch{Topic: ft, ID: 2, Data: second})), ackFrame(d, 2))
		all := append(bytes.Clone(helloWorld), second...)
		expectBytes(t, "fetch across batches", c.control(codeFetch, fetchPayload(ft, 15, 10)),
			controlFrame(d, codeFetchResponse, fetchResponsePayload(25, all[15:25])))
		if got := readLog(t, c, ft, 0, 30, 1, 7, 3); !bytes.Equal(got, all) {
			t.Errorf("reassembled log %q, want %q", got, all)
		}
	})

	t.Run("Subscribe", func(t *testing.T) {
		c := s.dialT(t, d)
		st := createTopic(t, c, "sub-t").ID
		const cid, other = 0xDEADBEEF12345678, 77
		subAck := func(consumer, start uint64) []byte {
			return controlFrame(d, codeSubscribeAck, pairPayload(consumer, start))
		}
		expectBytes(t, "subscribe at 1000", c.control(codeSubscribe, subscribePayload(st, 1000, 65536, cid)), subAck(cid, 1000))
		expectBytes(t, "subscribe at the tail sentinel", c.control(codeSubscribe, subscribePayload(st, tailOffset, 65536, cid)), subAck(cid, tailOffset))
		expectBytes(t, "subscribe at 0 before a commit", c.control(codeSubscribe, subscribePayload(st, 0, 65536, cid)), subAck(cid, 0))

		expectBytes(t, "commit", c.control(codeCommitOffset, commitPayload(st, cid, 50000)), controlFrame(d, codeCommitAck, pairPayload(cid, 50000)))
		expectBytes(t, "subscribe at 0 resumes", c.control(codeSubscribe, subscribePayload(st, 0, 65536, cid)), subAck(cid, 50000))
		expectBytes(t, "another consumer", c.control(codeSubscribe, subscribePayload(st, 0, 65536, other)), subAck(other, 0))
		expectBytes(t, "explicit start wins", c.control(codeSubscribe, subscribePayload(st, 7, 65536, cid)), subAck(cid, 7))
		expectBytes(t, "second commit", c.control(codeCommitOffset, commitPayload(st, cid, 60000)), controlFrame(d, codeCommitAck, pairPayload(cid, 60000)))
		expectBytes(t, "latest commit wins", c.control(codeSubscribe, subscribePayload(st, 0, 65536, cid)), subAck(cid, 60000))
		expectBytes(t, "commits are per topic", c.control(codeSubscribe, subscribePayload(myEvents.ID, 0, 65536, cid)), subAck(cid, 0))
		expectBytes(t, "subscribe with trailing bytes", c.control(codeSubscribe, append(subscribePayload(st, 5, 1, cid), 1, 2)), subAck(cid, 5))
		// Topic 0 is not checked by Subscribe (lwp.md §11).
		expectBytes(t, "subscribe to topic 0", c.control(codeSubscribe, subscribePayload(0, 1000, 1, cid)), subAck(cid, 1000))

		expectError(t, d, "subscribe, 23 bytes", c.control(codeSubscribe, subscribePayload(st, 0, 1, cid)[:23]), "Invalid subscribe payload")
		expectError(t, d, "subscribe, unknown topic", c.control(codeSubscribe, subscribePayload(999, 0, 1, cid)), "Topic not found")
		expectError(t, d, "commit, 19 bytes", c.control(codeCommitOffset, commitPayload(st, cid, 1)[:19]), "Invalid commit offset payload")
		expectError(t, d, "commit, unknown topic", c.control(codeCommitOffset, commitPayload(999, cid, 1)), "Topic not found")
		expectError(t, d, "commit, topic 0", c.control(codeCommitOffset, commitPayload(0, cid, 1)), "Topic not found")
	})

	t.Run("Unsubscribe", func(t *testing.T) {
		c := s.dialT(t, d)
		const cid = 0xCAFEBABE00000001
		c.control(codeSubscribe, subscribePayload(myEvents.ID, 0, 1, cid))
		expectBytes(t, "unsubscribe", c.control(codeUnsubscribe, unsubscribePayload(myEvents.ID, cid)), ackFrame(d, cid))
		expectBytes(t, "unsubscribe, not subscribed", c.control(codeUnsubscribe, unsubscribePayload(myEvents.ID, 5)), ackFrame(d, 5))
		expectBytes(t, "unsubscribe, unknown topic", c.control(codeUnsubscribe, unsubscribePayload(999, 6)), ackFrame(d, 6))
		expectError(t, d, "unsubscribe, 11 bytes", c.control(codeUnsubscribe, unsubscribePayload(1, cid)[:11]), "Invalid unsubscribe payload")
	})

	t.Run("IngestErrors", func(t *testing.T) {
		c := s.dialT(t, d)
		expectError(t, d, "empty payload", c.call(ingestFrame(d, batch{Topic: myEvents.ID, ID: 1})), "Invalid data: empty ingest payload")
		expectError(t, d, "topic 0", c.call(ingestFrame(d, batch{Topic: 0, ID: 2, Data: []byte("x")})), "Unknown topic")
		expectError(t, d, "unknown topic", c.call(ingestFrame(d, batch{Topic: 999, ID: 3, Data: []byte("x")})), "Unknown topic")
		expectBytes(t, "keepalive afterwards", c.call(keepaliveFrame(d)), keepaliveFrame(d))
		if end := logEnd(t, c, myEvents.ID); end != 0 {
			t.Errorf("refused ingests left %d bytes in my-events", end)
		}
	})

	t.Run("Keepalive", func(t *testing.T) {
		c := s.dialT(t, d)
		expectBytes(t, "keepalive", c.call(keepaliveFrame(d)), keepaliveFrame(d))
		// The reply is a fresh keepalive whatever the request carried.
		odd := encode(d, frame{Flags: flagKeepalive, BatchID: 77, TimestampNS: 5, RecordCount: 3, TopicID: 9, Payload: []byte("abc")})
		expectBytes(t, "keepalive with odd fields", c.call(odd), keepaliveFrame(d))
	})

	t.Run("FrameClasses", func(t *testing.T) {
		c := s.dialT(t, d)
		ct := createTopic(t, c, "classes").ID
		var log []byte
		// Flags 0 with a payload is an ingest.
		expectBytes(t, "flags 0 with payload", c.call(encode(d, frame{Flags: 0, BatchID: 11, TopicID: ct, Payload: []byte("plain")})), ackFrame(d, 11))
		log = append(log, "plain"...)
		// The compressed flag is informational; the bytes are kept as sent.
		expectBytes(t, "compressed flag", c.call(encode(d, frame{Flags: flagBatch | flagCompressed, BatchID: 12, TopicID: ct, Payload: []byte("\x01zz")})), ackFrame(d, 12))
		log = append(log, "\x01zz"...)
		// Flag bit 7 and reserved bits other than the ack-offset bit are
		// not checked, and ask for nothing.
		expectBytes(t, "flag bit 7", c.call(encode(d, frame{Flags: flagBatch | 0x80, BatchID: 13, TopicID: ct, Payload: []byte("b7")})), ackFrame(d, 13))
		log = append(log, "b7"...)
		expectBytes(t, "reserved 0x0100", c.call(encode(d, frame{Flags: flagBatch, Reserved: 0x0100, BatchID: 14, TopicID: ct, Payload: []byte("r")})), ackFrame(d, 14))
		log = append(log, "r"...)
		off := uint64(len(log))
		expectBytes(t, "ack-offset bit", c.call(ingestFrame(d, batch{Topic: ct, ID: 15, Data: []byte("off"), AckOffset: true})), ackOffsetFrame(d, 15, off))
		log = append(log, "off"...)
		// Control wins over every other bit.
		p, ok := expectControl(t, "flags 0x48", c.call(encode(d, frame{Flags: flagControl | flagAck, BatchID: codeListTopics})), codeTopicResponse)
		if ok {
			expectKeys(t, "flags 0x48", decodeJSON(t, "flags 0x48", p), "topics")
		}
		expectBytes(t, "flags 0x60 is control", c.call(encode(d, frame{Flags: flagControl | flagKeepalive, BatchID: codeFetch, Payload: fetchPayload(ct, 0, 5)})),
			controlFrame(d, codeFetchResponse, fetchResponsePayload(5, log[:5])))
		// Keepalive wins over ack and ingest.
		expectBytes(t, "flags 0x24 is keepalive", c.call(encode(d, frame{Flags: flagKeepalive | flagBatch, TopicID: ct, Payload: []byte("no")})), keepaliveFrame(d))
		// Client-sent acks, backpressure and frames of no kind get no
		// reply: the keepalive behind them is answered first.
		c.send(ackFrame(d, 5), encode(d, frame{Flags: flagBackpressure}), encode(d, frame{Flags: 0}),
			encode(d, frame{Flags: 0x02}), encode(d, frame{Flags: flagAck | flagBatch, TopicID: ct, Payload: []byte("ack-bit")}), keepaliveFrame(d))
		expectBytes(t, "keepalive behind unanswered frames", c.recv(), keepaliveFrame(d))
		if got := readLog(t, c, ct, 0, logEnd(t, c, ct), 1<<20); !bytes.Equal(got, log) {
			t.Errorf("topic holds %q, want %q", got, log)
		}
	})

	t.Run("PipelinedMix", func(t *testing.T) {
		// One write holding requests of every kind: exactly one reply per
		// request that gets one, in request order.
		c := s.dialT(t, d)
		mt := createTopic(t, c, "mixed").ID
		c.send(
			ingestFrame(d, batch{Topic: mt, ID: 100, Data: []byte("first")}),
			keepaliveFrame(d),
			controlFrame(d, codeGetTopic, topicIDPayload(mt)),
			ingestFrame(d, batch{Topic: 999, ID: 101, Data: []byte("lost")}),
			ingestFrame(d, batch{Topic: mt, ID: 102}),
			controlFrame(d, codeFetch, fetchPayload(mt, 0, 1000)),
			ingestFrame(d, batch{Topic: mt, ID: 103, Data: []byte("second"), AckOffset: true}),
			ackFrame(d, 1), // no reply
			controlFrame(d, codeUnsubscribe, unsubscribePayload(mt, 42)),
			controlFrame(d, 0x7F, nil),
			ingestFrame(d, batch{Topic: mt, ID: 104, Data: []byte("third")}),
			keepaliveFrame(d),
		)
		expectBytes(t, "reply 1", c.recv(), ackFrame(d, 100))
		expectBytes(t, "reply 2", c.recv(), keepaliveFrame(d))
		if p, ok := expectControl(t, "reply 3", c.recv(), codeTopicResponse); ok {
			if ti := parseTopic(t, "reply 3", decodeJSON(t, "reply 3", p)); ti.ID != mt {
				t.Errorf("reply 3: %+v", ti)
			}
		}
		expectError(t, d, "reply 4", c.recv(), "Unknown topic")
		expectError(t, d, "reply 5", c.recv(), "Invalid data: empty ingest payload")
		if p, ok := expectControl(t, "reply 6", c.recv(), codeFetchResponse); ok {
			r, err := decodeFetchReply(p)
			// It runs after the first ack, so it sees at least "first";
			// later batches may be visible too.
			if err != nil || !bytes.HasPrefix([]byte("firstsecondthird"), r.Data) || len(r.Data) < 5 || r.Next != uint64(len(r.Data)) {
				t.Errorf("reply 6: %+v %v", r, err)
			}
		}
		expectBytes(t, "reply 7", c.recv(), ackOffsetFrame(d, 103, 5))
		expectBytes(t, "reply 8", c.recv(), ackFrame(d, 42))
		expectError(t, d, "reply 9", c.recv(), "Invalid client command")
		expectBytes(t, "reply 10", c.recv(), ackFrame(d, 104))
		expectBytes(t, "reply 11", c.recv(), keepaliveFrame(d))
		if got := readLog(t, c, mt, 0, logEnd(t, c, mt), 4); string(got) != "firstsecondthird" {
			t.Errorf("topic holds %q", got)
		}
	})
}

func itoa(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

func hex2(v uint64) string { return fmt.Sprintf("0x%02X", v) }
