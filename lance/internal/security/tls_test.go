package security

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lance-go/lance/lance/internal/config"
	"github.com/lance-go/lance/lance/internal/security/testpki"
)

func newPKI(t *testing.T) *testpki.PKI {
	t.Helper()
	p, err := testpki.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// handshake runs one TLS handshake over a loopback TCP connection and
// returns the server's error and the principal it derived. The client reads
// one byte the server writes after a good handshake, so a rejection that
// TLS 1.3 reports only after the client's Finished is seen by both sides.
func handshake(t *testing.T, srv, cli *tls.Config) (Principal, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		p   Principal
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Server(c, srv)
		if err := tc.Handshake(); err != nil {
			done <- result{err: err}
			return
		}
		st := tc.ConnectionState()
		if _, err := tc.Write([]byte{1}); err != nil {
			done <- result{err: err}
			return
		}
		done <- result{p: PrincipalFromConn(&st)}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	tc := tls.Client(c, cli)
	cliErr := tc.Handshake()
	if cliErr == nil {
		_, cliErr = io.ReadFull(tc, make([]byte, 1))
	}
	c.Close()
	r := <-done
	if (r.err == nil) != (cliErr == nil) {
		t.Errorf("server error %v, client error %v: the two sides disagree", r.err, cliErr)
	}
	return r.p, r.err
}

func TestHandshakeMatrix(t *testing.T) {
	p := newPKI(t)
	alice := CertificatePrincipal("alice")
	bob := CertificatePrincipal("bob")
	unnamed := CertificatePrincipal("")
	type want struct {
		ok bool
		p  Principal
	}
	fail := want{}
	certs := []struct {
		name string
		cert *testpki.Cert
		// results without ca_file, with ca_file, with ca_file and
		// require_client_cert
		noCA, optional, required want
	}{
		{"no certificate", nil, want{true, Anonymous}, want{true, Anonymous}, fail},
		{"good alice", &p.Client, want{true, Anonymous}, want{true, alice}, want{true, alice}},
		{"good bob", &p.ClientBob, want{true, Anonymous}, want{true, bob}, want{true, bob}},
		{"wrong CA", &p.ClientWrongCA, want{true, Anonymous}, fail, fail},
		{"expired", &p.ClientExpired, want{true, Anonymous}, fail, fail},
		{"no CN, URI SAN only", &p.ClientNoCN, want{true, Anonymous}, want{true, unnamed}, want{true, unnamed}},
		{"server certificate used by a client", &p.Server, want{true, Anonymous}, fail, fail},
	}
	modes := []struct {
		name               string
		clientCAs, require bool
		pick               func(noCA, optional, required want) want
	}{
		{"no ca_file", false, false, func(a, _, _ want) want { return a }},
		{"ca_file", true, false, func(_, b, _ want) want { return b }},
		{"ca_file+require_client_cert", true, true, func(_, _, c want) want { return c }},
	}
	versions := []struct {
		name      string
		serverMin string
		clientMax uint16
		wantVer   uint16
	}{
		{"TLS1.2", "1.2", tls.VersionTLS12, tls.VersionTLS12},
		{"TLS1.3", "1.3", 0, tls.VersionTLS13},
	}
	for _, v := range versions {
		for _, m := range modes {
			sc := p.ServerConfig(m.clientCAs, m.require)
			sc.MinVersion = v.serverMin
			srv, err := ServerTLS(sc)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range certs {
				t.Run(v.name+"/"+m.name+"/"+c.name, func(t *testing.T) {
					cli := p.ClientTLS(c.cert)
					cli.MaxVersion = v.clientMax
					var negotiated uint16
					cli.VerifyConnection = func(cs tls.ConnectionState) error {
						negotiated = cs.Version
						return nil
					}
					w := m.pick(c.noCA, c.optional, c.required)
					got, err := handshake(t, srv, cli)
					if w.ok != (err == nil) {
						t.Fatalf("handshake error = %v, want success %v", err, w.ok)
					}
					if !w.ok {
						return
					}
					if got != w.p {
						t.Errorf("principal = %#v, want %#v", got, w.p)
					}
					if negotiated != v.wantVer {
						t.Errorf("version = %x, want %x", negotiated, v.wantVer)
					}
				})
			}
		}
	}
}

func TestMinVersion13RefusesTLS12Client(t *testing.T) {
	p := newPKI(t)
	sc := p.ServerConfig(false, false)
	sc.MinVersion = "1.3"
	srv, err := ServerTLS(sc)
	if err != nil {
		t.Fatal(err)
	}
	cli := p.ClientTLS(nil)
	cli.MaxVersion = tls.VersionTLS12
	if _, err := handshake(t, srv, cli); err == nil {
		t.Fatal("a TLS 1.2 client was accepted by a min_version 1.3 server")
	}
}

func TestServerTLSDefaults(t *testing.T) {
	p := newPKI(t)
	for _, tc := range []struct {
		clientCAs, require bool
		want               tls.ClientAuthType
	}{
		{false, false, tls.NoClientCert},
		{true, false, tls.VerifyClientCertIfGiven},
		{true, true, tls.RequireAndVerifyClientCert},
	} {
		cfg, err := ServerTLS(p.ServerConfig(tc.clientCAs, tc.require))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.ClientAuth != tc.want {
			t.Errorf("ca=%v require=%v: ClientAuth = %v, want %v", tc.clientCAs, tc.require, cfg.ClientAuth, tc.want)
		}
		if cfg.MinVersion != tls.VersionTLS12 {
			t.Errorf("MinVersion = %x, want TLS 1.2", cfg.MinVersion)
		}
		if tc.clientCAs != (cfg.ClientCAs != nil) {
			t.Errorf("ClientCAs set = %v, want %v", cfg.ClientCAs != nil, tc.clientCAs)
		}
	}
	cfg, err := ServerTLS(config.TLS{})
	if cfg != nil || err != nil {
		t.Errorf("disabled TLS: got %v, %v; want nil, nil", cfg, err)
	}
}

func TestServerTLSErrors(t *testing.T) {
	p := newPKI(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	expired, err := p.Issue("server-expired", testpki.Spec{CN: "localhost", Server: true,
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	garbage := write("garbage.pem", "not PEM at all\n")
	keyInCA := write("key-in-ca.pem", read(p.CA.CertFile)+read(p.CA.KeyFile))
	badBlock := write("bad-block.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")

	good := p.ServerConfig(true, true)
	with := func(f func(*config.TLS)) config.TLS {
		c := good
		f(&c)
		return c
	}
	cases := []struct {
		name     string
		cfg      config.TLS
		contains []string
		is       error
	}{
		{"require without enabled", config.TLS{RequireClientCert: true}, []string{"tls.require_client_cert", "tls.enabled"}, nil},
		{"no cert_file", with(func(c *config.TLS) { c.CertFile = "" }), []string{"tls.cert_file is required"}, nil},
		{"no key_file", with(func(c *config.TLS) { c.KeyFile = "" }), []string{"tls.key_file is required"}, nil},
		{"missing cert_file", with(func(c *config.TLS) { c.CertFile = missing }), []string{"tls.cert_file", missing}, fs.ErrNotExist},
		{"missing key_file", with(func(c *config.TLS) { c.KeyFile = missing }), []string{"tls.key_file", missing}, fs.ErrNotExist},
		{"missing ca_file", with(func(c *config.TLS) { c.CAFile = missing }), []string{"tls.ca_file", missing}, fs.ErrNotExist},
		{"garbage cert_file", with(func(c *config.TLS) { c.CertFile = garbage }), []string{"tls.cert_file", garbage, "no PEM certificate"}, nil},
		{"key as cert_file", with(func(c *config.TLS) { c.CertFile = p.Server.KeyFile }), []string{"tls.cert_file", p.Server.KeyFile, "PRIVATE KEY"}, nil},
		{"cert as key_file", with(func(c *config.TLS) { c.KeyFile = p.Server.CertFile }), []string{"tls.key_file", p.Server.CertFile, "no PEM private key"}, nil},
		{"key of another cert", with(func(c *config.TLS) { c.KeyFile = p.Client.KeyFile }), []string{p.Server.CertFile, p.Client.KeyFile}, nil},
		{"expired server cert", with(func(c *config.TLS) { c.CertFile, c.KeyFile = expired.CertFile, expired.KeyFile }), []string{expired.CertFile, "expired"}, nil},
		{"garbage ca_file", with(func(c *config.TLS) { c.CAFile = garbage }), []string{"tls.ca_file", garbage}, nil},
		{"key inside ca_file", with(func(c *config.TLS) { c.CAFile = keyInCA }), []string{"tls.ca_file", keyInCA, "PEM block 2"}, nil},
		{"damaged block in ca_file", with(func(c *config.TLS) { c.CAFile = badBlock }), []string{"tls.ca_file", badBlock, "PEM block 1"}, nil},
		{"require without ca_file", with(func(c *config.TLS) { c.CAFile = "" }), []string{"tls.require_client_cert needs tls.ca_file"}, nil},
		{"bad min_version", with(func(c *config.TLS) { c.MinVersion = "1.1" }), []string{"tls.min_version", `"1.1"`}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ServerTLS(tc.cfg)
			if err == nil {
				t.Fatalf("got a config, want an error")
			}
			if cfg != nil {
				t.Errorf("config not nil with an error")
			}
			if !errors.Is(err, ErrConfig) {
				t.Errorf("error %q does not wrap ErrConfig", err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q does not wrap %v", err, tc.is)
			}
			for _, s := range tc.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestPrincipalFromConn(t *testing.T) {
	cn := func(values ...string) *x509.Certificate {
		c := &x509.Certificate{}
		c.Subject.Names = append(c.Subject.Names, pkix.AttributeTypeAndValue{Type: []int{2, 5, 4, 10}, Value: "org"})
		for _, v := range values {
			c.Subject.Names = append(c.Subject.Names, pkix.AttributeTypeAndValue{Type: []int{2, 5, 4, 3}, Value: v})
		}
		return c
	}
	verified := func(c *x509.Certificate) *tls.ConnectionState {
		return &tls.ConnectionState{HandshakeComplete: true, PeerCertificates: []*x509.Certificate{c}, VerifiedChains: [][]*x509.Certificate{{c}}}
	}
	cases := []struct {
		name string
		cs   *tls.ConnectionState
		want Principal
	}{
		{"nil state", nil, Anonymous},
		{"no certificate", &tls.ConnectionState{HandshakeComplete: true}, Anonymous},
		{"unverified certificate", &tls.ConnectionState{HandshakeComplete: true, PeerCertificates: []*x509.Certificate{cn("alice")}}, Anonymous},
		{"handshake not complete", &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cn("alice")}, VerifiedChains: [][]*x509.Certificate{{cn("alice")}}}, Anonymous},
		{"one CN", verified(cn("alice")), Principal{Name: "CN=alice", Kind: KindCertificate}},
		{"CN kept byte for byte", verified(cn(" Alice,O=x ")), Principal{Name: "CN= Alice,O=x ", Kind: KindCertificate}},
		{"no CN", verified(cn()), Principal{Name: "CN=", Kind: KindCertificate}},
		{"two CNs", verified(cn("alice", "admin")), Principal{Name: "CN=", Kind: KindCertificate}},
	}
	for _, tc := range cases {
		if got := PrincipalFromConn(tc.cs); got != tc.want {
			t.Errorf("%s: got %#v, want %#v", tc.name, got, tc.want)
		}
	}
	if s := (Principal{}).String(); s != "anonymous" {
		t.Errorf("zero Principal String() = %q", s)
	}
}
