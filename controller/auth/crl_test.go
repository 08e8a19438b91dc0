package auth_test

import (
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netaiops/netaiops/controller/auth"
	"github.com/netaiops/netaiops/controller/certs"
)

func loadCert(t *testing.T, dir, certFile, keyFile string) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, certFile), filepath.Join(dir, keyFile))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return cert, pair.PrivateKey.(crypto.Signer)
}

func TestParseCRL(t *testing.T) {
	dir := t.TempDir()
	if _, err := certs.Generate(certs.Options{Dir: dir, Agents: []string{"edge-1", "edge-2"}}); err != nil {
		t.Fatal(err)
	}
	ca, caKey := loadCert(t, dir, certs.CAFile, certs.CAKeyFile)
	cf1, kf1 := certs.AgentFiles("edge-1")
	edge1, _ := loadCert(t, dir, cf1, kf1)
	cf2, kf2 := certs.AgentFiles("edge-2")
	edge2, _ := loadCert(t, dir, cf2, kf2)
	next := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: time.Now(), NextUpdate: next,
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: edge2.SerialNumber, RevocationTime: time.Now()}}}, ca, caKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"der": der, "pem": pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})} {
		crl, err := auth.ParseCRL(data, name, []*x509.Certificate{ca})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !crl.Revoked(edge2) || crl.Revoked(edge1) || crl.Len() != 1 || !crl.NextUpdate.Equal(next) {
			t.Errorf("%s: revoked edge-2 %v, edge-1 %v, len %d, next update %s", name, crl.Revoked(edge2), crl.Revoked(edge1), crl.Len(), crl.NextUpdate)
		}
	}
	// The same serial from another issuer is not revoked.
	other := *edge2
	other.RawIssuer = []byte("another issuer")
	if crl, _ := auth.ParseCRL(der, "der", []*x509.Certificate{ca}); crl.Revoked(&other) {
		t.Error("a serial of another issuer is revoked")
	}

	for data, want := range map[string]string{
		"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n": `CRL file f: PEM block "CERTIFICATE", want "X509 CRL"`,
		"-----BEGIN nothing": "CRL file f: no PEM block in it",
		"not a CRL":          "CRL file f: list 1: x509:",
	} {
		if _, err := auth.ParseCRL([]byte(data), "f", []*x509.Certificate{ca}); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("ParseCRL(%q): got %v, want %s...", data, err, want)
		}
	}
	if _, err := auth.ParseCRL(der, "f", []*x509.Certificate{edge1}); err == nil || !strings.Contains(err.Error(), `CRL file f: list 1 (issuer "CN=netaiops lab CA"): not signed by a CA of the client CA bundle`) {
		t.Errorf("CRL checked against the wrong CA: %v", err)
	}
}

// FuzzParseCRL: no input makes the CRL parser panic, and whatever it
// accepts answers Revoked.
func FuzzParseCRL(f *testing.F) {
	dir := f.TempDir()
	if _, err := certs.Generate(certs.Options{Dir: dir, Agents: []string{"edge-1"}}); err != nil {
		f.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, certs.CAFile), filepath.Join(dir, certs.CAKeyFile))
	if err != nil {
		f.Fatal(err)
	}
	ca, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		f.Fatal(err)
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: time.Now(), NextUpdate: time.Now().Add(time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: big.NewInt(42), RevocationTime: time.Now()}}}, ca, pair.PrivateKey.(crypto.Signer))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(der)
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}))
	f.Add([]byte("-----BEGIN X509 CRL-----\n-----END X509 CRL-----\n"))
	f.Add([]byte{})
	probe := &x509.Certificate{RawIssuer: ca.RawSubject, SerialNumber: big.NewInt(42)}
	f.Fuzz(func(t *testing.T, data []byte) {
		crl, err := auth.ParseCRL(data, "fuzz", []*x509.Certificate{ca})
		if err != nil {
			return
		}
		_ = crl.Revoked(probe)
		_ = crl.Len()
	})
}
