package control

import (
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"
)

// Payload sizes. A decoder rejects a payload shorter than its size and
// ignores the bytes after it.
const (
	TopicIDSize                     = 4  // DeleteTopic, GetTopic
	SetRetentionSize                = 20 // SetRetention
	CreateTopicWithRetentionMinSize = 18 // CreateTopicWithRetention with an empty name
	FetchSize                       = 16 // Fetch
	SubscribeSize                   = 24 // Subscribe
	UnsubscribeSize                 = 12 // Unsubscribe
	CommitOffsetSize                = 20 // CommitOffset
	FetchResponseHeaderSize         = 16 // FetchResponse, before the data
	CatchingUpSize                  = 8  // CatchingUp
	AckSize                         = 16 // SubscribeAck, CommitAck
)

// TailOffset is the Fetch start offset that asks for the end of the log:
// the server answers with an empty FetchResponse whose next_offset is the
// current end. (Subscribe echoes it back unchanged instead.)
const TailOffset = math.MaxUint64

var le = binary.LittleEndian

// DeleteTopic is the payload of a DeleteTopic (0x02) request.
type DeleteTopic struct {
	TopicID uint32
}

// AppendTo appends the 4-byte payload to dst.
func (m DeleteTopic) AppendTo(dst []byte) []byte { return le.AppendUint32(dst, m.TopicID) }

// DecodeDeleteTopic decodes a DeleteTopic payload. Like the reference
// server it never fails: a payload shorter than 4 bytes, empty included,
// is read as topic 0 (which a server then reports as not found). The error
// is always nil; it is there so that all decoders look alike.
func DecodeDeleteTopic(p []byte) (DeleteTopic, error) {
	return DeleteTopic{TopicID: topicIDOrZero(p)}, nil
}

// GetTopic is the payload of a GetTopic (0x04) request.
type GetTopic struct {
	TopicID uint32
}

// AppendTo appends the 4-byte payload to dst.
func (m GetTopic) AppendTo(dst []byte) []byte { return le.AppendUint32(dst, m.TopicID) }

// DecodeGetTopic decodes a GetTopic payload with the same quirk as
// DecodeDeleteTopic: shorter than 4 bytes reads as topic 0, and the error
// is always nil.
func DecodeGetTopic(p []byte) (GetTopic, error) {
	return GetTopic{TopicID: topicIDOrZero(p)}, nil
}

func topicIDOrZero(p []byte) uint32 {
	if len(p) < TopicIDSize {
		return 0
	}
	return le.Uint32(p)
}

// CreateTopic is the payload of a CreateTopic (0x01) request: the bare
// name, without length or terminator.
type CreateTopic struct {
	Name string
}

// AppendTo appends the name to dst. It does not validate it.
func (m CreateTopic) AppendTo(dst []byte) []byte { return append(dst, m.Name...) }

// DecodeCreateTopic decodes a CreateTopic payload. The whole payload is the
// name; invalid UTF-8 is repaired the way the reference server does it
// (see DecodeError), so that ValidateTopicName then rejects the name with
// the same text. An empty payload fails with ErrShortPayload and the text
// TopicNameRequired. The name is not validated: call ValidateTopicName.
func DecodeCreateTopic(p []byte) (CreateTopic, error) {
	if len(p) == 0 {
		return CreateTopic{}, shortPayload(CodeCreateTopic, 1, 0, TopicNameRequired)
	}
	return CreateTopic{Name: lossyString(p)}, nil
}

// SetRetention is the payload of a SetRetention (0x05) request. Zero means
// "no limit" for both limits.
type SetRetention struct {
	TopicID    uint32
	MaxAgeSecs uint64
	MaxBytes   uint64
}

// AppendTo appends the 20-byte payload to dst.
func (m SetRetention) AppendTo(dst []byte) []byte {
	dst = le.AppendUint32(dst, m.TopicID)
	dst = le.AppendUint64(dst, m.MaxAgeSecs)
	return le.AppendUint64(dst, m.MaxBytes)
}

// DecodeSetRetention decodes a SetRetention payload. Fewer than 20 bytes
// fail with ErrShortPayload and the text InvalidSetRetentionPayload.
func DecodeSetRetention(p []byte) (SetRetention, error) {
	if len(p) < SetRetentionSize {
		return SetRetention{}, shortPayload(CodeSetRetention, SetRetentionSize, len(p), InvalidSetRetentionPayload)
	}
	return SetRetention{
		TopicID:    le.Uint32(p),
		MaxAgeSecs: le.Uint64(p[4:]),
		MaxBytes:   le.Uint64(p[12:]),
	}, nil
}

