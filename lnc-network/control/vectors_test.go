package control

import (
	"bytes"
	"hash/crc32"
	"reflect"
	"testing"
)

// The vectors of the LWP digest §19. Each one is encoded, compared byte for
// byte, decoded back and compared by value. Where the digest gives the
// payload's CRC-32/IEEE, it is checked too, which ties the payload bytes
// to the whole frames printed there.

func vector[T any](t *testing.T, name string, v T, encode func(T, []byte) []byte,
	decode func([]byte) (T, error), want []byte, wantCRC uint32) {
	t.Helper()
	got := encode(v, nil)
	if !bytes.Equal(got, want) {
		t.Errorf("%s: encoded\n %x\nwant\n %x", name, got, want)
	}
	back, err := decode(want)
	if err != nil {
		t.Errorf("%s: decode: %v", name, err)
	} else if !reflect.DeepEqual(back, v) {
		t.Errorf("%s: decoded %#v, want %#v", name, back, v)
	}
	if wantCRC != 0 {
		if c := crc32.ChecksumIEEE(want); c != wantCRC {
			t.Errorf("%s: payload CRC-32/IEEE %#08x, want %#08x", name, c, wantCRC)
		}
	}
}

func TestVectorCreateTopic(t *testing.T) { // §19.3 request
	vector(t, "CreateTopic", CreateTopic{Name: "my-events"}, appender[CreateTopic], DecodeCreateTopic,
		unhex(t, "6D 79 2D 65 76 65 6E 74 73"), 0xB4155653)
}

func TestVectorTopicResponse(t *testing.T) { // §19.3 response
	want := []byte(`{"created_at":1706918400,"id":1,"name":"my-events","topic_epoch":1}`)
	if len(want) != 67 {
		t.Fatalf("vector is %d bytes, the digest says 67", len(want))
	}
	vector(t, "Topic", Topic{ID: 1, Name: "my-events", CreatedAt: 1706918400, TopicEpoch: 1},
		appender[Topic], DecodeTopic, want, 0xF5C6736A)
	if !bytes.HasPrefix(want, unhex(t, "7B 22 63 72 65 61 74 65 64 5F 61 74 22 3A")) {
		t.Error("the vector does not start with the bytes the digest prints")
	}
}

func TestVectorFetch(t *testing.T) { // §19.5 request
	vector(t, "Fetch", Fetch{TopicID: 1, StartOffset: 0, MaxBytes: 65536}, appender[Fetch], DecodeFetch,
		unhex(t, "01000000 0000000000000000 00000100"), 0x5BC8EB85)
}

func TestVectorFetchResponse(t *testing.T) { // §19.5 response
	tlv := unhex(t, "01 05 00 00 00 68 65 6C 6C 6F 01 05 00 00 00 77 6F 72 6C 64")
	want := append(unhex(t, "14 00 00 00 00 00 00 00  14 00 00 00  01 00 00 00"), tlv...)
	if len(want) != 36 {
		t.Fatalf("vector is %d bytes, the digest says 36", len(want))
	}
	v := FetchResponse{NextOffset: 20, RecordCount: ReferenceRecordCount(len(tlv)), Data: tlv}
	vector(t, "FetchResponse", v, appender[FetchResponse], DecodeFetchResponse, want, 0xD213FEBC)

	hdr := AppendFetchResponseHeader(nil, 20, 20, 1)
	if !bytes.Equal(hdr, want[:16]) {
		t.Errorf("AppendFetchResponseHeader = %x, want %x", hdr, want[:16])
	}
}

func TestVectorErrorResponse(t *testing.T) { // §19.6
	want := unhex(t, "54 6F 70 69 63 20 6E 6F 74 20 66 6F 75 6E 64")
	vector(t, "ErrorResponse", TopicNotFound, func(s string, dst []byte) []byte { return AppendError(dst, s) },
		DecodeError, want, 0x945655D9)
}

func TestVectorsOtherRequests(t *testing.T) { // §19.7
	vector(t, "SetRetention", SetRetention{TopicID: 1, MaxAgeSecs: 86400, MaxBytes: 1 << 30},
		appender[SetRetention], DecodeSetRetention,
		unhex(t, "01000000 8051010000000000 0000004000000000"), 0)
	vector(t, "CreateTopicWithRetention", CreateTopicWithRetention{Name: "events", MaxAgeSecs: 86400},
		ctwrAppend, DecodeCreateTopicWithRetention,
		unhex(t, "0600 6576656E7473 8051010000000000 0000000000000000"), 0)
	vector(t, "Subscribe", Subscribe{TopicID: 42, StartOffset: 1000, MaxBatchBytes: 65536, ConsumerID: 0xDEADBEEF12345678},
		appender[Subscribe], DecodeSubscribe,
		unhex(t, "2A000000 E803000000000000 00000100 78563412EFBEADDE"), 0)
	vector(t, "Unsubscribe", Unsubscribe{TopicID: 7, ConsumerID: 0xCAFEBABE00000001},
		appender[Unsubscribe], DecodeUnsubscribe,
		unhex(t, "07000000 01000000BEBAFECA"), 0)
	vector(t, "CommitOffset", CommitOffset{TopicID: 99, ConsumerID: 0x1234567890ABCDEF, Offset: 50000},
		appender[CommitOffset], DecodeCommitOffset,
		unhex(t, "63000000 EFCDAB9078563412 50C3000000000000"), 0)
	vector(t, "CatchingUp", CatchingUp{EndOffset: 42}, appender[CatchingUp], DecodeCatchingUp,
		unhex(t, "2A00000000000000"), 0)
	vector(t, "AuthenticateResponse", AuthenticateResponse{Success: true, Message: AuthReplyOK},
		appender[AuthenticateResponse], DecodeAuthenticateResponse,
		unhex(t, "01 41 75 74 68 65 6E 74 69 63 61 74 65 64"), 0)
}

func TestVectorAcks(t *testing.T) { // §19.7: consumer_id u64 | offset u64
	want := unhex(t, "78563412EFBEADDE E803000000000000")
	vector(t, "SubscribeAck", SubscribeAck{ConsumerID: 0xDEADBEEF12345678, StartOffset: 1000},
		appender[SubscribeAck], DecodeSubscribeAck, want, 0)
	vector(t, "CommitAck", CommitAck{ConsumerID: 0xDEADBEEF12345678, CommittedOffset: 1000},
		appender[CommitAck], DecodeCommitAck, want, 0)
}

func TestVectorStandaloneClusterStatus(t *testing.T) { // §6.3
	want := []byte(`{"current_term":0,"healthy_nodes":1,"is_leader":true,"leader_id":0,"mode":"standalone","node_count":1,"node_id":0,"peer_states":{},"quorum_available":true}`)
	vector(t, "ClusterStatus", StandaloneClusterStatus(), appender[ClusterStatus], DecodeClusterStatus, want, 0)
}

// ctwrAppend adapts CreateTopicWithRetention.AppendTo, whose names in
// tests always fit, to the shape of the other encoders.
func ctwrAppend(v CreateTopicWithRetention, dst []byte) []byte {
	out, err := v.AppendTo(dst)
	if err != nil {
		panic(err)
	}
	return out
}
