package control

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// The codecs under fuzzing. Each canonical function states which inputs
// must re-encode to exactly the bytes they were decoded from.
var (
	deleteTopicCodec = codec[DeleteTopic]{"DeleteTopic", DecodeDeleteTopic, appender[DeleteTopic], topicIDCanonical[DeleteTopic]}
	getTopicCodec    = codec[GetTopic]{"GetTopic", DecodeGetTopic, appender[GetTopic], topicIDCanonical[GetTopic]}
	createTopicCodec = codec[CreateTopic]{"CreateTopic", DecodeCreateTopic, appender[CreateTopic], wholeIfUTF8[CreateTopic]}
	setRetentionCode = codec[SetRetention]{"SetRetention", DecodeSetRetention, appender[SetRetention], fixed[SetRetention](SetRetentionSize)}
	ctwrCodec        = codec[CreateTopicWithRetention]{"CreateTopicWithRetention", DecodeCreateTopicWithRetention, ctwrAppend,
		func(v CreateTopicWithRetention, p []byte) int {
			n := int(le.Uint16(p))
			if !utf8.Valid(p[2 : 2+n]) {
				return -1 // the name was repaired
			}
			return v.Len()
		}}
	fetchCodec         = codec[Fetch]{"Fetch", DecodeFetch, appender[Fetch], fixed[Fetch](FetchSize)}
	fetchResponseCodec = codec[FetchResponse]{"FetchResponse", DecodeFetchResponse, appender[FetchResponse],
		func(v FetchResponse, _ []byte) int { return FetchResponseHeaderSize + len(v.Data) }}
	subscribeCodec      = codec[Subscribe]{"Subscribe", DecodeSubscribe, appender[Subscribe], fixed[Subscribe](SubscribeSize)}
	unsubscribeCodec    = codec[Unsubscribe]{"Unsubscribe", DecodeUnsubscribe, appender[Unsubscribe], fixed[Unsubscribe](UnsubscribeSize)}
	commitOffsetCodec   = codec[CommitOffset]{"CommitOffset", DecodeCommitOffset, appender[CommitOffset], fixed[CommitOffset](CommitOffsetSize)}
	subscribeAckCodec   = codec[SubscribeAck]{"SubscribeAck", DecodeSubscribeAck, appender[SubscribeAck], fixed[SubscribeAck](AckSize)}
	commitAckCodec      = codec[CommitAck]{"CommitAck", DecodeCommitAck, appender[CommitAck], fixed[CommitAck](AckSize)}
	catchingUpCodec     = codec[CatchingUp]{"CatchingUp", DecodeCatchingUp, appender[CatchingUp], fixed[CatchingUp](CatchingUpSize)}
	authenticateCodec   = codec[Authenticate]{"Authenticate", DecodeAuthenticate, appender[Authenticate], whole[Authenticate]}
	authResponseCodec   = codec[AuthenticateResponse]{"AuthenticateResponse", DecodeAuthenticateResponse, appender[AuthenticateResponse], whole[AuthenticateResponse]}
	errorResponseCodec  = codec[string]{"ErrorResponse", DecodeError, func(s string, dst []byte) []byte { return AppendError(dst, s) }, wholeIfUTF8[string]}
	topicCodec          = codec[Topic]{"Topic", DecodeTopic, appender[Topic], nil}
	topicDeletedCodec   = codec[TopicDeleted]{"TopicDeleted", DecodeTopicDeleted, appender[TopicDeleted], nil}
	topicListCodec      = codec[TopicList]{"TopicList", DecodeTopicList, appender[TopicList], nil}
	retentionSetCodec   = codec[RetentionSet]{"RetentionSet", DecodeRetentionSet, appender[RetentionSet], nil}
	topicRetentionCodec = codec[TopicWithRetention]{"TopicWithRetention", DecodeTopicWithRetention, appender[TopicWithRetention], nil}
	clusterStatusCodec  = codec[ClusterStatus]{"ClusterStatus", DecodeClusterStatus, appender[ClusterStatus], nil}
)

// topicIDCanonical: a payload of 4 bytes or more is reproduced; a shorter
// one is read as topic 0 and re-encodes to 4 zero bytes instead.
func topicIDCanonical[T any](_ T, p []byte) int {
	if len(p) < TopicIDSize {
		return -1
	}
	return TopicIDSize
}

// wholeIfUTF8: the whole payload is reproduced when it is valid UTF-8;
// invalid text is repaired on decoding, so it cannot come back.
func wholeIfUTF8[T any](_ T, p []byte) int {
	if !utf8.Valid(p) {
		return -1
	}
	return len(p)
}

// whole: every accepted payload is reproduced in full (the decoder rejects
// the inputs it would have to repair).
func whole[T any](_ T, p []byte) int { return len(p) }

func (c codec[T]) check(t *testing.T, p []byte) { checkRoundTrip(t, c, p) }

// fuzz registers the seeds and runs every check on each input.
func fuzz(f *testing.F, seeds [][]byte, checks ...func(*testing.T, []byte)) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		for _, check := range checks {
			check(t, p)
		}
	})
}

// b is a short way to write a seed.
func b(s string) []byte { return []byte(s) }

func FuzzDecodeDeleteTopic(f *testing.F) {
	fuzz(f, [][]byte{nil, b("\x01"), b("\x01\x00\x00\x00"), b("\xff\xff\xff\xff\x00")},
		deleteTopicCodec.check, getTopicCodec.check)
}

func FuzzDecodeCreateTopic(f *testing.F) {
	fuzz(f, [][]byte{b("my-events"), nil, b("ab\xffc"), b("\xe2\x82")}, createTopicCodec.check)
}

