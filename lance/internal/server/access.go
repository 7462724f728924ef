package server

// Op is what a request does to a topic, for access control.
type Op uint8

// Operations.
const (
	OpProduce  Op = iota + 1 // ingest
	OpConsume                // fetch, subscribe, commit, offset lookups
	OpAdmin                  // create, delete, set retention
	OpDescribe               // list and get topics: allowed with any of the above
)

func (o Op) String() string {
	switch o {
	case OpProduce:
		return "produce"
	case OpConsume:
		return "consume"
	case OpAdmin:
		return "admin"
	case OpDescribe:
		return "describe"
	}
	return "unknown"
}

// Identity is who a connection speaks for.
type Identity struct {
	// Principal is the certificate principal (mTLS) or, once the token
	// command succeeded, the token's principal; "" is anonymous.
	Principal string
	// Authenticated is set by a successful token command.
	Authenticated bool
	// Handle is the access layer's own value for this identity.
	Handle any
}

// Access decides who may do what. Implementations are safe for concurrent
// use.
type Access interface {
	// Authenticate checks a token of the token command (0x08) and
	// returns the identity the connection takes on. ok false rejects it
	// (the identity is then unchanged). With token auth disabled every
	// token is accepted.
	Authenticate(current Identity, token string) (id Identity, ok bool)
	// Allow returns nil if id may do op on topic, or an error whose text
	// is the ErrorResponse to send.
	Allow(id Identity, op Op, topic string) error
	// CheckAuth returns nil if id passes the token requirement for op,
	// whatever the topic (ListTopics checks it, then filters the topics
	// with Allow).
	CheckAuth(id Identity, op Op) error
}

// AllowAll is the Access of a server without auth and ACLs.
type AllowAll struct{}

// Authenticate accepts every token.
func (AllowAll) Authenticate(cur Identity, _ string) (Identity, bool) {
	cur.Authenticated = true
	return cur, true
}

// Allow allows everything.
func (AllowAll) Allow(Identity, Op, string) error { return nil }

// CheckAuth requires nothing.
func (AllowAll) CheckAuth(Identity, Op) error { return nil }
