package control

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
)

// shortCase is a payload a decoder must reject with a given reply text.
type shortCase struct {
	name   string
	decode func([]byte) error
	sizes  []int  // payload lengths to try
	text   string // reference reply text
	need   int
}

func drop[T any](f func([]byte) (T, error)) func([]byte) error {
	return func(p []byte) error { _, err := f(p); return err }
}

func TestShortPayloadTexts(t *testing.T) {
	upTo := func(n int) []int {
		s := make([]int, n)
		for i := range s {
			s[i] = i
		}
		return s
	}
	cases := []shortCase{
		{"SetRetention", drop(DecodeSetRetention), upTo(20), "Invalid set retention payload", 20},
		{"CreateTopicWithRetention", drop(DecodeCreateTopicWithRetention), upTo(18), "Invalid create topic payload", 18},
		{"Fetch empty", drop(DecodeFetch), []int{0}, "Fetch request payload required", 16},
		{"Fetch short", drop(DecodeFetch), upTo(16)[1:], "Protocol error: Fetch request payload too small", 16},
		{"Subscribe", drop(DecodeSubscribe), upTo(24), "Invalid subscribe payload", 24},
		{"Unsubscribe", drop(DecodeUnsubscribe), upTo(12), "Invalid unsubscribe payload", 12},
		{"CommitOffset", drop(DecodeCommitOffset), upTo(20), "Invalid commit offset payload", 20},
		{"CreateTopic", drop(DecodeCreateTopic), []int{0}, "Topic name required", 1},
		{"Authenticate", drop(DecodeAuthenticate), []int{0}, "No token provided", 1},
	}
	for _, c := range cases {
		for _, n := range c.sizes {
			// Use 0xFF bytes so that a name_len field is large.
			err := c.decode(bytes.Repeat([]byte{0xFF}, n))
			if !errors.Is(err, ErrShortPayload) {
				t.Errorf("%s(%d bytes): error %v, want ErrShortPayload", c.name, n, err)
				continue
			}
			if text, ok := ReplyText(err); !ok || text != c.text {
				t.Errorf("%s(%d bytes): reply %q, %v; want %q", c.name, n, text, ok, c.text)
			}
			var pe *PayloadError
			if errors.As(err, &pe) && (pe.Need != c.need || pe.Got != n) {
				t.Errorf("%s(%d bytes): Need %d Got %d, want %d %d", c.name, n, pe.Need, pe.Got, c.need, n)
			}
			if !strings.HasPrefix(err.Error(), "control: ") {
				t.Errorf("%s: Error() = %q lacks the package prefix", c.name, err)
			}
		}
	}
}

func TestCreateTopicWithRetentionNameLength(t *testing.T) {
	// name_len says 6 but only 5 name bytes and the 16 retention bytes follow.
	p := unhex(t, "0600 6576656E74 8051010000000000 0000000000000000")
	_, err := DecodeCreateTopicWithRetention(p)
	if !errors.Is(err, ErrShortPayload) {
		t.Fatalf("error %v, want ErrShortPayload", err)
	}
	if text, _ := ReplyText(err); text != "Invalid payload length" {
		t.Errorf("reply %q, want %q", text, "Invalid payload length")
	}
	var pe *PayloadError
	if errors.As(err, &pe) && (pe.Need != 24 || pe.Got != 23) {
		t.Errorf("Need %d Got %d, want 24 23", pe.Need, pe.Got)
	}
	// An empty name decodes; rejecting it is ValidateTopicName's job.
	v, err := DecodeCreateTopicWithRetention(make([]byte, 18))
	if err != nil || v != (CreateTopicWithRetention{}) {
		t.Errorf("empty name: %#v, %v", v, err)
	}
}

func TestCreateTopicWithRetentionAppendTooLong(t *testing.T) {
	dst := []byte("keep")
	out, err := CreateTopicWithRetention{Name: strings.Repeat("a", math.MaxUint16+1)}.AppendTo(dst)
	if !errors.Is(err, ErrTopicNameTooLong) || string(out) != "keep" {
		t.Errorf("got %q, %v; want dst unchanged and ErrTopicNameTooLong", out[:min(len(out), 8)], err)
	}
	m := CreateTopicWithRetention{Name: strings.Repeat("a", math.MaxUint16), MaxAgeSecs: 1, MaxBytes: 2}
	out, err = m.AppendTo(nil)
	if err != nil || len(out) != m.Len() {
		t.Fatalf("65535-byte name: len %d, %v", len(out), err)
	}
	back, err := DecodeCreateTopicWithRetention(out)
	if err != nil || back != m {
		t.Errorf("65535-byte name did not round-trip: %v", err)
	}
}

