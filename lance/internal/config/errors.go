package config

import (
	"errors"
	"strings"
)

// Sentinels for errors.Is. Every error Load returns wraps exactly one of
// them (a joined error may wrap several).
var (
	// ErrInvalid: a value is malformed, out of range, or inconsistent
	// with another key.
	ErrInvalid = errors.New("invalid configuration value")
	// ErrUnknownKey: the file names a key or section lance does not have.
	ErrUnknownKey = errors.New("unknown configuration key")
	// ErrUsage: the command line is wrong (unknown flag, stray argument,
	// flags that cannot be combined).
	ErrUsage = errors.New("bad command line")
)

// KeyError is a problem with one configuration key. Key is the dotted toml
// name ("io.backend"); Source, when known, says where the value came from
// (the file, an environment variable or a flag).
type KeyError struct {
	Key    string
	Source string
	Msg    string
	// Kind is ErrInvalid or ErrUnknownKey.
	Kind error
	// Err is the underlying cause, if any.
	Err error
}

func (e *KeyError) Error() string {
	var b strings.Builder
	b.WriteString(e.Key)
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Source != "" {
		b.WriteString(" (set by ")
		b.WriteString(e.Source)
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap exposes both the sentinel and the cause.
func (e *KeyError) Unwrap() []error {
	errs := make([]error, 0, 2)
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

func invalid(key, msg string) *KeyError {
	return &KeyError{Key: key, Msg: msg, Kind: ErrInvalid}
}

func invalidCause(key, msg string, cause error) *KeyError {
	return &KeyError{Key: key, Msg: msg, Kind: ErrInvalid, Err: cause}
}

func unknownKey(key, msg string) *KeyError {
	return &KeyError{Key: key, Msg: msg, Kind: ErrUnknownKey}
}

// joinKeyErrors turns a list into one error (nil for none).
func joinKeyErrors(errs []*KeyError) error {
	if len(errs) == 0 {
		return nil
	}
	if len(errs) == 1 {
		return errs[0]
	}
	all := make([]error, len(errs))
	for i, e := range errs {
		all[i] = e
	}
	return errors.Join(all...)
}
