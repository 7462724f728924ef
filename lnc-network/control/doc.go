// Package control encodes and decodes the payloads of LWP control frames:
// the bytes that follow the 44-byte header when the frame's flags mark it
// as a control frame. The header itself, the CRCs and the framing live in
// package frame; this package never sees them.
//
// A control frame carries its command or response code in the low byte of
// the header's batch_id (see Code and CodeFromBatchID). The codes are named
// CodeXxx, which leaves the plain message names for the payload types: for
// each message Xxx that has a payload there is a type Xxx, an append-style
// encoder Xxx.AppendTo (which does not allocate when dst has room) and a
// decoder DecodeXxx. ErrorResponse payloads are plain strings, handled by
// AppendError and DecodeError. The layouts follow the Rust reference server and client,
// not the published specification where the two disagree; the digest in
// docs/LWP.md lists the differences.
//
// # Byte order and lengths
//
// Every integer in every payload is little-endian and there is no padding
// between fields. Each fixed-layout payload has a minimum size; longer
// payloads than the fixed size are accepted and the extra bytes ignored,
// as the reference server does. A shorter payload makes the decoder return
// a *PayloadError that matches ErrShortPayload with errors.Is and carries
// the exact text the reference server replies with (see ReplyText and
// AppendReply).
//
// # JSON replies
//
// TopicResponse (0x80) and ClusterStatusResponse (0x81) carry compact JSON.
// The encoders here reproduce the reference output byte for byte for the
// values the reference produces: keys of single objects in alphabetical
// order, list entries in the order id, name, created_at, topic_epoch, no
// whitespace, no HTML escaping. (Strings holding U+2028 or U+2029, which
// encoding/json escapes and serde_json does not, are the one difference;
// no valid topic name contains them.) The decoders parse the JSON and
// never compare bytes. Like the Rust client they ignore unknown keys and
// fill in defaults for missing keys or null values. Keys match exactly,
// case included (encoding/json alone would ignore case). Unlike the Rust
// client they reject a value of the wrong type or out of range instead of
// defaulting it. JSON
// payloads over MaxJSONPayload are refused unparsed.
//
// # Texts that are a wire contract
//
// ErrorResponse (0xFF) payloads are plain UTF-8 text, not JSON. The texts in
// errtext.go are the ones the reference server sends. Clients match two of
// them by substring, which makes those a wire contract that must never be
// reworded: the "NOT_LEADER: redirect to " prefix (the Rust client parses
// the leader address out of it) and "FORWARD_FAILED" (the Rust client
// retries any error containing it). The other texts are shown to users and
// matched by tests; keep them verbatim too. The single text of our own is
// the one for a topic name longer than MaxTopicNameLen, a limit the Rust
// server does not have.
package control