func FuzzDecodeSetRetention(f *testing.F) {
	fuzz(f, [][]byte{
		b("\x01\x00\x00\x00\x80\x51\x01\x00\x00\x00\x00\x00\x00\x00\x00\x40\x00\x00\x00\x00"),
		b("\x01\x00\x00"), nil,
	}, setRetentionCode.check)
}

func FuzzDecodeCreateTopicWithRetention(f *testing.F) {
	fuzz(f, [][]byte{
		b("\x06\x00events\x80\x51\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
		b("\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
		b("\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
		b("\x02\x00\xc3\x28\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
	}, ctwrCodec.check)
}

func FuzzDecodeFetch(f *testing.F) {
	fuzz(f, [][]byte{
		b("\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00"),
		b("\x01\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\x01\x00\x00\x00"),
		nil, b("\x01"),
	}, fetchCodec.check)
}

func FuzzDecodeFetchResponse(f *testing.F) {
	fuzz(f, [][]byte{
		b("\x14\x00\x00\x00\x00\x00\x00\x00\x14\x00\x00\x00\x01\x00\x00\x00" +
			"\x01\x05\x00\x00\x00hello\x01\x05\x00\x00\x00world"),
		b("\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
		b("\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff\x00\x00\x00\x00"),
	}, fetchResponseCodec.check)
}

func FuzzDecodeSubscribe(f *testing.F) {
	fuzz(f, [][]byte{
		b("\x2a\x00\x00\x00\xe8\x03\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x78\x56\x34\x12\xef\xbe\xad\xde"),
		b("\x2a"),
	}, subscribeCodec.check)
}

func FuzzDecodeUnsubscribe(f *testing.F) {
	fuzz(f, [][]byte{b("\x07\x00\x00\x00\x01\x00\x00\x00\xbe\xba\xfe\xca"), b("\x07")}, unsubscribeCodec.check)
}

func FuzzDecodeCommitOffset(f *testing.F) {
	fuzz(f, [][]byte{
		b("\x63\x00\x00\x00\xef\xcd\xab\x90\x78\x56\x34\x12\x50\xc3\x00\x00\x00\x00\x00\x00"),
		b("\x63\x00"),
	}, commitOffsetCodec.check)
}

func FuzzDecodeAck(f *testing.F) {
	fuzz(f, [][]byte{b("\x78\x56\x34\x12\xef\xbe\xad\xde\xe8\x03\x00\x00\x00\x00\x00\x00"), b("\x78")},
		subscribeAckCodec.check, commitAckCodec.check)
}

func FuzzDecodeCatchingUp(f *testing.F) {
	fuzz(f, [][]byte{b("\x2a\x00\x00\x00\x00\x00\x00\x00"), b("\x2a")}, catchingUpCodec.check)
}

func FuzzDecodeAuthenticate(f *testing.F) {
	fuzz(f, [][]byte{b("token"), nil, b("tok\xff")}, authenticateCodec.check)
}

func FuzzDecodeAuthenticateResponse(f *testing.F) {
	fuzz(f, [][]byte{b("\x01Authenticated"), b("\x00Invalid token"), b("\x02"), nil, b("\x00\xff")},
		authResponseCodec.check)
}

func FuzzDecodeError(f *testing.F) {
	fuzz(f, [][]byte{b("Topic not found"), b("NOT_LEADER: redirect to 10.0.0.2:1992"), b("\xe2\x82A")},
		errorResponseCodec.check,
		func(t *testing.T, p []byte) {
			// The text parsers must not panic either.
			s, _ := DecodeError(p)
			if addr, ok := ParseNotLeader(s); ok && (!IsNotLeader(s) || addr == "" || !strings.Contains(s, addr)) {
				t.Fatalf("ParseNotLeader(%q) = %q", s, addr)
			}
			if IsForwardFailed(s) != strings.Contains(s, "FORWARD_FAILED") {
				t.Fatalf("IsForwardFailed(%q) is wrong", s)
			}
		})
}

func FuzzDecodeTopicJSON(f *testing.F) {
	fuzz(f, [][]byte{
		b(`{"created_at":1706918400,"id":1,"name":"my-events","topic_epoch":1}`),
		b(`{"deleted":7}`),
		b(`{"topics":[{"id":1,"name":"a","created_at":10,"topic_epoch":1}]}`),
		b(`{"topics":[]}`),
		b(`{"max_age_secs":86400,"max_bytes":1073741824,"topic_id":1}`),
		b(`{"created_at":1,"id":3,"max_age_secs":86400,"max_bytes":0,"name":"events","topic_epoch":1}`),
		b(`{"current_term":0,"healthy_nodes":1,"is_leader":true,"leader_id":0,"mode":"standalone","node_count":1,"node_id":0,"peer_states":{},"quorum_available":true}`),
		b(`{"leader_id":null,"peer_states":{"2":"Follower"}}`),
		b(`{"id":1,"ID":2,"id":3}`),
	},
		topicCodec.check, topicDeletedCodec.check, topicListCodec.check,
		retentionSetCodec.check, topicRetentionCodec.check, clusterStatusCodec.check)
}

// FuzzValidateTopicName checks the name rule against a plain restatement
// and that no name makes it panic.
func FuzzValidateTopicName(f *testing.F) {
	for _, s := range []string{"my-events", "", "a b", "é", "a_b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidateTopicName(name)
		valid := name != "" && len(name) <= MaxTopicNameLen
		for _, r := range name {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				valid = false
			}
		}
		if (err == nil) != valid {
			t.Fatalf("ValidateTopicName(%q) = %v, want valid=%v", name, err, valid)
		}
		if err != nil {
			if text, ok := ReplyText(err); !ok || text != err.Error() {
				t.Fatalf("ReplyText = %q, %v; Error() = %q", text, ok, err)
			}
		}
	})
}
