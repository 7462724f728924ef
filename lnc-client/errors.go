package lance

import (
	"context"
	"errors"
	"os"
	"strings"

	"github.com/lance-go/lance/lnc-network/control"
)

// Sentinel errors. Every error the package returns that has one of these
// causes wraps it, so test with errors.Is.
var (
	// ErrClosed is returned by calls on a Client, Producer or Consumer
	// after its Close.
	ErrClosed = errors.New("lance: closed")
	// ErrTimeout means a request got no reply within the request timeout
	// or the caller's deadline. It is retryable. Errors that carry it also
	// wrap context.DeadlineExceeded.
	ErrTimeout = errors.New("lance: timeout")
	// ErrConnectionLost means the connection broke while a request was
	// queued or in flight: the server may or may not have processed it.
	// It is retryable; the next request reconnects.
	ErrConnectionLost = errors.New("lance: connection lost")
	// ErrTopicNotFound means the server knows no topic by that name or id.
	ErrTopicNotFound = errors.New("lance: topic not found")
	// ErrTopicExists is returned by CreateTopic for a name already in use.
	ErrTopicExists = errors.New("lance: topic already exists")
	// ErrInvalidTopicName means a name outside 1..255 bytes of
	// A-Z a-z 0-9 and '-'. The client checks names before sending them.
	ErrInvalidTopicName = errors.New("lance: invalid topic name")
	// ErrUnauthenticated means the server wants a token ("Authentication
	// required") or refused the one given (a failed Authenticate).
	ErrUnauthenticated = errors.New("lance: authentication required")
	// ErrAccessDenied means the server's access rules refuse the request.
	ErrAccessDenied = errors.New("lance: access denied")
	// ErrBackpressure means the server asked the client to slow down. It
	// is retryable.
	ErrBackpressure = errors.New("lance: server backpressure")
	// ErrCatchingUp means a fetch asked for an offset past the end of the
	// topic's log; the error is a *CatchingUpError carrying the end.
	ErrCatchingUp = errors.New("lance: offset past the end of the log")
	// ErrStorage means the server's storage failed; it acknowledges no
	// more writes until it is restarted.
	ErrStorage = errors.New("lance: server storage unavailable")
	// ErrForwardFailed means a cluster node could not forward a request
	// to the leader or reach quorum (FORWARD_FAILED). It is retryable.
	ErrForwardFailed = errors.New("lance: forward to leader failed")
	// ErrUnsupported means the server does not know a command this client
	// sent ("Invalid client command"), such as an extension of an older
	// or reference server.
	ErrUnsupported = errors.New("lance: command not supported by the server")
	// ErrProtocol means the server sent something this client cannot
	// read; the connection is dropped.
	ErrProtocol = errors.New("lance: protocol violation")
)

// ServerError is an ErrorResponse from the server. Text is the server's
// text, verbatim. When the text is one the client recognises, the error
// also matches the corresponding sentinel (errors.Is(err, ErrTopicExists)
// and so on).
type ServerError struct {
	// Text is the ErrorResponse payload as sent.
	Text string
	// kind is the sentinel Text maps to, or nil.
	kind error
}

// Error returns the server's text with a prefix saying where it came from.
func (e *ServerError) Error() string { return "lance: server error: " + e.Text }

// Unwrap returns the sentinel the text maps to, if any.
func (e *ServerError) Unwrap() error { return e.kind }

// NotLeaderError is a NOT_LEADER reply from a cluster follower. Leader is
// the leader's ip:port when the server named one and empty when it does
// not know the leader. The error is retryable.
type NotLeaderError struct {
	// Leader is the address the server redirects to, or "".
	Leader string
	// Text is the server's reply, verbatim.
	Text string
}

// Error returns the server's text.
func (e *NotLeaderError) Error() string { return "lance: not the leader: " + e.Text }

// CatchingUpError is the reply to a fetch past the end of a topic: End is
// the end of the log as the server knows it. It matches ErrCatchingUp.
type CatchingUpError struct {
	// End is the server's end offset for the topic.
	End Offset
}

// Error describes the error.
func (e *CatchingUpError) Error() string {
	return "lance: offset past the end of the log (end " + uitoa(uint64(e.End)) + ")"
}

// Unwrap returns ErrCatchingUp.
func (e *CatchingUpError) Unwrap() error { return ErrCatchingUp }

// timeoutError wraps ErrTimeout and the context or I/O deadline error that
// caused it, so both errors.Is tests succeed.
type timeoutError struct{ cause error }

func (e *timeoutError) Error() string {
	if e.cause == nil {
		return ErrTimeout.Error()
	}
	return ErrTimeout.Error() + ": " + e.cause.Error()
}

func (e *timeoutError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrTimeout, context.DeadlineExceeded}
	}
	return []error{ErrTimeout, e.cause}
}

// ctxErr converts a context's error into the package's error: a deadline
// becomes ErrTimeout (still matching context.DeadlineExceeded), a
// cancellation stays context.Canceled.
func ctxErr(ctx context.Context) error {
	err := ctx.Err()
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &timeoutError{cause: context.Cause(ctx)}
	}
	return err
}

// IsRetryable reports whether err is worth retrying unchanged: a broken
// connection, a timeout, backpressure, FORWARD_FAILED or a NOT_LEADER
// redirect. Errors that are the caller's (a bad name, a closed client, a
// cancelled context) or the data's are not.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var nl *NotLeaderError
	switch {
	case errors.As(err, &nl):
		return true
	case errors.Is(err, ErrClosed), errors.Is(err, context.Canceled):
		return false
	case errors.Is(err, ErrConnectionLost), errors.Is(err, ErrTimeout),
		errors.Is(err, ErrBackpressure), errors.Is(err, ErrForwardFailed),
		errors.Is(err, os.ErrDeadlineExceeded):
		return true
	}
	return false
}

// serverError maps an ErrorResponse text to the error returned to callers.
func serverError(text string) error {
	if control.IsNotLeader(text) {
		addr, _ := control.ParseNotLeader(text)
		return &NotLeaderError{Leader: addr, Text: text}
	}
	return &ServerError{Text: text, kind: classify(text)}
}

// classify returns the sentinel an ErrorResponse text stands for, or nil.
func classify(text string) error {
	switch {
	case control.IsForwardFailed(text):
		return ErrForwardFailed
	case strings.HasPrefix(text, "Topic '") && strings.HasSuffix(text, "' already exists"):
		return ErrTopicExists
	case strings.HasPrefix(text, "Invalid data: Topic name"), text == control.TopicNameRequired:
		return ErrInvalidTopicName
	case text == control.TopicNotFound, text == control.UnknownTopic,
		isIDNotFound(text), isIDNotFound(strings.TrimPrefix(text, "Configuration error: ")):
		return ErrTopicNotFound
	case text == control.AuthenticationRequired:
		return ErrUnauthenticated
	case strings.HasPrefix(text, "Access denied"):
		return ErrAccessDenied
	case strings.HasPrefix(text, "Storage unavailable"), strings.HasPrefix(text, "Storage error"):
		return ErrStorage
	case text == control.InvalidClientCommand:
		return ErrUnsupported
	}
	return nil
}

// isIDNotFound reports whether text is "Topic <digits> not found".
func isIDNotFound(text string) bool {
	rest, ok := strings.CutPrefix(text, "Topic ")
	if !ok {
		return false
	}
	id, ok := strings.CutSuffix(rest, " not found")
	if !ok || id == "" {
		return false
	}
	for _, c := range id {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func uitoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}