// CreateTopicWithRetention is the payload of a CreateTopicWithRetention
// (0x06) request: name_len u16, name, max_age_secs u64, max_bytes u64.
type CreateTopicWithRetention struct {
	Name       string
	MaxAgeSecs uint64
	MaxBytes   uint64
}

// AppendTo appends the payload to dst. Unlike the other encoders it can
// fail: a name longer than 65535 bytes does not fit name_len, and then
// AppendTo returns dst unchanged and an error matching ErrTopicNameTooLong.
// It does not otherwise validate the name.
func (m CreateTopicWithRetention) AppendTo(dst []byte) ([]byte, error) {
	if len(m.Name) > math.MaxUint16 {
		return dst, fmt.Errorf("%w: %d bytes do not fit the u16 name_len of CreateTopicWithRetention",
			ErrTopicNameTooLong, len(m.Name))
	}
	dst = le.AppendUint16(dst, uint16(len(m.Name)))
	dst = append(dst, m.Name...)
	dst = le.AppendUint64(dst, m.MaxAgeSecs)
	return le.AppendUint64(dst, m.MaxBytes), nil
}

// Len returns the encoded length, 18 plus the length of the name.
func (m CreateTopicWithRetention) Len() int { return CreateTopicWithRetentionMinSize + len(m.Name) }

// DecodeCreateTopicWithRetention decodes a CreateTopicWithRetention
// payload. Fewer than 18 bytes fail with the text InvalidCreateTopicPayload,
// fewer than 2+name_len+16 with InvalidPayloadLength; both match
// ErrShortPayload. The name is decoded like DecodeCreateTopic's and not
// validated; an empty name is returned as such.
func DecodeCreateTopicWithRetention(p []byte) (CreateTopicWithRetention, error) {
	if len(p) < CreateTopicWithRetentionMinSize {
		return CreateTopicWithRetention{}, shortPayload(CodeCreateTopicWithRetention,
			CreateTopicWithRetentionMinSize, len(p), InvalidCreateTopicPayload)
	}
	n := int(le.Uint16(p))
	if need := CreateTopicWithRetentionMinSize + n; len(p) < need {
		return CreateTopicWithRetention{}, shortPayload(CodeCreateTopicWithRetention,
			need, len(p), InvalidPayloadLength)
	}
	r := p[2+n:]
	return CreateTopicWithRetention{
		Name:       lossyString(p[2 : 2+n]),
		MaxAgeSecs: le.Uint64(r),
		MaxBytes:   le.Uint64(r[8:]),
	}, nil
}

// Fetch is the payload of a Fetch (0x10) request.
type Fetch struct {
	TopicID uint32
	// StartOffset is a byte offset into the topic's log, or TailOffset.
	StartOffset uint64
	// MaxBytes caps the data returned. A server should clamp it to
	// MaxFetchData so that the reply fits the Rust client's frame limit.
	MaxBytes uint32
}

// AppendTo appends the 16-byte payload to dst.
func (m Fetch) AppendTo(dst []byte) []byte {
	dst = le.AppendUint32(dst, m.TopicID)
	dst = le.AppendUint64(dst, m.StartOffset)
	return le.AppendUint32(dst, m.MaxBytes)
}

// IsTail reports whether the request asks for the end of the log.
func (m Fetch) IsTail() bool { return m.StartOffset == TailOffset }

// DecodeFetch decodes a Fetch payload. It does not allocate unless it
// fails. An empty payload fails with the text FetchPayloadRequired, one of
// 1 to 15 bytes with FetchPayloadTooSmall; both match ErrShortPayload.
func DecodeFetch(p []byte) (Fetch, error) {
	if len(p) < FetchSize {
		text := FetchPayloadTooSmall
		if len(p) == 0 {
			text = FetchPayloadRequired
		}
		return Fetch{}, shortPayload(CodeFetch, FetchSize, len(p), text)
	}
	return Fetch{
		TopicID:     le.Uint32(p),
		StartOffset: le.Uint64(p[4:]),
		MaxBytes:    le.Uint32(p[12:]),
	}, nil
}

// Subscribe is the payload of a Subscribe (0x20) request.
type Subscribe struct {
	TopicID uint32
	// StartOffset 0 means "resume from the committed offset, if any";
	// TailOffset is echoed back unresolved.
	StartOffset   uint64
	MaxBatchBytes uint32
	ConsumerID    uint64
}