func TestTopicIDQuirk(t *testing.T) {
	for n := range 4 {
		p := bytes.Repeat([]byte{0xAB}, n)
		if v, err := DecodeDeleteTopic(p); err != nil || v.TopicID != 0 {
			t.Errorf("DeleteTopic(%d bytes) = %v, %v; want topic 0", n, v, err)
		}
		if v, err := DecodeGetTopic(p); err != nil || v.TopicID != 0 {
			t.Errorf("GetTopic(%d bytes) = %v, %v; want topic 0", n, v, err)
		}
	}
	if v, _ := DecodeGetTopic(unhex(t, "07000000 FFFF")); v.TopicID != 7 {
		t.Errorf("GetTopic with trailing bytes = %d, want 7", v.TopicID)
	}
	if got := (DeleteTopic{TopicID: 0x01020304}).AppendTo(nil); !bytes.Equal(got, []byte{4, 3, 2, 1}) {
		t.Errorf("DeleteTopic encoding %x", got)
	}
	if got := (GetTopic{TopicID: 0x01020304}).AppendTo(nil); !bytes.Equal(got, []byte{4, 3, 2, 1}) {
		t.Errorf("GetTopic encoding %x", got)
	}
}

// TestLongerPayloadsAccepted appends junk after every fixed layout and
// checks that the decoded value does not change.
func TestLongerPayloadsAccepted(t *testing.T) {
	junk := []byte{0xEE, 0xDD, 0xCC, 0xBB, 0xAA}
	check := func(name string, p []byte, decode func([]byte) (any, error)) {
		t.Helper()
		want, err := decode(p)
		if err != nil {
			t.Fatalf("%s: exact payload: %v", name, err)
		}
		got, err := decode(append(bytes.Clone(p), junk...))
		if err != nil || got != want {
			t.Errorf("%s: longer payload gave %#v, %v; want %#v", name, got, err, want)
		}
	}
	check("DeleteTopic", unhex(t, "05000000"), func(p []byte) (any, error) { return DecodeDeleteTopic(p) })
	check("GetTopic", unhex(t, "05000000"), func(p []byte) (any, error) { return DecodeGetTopic(p) })
	check("SetRetention", unhex(t, "01000000 8051010000000000 0000004000000000"),
		func(p []byte) (any, error) { return DecodeSetRetention(p) })
	check("CreateTopicWithRetention", unhex(t, "0600 6576656E7473 8051010000000000 0000000000000000"),
		func(p []byte) (any, error) { return DecodeCreateTopicWithRetention(p) })
	check("Fetch", unhex(t, "01000000 0000000000000000 00000100"),
		func(p []byte) (any, error) { return DecodeFetch(p) })
	check("Subscribe", unhex(t, "2A000000 E803000000000000 00000100 78563412EFBEADDE"),
		func(p []byte) (any, error) { return DecodeSubscribe(p) })
	check("Unsubscribe", unhex(t, "07000000 01000000BEBAFECA"),
		func(p []byte) (any, error) { return DecodeUnsubscribe(p) })
	check("CommitOffset", unhex(t, "63000000 EFCDAB9078563412 50C3000000000000"),
		func(p []byte) (any, error) { return DecodeCommitOffset(p) })
	check("CatchingUp", unhex(t, "2A00000000000000"),
		func(p []byte) (any, error) { return DecodeCatchingUp(p) })
	check("SubscribeAck", unhex(t, "78563412EFBEADDE E803000000000000"),
		func(p []byte) (any, error) { return DecodeSubscribeAck(p) })
	check("CommitAck", unhex(t, "78563412EFBEADDE E803000000000000"),
		func(p []byte) (any, error) { return DecodeCommitAck(p) })

	// FetchResponse keeps Data to bytes_returned, whatever follows.
	p := append(unhex(t, "0900000000000000 02000000 01000000 4142"), junk...)
	r, err := DecodeFetchResponse(p)
	if err != nil || string(r.Data) != "AB" || r.NextOffset != 9 || r.RecordCount != 1 {
		t.Errorf("FetchResponse with trailing bytes = %#v, %v", r, err)
	}
}

func TestFetchTail(t *testing.T) {
	f := Fetch{TopicID: 3, StartOffset: TailOffset, MaxBytes: 1}
	if !f.IsTail() || (Fetch{}).IsTail() {
		t.Error("IsTail is wrong")
	}
	p := f.AppendTo(nil)
	if !bytes.Equal(p[4:12], bytes.Repeat([]byte{0xFF}, 8)) {
		t.Errorf("tail offset encoded as %x", p[4:12])
	}
	if back, _ := DecodeFetch(p); back != f {
		t.Errorf("decoded %#v, want %#v", back, f)
	}
}

