package control

import "fmt"

// Code is the command or response code of a control frame. On the wire it
// is the low byte of the header's batch_id; the other seven bytes are zero
// when the reference writes a frame and ignored when it reads one.
type Code uint8

// The codes of the reference implementation. C→S marks a request a client
// sends; S→C a reply only a server sends.
const (
	CodeCreateTopic              Code = 0x01 // C→S: topic name
	CodeDeleteTopic              Code = 0x02 // C→S: topic_id u32
	CodeListTopics               Code = 0x03 // C→S: no payload
	CodeGetTopic                 Code = 0x04 // C→S: topic_id u32
	CodeSetRetention             Code = 0x05 // C→S: topic_id, max_age_secs, max_bytes
	CodeCreateTopicWithRetention Code = 0x06 // C→S: name_len u16, name, retention
	CodeGetClusterStatus         Code = 0x07 // C→S: no payload
	CodeAuthenticate             Code = 0x08 // C→S: token
	CodeAuthenticateResponse     Code = 0x09 // S→C: success u8, message
	CodeFetch                    Code = 0x10 // C→S: topic_id, start_offset, max_bytes
	CodeFetchResponse            Code = 0x11 // S→C: 16-byte header, then data
	CodeCatchingUp               Code = 0x12 // S→C: current end offset u64
	CodeSubscribe                Code = 0x20 // C→S: topic, offset, batch size, consumer
	CodeUnsubscribe              Code = 0x21 // C→S: topic_id, consumer_id
	CodeCommitOffset             Code = 0x22 // C→S: topic_id, consumer_id, offset
	CodeSubscribeAck             Code = 0x23 // S→C: consumer_id, start_offset
	CodeCommitAck                Code = 0x24 // S→C: consumer_id, committed offset
	CodeTopicResponse            Code = 0x80 // S→C: JSON
	CodeClusterStatusResponse    Code = 0x81 // S→C: JSON
	CodeErrorResponse            Code = 0xFF // S→C: UTF-8 text
)

// CodeFromBatchID extracts the control code from a header's batch_id. Only
// the low byte counts, as in the reference server: 0x0101 reads as
// CodeCreateTopic.
func CodeFromBatchID(batchID uint64) Code { return Code(batchID) }

// codeNames is indexed by code; an empty entry means "not defined".
var codeNames = [256]string{
	CodeCreateTopic:              "CreateTopic",
	CodeDeleteTopic:              "DeleteTopic",
	CodeListTopics:               "ListTopics",
	CodeGetTopic:                 "GetTopic",
	CodeSetRetention:             "SetRetention",
	CodeCreateTopicWithRetention: "CreateTopicWithRetention",
	CodeGetClusterStatus:         "GetClusterStatus",
	CodeAuthenticate:             "Authenticate",
	CodeAuthenticateResponse:     "AuthenticateResponse",
	CodeFetch:                    "Fetch",
	CodeFetchResponse:            "FetchResponse",
	CodeCatchingUp:               "CatchingUp",
	CodeSubscribe:                "Subscribe",
	CodeUnsubscribe:              "Unsubscribe",
	CodeCommitOffset:             "CommitOffset",
	CodeSubscribeAck:             "SubscribeAck",
	CodeCommitAck:                "CommitAck",
	CodeTopicResponse:            "TopicResponse",
	CodeClusterStatusResponse:    "ClusterStatusResponse",
	CodeErrorResponse:            "ErrorResponse",
}

// String returns the reference name of c, such as "CreateTopic", or
// "Code(0x0a)" for a code the protocol does not define.
func (c Code) String() string {
	if s := codeNames[c]; s != "" {
		return s
	}
	return fmt.Sprintf("Code(0x%02x)", uint8(c))
}

// Known reports whether c is one of the codes defined above.
func (c Code) Known() bool {
	return codeNames[c] != ""
}

// IsClientRequest reports whether c is a request a server should act on.
// Every other code, known or not, is answered with the ErrorResponse text
// InvalidClientCommand; the one exception in the reference is
// CodeAuthenticateResponse, which a server answers with
// AuthHandledAtConnectionLevel instead.
func (c Code) IsClientRequest() bool {
	switch c {
	case CodeCreateTopic, CodeDeleteTopic, CodeListTopics, CodeGetTopic,
		CodeSetRetention, CodeCreateTopicWithRetention, CodeGetClusterStatus,
		CodeAuthenticate, CodeFetch, CodeSubscribe, CodeUnsubscribe,
		CodeCommitOffset:
		return true
	}
	return false
}
