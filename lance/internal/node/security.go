package node

import (
	"crypto/tls"

	"github.com/lance-go/lance/lance/internal/config"
	"github.com/lance-go/lance/lance/internal/security"
	"github.com/lance-go/lance/lance/internal/server"
)

// securityParts are what the server needs from the [tls], [auth] and
// [acl] sections.
type securityParts struct {
	tls       *tls.Config
	access    server.Access
	principal func(*tls.ConnectionState) server.Identity
}

func newSecurity(cfg config.Config) (securityParts, error) {
	tc, err := security.ServerTLS(cfg.TLS)
	if err != nil {
		return securityParts{}, err
	}
	a, err := security.NewAuthorizer(cfg.Auth, cfg.ACL)
	if err != nil {
		return securityParts{}, err
	}
	return securityParts{
		tls:    tc,
		access: access{a},
		principal: func(st *tls.ConnectionState) server.Identity {
			p := security.PrincipalFromConn(st)
			return server.Identity{Principal: p.String(), Handle: p}
		},
	}, nil
}

// access adapts security.Authorizer to server.Access. The identity's
// Handle carries the security.Principal; its zero value is anonymous.
type access struct{ a *security.Authorizer }

func principalOf(id server.Identity) security.Principal {
	p, _ := id.Handle.(security.Principal)
	return p
}

func (x access) Authenticate(cur server.Identity, token string) (server.Identity, bool) {
	p, ok := x.a.Authenticate(principalOf(cur), token)
	if !ok {
		return cur, false
	}
	return server.Identity{Principal: p.String(), Authenticated: true, Handle: p}, true
}

func (x access) Allow(id server.Identity, op server.Op, topic string) error {
	return x.a.Allow(principalOf(id), id.Authenticated, security.Op(op), topic)
}

func (x access) CheckAuth(id server.Identity, op server.Op) error {
	return x.a.CheckAuth(id.Authenticated, security.Op(op))
}