func TestCreateTopicLossyName(t *testing.T) {
	v, err := DecodeCreateTopic([]byte("ab\xffc"))
	if err != nil {
		t.Fatal(err)
	}
	if v.Name != "ab\uFFFDc" {
		t.Errorf("name %q, want %q", v.Name, "ab\uFFFDc")
	}
	err = ValidateTopicName(v.Name)
	want := "Invalid data: Topic name 'ab\uFFFDc' contains invalid characters. Only alphanumeric characters (a-z, A-Z, 0-9) and dashes (-) are allowed"
	if err == nil || err.Error() != want {
		t.Errorf("ValidateTopicName = %v, want %q", err, want)
	}
	w, err := DecodeCreateTopicWithRetention(append([]byte{2, 0, 0xC3, 0x28}, make([]byte, 16)...))
	if err != nil || w.Name != "\uFFFD(" {
		t.Errorf("CreateTopicWithRetention name %q, %v", w.Name, err)
	}
}

func TestAuthenticate(t *testing.T) {
	v, err := DecodeAuthenticate([]byte("s3cr3t token"))
	if err != nil || v.Token != "s3cr3t token" {
		t.Errorf("DecodeAuthenticate = %#v, %v", v, err)
	}
	if got := (Authenticate{Token: "tok"}).AppendTo(nil); string(got) != "tok" {
		t.Errorf("AppendTo = %q", got)
	}

	// Both failures are answered with a failed AuthenticateResponse.
	for _, c := range []struct {
		p        []byte
		sentinel error
		payload  []byte
	}{
		{nil, ErrShortPayload, append([]byte{0}, "No token provided"...)},
		{[]byte("tok\xff"), ErrMalformed, append([]byte{0}, "Invalid token encoding"...)},
	} {
		_, err := DecodeAuthenticate(c.p)
		if !errors.Is(err, c.sentinel) {
			t.Errorf("DecodeAuthenticate(%q): %v, want %v", c.p, err, c.sentinel)
		}
		code, out, ok := AppendReply(nil, err)
		if !ok || code != CodeAuthenticateResponse || !bytes.Equal(out, c.payload) {
			t.Errorf("AppendReply for %q = %v %q %v; want AuthenticateResponse %q", c.p, code, out, ok, c.payload)
		}
	}
}

func TestAppendReply(t *testing.T) {
	_, err := DecodeSubscribe([]byte{1, 2, 3})
	wrapped := errors.Join(errors.New("handler"), err)
	code, out, ok := AppendReply([]byte("x"), wrapped)
	if !ok || code != CodeErrorResponse || string(out) != "xInvalid subscribe payload" {
		t.Errorf("AppendReply = %v %q %v", code, out, ok)
	}
	if text, ok := ReplyText(wrapped); !ok || text != InvalidSubscribePayload {
		t.Errorf("ReplyText through a wrapper = %q, %v", text, ok)
	}

	// Replies decoded by a client have no server text.
	_, err = DecodeFetchResponse(nil)
	if _, ok := ReplyText(err); ok {
		t.Error("ReplyText found a text for a FetchResponse error")
	}
	if code, out, ok := AppendReply([]byte("x"), err); ok || code != 0 || string(out) != "x" {
		t.Errorf("AppendReply without text = %v %q %v", code, out, ok)
	}
	if _, ok := ReplyText(errors.New("other")); ok {
		t.Error("ReplyText found a text in a foreign error")
	}
	if _, ok := ReplyText(nil); ok {
		t.Error("ReplyText found a text in nil")
	}

	// Name errors reply with their own text.
	nameErr := ValidateTopicName("a b")
	code, out, ok = AppendReply(nil, nameErr)
	if !ok || code != CodeErrorResponse || string(out) != InvalidTopicNameChars("a b") {
		t.Errorf("AppendReply(name error) = %v %q %v", code, out, ok)
	}
}

func TestPayloadErrorMessages(t *testing.T) {
	_, err := DecodeSetRetention(make([]byte, 3))
	if got, want := err.Error(), "control: payload too short: SetRetention payload has 3 bytes, need 20"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	_, err = DecodeAuthenticateResponse([]byte{7})
	if got, want := err.Error(), "control: malformed payload: AuthenticateResponse payload: success byte is 7, not 0 or 1"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got := (&PayloadError{Code: CodeFetch, Got: 5}).Error(); got != "control: malformed payload: Fetch payload of 5 bytes" {
		t.Errorf("zero PayloadError: %q", got)
	}
	var pe *PayloadError
	if !errors.As(err, &pe) || pe.ReplyCode() != CodeErrorResponse {
		t.Error("ReplyCode of a reply error is not ErrorResponse")
	}
}
