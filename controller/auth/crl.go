package auth

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"time"
)

// CRL is a set of revoked client certificates, read from X.509 certificate
// revocation lists whose signatures were checked against the client CAs.
type CRL struct {
	// revoked maps an issuer's raw subject to the serial numbers it revoked.
	revoked map[string]map[string]bool
	n       int
	// NextUpdate is the earliest next-update time of the lists (zero when
	// none says); a list past it is stale and should be replaced.
	NextUpdate time.Time
}

// LoadCRL reads a CRL file: one DER revocation list, or PEM with one or
// more "X509 CRL" blocks. Each list must be signed by one of issuers (the
// certificates of --client-ca).
func LoadCRL(path string, issuers []*x509.Certificate) (*CRL, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load CRL: %w", err)
	}
	return ParseCRL(data, path, issuers)
}

// ParseCRL parses the CRL file format of LoadCRL; filename is used in
// errors only.
func ParseCRL(data []byte, filename string, issuers []*x509.Certificate) (*CRL, error) {
	var ders [][]byte
	if bytes.Contains(data, []byte("-----BEGIN")) {
		rest := data
		for {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			if b.Type != "X509 CRL" {
				return nil, fmt.Errorf("CRL file %s: PEM block %q, want \"X509 CRL\"", filename, b.Type)
			}
			ders = append(ders, b.Bytes)
		}
		if len(ders) == 0 {
			return nil, fmt.Errorf("CRL file %s: no PEM block in it", filename)
		}
	} else {
		ders = [][]byte{data}
	}
	c := &CRL{revoked: map[string]map[string]bool{}}
	for i, der := range ders {
		rl, err := x509.ParseRevocationList(der)
		if err != nil {
			return nil, fmt.Errorf("CRL file %s: list %d: %w", filename, i+1, err)
		}
		var signer *x509.Certificate
		for _, ca := range issuers {
			if bytes.Equal(ca.RawSubject, rl.RawIssuer) && rl.CheckSignatureFrom(ca) == nil {
				signer = ca
				break
			}
		}
		if signer == nil {
			return nil, fmt.Errorf("CRL file %s: list %d (issuer %q): not signed by a CA of the client CA bundle", filename, i+1, rl.Issuer.String())
		}
		set := c.revoked[string(rl.RawIssuer)]
		if set == nil {
			set = map[string]bool{}
			c.revoked[string(rl.RawIssuer)] = set
		}
		for _, e := range rl.RevokedCertificateEntries {
			if !set[serialKey(e.SerialNumber)] {
				set[serialKey(e.SerialNumber)] = true
				c.n++
			}
		}
		if !rl.NextUpdate.IsZero() && (c.NextUpdate.IsZero() || rl.NextUpdate.Before(c.NextUpdate)) {
			c.NextUpdate = rl.NextUpdate
		}
	}
	return c, nil
}

func serialKey(n *big.Int) string { return n.Text(16) }

// Len is the number of revoked certificates.
func (c *CRL) Len() int {
	if c == nil {
		return 0
	}
	return c.n
}

// Revoked reports whether cert is listed by a revocation list of its issuer.
func (c *CRL) Revoked(cert *x509.Certificate) bool {
	if c == nil || cert == nil {
		return false
	}
	return c.revoked[string(cert.RawIssuer)][serialKey(cert.SerialNumber)]
}
