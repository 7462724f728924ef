package security

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/lance-go/lance/lance/internal/config"
)

// ErrConfig is wrapped by every error about the security configuration
// (config.TLS, config.Auth, config.ACL and the files they name).
var ErrConfig = errors.New("invalid security configuration")

// ServerTLS builds the listener's TLS configuration from config.TLS.
// It returns (nil, nil) when TLS is disabled.
//
//   - The server certificate chain and key are read from cert_file and
//     key_file; an expired certificate is refused.
//   - The minimum protocol version is TLS 1.2, or TLS 1.3 when min_version is
//     "1.3".
//   - Client certificates: without ca_file none are asked for; with ca_file
//     a certificate is asked for and, if one is sent, verified against the
//     CAs in that file (a bad certificate fails the handshake; no
//     certificate makes an anonymous connection); with ca_file and
//     require_client_cert a verified certificate is mandatory.
//
// Errors wrap ErrConfig and name the key and the file.
func ServerTLS(c config.TLS) (*tls.Config, error) {
	if !c.Enabled {
		if c.RequireClientCert {
			return nil, fmt.Errorf("%w: tls.require_client_cert is set but tls.enabled is false", ErrConfig)
		}
		return nil, nil
	}
	minVersion := uint16(tls.VersionTLS12)
	switch c.MinVersion {
	case "", "1.2":
	case "1.3":
		minVersion = tls.VersionTLS13
	default:
		return nil, fmt.Errorf("%w: tls.min_version %q: want \"1.2\" or \"1.3\"", ErrConfig, c.MinVersion)
	}
	cert, err := loadKeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion:   minVersion,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.NoClientCert,
	}
	switch {
	case c.CAFile != "":
		pool, err := loadCAs(c.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		if c.RequireClientCert {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
	case c.RequireClientCert:
		return nil, fmt.Errorf("%w: tls.require_client_cert needs tls.ca_file to verify client certificates", ErrConfig)
	}
	return cfg, nil
}

// loadKeyPair reads the server certificate chain and its private key,
// naming the file at fault in every error.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	if certFile == "" {
		return tls.Certificate{}, fmt.Errorf("%w: tls.cert_file is required when tls.enabled is true", ErrConfig)
	}
	if keyFile == "" {
		return tls.Certificate{}, fmt.Errorf("%w: tls.key_file is required when tls.enabled is true", ErrConfig)
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%w: tls.cert_file: %w", ErrConfig, err)
	}
	certs, err := parseCertificates(certPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%w: tls.cert_file %q: %w", ErrConfig, certFile, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%w: tls.key_file: %w", ErrConfig, err)
	}
	if !hasPrivateKey(keyPEM) {
		return tls.Certificate{}, fmt.Errorf("%w: tls.key_file %q: no PEM private key found", ErrConfig, keyFile)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%w: tls.cert_file %q with tls.key_file %q: %w", ErrConfig, certFile, keyFile, err)
	}
	if time.Now().After(certs[0].NotAfter) {
		return tls.Certificate{}, fmt.Errorf("%w: tls.cert_file %q: certificate %q expired at %s",
			ErrConfig, certFile, certs[0].Subject.String(), certs[0].NotAfter.UTC().Format(time.RFC3339))
	}
	return pair, nil
}

// loadCAs reads the client CA bundle. Unlike x509.CertPool.AppendCertsFromPEM
// it does not skip blocks it cannot use: a key or a damaged certificate in
// the bundle is an error.
func loadCAs(caFile string) (*x509.CertPool, error) {
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("%w: tls.ca_file: %w", ErrConfig, err)
	}
	certs, err := parseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("%w: tls.ca_file %q: %w", ErrConfig, caFile, err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// parseCertificates decodes every PEM block of data, all of which must be
// certificates, and requires at least one.
func parseCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for i := 1; ; i++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is %q, want CERTIFICATE", i, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", i, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return certs, nil
}

func hasPrivateKey(data []byte) bool {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return false
		}
		switch block.Type {
		case "PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY":
			return true
		}
	}
}