// AppendTo appends the 24-byte payload to dst.
func (m Subscribe) AppendTo(dst []byte) []byte {
	dst = le.AppendUint32(dst, m.TopicID)
	dst = le.AppendUint64(dst, m.StartOffset)
	dst = le.AppendUint32(dst, m.MaxBatchBytes)
	return le.AppendUint64(dst, m.ConsumerID)
}

// DecodeSubscribe decodes a Subscribe payload. Fewer than 24 bytes fail
// with ErrShortPayload and the text InvalidSubscribePayload.
func DecodeSubscribe(p []byte) (Subscribe, error) {
	if len(p) < SubscribeSize {
		return Subscribe{}, shortPayload(CodeSubscribe, SubscribeSize, len(p), InvalidSubscribePayload)
	}
	return Subscribe{
		TopicID:       le.Uint32(p),
		StartOffset:   le.Uint64(p[4:]),
		MaxBatchBytes: le.Uint32(p[12:]),
		ConsumerID:    le.Uint64(p[16:]),
	}, nil
}

// Unsubscribe is the payload of an Unsubscribe (0x21) request. The
// reference answers it with an Ack frame (flags 0x08) whose batch_id is
// ConsumerID, not with a control frame.
type Unsubscribe struct {
	TopicID    uint32
	ConsumerID uint64
}

// AppendTo appends the 12-byte payload to dst.
func (m Unsubscribe) AppendTo(dst []byte) []byte {
	dst = le.AppendUint32(dst, m.TopicID)
	return le.AppendUint64(dst, m.ConsumerID)
}

// DecodeUnsubscribe decodes an Unsubscribe payload. Fewer than 12 bytes
// fail with ErrShortPayload and the text InvalidUnsubscribePayload.
func DecodeUnsubscribe(p []byte) (Unsubscribe, error) {
	if len(p) < UnsubscribeSize {
		return Unsubscribe{}, shortPayload(CodeUnsubscribe, UnsubscribeSize, len(p), InvalidUnsubscribePayload)
	}
	return Unsubscribe{TopicID: le.Uint32(p), ConsumerID: le.Uint64(p[4:])}, nil
}

// CommitOffset is the payload of a CommitOffset (0x22) request.
type CommitOffset struct {
	TopicID    uint32
	ConsumerID uint64
	Offset     uint64
}

// AppendTo appends the 20-byte payload to dst.
func (m CommitOffset) AppendTo(dst []byte) []byte {
	dst = le.AppendUint32(dst, m.TopicID)
	dst = le.AppendUint64(dst, m.ConsumerID)
	return le.AppendUint64(dst, m.Offset)
}

// DecodeCommitOffset decodes a CommitOffset payload. Fewer than 20 bytes
// fail with ErrShortPayload and the text InvalidCommitOffsetPayload.
func DecodeCommitOffset(p []byte) (CommitOffset, error) {
	if len(p) < CommitOffsetSize {
		return CommitOffset{}, shortPayload(CodeCommitOffset, CommitOffsetSize, len(p), InvalidCommitOffsetPayload)
	}
	return CommitOffset{
		TopicID:    le.Uint32(p),
		ConsumerID: le.Uint64(p[4:]),
		Offset:     le.Uint64(p[12:]),
	}, nil
}

// Authenticate is the payload of an Authenticate (0x08) request: the token,
// as UTF-8, without length or terminator.
type Authenticate struct {
	Token string
}

// AppendTo appends the token to dst.
func (m Authenticate) AppendTo(dst []byte) []byte { return append(dst, m.Token...) }

// DecodeAuthenticate decodes an Authenticate payload. The reference answers
// a bad one with a failed AuthenticateResponse, not an ErrorResponse, so
// the *PayloadError's ReplyCode is CodeAuthenticateResponse (AppendReply
// builds that reply). An empty payload matches ErrShortPayload, with the
// text AuthReplyNoToken; a token that is not valid UTF-8 matches
// ErrMalformed, with the text AuthReplyBadEncoding. The token is taken
// verbatim: no trimming.
func DecodeAuthenticate(p []byte) (Authenticate, error) {
	if len(p) == 0 {
		return Authenticate{}, shortPayload(CodeAuthenticate, 1, 0, AuthReplyNoToken)
	}
	if !utf8.Valid(p) {
		return Authenticate{}, malformed(CodeAuthenticate, len(p), AuthReplyBadEncoding, "token is not valid UTF-8")
	}
	return Authenticate{Token: string(p)}, nil
}
