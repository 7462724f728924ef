package control

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestErrorTexts(t *testing.T) {
	// Every text of the digest §6.3 and §10.2, spelled out once more so
	// that an accidental edit of errtext.go shows up here.
	cases := map[string]string{
		TopicNameRequired:             "Topic name required",
		TopicExists("my-events"):      "Topic 'my-events' already exists",
		TopicNotFound:                 "Topic not found",
		FetchTopicNotFound(0):         "Topic 0 not found",
		FetchTopicNotFound(1<<32 - 1): "Topic 4294967295 not found",
		ConfigTopicNotFound(7):        "Configuration error: Topic 7 not found",
		UnknownTopic:                  "Unknown topic",
		UnknownTopicCluster:           "FORWARD_FAILED: Unknown topic (metadata convergence)",
		AuthenticationRequired:        "Authentication required",
		InvalidSetRetentionPayload:    "Invalid set retention payload",
		InvalidCreateTopicPayload:     "Invalid create topic payload",
		InvalidPayloadLength:          "Invalid payload length",
		InvalidSubscribePayload:       "Invalid subscribe payload",
		InvalidUnsubscribePayload:     "Invalid unsubscribe payload",
		InvalidCommitOffsetPayload:    "Invalid commit offset payload",
		FetchPayloadRequired:          "Fetch request payload required",
		FetchPayloadTooSmall:          "Protocol error: Fetch request payload too small",
		InvalidClientCommand:          "Invalid client command",
		AuthHandledAtConnectionLevel:  "Authentication handled at connection level",
		RateLimitExceeded:             "Rate limit exceeded",
		AuthReplyOK:                   "Authenticated",
		AuthReplyNoToken:              "No token provided",
		AuthReplyBadEncoding:          "Invalid token encoding",
		AuthReplyInvalidToken:         "Invalid token",
		NotLeader("10.0.0.2:1992"):    "NOT_LEADER: redirect to 10.0.0.2:1992",
		LeaderUnknown:                 "NOT_LEADER: leader unknown",
		ForwardFailed(LeaderNotReady): "FORWARD_FAILED: Leader not ready (apply/metadata catch-up)",
		QuorumNotReached(2, 1):        "FORWARD_FAILED: Quorum not reached - required 2 ACKs, got 1",
		InvalidTopicNameChars("a b"):  "Invalid data: Topic name 'a b' contains invalid characters. Only alphanumeric characters (a-z, A-Z, 0-9) and dashes (-) are allowed",
		TopicNameTooLong(300):         "Invalid data: Topic name is 300 bytes long; at most 255 bytes are allowed",
	}
	for got, want := range cases {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

func TestParseNotLeader(t *testing.T) {
	cases := []struct {
		text string
		addr string
		ok   bool
		is   bool
	}{
		{NotLeader("10.0.0.2:1992"), "10.0.0.2:1992", true, true},
		{NotLeader("[::1]:1992"), "[::1]:1992", true, true},
		{"NOT_LEADER: redirect to  127.0.0.1:9 \n", "127.0.0.1:9", true, true},
		{LeaderUnknown, "", false, true},
		{NotLeader("leader-host:1992"), "", false, true}, // not a SocketAddr
		{NotLeader(""), "", false, true},
		{NotLeader("10.0.0.2"), "", false, true}, // no port
		{"NOT_LEADER:redirect to 10.0.0.2:1992", "", false, true},
		{"Error: NOT_LEADER: redirect to 10.0.0.2:1992", "", false, false},
		{TopicNotFound, "", false, false},
		{"", "", false, false},
	}
	for _, c := range cases {
		addr, ok := ParseNotLeader(c.text)
		if addr != c.addr || ok != c.ok {
			t.Errorf("ParseNotLeader(%q) = %q, %v; want %q, %v", c.text, addr, ok, c.addr, c.ok)
		}
		if IsNotLeader(c.text) != c.is {
			t.Errorf("IsNotLeader(%q) = %v", c.text, !c.is)
		}
	}
}

func TestIsForwardFailed(t *testing.T) {
	for text, want := range map[string]bool{
		ForwardFailed("x"):        true,
		UnknownTopicCluster:       true,
		QuorumNotReached(2, 1):    true,
		"wrapped: FORWARD_FAILED": true, // substring, like the Rust client
		"FORWARD_FAILE":           false,
		"forward_failed: x":       false,
		NotLeader("1.2.3.4:5"):    false,
		"":                        false,
	} {
		if IsForwardFailed(text) != want {
			t.Errorf("IsForwardFailed(%q) = %v", text, !want)
		}
	}
}

func TestDecodeErrorLossy(t *testing.T) {
	got, err := DecodeError([]byte("Topic \xff not found"))
	if got != "Topic \uFFFD not found" || !errors.Is(err, ErrMalformed) {
		t.Errorf("DecodeError = %q, %v", got, err)
	}
	if got, err := DecodeError(nil); got != "" || err != nil {
		t.Errorf("DecodeError(nil) = %q, %v", got, err)
	}
	if got := AppendError([]byte("x"), "a\xffb"); string(got) != "xa\uFFFDb" {
		t.Errorf("AppendError repaired to %q", got)
	}
}

// TestLossyMatchesRust checks the replacement rule against outputs of
// Rust's String::from_utf8_lossy, which follows the Unicode "maximal
// subpart" practice (Unicode 15, §3.9, table 3-8).
func TestLossyMatchesRust(t *testing.T) {
	const r = "\uFFFD"
	cases := []struct{ in, want string }{
		{"", ""},
		{"abc", "abc"},
		{"\xff", r},
		{"\xff\xfe", r + r},
		{"\xe2\x82", r},        // truncated 3-byte sequence: one replacement
		{"\xe2\x82A", r + "A"}, // the same, followed by ASCII
		{"\xe2\x82\xac", "€"},  // complete
		{"\xf0\x9f\x98", r},    // truncated 4-byte sequence
		{"\xf0\x9f\x98\x80", "😀"},
		{"\xc0\xaf", r + r},                 // overlong lead C0 is never valid
		{"\xe0\x80\xaf", r + r + r},         // E0 needs A0..BF next
		{"\xed\xa0\x80", r + r + r},         // surrogate
		{"\xf4\x90\x80\x80", r + r + r + r}, // above U+10FFFF
		{"\xf5\x80", r + r},
		{"\x80", r},
		{"a\xc3", "a" + r},
		// Table 3-8 of the Unicode standard.
		{"\x61\xf1\x80\x80\xe1\x80\xc2\x62\x80\x63\x80\xbf\x64",
			"a" + r + r + r + "b" + r + "c" + r + r + "d"},
	}
	for _, c := range cases {
		if got := lossyString([]byte(c.in)); got != c.want {
			t.Errorf("lossyString(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestLossyAlwaysValid(t *testing.T) {
	// Every pair of bytes followed by 'z' comes out as valid UTF-8 that
	// still ends in 'z', and valid input is left alone.
	for a := range 256 {
		for b := range 256 {
			in := []byte{byte(a), byte(b), 'z'}
			out := lossyString(in)
			if !utf8.ValidString(out) || !strings.HasSuffix(out, "z") {
				t.Fatalf("lossyString(%x) = %q", in, out)
			}
			if utf8.Valid(in) && out != string(in) {
				t.Fatalf("lossyString changed valid %x to %q", in, out)
			}
		}
	}
}
