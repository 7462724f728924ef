package security

import (
	"fmt"
	"strings"

	"github.com/lance-go/lance/lance/internal/config"
)

// Op is what a request does to a topic. The values are those of the
// server's own operation type, so converting between them is a plain
// conversion.
type Op int

// Operations.
const (
	// Produce: ingest frames.
	Produce Op = iota + 1
	// Consume: Fetch, Subscribe, Unsubscribe, CommitOffset.
	Consume
	// Admin: CreateTopic, CreateTopicWithRetention, DeleteTopic,
	// SetRetention.
	Admin
	// Describe: GetTopic, and the per-topic filter of ListTopics. A
	// principal may describe every topic it may produce to, consume from
	// or administer, and the topics a rule grants "describe" on.
	Describe
)

func (o Op) String() string {
	switch o {
	case Produce:
		return "produce"
	case Consume:
		return "consume"
	case Admin:
		return "admin"
	case Describe:
		return "describe"
	}
	return fmt.Sprintf("op(%d)", int(o))
}

// verb is the phrase used in denial messages.
func (o Op) verb() string {
	switch o {
	case Produce:
		return "produce to"
	case Consume:
		return "consume from"
	case Admin:
		return "administer"
	case Describe:
		return "describe"
	}
	return "use (" + o.String() + ")"
}

func (o Op) valid() bool { return o >= Produce && o <= Describe }

// replyError is an error whose text is sent verbatim in an ErrorResponse.
type replyError string

func (e replyError) Error() string { return string(e) }

// Sentinels returned by Allow and CheckAuth; their Error() text is the
// ErrorResponse text for the client.
var (
	// ErrAuthRequired: token authentication is on and the request needs an
	// authenticated connection. The text is upstream's.
	ErrAuthRequired error = replyError("Authentication required")
	// ErrDenied: an ACL refused the request. Allow returns a *DeniedError,
	// which wraps it.
	ErrDenied error = replyError("Access denied")
)

// DeniedError is the refusal of one request by the ACL. Its text is
//
//	Access denied: <principal> may not <verb> topic '<topic>'
//
// with <verb> one of "produce to", "consume from", "administer",
// "describe". When the principal has no right at all on the topic (so it
// would not see it in ListTopics) the name is left out, as in
// "Access denied: anonymous may not consume from this topic", so that
// probing topic ids does not reveal names.
type DeniedError struct {
	Principal Principal
	Op        Op
	Topic     string
	// Hidden is set when the topic name is left out of the text.
	Hidden bool
}

func (e *DeniedError) Error() string {
	if e.Hidden {
		return fmt.Sprintf("%s: %s may not %s this topic", ErrDenied, e.Principal, e.Op.verb())
	}
	return fmt.Sprintf("%s: %s may not %s topic '%s'", ErrDenied, e.Principal, e.Op.verb(), e.Topic)
}

// Unwrap makes errors.Is(err, ErrDenied) true.
func (e *DeniedError) Unwrap() error { return ErrDenied }

// Authorizer applies config.Auth and config.ACL. It is immutable once
// built and safe for concurrent use.
type Authorizer struct {
	authEnabled bool
	writeOnly   bool
	tokens      *Tokens

	aclEnabled   bool
	defaultAllow bool
	rules        []rule
}

// NewAuthorizer checks and compiles config.Auth and config.ACL. With
// auth disabled the token settings are not read; with the ACL disabled its
// rules are not read. Errors wrap ErrConfig (and ErrNoTokens for an enabled
// auth without tokens) and name the offending key.
func NewAuthorizer(auth config.Auth, acl config.ACL) (*Authorizer, error) {
	a := &Authorizer{authEnabled: auth.Enabled, writeOnly: auth.WriteOnly, tokens: &Tokens{}}
	if auth.Enabled {
		t, err := NewTokens(auth)
		if err != nil {
			return nil, err
		}
		a.tokens = t
	}
	if acl.Enabled {
		a.aclEnabled = true
		switch strings.ToLower(acl.Default) {
		case "", "deny":
		case "allow":
			a.defaultAllow = true
		default:
			return nil, fmt.Errorf("%w: acl.default %q: want \"deny\" or \"allow\"", ErrConfig, acl.Default)
		}
		if a.defaultAllow && len(acl.Rules) > 0 {
			return nil, fmt.Errorf("%w: acl.default is \"allow\" but acl.rules is not empty: rules only grant access, so with a default of allow they would have no effect", ErrConfig)
		}
		for i, r := range acl.Rules {
			cr, err := compileRule(r)
			if err != nil {
				return nil, fmt.Errorf("%w: acl.rules[%d].%w", ErrConfig, i, err)
			}
			a.rules = append(a.rules, cr)
		}
	}
	return a, nil
}

