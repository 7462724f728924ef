package security

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/lance-go/lance/lance/internal/config"
)

// ErrNoTokens is returned (wrapped, together with ErrConfig) when token
// authentication is enabled but neither auth.tokens nor auth.token_file
// yields a token. Starting anyway would either lock every client out or,
// as upstream did, silently switch authentication off.
var ErrNoTokens = errors.New("auth.enabled is true but no tokens are configured")

// maxNameLen bounds a token name.
const maxNameLen = 64

// Tokens is the set of accepted tokens. Only SHA-256 digests of the secrets
// are kept, and a lookup compares the digest of the candidate with every
// entry in constant time, so neither memory dumps nor response timing give
// the secrets away.
//
// Each entry, in auth.tokens or on a line of auth.token_file, is either
//
//	<name>:<secret>   the principal is "token:<name>"
//	<secret>          the principal is "token:sha256-<first 12 hex digits
//	                  of SHA-256(secret)>"
//
// A name is 1 to 64 of A-Z a-z 0-9 . _ - . An entry holding a ":" is always
// split at its first ":" into name and secret, so a secret containing ":"
// needs a name in front of it. Spaces around
// the name and the secret are ignored; a secret must be valid UTF-8 and may
// not contain white space or control characters. In the file, blank lines
// and lines whose first non-blank character is "#" are skipped; a "#" after
// a secret is part of the secret. Two entries with the same name or the
// same secret are an error.
//
// A Tokens is safe for concurrent use.
type Tokens struct {
	entries []tokenEntry
}

type tokenEntry struct {
	digest    [sha256.Size]byte
	principal Principal
}

// compare is the comparison Check uses; a variable so that tests can verify
// it is called once per entry whatever the candidate.
var compare = subtle.ConstantTimeCompare

// NewTokens loads the tokens of c.Tokens and c.TokenFile (when set). With
// c.Enabled and no token at all it fails with ErrNoTokens. Errors wrap
// ErrConfig and say which entry or file line is wrong, without quoting the
// secret.
func NewTokens(c config.Auth) (*Tokens, error) {
	t := &Tokens{}
	seen := map[string]string{}      // name -> where
	digests := map[[32]byte]string{} // digest -> where
	add := func(where, entry string) error {
		e, err := parseToken(entry)
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrConfig, where, err)
		}
		if prev, ok := digests[e.digest]; ok {
			return fmt.Errorf("%w: %s: the same secret is already listed at %s", ErrConfig, where, prev)
		}
		if prev, ok := seen[e.principal.Name]; ok {
			return fmt.Errorf("%w: %s: name %q is already used at %s", ErrConfig, where, e.principal.Name, prev)
		}
		digests[e.digest] = where
		seen[e.principal.Name] = where
		t.entries = append(t.entries, e)
		return nil
	}
	for i, s := range c.Tokens {
		if err := add(fmt.Sprintf("auth.tokens[%d]", i), s); err != nil {
			return nil, err
		}
	}
	if c.TokenFile != "" {
		data, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("%w: auth.token_file: %w", ErrConfig, err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || line[0] == '#' {
				continue
			}
			if err := add(fmt.Sprintf("auth.token_file %q line %d", c.TokenFile, i+1), line); err != nil {
				return nil, err
			}
		}
	}
	if c.Enabled && len(t.entries) == 0 {
		return nil, fmt.Errorf("%w: %w", ErrConfig, ErrNoTokens)
	}
	return t, nil
}

// parseToken reads one "name:secret" or "secret" entry.
func parseToken(entry string) (tokenEntry, error) {
	name, secret, named := strings.Cut(entry, ":")
	if !named {
		secret, name = name, ""
	}
	name, secret = strings.TrimSpace(name), strings.TrimSpace(secret)
	if named {
		if err := checkTokenName(name); err != nil {
			return tokenEntry{}, err
		}
	}
	if secret == "" {
		return tokenEntry{}, errors.New("empty token")
	}
	if !utf8.ValidString(secret) {
		return tokenEntry{}, errors.New("token is not valid UTF-8")
	}
	for _, r := range secret {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return tokenEntry{}, errors.New("token contains white space or a control character")
		}
	}
	digest := sha256.Sum256([]byte(secret))
	if !named {
		name = "sha256-" + hex.EncodeToString(digest[:6])
	}
	return tokenEntry{digest: digest, principal: TokenPrincipal(name)}, nil
}

// checkTokenName validates the name part of "name:secret".
func checkTokenName(name string) error {
	if name == "" {
		return errors.New("empty token name before \":\"")
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("token name longer than %d bytes", maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("token name %q: only A-Z a-z 0-9 . _ - are allowed", name)
		}
	}
	return nil
}

// TokenPrincipal returns the principal of the token named name.
func TokenPrincipal(name string) Principal {
	return Principal{Name: tokenPrefix + name, Kind: KindToken}
}

// Len returns the number of tokens.
func (t *Tokens) Len() int { return len(t.entries) }

// Check returns the principal of token and true if it is one of the
// configured tokens. The candidate is hashed and compared with every entry,
// without stopping at a match, so the time taken depends only on the number
// of entries. An empty token never matches.
func (t *Tokens) Check(token string) (Principal, bool) {
	if token == "" {
		return Principal{}, false
	}
	digest := sha256.Sum256([]byte(token))
	found := -1
	for i := range t.entries {
		eq := compare(digest[:], t.entries[i].digest[:])
		found = subtle.ConstantTimeSelect(eq, i, found)
	}
	if found < 0 {
		return Principal{}, false
	}
	return t.entries[found].principal, true
}
