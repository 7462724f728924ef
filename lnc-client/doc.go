// Package lance is the Go client of the LANCE stream server: a pipelined,
// goroutine-safe connection (Client), topic administration by name, a
// batching Producer, a Consumer that iterates over records, and offset
// stores (FileOffsetStore, ServerOffsetStore) from which a consumer
// resumes after its last Commit.
//
// Import it as
//
//	import lance "github.com/lance-go/lance/lnc-client"
//
// A Client speaks LWP v1 (docs/LWP.md) over one TCP or TLS connection and
// matches replies to requests by their order, which the LANCE-Go server
// keeps. Records are TLV-framed (lnc-core/tlv) so that consumers can find
// their boundaries in the byte stream. Offsets are byte positions in a
// topic's log. Delivery is at least once: see Producer. docs/client.md
// describes the design and what is not there yet.
package lance
