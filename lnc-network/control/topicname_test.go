package control

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateTopicName(t *testing.T) {
	for _, ok := range []string{"a", "my-events", "Topic-123", "-", "0", strings.Repeat("x", MaxTopicNameLen)} {
		if err := ValidateTopicName(ok); err != nil {
			t.Errorf("ValidateTopicName(%q) = %v", ok, err)
		}
	}
	cases := []struct {
		name     string
		sentinel error
		text     string
	}{
		{"", ErrTopicNameRequired, "Topic name required"},
		{"my events", ErrTopicNameInvalid,
			"Invalid data: Topic name 'my events' contains invalid characters. Only alphanumeric characters (a-z, A-Z, 0-9) and dashes (-) are allowed"},
		{"a_b", ErrTopicNameInvalid, InvalidTopicNameChars("a_b")},
		{"a.b", ErrTopicNameInvalid, InvalidTopicNameChars("a.b")},
		{"a/b", ErrTopicNameInvalid, InvalidTopicNameChars("a/b")},
		{"é", ErrTopicNameInvalid, InvalidTopicNameChars("é")},
		{"\uFFFD", ErrTopicNameInvalid, InvalidTopicNameChars("\uFFFD")},
		{strings.Repeat("x", MaxTopicNameLen+1), ErrTopicNameTooLong,
			"Invalid data: Topic name is 256 bytes long; at most 255 bytes are allowed"},
		// Characters are checked first: the reference's own text wins.
		{strings.Repeat("x", 300) + "!", ErrTopicNameInvalid, InvalidTopicNameChars(strings.Repeat("x", 300) + "!")},
	}
	for _, c := range cases {
		err := ValidateTopicName(c.name)
		if !errors.Is(err, c.sentinel) {
			t.Errorf("ValidateTopicName(%q) = %v, want %v", c.name, err, c.sentinel)
			continue
		}
		if err.Error() != c.text {
			t.Errorf("ValidateTopicName(%q) text %q, want %q", c.name, err.Error(), c.text)
		}
		if text, ok := ReplyText(err); !ok || text != c.text {
			t.Errorf("ReplyText = %q, %v", text, ok)
		}
		var ne *NameError
		if !errors.As(err, &ne) || ne.Name != c.name || ne.ReplyCode() != CodeErrorResponse {
			t.Errorf("ValidateTopicName(%q) error is not a proper *NameError: %#v", c.name, err)
		}
	}
}

// TestValidateTopicNameAgainstRustRule compares every single byte with the
// Rust client's rule, c.is_ascii_alphanumeric() || c == '-'.
func TestValidateTopicNameAgainstRustRule(t *testing.T) {
	for i := range 256 {
		c := byte(i)
		rust := c < 0x80 && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') || c == '-'
		if got := ValidateTopicName(string([]byte{'a', c})) == nil; got != rust {
			t.Errorf("byte %#x: accepted=%v, want %v", c, got, rust)
		}
	}
}
