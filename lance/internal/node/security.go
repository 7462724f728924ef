package node

import (
	"crypto/tls"

	"github.com/lance-go/lance/lance/internal/config"
	"github.com/lance-go/lance/lance/internal/server"
)

type security struct {
	tls       *tls.Config
	access    server.Access
	principal func(*tls.ConnectionState) server.Identity
}

func newSecurity(cfg config.Config) (security, error) {
	return security{access: server.AllowAll{}}, nil
}
