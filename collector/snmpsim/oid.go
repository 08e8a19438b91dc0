package snmpsim

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// OID is a numeric object identifier. Comparison is by sub-identifier, so
// .1.3.6.1.2.1.2.2.1.10.2 sorts before .1.3.6.1.2.1.2.2.1.10.10, which plain
// string order gets wrong.
type OID []uint32

var errEmptyOID = errors.New("empty oid")

// ParseOID parses a dotted OID with or without the leading dot.
func ParseOID(s string) (OID, error) {
	return appendOID(nil, s)
}

// appendOID parses s into dst[:0] so that the request path can reuse one
// buffer per worker.
func appendOID(dst OID, s string) (OID, error) {
	dst = dst[:0]
	s = strings.TrimPrefix(s, ".")
	if s == "" {
		return nil, errEmptyOID
	}
	var n uint64
	digits := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '.' {
			if digits == 0 {
				return nil, fmt.Errorf("parse oid %q: empty sub-identifier", s)
			}
			dst = append(dst, uint32(n))
			n, digits = 0, 0
			continue
		}
		if c < '0' || c > '9' {
			return nil, fmt.Errorf("parse oid %q: unexpected character %q", s, c)
		}
		n = n*10 + uint64(c-'0')
		digits++
		if n > 0xFFFFFFFF {
			return nil, fmt.Errorf("parse oid %q: sub-identifier exceeds 32 bits", s)
		}
	}
	if digits == 0 {
		return nil, fmt.Errorf("parse oid %q: empty sub-identifier", s)
	}
	return append(dst, uint32(n)), nil
}

// String renders the OID with a leading dot, the form gosnmp uses.
func (o OID) String() string {
	var b strings.Builder
	b.Grow(len(o) * 4)
	for _, v := range o {
		b.WriteByte('.')
		b.WriteString(strconv.FormatUint(uint64(v), 10))
	}
	return b.String()
}

// Compare orders OIDs numerically, a prefix before its extensions.
func (o OID) Compare(p OID) int {
	n := min(len(o), len(p))
	for i := 0; i < n; i++ {
		if o[i] != p[i] {
			if o[i] < p[i] {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(o) < len(p):
		return -1
	case len(o) > len(p):
		return 1
	}
	return 0
}

// HasPrefix reports whether p is a prefix of o.
func (o OID) HasPrefix(p OID) bool {
	return len(o) >= len(p) && o[:len(p)].Compare(p) == 0
}

// validBER reports whether BER can encode the OID as a value (first arc 0..2,
// second arc below 40 unless the first is 2, two to 128 arcs).
func (o OID) validBER() bool {
	if len(o) < 2 || len(o) > 128 || o[0] > 2 {
		return false
	}
	if o[0] < 2 && o[1] >= 40 {
		return false
	}
	return true
}