// AuthEnabled reports whether token authentication is on.
func (a *Authorizer) AuthEnabled() bool { return a.authEnabled }

// ACLEnabled reports whether the ACL is on.
func (a *Authorizer) ACLEnabled() bool { return a.aclEnabled }

// Tokens returns the loaded tokens (empty when auth is disabled).
func (a *Authorizer) Tokens() *Tokens { return a.tokens }

// Authenticate handles the token command. cur is the connection's current
// principal (from its certificate, or an earlier token).
//
//   - An empty token is refused: (cur, false).
//   - With auth disabled every other token is accepted and the principal is
//     unchanged: (cur, true), as upstream.
//   - A configured token is accepted and its principal replaces cur, even a
//     certificate principal: the token names the identity the client chose
//     to act as.
//   - Any other token is refused and cur is returned unchanged; a
//     connection that authenticated before stays authenticated as before.
func (a *Authorizer) Authenticate(cur Principal, token string) (Principal, bool) {
	if token == "" {
		return cur, false
	}
	if !a.authEnabled {
		return cur, true
	}
	if p, ok := a.tokens.Check(token); ok {
		return p, true
	}
	return cur, false
}

// NeedsAuth reports whether op requires an authenticated connection: never
// with auth disabled; only Produce and Admin with write_only; every
// operation otherwise. Authenticate, keepalives and GetClusterStatus are
// not operations and never need it.
func (a *Authorizer) NeedsAuth(op Op) bool {
	if !a.authEnabled {
		return false
	}
	if a.writeOnly && (op == Consume || op == Describe) {
		return false
	}
	return true
}

// CheckAuth applies only the authentication rule: ErrAuthRequired if op
// needs an authenticated connection and this one is not, else nil. The
// server calls it for ListTopics (with Describe) before filtering the list
// with Visible.
func (a *Authorizer) CheckAuth(authenticated bool, op Op) error {
	if !authenticated && a.NeedsAuth(op) {
		return ErrAuthRequired
	}
	return nil
}

// Allow decides one request: nil, ErrAuthRequired, or a *DeniedError
// (errors.Is(err, ErrDenied)). authenticated is whether the connection's
// token command succeeded; a client certificate alone does not
// authenticate. The authentication rule is applied first, then the ACL.
// topic is the topic's name, matched exactly and case-sensitively; a name
// that is not a valid topic name (empty, longer than 255 bytes, or with a
// byte outside A-Z a-z 0-9 -) matches no rule. An unknown op is always
// denied.
func (a *Authorizer) Allow(p Principal, authenticated bool, op Op, topic string) error {
	if err := a.CheckAuth(authenticated, op); err != nil {
		return err
	}
	if !op.valid() {
		return &DeniedError{Principal: p, Op: op, Topic: topic, Hidden: !a.Visible(p, topic)}
	}
	if !a.aclEnabled {
		return nil
	}
	granted := a.granted(p, topic)
	if granted.has(op) {
		return nil
	}
	return &DeniedError{Principal: p, Op: op, Topic: topic, Hidden: granted == 0}
}

// Visible reports whether p may see topic in ListTopics, that is whether
// the ACL grants p any operation on it. It ignores authentication, which
// the server checks once per request with CheckAuth. Without an ACL every
// topic is visible.
func (a *Authorizer) Visible(p Principal, topic string) bool {
	return !a.aclEnabled || a.granted(p, topic) != 0
}

// granted returns the operations the ACL lets p do on topic. With the ACL
// enabled and no matching rule it is everything for default "allow" and
// nothing for "deny".
func (a *Authorizer) granted(p Principal, topic string) opSet {
	var s opSet
	matched := false
	if validTopicName(topic) {
		for i := range a.rules {
			r := &a.rules[i]
			if r.matchPrincipal(p) && r.matchTopic(topic) {
				s |= r.ops
				matched = true
			}
		}
	}
	if !matched && a.defaultAllow {
		return opAll
	}
	return s
}
