package security

import (
	"crypto/tls"
	"encoding/asn1"
)

// Kind says where a principal's name comes from.
type Kind uint8

// Principal kinds. The zero value is KindAnonymous, so the zero Principal is
// the anonymous one.
const (
	KindAnonymous   Kind = iota // no verified certificate, no token
	KindCertificate             // a verified TLS client certificate
	KindToken                   // a token accepted by the Authenticate command
)

func (k Kind) String() string {
	switch k {
	case KindAnonymous:
		return "anonymous"
	case KindCertificate:
		return "certificate"
	case KindToken:
		return "token"
	}
	return "unknown"
}

// AnonymousName is the name of the anonymous principal, and the ACL rule
// principal that matches it.
const AnonymousName = "anonymous"

// Principal is who a connection speaks for. Name is what ACL rules are
// written against and what logs and denial messages show:
//
//   - KindCertificate: "CN=" followed by the subject common name of the
//     verified client certificate, byte for byte (no case folding, no
//     trimming, no escaping). A certificate whose subject does not hold
//     exactly one non-empty common name gets the name "CN=", which only the
//     rule principal "*" matches.
//   - KindToken: "token:" followed by the token's name (see Tokens).
//   - KindAnonymous: "anonymous".
//
// Two principals are the same when both fields are equal. The zero
// Principal and Anonymous are both anonymous; test with IsAnonymous.
type Principal struct {
	Name string
	Kind Kind
}

// Anonymous is the principal of a connection with neither a verified client
// certificate nor an accepted token.
var Anonymous = Principal{Name: AnonymousName, Kind: KindAnonymous}

// String returns the name, or "anonymous" for the zero Principal.
func (p Principal) String() string {
	if p.Kind == KindAnonymous {
		return AnonymousName
	}
	return p.Name
}

// IsAnonymous reports whether p carries no identity.
func (p Principal) IsAnonymous() bool { return p.Kind == KindAnonymous }

// CertificatePrincipal returns the principal for a certificate whose subject
// common name is cn. An empty cn gives the unnamed certificate principal
// "CN=".
func CertificatePrincipal(cn string) Principal {
	return Principal{Name: cnPrefix + cn, Kind: KindCertificate}
}

const (
	cnPrefix    = "CN="
	tokenPrefix = "token:"
)

var oidCommonName = asn1.ObjectIdentifier{2, 5, 4, 3}

// PrincipalFromConn names the client of a finished TLS handshake. Only a
// certificate the server verified counts: with no verified chain (no TLS,
// no client certificate, or a server that asks for certificates without
// verifying them) the result is Anonymous. The name comes from the leaf's
// subject common name alone; subject alternative names (DNS, URI, e-mail)
// are not used, so a rule "CN=alice" means exactly the certificates the CA
// issued with the subject CN "alice".
//
// A subject with several CN attributes is treated like one without a CN:
// which of them a tool shows differs, so none of them is trusted as the
// name.
func PrincipalFromConn(cs *tls.ConnectionState) Principal {
	if cs == nil || !cs.HandshakeComplete || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return Anonymous
	}
	leaf := cs.VerifiedChains[0][0]
	cn, n := "", 0
	for _, atv := range leaf.Subject.Names {
		if !atv.Type.Equal(oidCommonName) {
			continue
		}
		n++
		if s, ok := atv.Value.(string); ok {
			cn = s
		}
	}
	if n != 1 {
		cn = ""
	}
	return CertificatePrincipal(cn)
}
