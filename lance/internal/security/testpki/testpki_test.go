package testpki

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"testing"
	"time"
)

func TestNew(t *testing.T) {
	p, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(p.CA.Cert)
	verify := func(c *Cert, usage x509.ExtKeyUsage, at time.Time) error {
		_, err := c.Cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}, CurrentTime: at})
		return err
	}
	now := time.Now()
	for name, c := range map[string]*Cert{"client": &p.Client, "bob": &p.ClientBob, "no CN": &p.ClientNoCN} {
		if err := verify(c, x509.ExtKeyUsageClientAuth, now); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := verify(&p.Server, x509.ExtKeyUsageServerAuth, now); err != nil {
		t.Errorf("server: %v", err)
	}
	if err := p.Server.Cert.VerifyHostname("127.0.0.1"); err != nil {
		t.Errorf("server: %v", err)
	}
	if err := verify(&p.ClientWrongCA, x509.ExtKeyUsageClientAuth, now); err == nil {
		t.Error("wrong-CA client verifies against the CA")
	}
	if err := verify(&p.ClientExpired, x509.ExtKeyUsageClientAuth, now); err == nil {
		t.Error("expired client verifies")
	}
	if p.Client.Cert.Subject.CommonName != "alice" || p.ClientBob.Cert.Subject.CommonName != "bob" || p.ClientNoCN.Cert.Subject.CommonName != "" {
		t.Error("unexpected common names")
	}
	for _, c := range []*Cert{&p.CA, &p.OtherCA, &p.Server, &p.Client, &p.ClientBob, &p.ClientWrongCA, &p.ClientExpired, &p.ClientNoCN} {
		for file, typ := range map[string]string{c.CertFile: "CERTIFICATE", c.KeyFile: "PRIVATE KEY"} {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := pem.Decode(data); b == nil || b.Type != typ {
				t.Errorf("%s: no %s block", file, typ)
			}
		}
		st, err := os.Stat(c.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", c.KeyFile, st.Mode())
		}
	}
}
