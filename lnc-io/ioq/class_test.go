package ioq

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestClassNames(t *testing.T) {
	for c, want := range map[Class]string{
		ClassCommit:     "commit",
		ClassRead:       "read",
		ClassBackground: "background",
		Class(7):        "class(7)",
	} {
		if got := c.String(); got != want {
			t.Errorf("Class(%d).String() = %q, want %q", uint8(c), got, want)
		}
	}
	for _, s := range []string{"commit", "read", "background", "COMMIT", "Background"} {
		c, err := ParseClass(s)
		if err != nil {
			t.Fatalf("ParseClass(%q): %v", s, err)
		}
		if back, _ := ParseClass(c.String()); back != c {
			t.Errorf("ParseClass(%q) = %v does not round-trip", s, c)
		}
	}
	for _, s := range []string{"", "write", "commits", "class(0)"} {
		if _, err := ParseClass(s); !errors.Is(err, ErrUnknownClass) {
			t.Errorf("ParseClass(%q) error %v, want ErrUnknownClass", s, err)
		}
	}
}

func TestClassText(t *testing.T) {
	var cfg struct {
		Classes []Class `json:"classes"`
	}
	if err := json.Unmarshal([]byte(`{"classes":["background","commit","read"]}`), &cfg); err != nil {
		t.Fatal(err)
	}
	if got := pattern(cfg.Classes); got != "BCR" {
		t.Fatalf("decoded %q, want BCR", got)
	}
	out, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"classes":["background","commit","read"]}` {
		t.Fatalf("encoded %s", out)
	}
	if err := json.Unmarshal([]byte(`{"classes":["urgent"]}`), &cfg); !errors.Is(err, ErrUnknownClass) {
		t.Fatalf("unknown name: error %v, want ErrUnknownClass", err)
	}
	if _, err := Class(3).MarshalText(); !errors.Is(err, ErrUnknownClass) {
		t.Fatalf("MarshalText(3): error %v, want ErrUnknownClass", err)
	}
}
