// Package testpki creates throw-away certificate authorities and
// certificates for tests: a CA, a server certificate for localhost and
// 127.0.0.1, and client certificates that are good, signed by an untrusted
// CA, expired, or for another common name. Keys are ECDSA P-256; every
// file is PEM.
//
// It is for tests only (of package security and end-to-end tests of the
// server). Production code must not import it; a test in package security
// enforces that.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/lance-go/lance/lance/internal/config"
)

// Cert is one generated certificate and its key, in memory and on disk.
type Cert struct {
	// CN is the subject common name ("" for none).
	CN string
	// CertFile holds the certificate, KeyFile its PKCS #8 private key.
	CertFile string
	KeyFile  string
	Cert     *x509.Certificate
	Key      *ecdsa.PrivateKey
}

// TLSCertificate returns the certificate and key for a tls.Config.
func (c *Cert) TLSCertificate() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{c.Cert.Raw}, PrivateKey: c.Key, Leaf: c.Cert}
}

// PKI is a set of certificates written to Dir. File names are
// "<name>.pem" and "<name>-key.pem" with the names given below.
type PKI struct {
	Dir string
	// CA ("ca") signs everything the server should trust; its file is the
	// server's tls.ca_file.
	CA Cert
	// OtherCA ("other-ca") is a second CA nobody trusts.
	OtherCA Cert
	// Server ("server") has CN "localhost", DNS name "localhost" and IP
	// addresses 127.0.0.1 and ::1, for server authentication only.
	Server Cert
	// Client ("client") is a good client certificate, CN "alice".
	Client Cert
	// ClientBob ("client-bob") is a good client certificate, CN "bob".
	ClientBob Cert
	// ClientWrongCA ("client-wrong-ca") has CN "alice" but is signed by
	// OtherCA.
	ClientWrongCA Cert
	// ClientExpired ("client-expired") has CN "alice" and expired a day
	// ago.
	ClientExpired Cert
	// ClientNoCN ("client-no-cn") is signed by CA but has no subject
	// common name, only O=lance-test and the URI SAN
	// spiffe://lance.test/alice.
	ClientNoCN Cert
}

// Spec describes a certificate for Issue.
type Spec struct {
	// CN is the subject common name; empty means none.
	CN string
	// Organization, when set, is the subject O.
	Organization string
	// URIs are URI subject alternative names.
	URIs []string
	// NotBefore and NotAfter default to an hour ago and a day from now.
	NotBefore, NotAfter time.Time
	// Issuer signs the certificate; nil means the PKI's CA.
	Issuer *Cert
	// Server makes a server certificate (localhost, 127.0.0.1, ::1,
	// server authentication); otherwise it is for client authentication.
	Server bool
	// CA makes a certificate authority; Server is then ignored.
	CA bool
}

// New creates dir if needed and writes a fresh PKI into it.
func New(dir string) (*PKI, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("testpki: %w", err)
	}
	p := &PKI{Dir: dir}
	var err error
	if p.CA, err = p.Issue("ca", Spec{CN: "lance test CA", CA: true}); err != nil {
		return nil, err
	}
	if p.OtherCA, err = p.Issue("other-ca", Spec{CN: "untrusted test CA", CA: true}); err != nil {
		return nil, err
	}
	if p.Server, err = p.Issue("server", Spec{CN: "localhost", Server: true}); err != nil {
		return nil, err
	}
	if p.Client, err = p.Issue("client", Spec{CN: "alice"}); err != nil {
		return nil, err
	}
	if p.ClientBob, err = p.Issue("client-bob", Spec{CN: "bob"}); err != nil {
		return nil, err
	}
	if p.ClientWrongCA, err = p.Issue("client-wrong-ca", Spec{CN: "alice", Issuer: &p.OtherCA}); err != nil {
		return nil, err
	}
	now := time.Now()
	if p.ClientExpired, err = p.Issue("client-expired", Spec{CN: "alice", NotBefore: now.Add(-72 * time.Hour), NotAfter: now.Add(-24 * time.Hour)}); err != nil {
		return nil, err
	}
	if p.ClientNoCN, err = p.Issue("client-no-cn", Spec{Organization: "lance-test", URIs: []string{"spiffe://lance.test/alice"}}); err != nil {
		return nil, err
	}
	return p, nil
}

// Issue creates a certificate and writes it as name.pem and name-key.pem in
// p.Dir. A CA certificate with no Issuer is self-signed.
func (p *PKI) Issue(name string, s Spec) (Cert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Cert{}, fmt.Errorf("testpki: %s: %w", name, err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return Cert{}, fmt.Errorf("testpki: %s: %w", name, err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: s.CN},
		NotBefore:    s.NotBefore,
		NotAfter:     s.NotAfter,
	}
	if s.Organization != "" {
		tmpl.Subject.Organization = []string{s.Organization}
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = now.Add(-time.Hour)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = now.Add(24 * time.Hour)
	}
	for _, u := range s.URIs {
		pu, err := url.Parse(u)
		if err != nil {
			return Cert{}, fmt.Errorf("testpki: %s: %w", name, err)
		}
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	switch {
	case s.CA:
		tmpl.IsCA = true
		tmpl.BasicConstraintsValid = true
		tmpl.MaxPathLenZero = true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	case s.Server:
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	default:
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	parent, signer := tmpl, any(key)
	switch {
	case s.Issuer != nil:
		parent, signer = s.Issuer.Cert, s.Issuer.Key
	case !s.CA:
		if p.CA.Cert == nil {
			return Cert{}, errors.New("testpki: " + name + ": no CA to sign with")
		}
		parent, signer = p.CA.Cert, p.CA.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		return Cert{}, fmt.Errorf("testpki: %s: %w", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return Cert{}, fmt.Errorf("testpki: %s: %w", name, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Cert{}, fmt.Errorf("testpki: %s: %w", name, err)
	}
	c := Cert{
		CN:       s.CN,
		CertFile: filepath.Join(p.Dir, name+".pem"),
		KeyFile:  filepath.Join(p.Dir, name+"-key.pem"),
		Cert:     cert,
		Key:      key,
	}
	if err := writePEM(c.CertFile, "CERTIFICATE", der, 0o644); err != nil {
		return Cert{}, err
	}
	if err := writePEM(c.KeyFile, "PRIVATE KEY", keyDER, 0o600); err != nil {
		return Cert{}, err
	}
	return c, nil
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	data := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := os.WriteFile(path, data, mode); err != nil {
		return fmt.Errorf("testpki: %w", err)
	}
	return nil
}

// ServerConfig returns a config.TLS using the server certificate and,
// with clientCAs, the CA file for client certificates.
func (p *PKI) ServerConfig(clientCAs, requireClientCert bool) config.TLS {
	c := config.TLS{Enabled: true, CertFile: p.Server.CertFile, KeyFile: p.Server.KeyFile, RequireClientCert: requireClientCert}
	if clientCAs {
		c.CAFile = p.CA.CertFile
	}
	return c
}

// ClientTLS returns a client configuration that trusts p.CA, expects the
// server name "localhost" and, when c is not nil, presents c whatever CAs
// the server says it accepts (so the server's verification is what gets
// tested, not the client's choice).
func (p *PKI) ClientTLS(c *Cert) *tls.Config {
	roots := x509.NewCertPool()
	roots.AddCert(p.CA.Cert)
	cfg := &tls.Config{RootCAs: roots, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if c != nil {
		tc := c.TLSCertificate()
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &tc, nil
		}
	}
	return cfg
}
