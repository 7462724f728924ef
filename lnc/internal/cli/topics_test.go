package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTopics(t *testing.T) {
	s := startServer(t)
	ep := s.ep()
	tc := func(a ...string) []string { return args([]string{"topics"}, a, ep) }

	if out := ok(t, "", tc("create", "orders")...); !strings.HasPrefix(out, "created topic orders (id ") {
		t.Errorf("create: %q", out)
	}
	fails(t, ExitError, "already exists", "", tc("create", "orders")...)
	if out := ok(t, "", tc("create", "orders", "--if-not-exists")...); !strings.Contains(out, "exists already") {
		t.Errorf("create --if-not-exists: %q", out)
	}
	out := ok(t, "", tc("create", "logs", "--max-age", "7d", "--max-bytes", "1GiB")...)
	if !strings.Contains(out, "retention of logs: max age 168h0m0s, max bytes 1073741824") {
		t.Errorf("create with retention: %q", out)
	}

	out = ok(t, "", tc("list")...)
	ls := lines(out)
	if len(ls) != 3 || !strings.HasPrefix(ls[0], "NAME") || !strings.HasPrefix(ls[1], "logs ") || !strings.HasPrefix(ls[2], "orders ") {
		t.Errorf("list:\n%s", out)
	}
	var list []topicJSON
	if err := json.Unmarshal([]byte(ok(t, "", tc("list", "-o", "json")...)), &list); err != nil || len(list) != 2 || list[1].Name != "orders" || list[1].ID == 0 || list[1].Epoch != 1 {
		t.Errorf("list json: %+v, %v", list, err)
	}
	fails(t, ExitUsage, `--output "yaml"`, "", tc("list", "-o", "yaml")...)

	out = ok(t, "", tc("get", "orders")...)
	if !strings.Contains(out, "name:    orders") && !strings.Contains(out, "name: orders") || !strings.Contains(out, "created:") {
		t.Errorf("get:\n%s", out)
	}
	var one topicJSON
	if err := json.Unmarshal([]byte(ok(t, "", tc("get", "orders", "-o", "json")...)), &one); err != nil || one.Name != "orders" {
		t.Errorf("get json: %+v, %v", one, err)
	}
	if _, err := time.Parse(time.RFC3339, one.CreatedAt); err != nil {
		t.Errorf("created_at %q: %v", one.CreatedAt, err)
	}
	fails(t, ExitError, "topic not found", "", tc("get", "nope")...)

	out = ok(t, "", tc("retention", "orders", "--max-age", "0", "--max-bytes", "10MB")...)
	if out != "retention of orders: max age unlimited, max bytes 10000000\n" {
		t.Errorf("retention: %q", out)
	}
	fails(t, ExitError, "topic not found", "", tc("retention", "nope", "--max-age", "1h", "--max-bytes", "0")...)

	// Deleting asks first, on standard input.
	r := fails(t, ExitError, "not confirmed", "n\n", tc("delete", "orders")...)
	if !strings.Contains(r.err, "Delete topic orders and all its data? [y/N]") {
		t.Errorf("no question in %q", r.err)
	}
	fails(t, ExitError, "not confirmed", "", tc("delete", "orders")...)
	ok(t, "", tc("get", "orders")...)
	if out := ok(t, "yes\n", tc("delete", "orders")...); out != "deleted topic orders\n" {
		t.Errorf("delete: %q", out)
	}
	fails(t, ExitError, "topic not found", "", tc("get", "orders")...)
	ok(t, "", tc("delete", "logs", "--yes")...)
	if out := ok(t, "", tc("list")...); out != "NAME  ID  CREATED\n" {
		t.Errorf("list after deletes: %q", out)
	}
	fails(t, ExitError, "topic not found", "", tc("delete", "logs", "-y")...)
}

