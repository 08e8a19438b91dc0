package snmp

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gosnmp/gosnmp"
)

// Limits that keep a misbehaving device from keeping a poll busy forever.
const (
	// maxVarbindsPerWalk bounds one table walk (a device inventing rows).
	maxVarbindsPerWalk = 2_000_000
	// maxBulkShrinks bounds how often a walk retries a timed-out GetBulk
	// with fewer repetitions before it gives up.
	maxBulkShrinks = 2
)

// Walk faults that end one walk but keep what it read: the poll goes on and
// counts them, because a device with one broken table (LLDP and IPv6 tables
// are known for it) is still reachable and its other tables are good.
var (
	errNotIncreasing = errors.New("OID not increasing")
	errTooManyRows   = fmt.Errorf("more than %d varbinds", maxVarbindsPerWalk)
)

// walkFault is a walk that ended early on a device bug; the rows read before
// it are kept.
type walkFault struct {
	table string
	err   error
}

func (f walkFault) Error() string { return "walk " + f.table + ": " + f.err.Error() }

// walkStats says how a walk went, for the poll's counters.
type walkStats struct {
	requests int
	varbinds int
	fellBack bool // switched from GetBulk to GetNext
	shrunk   bool // lowered max-repetitions after tooBig or a timeout
}

// walk reads every instance under root (".1.3.6.1.2.1.2.2.1"), in order, and
// hands each varbind to fn. v2c/v3 use GetBulk with s.maxReps, v1 and
// devices that answer GetBulk badly use GetNext. It stops at endOfMibView,
// at the first OID outside root, and, keeping what was read, at an OID that
// does not increase (a device loop).
func (s *session) walk(ctx context.Context, root string, fn func(v *gosnmp.SnmpPDU)) (walkStats, error) {
	var st walkStats
	prefix := root + "."
	last := root
	shrinks := 0
	for {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		bulk := !s.noBulk && s.version != gosnmp.Version1
		var pkt *gosnmp.SnmpPacket
		var err error
		st.requests++
		if bulk {
			pkt, err = s.g.GetBulk([]string{last}, 0, s.maxReps)
		} else {
			pkt, err = s.g.GetNext([]string{last})
		}
		if err != nil {
			cerr := s.classify(ctx, pkt, err)
			if bulk && errors.Is(cerr, ErrTimeout) && s.maxReps > 1 && shrinks < maxBulkShrinks {
				// Some agents cannot build a large GetBulk answer within the
				// timeout (or their answer is lost in fragments): ask for less.
				shrinks++
				s.maxReps = max(1, s.maxReps/4)
				st.shrunk = true
				continue
			}
			return st, cerr
		}
		s.engineOK = true
		if bulk && (pkt.Error == gosnmp.TooBig || (pkt.Error == gosnmp.NoError && len(pkt.Variables) == 0)) {
			if pkt.Error == gosnmp.TooBig && s.maxReps > 1 {
				s.maxReps = max(1, s.maxReps/2)
				st.shrunk = true
				continue
			}
			s.noBulk, st.fellBack = true, true // an empty or unfittable GetBulk answer: walk with GetNext
			continue
		}
		if bulk && pkt.Error != gosnmp.NoError && pkt.Error != gosnmp.NoSuchName {
			s.noBulk, st.fellBack = true, true // GenErr and friends on GetBulk: some agents do GetNext only
			continue
		}
		if pkt.Error == gosnmp.NoSuchName {
			return st, nil // v1's end of the MIB view
		}
		if pkt.Error != gosnmp.NoError {
			return st, fmt.Errorf("after %s: device answered %s (error index %d)", last, pkt.Error, pkt.ErrorIndex)
		}
		if len(pkt.Variables) == 0 {
			return st, fmt.Errorf("after %s: empty response", last)
		}
		for i := range pkt.Variables {
			v := &pkt.Variables[i]
			switch v.Type {
			case gosnmp.EndOfMibView, gosnmp.NoSuchObject, gosnmp.NoSuchInstance:
				return st, nil
			}
			if !strings.HasPrefix(v.Name, prefix) {
				return st, nil // past the table
			}
			if compareOIDs(v.Name, last) <= 0 {
				return st, fmt.Errorf("%w: %s after %s", errNotIncreasing, v.Name, last)
			}
			if st.varbinds++; st.varbinds > maxVarbindsPerWalk {
				return st, errTooManyRows
			}
			fn(v)
			last = v.Name
		}
		if !bulk && len(pkt.Variables) != 1 {
			return st, nil
		}
	}
}

// get reads scalars, at most s.maxOIDs per request. Objects the device lacks
// are left out: noSuchObject/noSuchInstance in v2c/v3, and in v1, where a
// missing object fails the whole request with noSuchName, by asking again
// without it. A tooBig answer halves the request.
func (s *session) get(ctx context.Context, oids []string, fn func(v *gosnmp.SnmpPDU)) (int, error) {
	requests := 0
	chunk := max(s.maxOIDs, 1)
next:
	for len(oids) > 0 {
		n := min(chunk, len(oids))
		batch := append([]string(nil), oids[:n]...)
		for len(batch) > 0 {
			requests++
			pkt, err := s.g.Get(batch)
			if err != nil {
				return requests, s.classify(ctx, pkt, err)
			}
			s.engineOK = true
			if pkt.Error == gosnmp.NoSuchName && pkt.ErrorIndex >= 1 && int(pkt.ErrorIndex) <= len(batch) {
				i := int(pkt.ErrorIndex) - 1
				batch = append(batch[:i:i], batch[i+1:]...)
				continue
			}
			if pkt.Error == gosnmp.TooBig && n > 1 {
				chunk = n / 2
				continue next
			}
			if pkt.Error != gosnmp.NoError {
				return requests, fmt.Errorf("device answered %s (error index %d)", pkt.Error, pkt.ErrorIndex)
			}
			for i := range pkt.Variables {
				v := &pkt.Variables[i]
				switch v.Type {
				case gosnmp.NoSuchObject, gosnmp.NoSuchInstance, gosnmp.EndOfMibView, gosnmp.Null:
					continue
				}
				fn(v)
			}
			break
		}
		oids = oids[n:]
	}
	return requests, nil
}

// compareOIDs compares two dotted OIDs (or OID suffixes) numerically
// without allocating: it finds the first differing byte and compares the
// sub-identifiers there by their number of digits, then by that byte.
// Sub-identifiers are written without leading zeros, as gosnmp does.
func compareOIDs(a, b string) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	if i == len(a) && i == len(b) {
		return 0
	}
	da, db := digitsAt(a, i), digitsAt(b, i)
	switch {
	case da != db:
		// The sub-identifier with more digits left is larger; one that
		// ended ('.' or the end) has none.
		if da < db {
			return -1
		}
		return 1
	case da > 0:
		if a[i] < b[i] {
			return -1
		}
		return 1
	case i == len(a):
		return -1 // a is a prefix of b
	case i == len(b):
		return 1
	}
	return 0
}

// digitsAt counts the digits of s from i to the next '.' or the end.
func digitsAt(s string, i int) int {
	n := 0
	for i+n < len(s) && s[i+n] != '.' {
		n++
	}
	return n
}
