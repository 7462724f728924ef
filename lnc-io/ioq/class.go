package ioq

import (
	"errors"
	"fmt"
	"strings"
)

// Class is the priority class of a request. Lower values are served first.
type Class uint8

// The classes, highest priority first. Their values index per-class arrays
// such as Config.Capacity and Stats.Classes.
const (
	// ClassCommit holds group-commit writes and fsyncs of the ingest path,
	// and replication writes.
	ClassCommit Class = iota
	// ClassRead holds consumer reads.
	ClassRead
	// ClassBackground holds retention deletes, compaction and index
	// rebuilds.
	ClassBackground
)

// NumClasses is the number of classes; valid classes are 0 to NumClasses-1.
const NumClasses = 3

// ErrUnknownClass is returned for a class name ParseClass does not know and,
// wrapped, for a Class value out of range passed to Push or TryPush.
var ErrUnknownClass = errors.New("ioq: unknown class")

var classNames = [NumClasses]string{
	ClassCommit:     "commit",
	ClassRead:       "read",
	ClassBackground: "background",
}

// Valid reports whether c is one of the defined classes.
func (c Class) Valid() bool { return c < NumClasses }

// String returns the name ParseClass accepts: "commit", "read" or
// "background".
func (c Class) String() string {
	if c.Valid() {
		return classNames[c]
	}
	return fmt.Sprintf("class(%d)", uint8(c))
}

// ParseClass maps a configuration string to a Class. It accepts the names
// String returns, in any letter case.
func ParseClass(s string) (Class, error) {
	for c, name := range classNames {
		if strings.EqualFold(s, name) {
			return Class(c), nil
		}
	}
	return 0, fmt.Errorf("%w: %q (want commit, read or background)", ErrUnknownClass, s)
}

// MarshalText implements encoding.TextMarshaler with the class name.
func (c Class) MarshalText() ([]byte, error) {
	if !c.Valid() {
		return nil, fmt.Errorf("%w: %v", ErrUnknownClass, c)
	}
	return []byte(classNames[c]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseClass, so
// that classes can be named in JSON, TOML or flag values.
func (c *Class) UnmarshalText(text []byte) error {
	v, err := ParseClass(string(text))
	if err != nil {
		return err
	}
	*c = v
	return nil
}
