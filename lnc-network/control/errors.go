package control

import (
	"errors"
	"strconv"
)

// Sentinel errors. Every error a decoder returns is a *PayloadError that
// unwraps to one of the first three; ValidateTopicName returns a *NameError
// that unwraps to one of the last three.
var (
	// ErrShortPayload means the payload is shorter than its layout needs.
	ErrShortPayload = errors.New("control: payload too short")
	// ErrMalformed means the payload is long enough but its content is
	// not acceptable: a length field that points past the end, a success
	// byte other than 0 or 1, text that is not UTF-8, JSON that does not
	// parse or has a value of the wrong type.
	ErrMalformed = errors.New("control: malformed payload")
	// ErrTooLarge means a JSON payload exceeds MaxJSONPayload.
	ErrTooLarge = errors.New("control: payload too large")

	// ErrTopicNameRequired means a topic name is empty.
	ErrTopicNameRequired = errors.New("control: topic name required")
	// ErrTopicNameInvalid means a topic name has a character outside
	// [A-Za-z0-9-].
	ErrTopicNameInvalid = errors.New("control: topic name has invalid characters")
	// ErrTopicNameTooLong means a topic name is longer than
	// MaxTopicNameLen bytes, or (from CreateTopicWithRetention.AppendTo)
	// longer than its u16 length field can describe.
	ErrTopicNameTooLong = errors.New("control: topic name too long")
)

// PayloadError describes a payload a decoder rejected. Use errors.Is with
// ErrShortPayload, ErrMalformed or ErrTooLarge to tell the cases apart, and
// ReplyText or AppendReply to get the reference server's answer.
type PayloadError struct {
	// Code is the code of the frame whose payload was rejected.
	Code Code
	// Need is the number of bytes the decoder needed, when the payload
	// was too short; otherwise 0.
	Need int
	// Got is the length of the rejected payload.
	Got int
	// Text is what the reference server replies to this payload, in an
	// ErrorResponse or, for CodeAuthenticate, in a failed
	// AuthenticateResponse. It is empty for payloads the reference server
	// never decodes (replies, which only a client decodes).
	Text string
	// Detail says what is wrong when Need does not; it may be empty.
	Detail string
	// Err is ErrShortPayload, ErrMalformed or ErrTooLarge.
	Err error
}

// Error describes the problem for logs. It is not the reply text: use
// ReplyText for that.
func (e *PayloadError) Error() string {
	kind := e.Err
	if kind == nil {
		kind = ErrMalformed
	}
	s := kind.Error() + ": " + e.Code.String() + " payload"
	switch {
	case e.Detail != "":
		s += ": " + e.Detail
	case e.Need > 0:
		s += " has " + strconv.Itoa(e.Got) + " bytes, need " + strconv.Itoa(e.Need)
	default:
		s += " of " + strconv.Itoa(e.Got) + " bytes"
	}
	return s
}

// Unwrap returns the sentinel, so errors.Is(err, ErrShortPayload) works.
func (e *PayloadError) Unwrap() error { return e.Err }

// ReplyCode is the code of the frame a server answers the rejected payload
// with: CodeAuthenticateResponse for an Authenticate request, otherwise
// CodeErrorResponse.
func (e *PayloadError) ReplyCode() Code {
	if e.Code == CodeAuthenticate {
		return CodeAuthenticateResponse
	}
	return CodeErrorResponse
}

func (e *PayloadError) replyText() string { return e.Text }

// NameError reports a topic name ValidateTopicName rejects. Its Error text
// is exactly the reply the reference server sends for that name (or, for
// ErrTopicNameTooLong, our own text), so a server can send err.Error()
// unchanged.
type NameError struct {
	// Name is the rejected name.
	Name string
	// Err is ErrTopicNameRequired, ErrTopicNameInvalid or
	// ErrTopicNameTooLong.
	Err error
}

// Error returns the ErrorResponse text for the rejected name.
func (e *NameError) Error() string {
	switch e.Err {
	case ErrTopicNameRequired:
		return TopicNameRequired
	case ErrTopicNameTooLong:
		return TopicNameTooLong(len(e.Name))
	default:
		return InvalidTopicNameChars(e.Name)
	}
}

// Unwrap returns the sentinel, so errors.Is(err, ErrTopicNameInvalid) works.
func (e *NameError) Unwrap() error { return e.Err }

// ReplyCode is always CodeErrorResponse.
func (e *NameError) ReplyCode() Code { return CodeErrorResponse }

func (e *NameError) replyText() string { return e.Error() }

// replier is what ReplyText and AppendReply look for in an error chain.
type replier interface {
	ReplyCode() Code
	replyText() string
}

// ReplyText returns the text the reference server sends in answer to err,
// when err (or an error it wraps) is a *PayloadError or *NameError that has
// one. ok is false for any other error and for errors in reply payloads,
// which the reference server never decodes.
func ReplyText(err error) (text string, ok bool) {
	var r replier
	if errors.As(err, &r) {
		text = r.replyText()
	}
	return text, text != ""
}

// AppendReply appends to dst the payload a server should answer err with,
// and returns the frame code for it: an ErrorResponse carrying the text,
// or, for a rejected Authenticate, a failed AuthenticateResponse. ok is
// false, and dst is returned unchanged, when ReplyText(err) has no text.
func AppendReply(dst []byte, err error) (code Code, out []byte, ok bool) {
	var r replier
	if !errors.As(err, &r) || r.replyText() == "" {
		return 0, dst, false
	}
	code = r.ReplyCode()
	if code == CodeAuthenticateResponse {
		return code, AuthenticateResponse{Message: r.replyText()}.AppendTo(dst), true
	}
	return code, AppendError(dst, r.replyText()), true
}

func shortPayload(code Code, need, got int, text string) *PayloadError {
	return &PayloadError{Code: code, Need: need, Got: got, Text: text, Err: ErrShortPayload}
}

func malformed(code Code, got int, text, detail string) *PayloadError {
	return &PayloadError{Code: code, Got: got, Text: text, Detail: detail, Err: ErrMalformed}
}
