package certs

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGenerate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	res, err := Generate(Options{Dir: dir, Agents: []string{"edge-1"}, Hosts: []string{"ctl.example.net", "192.0.2.7"}})
	if err != nil || res.ReusedCA || len(res.Files) != 6 {
		t.Fatalf("Generate: %+v %v", res, err)
	}
	ca := readCert(t, filepath.Join(dir, CAFile))
	roots := x509.NewCertPool()
	roots.AddCert(ca)

	server := readCert(t, filepath.Join(dir, ServerFile))
	for _, host := range []string{"localhost", "127.0.0.1", "::1", "ctl.example.net", "192.0.2.7"} {
		if _, err := server.Verify(x509.VerifyOptions{Roots: roots, DNSName: host}); err != nil {
			t.Errorf("server certificate for %s: %v", host, err)
		}
	}
	if _, err := server.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("the server certificate passes as a client certificate")
	}
	cf, kf := AgentFiles("edge-1")
	agent := readCert(t, filepath.Join(dir, cf))
	if _, err := agent.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("agent certificate: %v", err)
	}
	if len(agent.URIs) != 1 || agent.URIs[0].String() != "spiffe://netaiops/agent/edge-1" || agent.Subject.CommonName != "edge-1" {
		t.Errorf("agent identity: %v %q", agent.URIs, agent.Subject.CommonName)
	}
	if fi, err := os.Stat(filepath.Join(dir, kf)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("agent key mode: %v %v", fi, err)
	}

	// A second run adds an agent under the same CA.
	res, err = Generate(Options{Dir: dir, Agents: []string{"edge-2"}})
	if err != nil || !res.ReusedCA {
		t.Fatalf("second Generate: %+v %v", res, err)
	}
	cf2, _ := AgentFiles("edge-2")
	if _, err := readCert(t, filepath.Join(dir, cf2)).Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("edge-2 is not signed by the first CA: %v", err)
	}
	if _, err := Generate(Options{Dir: dir, Agents: []string{"a/b"}}); err == nil {
		t.Error("agent id with a slash accepted")
	}
}
