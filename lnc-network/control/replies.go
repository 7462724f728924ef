package control

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// MaxFetchData is the most data a FetchResponse may carry for the Rust
// client to accept it: that client refuses frames over 16 MiB including
// the 44-byte header, and the FetchResponse header takes 16 more bytes.
const MaxFetchData = 16<<20 - 44 - FetchResponseHeaderSize

// FetchResponse is the payload of a FetchResponse (0x11) reply: next_offset
// u64, bytes_returned u32, record_count u32, then bytes_returned bytes of
// log data. bytes_returned is not a field: it is len(Data).
type FetchResponse struct {
	// NextOffset is the offset to fetch from next: the request's start
	// plus len(Data), or the end of the log for a TailOffset request.
	NextOffset uint64
	// RecordCount is informational only; see ReferenceRecordCount.
	RecordCount uint32
	// Data is the raw byte range of the log. It may end in the middle of
	// a record.
	Data []byte
}

// ReferenceRecordCount is the record_count the reference server writes for
// a reply carrying n bytes of data: 1 when there is any data, else 0. It
// does not count records.
func ReferenceRecordCount(n int) uint32 {
	if n > 0 {
		return 1
	}
	return 0
}

// AppendTo appends the 16-byte header and the data to dst. It panics if
// Data is 4 GiB or longer, which no frame can carry.
func (m FetchResponse) AppendTo(dst []byte) []byte {
	if uint64(len(m.Data)) > math.MaxUint32 {
		panic("control: FetchResponse data of " + strconv.Itoa(len(m.Data)) + " bytes does not fit bytes_returned")
	}
	dst = AppendFetchResponseHeader(dst, m.NextOffset, uint32(len(m.Data)), m.RecordCount)
	return append(dst, m.Data...)
}

// AppendFetchResponseHeader appends only the 16-byte FetchResponse header,
// for a server that sends the n data bytes separately (from a file, say).
// It does not allocate when dst has room for 16 more bytes.
func AppendFetchResponseHeader(dst []byte, next uint64, n, count uint32) []byte {
	dst = le.AppendUint64(dst, next)
	dst = le.AppendUint32(dst, n)
	return le.AppendUint32(dst, count)
}

// DecodeFetchResponse decodes a FetchResponse payload. Data is a subslice
// of p, not a copy. Fewer than 16 bytes match ErrShortPayload; a
// bytes_returned larger than the bytes that follow the header matches
// ErrMalformed. Bytes after the data are ignored. (The Rust client instead
// takes everything after the header as data, whatever bytes_returned says;
// the two agree on everything the reference server sends.)
func DecodeFetchResponse(p []byte) (FetchResponse, error) {
	if len(p) < FetchResponseHeaderSize {
		return FetchResponse{}, shortPayload(CodeFetchResponse, FetchResponseHeaderSize, len(p), "")
	}
	n := le.Uint32(p[8:])
	if uint64(n) > uint64(len(p)-FetchResponseHeaderSize) {
		return FetchResponse{}, malformed(CodeFetchResponse, len(p), "",
			"bytes_returned "+strconv.FormatUint(uint64(n), 10)+" exceeds the "+
				strconv.Itoa(len(p)-FetchResponseHeaderSize)+" bytes after the header")
	}
	end := FetchResponseHeaderSize + int(n)
	return FetchResponse{
		NextOffset:  le.Uint64(p),
		RecordCount: le.Uint32(p[12:]),
		Data:        p[FetchResponseHeaderSize:end:end],
	}, nil
}

// CatchingUp is the payload of a CatchingUp (0x12) reply, which answers a
// Fetch whose start lies past the end of the log.
type CatchingUp struct {
	// EndOffset is the current end of the log.
	EndOffset uint64
}

// AppendTo appends the 8-byte payload to dst.
func (m CatchingUp) AppendTo(dst []byte) []byte { return le.AppendUint64(dst, m.EndOffset) }

