package dbstate_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/dbstate"
	"github.com/evenkeel/evenkeel/dbstate/dbtest"
)

// writeCerts writes a CA and a server certificate for 127.0.0.1 signed by it, as PEM files in dir.
func writeCerts(t *testing.T, dir, prefix string) (ca, cert, key string) {
	t.Helper()
	caKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: prefix + " test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment}
	caCert, _ := x509.ParseCertificate(caDER)
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, prefix+name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER),
		write("server-key.pem", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(srvKey))
}

func TestTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, cert, key := writeCerts(t, dir, "good-")
	otherCA, _, _ := writeCerts(t, dir, "other-")
	tp := dbtest.BuildWith(t, "a", map[string][]string{"a": {"--ssl-ca=" + ca, "--ssl-cert=" + cert, "--ssl-key=" + key}})
	a := tp.Get("a")
	connect := func(cfgCA string, verify bool) (string, error) {
		tc, err := dbstate.TLSConfig(cfgCA, "", "", verify)
		if err != nil {
			t.Fatal(err)
		}
		c := dbstate.NewClient(dbstate.Credentials{User: dbtest.AdminUser, Password: dbtest.AdminPassword, TLS: tc}, 3*time.Second, nil)
		defer c.Close()
		db, err := c.DB(a.Addr())
		if err != nil {
			return "", err
		}
		var name, cipher string
		err = db.QueryRowContext(context.Background(), "SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&name, &cipher)
		return cipher, err
	}
	t.Run("verified", func(t *testing.T) {
		cipher, err := connect(ca, true)
		if err != nil || cipher == "" {
			t.Fatalf("cipher %q, err %v", cipher, err)
		}
	})
	t.Run("wrong CA is refused", func(t *testing.T) {
		if _, err := connect(otherCA, true); err == nil {
			t.Fatal("connected although the server certificate is not signed by the CA")
		}
	})
	t.Run("skip-verify still encrypts", func(t *testing.T) {
		cipher, err := connect("", false)
		if err != nil || cipher == "" {
			t.Fatalf("cipher %q, err %v", cipher, err)
		}
	})
}
