// Package certs makes a small certificate authority for a lab: a CA, a
// server certificate for the controller and client certificates for agents
// (mTLS), as PEM files. It is what `netaiops-controller certs` runs and what
// tests use to talk TLS over real sockets. Production deployments bring
// their own PKI; nothing else in the controller depends on this package.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
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
	"strings"
	"time"

	"github.com/netaiops/netaiops/controller/auth"
)

// AgentURIPrefix starts the URI SAN that names an agent in its client
// certificate: spiffe://netaiops/agent/<agent id>. The controller takes an
// agent's identity from it (or, without one, from the subject CN).
const AgentURIPrefix = auth.AgentURIPrefix

// File names under the output directory.
const (
	CAFile     = "ca.crt"
	CAKeyFile  = "ca.key"
	ServerFile = "server.crt"
	ServerKey  = "server.key"
)

// AgentFiles returns the certificate and key file names of an agent.
func AgentFiles(id string) (cert, key string) {
	return "agent-" + id + ".crt", "agent-" + id + ".key"
}

// Options says what to create.
type Options struct {
	// Dir receives the files; it is created (mode 0700).
	Dir string
	// Hosts are extra DNS names or IP addresses of the server certificate;
	// localhost, 127.0.0.1 and ::1 are always included.
	Hosts []string
	// Agents are agent ids that get a client certificate each.
	Agents []string
	// Validity of the leaf certificates (default 1 year; the CA gets 5).
	Validity time.Duration
}

// Result lists the files written.
type Result struct {
	ReusedCA bool
	Files    []string
}

// Generate writes the CA (or reuses ca.crt and ca.key already in Dir, so
// agents can be added later), a server certificate and one client
// certificate per agent. Keys are written with mode 0600.
func Generate(o Options) (Result, error) {
	if o.Dir == "" {
		return Result{}, errors.New("generate certificates: empty output directory")
	}
	for _, id := range o.Agents {
		if id == "" || strings.ContainsAny(id, " \t\n/\\") {
			return Result{}, fmt.Errorf("generate certificates: bad agent id %q: must be non-empty without whitespace, \"/\" or \"\\\"", id)
		}
	}
	if o.Validity <= 0 {
		o.Validity = 365 * 24 * time.Hour
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return Result{}, fmt.Errorf("generate certificates: %w", err)
	}
	var res Result
	ca, caKey, reused, err := loadOrCreateCA(o.Dir)
	if err != nil {
		return Result{}, fmt.Errorf("generate certificates: %w", err)
	}
	res.ReusedCA = reused
	if !reused {
		res.Files = append(res.Files, filepath.Join(o.Dir, CAFile), filepath.Join(o.Dir, CAKeyFile))
	}

	server := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "netaiops-controller"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	for _, h := range o.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			server.IPAddresses = append(server.IPAddresses, ip)
		} else if h != "" {
			server.DNSNames = append(server.DNSNames, h)
		}
	}
	if err := issue(o.Dir, ServerFile, ServerKey, server, ca, caKey, o.Validity); err != nil {
		return Result{}, fmt.Errorf("generate certificates: server: %w", err)
	}
	res.Files = append(res.Files, filepath.Join(o.Dir, ServerFile), filepath.Join(o.Dir, ServerKey))

	for _, id := range o.Agents {
		u, err := url.Parse(AgentURIPrefix + id)
		if err != nil {
			return Result{}, fmt.Errorf("generate certificates: agent %s: %w", id, err)
		}
		leaf := &x509.Certificate{
			Subject:     pkix.Name{CommonName: id},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			URIs:        []*url.URL{u},
		}
		cf, kf := AgentFiles(id)
		if err := issue(o.Dir, cf, kf, leaf, ca, caKey, o.Validity); err != nil {
			return Result{}, fmt.Errorf("generate certificates: agent %s: %w", id, err)
		}
		res.Files = append(res.Files, filepath.Join(o.Dir, cf), filepath.Join(o.Dir, kf))
	}
	return res, nil
}

func loadOrCreateCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, bool, error) {
	certPEM, cerr := os.ReadFile(filepath.Join(dir, CAFile))
	keyPEM, kerr := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if cerr == nil && kerr == nil {
		ca, key, err := parsePair(certPEM, keyPEM)
		if err != nil {
			return nil, nil, false, fmt.Errorf("reuse CA in %s: %w", dir, err)
		}
		return ca, key, true, nil
	}
	if !errors.Is(cerr, os.ErrNotExist) || !errors.Is(kerr, os.ErrNotExist) {
		return nil, nil, false, fmt.Errorf("CA in %s: need both %s and %s or neither", dir, CAFile, CAKeyFile)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, false, fmt.Errorf("CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "netaiops lab CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(5 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, false, fmt.Errorf("CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, false, fmt.Errorf("CA certificate: %w", err)
	}
	if err := writePair(dir, CAFile, CAKeyFile, der, key); err != nil {
		return nil, nil, false, err
	}
	return ca, key, false, nil
}

func parsePair(certPEM, keyPEM []byte) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, nil, errors.New("no CERTIFICATE block")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, nil, errors.New("no key block")
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("key is %T, want ECDSA", k)
	}
	return cert, key, nil
}

func issue(dir, certName, keyName string, tmpl, ca *x509.Certificate, caKey *ecdsa.PrivateKey, validity time.Duration) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("key: %w", err)
	}
	tmpl.SerialNumber = serial()
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(validity)
	if tmpl.NotAfter.After(ca.NotAfter) {
		tmpl.NotAfter = ca.NotAfter
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("certificate: %w", err)
	}
	return writePair(dir, certName, keyName, der, key)
}

func writePair(dir, certName, keyName string, der []byte, key *ecdsa.PrivateKey) error {
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, keyName), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, certName), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return fmt.Errorf("write certificate: %w", err)
	}
	return nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // the platform's randomness is broken
	}
	return n
}
