package security

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lance-go/lance/lance/internal/config"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func derivedName(secret string) string {
	d := sha256.Sum256([]byte(secret))
	return "token:sha256-" + hex.EncodeToString(d[:6])
}

func TestTokensLoad(t *testing.T) {
	file := writeFile(t, "# deploy tokens\r\n"+
		"\n"+
		"   \t\n"+
		"  # indented comment\n"+
		"ci:ci-secret-0123\r\n"+
		"  reader : reader-secret  \n"+
		"bare-secret-in-file\n"+
		"hash#inside\n"+
		"no-final-newline:tail-secret")
	tk, err := NewTokens(config.Auth{
		Enabled:   true,
		Tokens:    []string{"ops:ops-secret", "bare-secret-in-config", "colon:a:b"},
		TokenFile: file,
	})
	if err != nil {
		t.Fatal(err)
	}
	if tk.Len() != 8 {
		t.Errorf("Len = %d, want 8", tk.Len())
	}
	for secret, want := range map[string]string{
		"ci-secret-0123":        "token:ci",
		"reader-secret":         "token:reader",
		"ops-secret":            "token:ops",
		"tail-secret":           "token:no-final-newline",
		"bare-secret-in-file":   derivedName("bare-secret-in-file"),
		"bare-secret-in-config": derivedName("bare-secret-in-config"),
		"hash#inside":           derivedName("hash#inside"),
		"a:b":                   "token:colon",
	} {
		p, ok := tk.Check(secret)
		if !ok || p != (Principal{Name: want, Kind: KindToken}) {
			t.Errorf("Check(%q) = %#v, %v; want %s", secret, p, ok, want)
		}
	}
	for _, bad := range []string{"", "ci", "ci:ci-secret-0123", "ci-secret-012", "ci-secret-01234", "ci-secret-0123\n",
		" ci-secret-0123", "CI-SECRET-0123", "reader-secret ", "# deploy tokens", "no-final-newline", "colon:a:b", "b"} {
		if p, ok := tk.Check(bad); ok {
			t.Errorf("Check(%q) accepted as %v", bad, p)
		}
	}
}

func TestTokensNotStoredInClear(t *testing.T) {
	secret := "very-secret-token-value"
	tk, err := NewTokens(config.Auth{Enabled: true, Tokens: []string{"n:" + secret}})
	if err != nil {
		t.Fatal(err)
	}
	if dump := fmt.Sprintf("%#v %+v", tk, tk.entries); strings.Contains(dump, secret) {
		t.Errorf("the secret appears in the Tokens value: %s", dump)
	}
}

func TestTokensConstantTime(t *testing.T) {
	if reflect.ValueOf(compare).Pointer() != reflect.ValueOf(subtle.ConstantTimeCompare).Pointer() {
		t.Fatal("Check does not compare with crypto/subtle.ConstantTimeCompare")
	}
	tk, err := NewTokens(config.Auth{Enabled: true, Tokens: []string{"a:first", "b:middle", "c:last"}})
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	compare = func(x, y []byte) int {
		calls++
		if len(x) != sha256.Size || len(y) != sha256.Size {
			t.Errorf("compared %d and %d bytes, want two SHA-256 digests", len(x), len(y))
		}
		return subtle.ConstantTimeCompare(x, y)
	}
	defer func() { compare = subtle.ConstantTimeCompare }()
	for _, cand := range []string{"first", "middle", "last", "none"} {
		calls = 0
		tk.Check(cand)
		if calls != tk.Len() {
			t.Errorf("Check(%q) made %d comparisons, want %d (one per entry, no early exit)", cand, calls, tk.Len())
		}
	}
}

func TestTokensBadEntries(t *testing.T) {
	cases := []struct {
		name, file string
		contains   []string
	}{
		{"empty secret after name", "ok:fine\nname:\n", []string{"line 2", "empty token"}},
		{"empty name", ":secret\n", []string{"line 1", "empty token name"}},
		{"bad name", "bad name!:secret\n", []string{"line 1", "bad name!"}},
		{"long name", strings.Repeat("n", 65) + ":secret\n", []string{"line 1", "longer than 64"}},
		{"inner space", "name:sec ret\n", []string{"line 1", "white space"}},
		{"inline comment", "secret-value # note\n", []string{"line 1", "white space"}},
		{"control character", "name:sec\x01ret\n", []string{"line 1", "control"}},
		{"not UTF-8", "name:sec\xffret\n", []string{"line 1", "UTF-8"}},
		{"duplicate name", "a:one\n\na:two\n", []string{"line 3", `"token:a"`, "line 1"}},
		{"duplicate secret", "a:same\nb:same\n", []string{"line 2", "same secret", "line 1"}},
		{"duplicate bare", "same\nsame\n", []string{"line 2", "same secret"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, tc.file)
			_, err := NewTokens(config.Auth{Enabled: true, TokenFile: path})
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrConfig) {
				t.Errorf("error %q does not wrap ErrConfig", err)
			}
			for _, s := range append(tc.contains, path) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			for _, secret := range []string{"secret", "sec ret", "same", "one", "two"} {
				if strings.Contains(err.Error(), ":"+secret) || strings.Contains(err.Error(), `"`+secret+`"`) {
					t.Errorf("error %q quotes the secret %q", err, secret)
				}
			}
		})
	}
	_, err := NewTokens(config.Auth{Enabled: true, Tokens: []string{"ok:x", "bad:"}})
	if err == nil || !strings.Contains(err.Error(), "auth.tokens[1]") {
		t.Errorf("bad config entry: error %v does not name auth.tokens[1]", err)
	}
	_, err = NewTokens(config.Auth{Enabled: true, Tokens: []string{"dup"}, TokenFile: writeFile(t, "dup\n")})
	if err == nil || !strings.Contains(err.Error(), "auth.tokens[0]") {
		t.Errorf("duplicate across config and file: error %v does not name the first place", err)
	}
}

func TestTokensFileErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	_, err := NewTokens(config.Auth{Enabled: true, Tokens: []string{"a:b"}, TokenFile: missing})
	if !errors.Is(err, ErrConfig) || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "auth.token_file") {
		t.Errorf("missing file: error %v", err)
	}
}

func TestTokensNoneConfigured(t *testing.T) {
	for name, c := range map[string]config.Auth{
		"nothing":        {Enabled: true},
		"empty list":     {Enabled: true, Tokens: []string{}},
		"comments only":  {Enabled: true, TokenFile: writeFile(t, "# none yet\n\n")},
		"empty file":     {Enabled: true, TokenFile: writeFile(t, "")},
		"write_only too": {Enabled: true, WriteOnly: true},
	} {
		_, err := NewTokens(c)
		if !errors.Is(err, ErrNoTokens) || !errors.Is(err, ErrConfig) {
			t.Errorf("%s: error %v, want ErrNoTokens and ErrConfig", name, err)
		}
		if _, err := NewAuthorizer(c, config.ACL{}); !errors.Is(err, ErrNoTokens) {
			t.Errorf("%s: NewAuthorizer error %v, want ErrNoTokens", name, err)
		}
	}
	if tk, err := NewTokens(config.Auth{}); err != nil || tk.Len() != 0 {
		t.Errorf("disabled auth without tokens: %v, %v", tk, err)
	}
}