func TestClusterStatus(t *testing.T) {
	s := startServer(t)
	out := ok(t, "", args([]string{"cluster", "status"}, s.ep())...)
	for _, want := range []string{"node:", "mode:   standalone", "leader: node 0 (this node)", "nodes:  1 (1 healthy)", "quorum: available"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	var st clusterJSON
	if err := json.Unmarshal([]byte(ok(t, "", args([]string{"cluster", "status", "-o", "json"}, s.ep())...)), &st); err != nil {
		t.Fatal(err)
	}
	if !st.IsLeader || st.Nodes != 1 || !st.QuorumAvailable || st.Mode != "standalone" || st.LeaderID == nil {
		t.Errorf("status json: %+v", st)
	}
}

// pki writes a CA, a server certificate for the name lance.test only (not
// for 127.0.0.1, so that --tls-server-name is needed) and a client
// certificate for CN=alice.
type pki struct {
	caFile, serverCert, serverKey, clientCert, clientKey, otherCA string
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	writePEM := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	keyPEM := func(name string, k *ecdsa.PrivateKey) string {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return writePEM(name, "PRIVATE KEY", der)
	}
	now := time.Now()
	mkCA := func(cn string) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
		k := newKey()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c, k, der
	}
	ca, caKey, caDER := mkCA("lnc test CA")
	_, _, otherDER := mkCA("another CA")
	issue := func(serial int64, cn string, dns []string, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
		k := newKey()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn}, DNSNames: dns,
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	sDER, sKey := issue(2, "lance.test", []string{"lance.test"}, x509.ExtKeyUsageServerAuth)
	cDER, cKey := issue(3, "alice", nil, x509.ExtKeyUsageClientAuth)
	return pki{
		caFile:     writePEM("ca.pem", "CERTIFICATE", caDER),
		otherCA:    writePEM("other-ca.pem", "CERTIFICATE", otherDER),
		serverCert: writePEM("server.pem", "CERTIFICATE", sDER),
		serverKey:  keyPEM("server-key.pem", sKey),
		clientCert: writePEM("alice.pem", "CERTIFICATE", cDER),
		clientKey:  keyPEM("alice-key.pem", cKey),
	}
}

func TestTLSAndToken(t *testing.T) {
	p := newPKI(t)
	s := startServer(t, "--tls-enabled", "--tls-cert-file", p.serverCert, "--tls-key-file", p.serverKey,
		"--tls-ca-file", p.caFile, "--tls-require-client-cert",
		"--auth-enabled", "--auth-tokens", "ci:s3cret")
	tls := []string{"--tls-ca", p.caFile, "--tls-server-name", "lance.test", "--tls-cert", p.clientCert, "--tls-key", p.clientKey}
	ep := args(s.ep(), []string{"--timeout", "3s"})

	// Everything right: TLS verified against the CA under the server's
	// name, a client certificate, a token.
	ok(t, "", args([]string{"produce", "-t", "secure", "--data", "hello", "--token", "s3cret"}, tls, ep)...)
	if out := ok(t, "", args([]string{"consume", "-t", "secure", "--token", "s3cret"}, tls, ep)...); out != "hello\n" {
		t.Errorf("consume over TLS: %q", out)
	}
	// The token from a file and from the environment.
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ok(t, "", args([]string{"topics", "list", "--token-file", tokenFile}, tls, ep)...)
	t.Setenv(envToken, "s3cret")
	ok(t, "", args([]string{"topics", "get", "secure"}, tls, ep)...)
	fails(t, ExitError, "Invalid token", "", args([]string{"topics", "list", "--token", "wrong"}, tls, ep)...)
	t.Setenv(envToken, "")
	fails(t, ExitError, "Authentication required", "", args([]string{"topics", "list"}, tls, ep)...)
	t.Setenv(envToken, "s3cret")

	// --tls-insecure-skip-verify needs neither CA nor name.
	ok(t, "", args([]string{"cluster", "status", "--tls-insecure-skip-verify", "--tls-cert", p.clientCert, "--tls-key", p.clientKey}, ep)...)
	// A wrong CA, a wrong name, no client certificate, no TLS at all.
	fails(t, ExitError, "certificate", "", args([]string{"cluster", "status", "--tls-ca", p.otherCA, "--tls-server-name", "lance.test", "--tls-cert", p.clientCert, "--tls-key", p.clientKey}, ep)...)
	fails(t, ExitError, "certificate", "", args([]string{"cluster", "status", "--tls-ca", p.caFile, "--tls-cert", p.clientCert, "--tls-key", p.clientKey}, ep)...)
	fails(t, ExitError, "connect to", "", args([]string{"cluster", "status", "--tls", "--tls-ca", p.caFile, "--tls-server-name", "lance.test"}, ep)...)
	fails(t, ExitError, "connect to", "", args([]string{"cluster", "status", "--timeout", "2s"}, s.ep())...)
	// Unreadable files are errors of their own.
	fails(t, ExitError, "--tls-ca", "", args([]string{"cluster", "status", "--tls-ca", filepath.Join(t.TempDir(), "none.pem")}, ep)...)
	fails(t, ExitError, "holds no PEM certificate", "", args([]string{"cluster", "status", "--tls-ca", tokenFile}, ep)...)
	fails(t, ExitError, "--tls-cert/--tls-key", "", args([]string{"cluster", "status", "--tls-cert", p.clientKey, "--tls-key", p.clientKey}, ep)...)
	fails(t, ExitError, "--token-file", "", args([]string{"cluster", "status", "--token-file", filepath.Join(t.TempDir(), "none")}, tls, ep)...)
}
