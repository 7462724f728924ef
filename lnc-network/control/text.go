package control

import "unicode/utf8"

// AppendError appends an ErrorResponse (0xFF) payload: the text as plain
// UTF-8, with no terminator and no JSON. Invalid UTF-8 in text is written
// as U+FFFD, the way lossyString repairs it, so the payload is always
// valid UTF-8.
func AppendError(dst []byte, text string) []byte {
	if utf8.ValidString(text) {
		return append(dst, text...)
	}
	return appendLossy(dst, []byte(text))
}

// DecodeError decodes an ErrorResponse payload. Invalid UTF-8 is repaired
// the way Rust's String::from_utf8_lossy does it (which is what the Rust
// client shows), so the returned text is always usable, even when the
// error is not nil. The error, a *PayloadError matching ErrMalformed, only
// reports that a repair took place. An empty payload is the empty text.
func DecodeError(p []byte) (string, error) {
	if utf8.Valid(p) {
		return string(p), nil
	}
	return string(appendLossy(nil, p)), malformed(CodeErrorResponse, len(p), "",
		"text is not valid UTF-8; invalid sequences replaced by U+FFFD")
}

// lossyString converts b to a string, replacing invalid UTF-8 the way
// Rust's String::from_utf8_lossy does. The reference server decodes topic
// names that way, so an invalid name shows up in error texts exactly as
// this function renders it.
func lossyString(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return string(appendLossy(nil, b))
}

// appendLossy appends b to dst with every maximal ill-formed subsequence
// replaced by one U+FFFD. This is the Unicode "substitution of maximal
// subparts" practice Rust follows, and differs from Go's own conversions:
// []rune and range loops replace every bad byte separately, and
// strings.ToValidUTF8 replaces a whole run of bad bytes at once. For
// example E2 82 41 becomes U+FFFD 'A' (the E2 82 prefix could have started
// a valid character), while FF FE becomes two U+FFFD.
func appendLossy(dst, b []byte) []byte {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			continue
		}
		// size is the length of the sequence c announces; lo and hi bound
		// the byte after it, which is tighter than 80..BF for a few leads
		// (this excludes overlong forms, surrogates and values > U+10FFFF).
		size, lo, hi := 0, byte(0x80), byte(0xBF)
		switch {
		case c >= 0xC2 && c <= 0xDF:
			size = 2
		case c == 0xE0:
			size, lo = 3, 0xA0
		case c == 0xED:
			size, hi = 3, 0x9F
		case c >= 0xE1 && c <= 0xEF:
			size = 3
		case c == 0xF0:
			size, lo = 4, 0x90
		case c == 0xF4:
			size, hi = 4, 0x8F
		case c >= 0xF1 && c <= 0xF3:
			size = 4
		}
		n := 1 // bytes of b[i:] that belong to this (possibly bad) sequence
		for n < size && i+n < len(b) {
			d := b[i+n]
			if n == 1 && (d < lo || d > hi) || n > 1 && (d < 0x80 || d > 0xBF) {
				break
			}
			n++
		}
		if size != 0 && n == size {
			dst = append(dst, b[i:i+n]...)
		} else {
			dst = utf8.AppendRune(dst, utf8.RuneError)
		}
		i += n
	}
	return dst
}