// DecodeCatchingUp decodes a CatchingUp payload. Fewer than 8 bytes match
// ErrShortPayload.
func DecodeCatchingUp(p []byte) (CatchingUp, error) {
	if len(p) < CatchingUpSize {
		return CatchingUp{}, shortPayload(CodeCatchingUp, CatchingUpSize, len(p), "")
	}
	return CatchingUp{EndOffset: le.Uint64(p)}, nil
}

// SubscribeAck is the payload of a SubscribeAck (0x23) reply.
type SubscribeAck struct {
	ConsumerID uint64
	// StartOffset is the effective start: the committed offset when the
	// request asked for 0 and one exists, else the requested offset.
	StartOffset uint64
}

// AppendTo appends the 16-byte payload to dst.
func (m SubscribeAck) AppendTo(dst []byte) []byte {
	return appendAck(dst, m.ConsumerID, m.StartOffset)
}

// DecodeSubscribeAck decodes a SubscribeAck payload. Fewer than 16 bytes
// match ErrShortPayload.
func DecodeSubscribeAck(p []byte) (SubscribeAck, error) {
	id, off, err := decodeAck(CodeSubscribeAck, p)
	return SubscribeAck{ConsumerID: id, StartOffset: off}, err
}

// CommitAck is the payload of a CommitAck (0x24) reply.
type CommitAck struct {
	ConsumerID uint64
	// CommittedOffset echoes the offset of the request.
	CommittedOffset uint64
}

// AppendTo appends the 16-byte payload to dst.
func (m CommitAck) AppendTo(dst []byte) []byte {
	return appendAck(dst, m.ConsumerID, m.CommittedOffset)
}

// DecodeCommitAck decodes a CommitAck payload. Fewer than 16 bytes match
// ErrShortPayload.
func DecodeCommitAck(p []byte) (CommitAck, error) {
	id, off, err := decodeAck(CodeCommitAck, p)
	return CommitAck{ConsumerID: id, CommittedOffset: off}, err
}

func appendAck(dst []byte, id, off uint64) []byte {
	return le.AppendUint64(le.AppendUint64(dst, id), off)
}

func decodeAck(code Code, p []byte) (id, off uint64, err error) {
	if len(p) < AckSize {
		return 0, 0, shortPayload(code, AckSize, len(p), "")
	}
	return le.Uint64(p), le.Uint64(p[8:]), nil
}

// AuthenticateResponse is the payload of an AuthenticateResponse (0x09)
// reply: a success byte (1 or 0), then the message as UTF-8 up to the end
// of the payload.
type AuthenticateResponse struct {
	Success bool
	// Message is one of the AuthReply texts.
	Message string
}

// AppendTo appends the payload to dst. Invalid UTF-8 in Message is written
// as U+FFFD, like AppendError does.
func (m AuthenticateResponse) AppendTo(dst []byte) []byte {
	b := byte(0)
	if m.Success {
		b = 1
	}
	return AppendError(append(dst, b), m.Message)
}

// DecodeAuthenticateResponse decodes an AuthenticateResponse payload. An
// empty payload matches ErrShortPayload; a success byte other than 0 or 1,
// or a message that is not valid UTF-8, matches ErrMalformed (the
// reference writes neither).
func DecodeAuthenticateResponse(p []byte) (AuthenticateResponse, error) {
	if len(p) == 0 {
		return AuthenticateResponse{}, shortPayload(CodeAuthenticateResponse, 1, 0, "")
	}
	if p[0] > 1 {
		return AuthenticateResponse{}, malformed(CodeAuthenticateResponse, len(p), "",
			"success byte is "+strconv.Itoa(int(p[0]))+", not 0 or 1")
	}
	if !utf8.Valid(p[1:]) {
		return AuthenticateResponse{}, malformed(CodeAuthenticateResponse, len(p), "",
			"message is not valid UTF-8")
	}
	return AuthenticateResponse{Success: p[0] == 1, Message: string(p[1:])}, nil
}
