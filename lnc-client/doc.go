// Package lance is the Go client of the LANCE stream server: a pipelined,
// goroutine-safe connection (Client) that follows leader redirects, topic
// administration by name, a batching, idempotent Producer, a Consumer that
// iterates over records, offset stores (FileOffsetStore,
// ServerOffsetStore) from which a consumer resumes after its last Commit,
// consumer groups (GroupConsumer) and a deterministic replay of several
// topics in sort-key order (MergedReplay).
//
// Import it as
//
//	import lance "github.com/lance-go/lance/lnc-client"
//
// A Client speaks LWP v1 (docs/LWP.md) over one TCP or TLS connection and
// matches replies to requests by their order, which the LANCE-Go server
// keeps. Records are TLV-framed (lnc-core/tlv) so that consumers can find
// their boundaries in the byte stream. Offsets are byte positions in a
// topic's log. Produced records are stored once per Producer (see
// WithIdempotence); consumers deliver at least once across restarts.
// docs/client.md describes the design and what is not there yet.
package lance
