package snmpsim

import (
	"fmt"

	"github.com/gosnmp/gosnmp"
)

// peekVersion reads the version of a v1/v2c/v3 message without decoding
// the rest, so SNMPv3 (which gosnmp would need security parameters for) is
// refused before it reaches the decoder.
func peekVersion(b []byte) (int, bool) {
	if len(b) < 5 || b[0] != 0x30 {
		return 0, false
	}
	i := 2
	if b[1]&0x80 != 0 {
		n := int(b[1] & 0x7f)
		if n == 0 || n > 4 {
			return 0, false
		}
		i += n
	}
	if len(b) < i+3 || b[i] != 0x02 || b[i+1] != 1 {
		return 0, false
	}
	return int(b[i+2]), true
}

// decode runs gosnmp's decoder; it recovers from a panic in it so that no
// datagram can take the simulator down.
func decode(sc *scratch, req []byte) (pkt *gosnmp.SnmpPacket, err error) {
	defer func() {
		if r := recover(); r != nil {
			pkt, err = nil, fmt.Errorf("decoder panic: %v", r)
		}
	}()
	return sc.dec.SnmpDecodePacket(req)
}

// handle answers one datagram, or returns nil and counts why not.
func (s *Server) handle(sc *scratch, req []byte) []byte {
	c := &s.st
	c.requests.Add(1)
	ver, ok := peekVersion(req)
	if !ok {
		c.dropMalformed.Add(1)
		return nil
	}
	if ver != int(gosnmp.Version1) && ver != int(gosnmp.Version2c) {
		c.dropUnsupported.Add(1)
		return nil
	}
	pkt, err := decode(sc, req)
	if err != nil || pkt == nil {
		c.dropMalformed.Add(1)
		return nil
	}
	switch pkt.PDUType {
	case gosnmp.GetRequest, gosnmp.GetNextRequest, gosnmp.SetRequest:
	case gosnmp.GetBulkRequest:
		if pkt.Version == gosnmp.Version1 {
			c.dropUnsupported.Add(1)
			return nil
		}
	default:
		c.dropUnsupported.Add(1)
		return nil
	}
	d := s.devices[pkt.Community]
	if d == nil {
		c.dropUnknown.Add(1)
		return nil
	}
	now := s.clock().Sub(s.start).Seconds()
	if d.isSilent(now) {
		c.dropSilent.Add(1)
		return nil
	}
	snap := d.snapshot(now)
	v1 := pkt.Version == gosnmp.Version1
	resp := gosnmp.SnmpPacket{
		Version:   pkt.Version,
		Community: pkt.Community,
		PDUType:   gosnmp.GetResponse,
		RequestID: pkt.RequestID,
	}
	// The varbinds must fit maxMsg minus the message header: version (3),
	// community TLV, PDU header (<=5), request id (<=6), error status and
	// index (3+3), varbind list header (<=5), outer header (<=5).
	budget := s.maxMsg - (30 + len(pkt.Community))
	switch pkt.PDUType {
	case gosnmp.GetRequest:
		c.get.Add(1)
		resp.Variables, resp.Error, resp.ErrorIndex = s.get(sc, d, snap, pkt.Variables, v1)
	case gosnmp.GetNextRequest:
		c.getNext.Add(1)
		resp.Variables, resp.Error, resp.ErrorIndex = s.getNext(sc, d, snap, pkt.Variables, v1)
	case gosnmp.GetBulkRequest:
		c.getBulk.Add(1)
		var cut bool
		resp.Variables, cut = s.getBulk(sc, d, snap, pkt, budget)
		switch {
		case cut && len(resp.Variables) == 0:
			c.tooBig.Add(1)
			resp.Error = gosnmp.TooBig
		case cut:
			c.truncated.Add(1)
		}
	case gosnmp.SetRequest:
		// Every community is read-only, as on a monitoring-only agent.
		c.set.Add(1)
		resp.Variables = echo(sc, pkt.Variables)
		resp.Error, resp.ErrorIndex = gosnmp.NoAccess, 1
		if v1 {
			resp.Error = gosnmp.NoSuchName
		}
	}
	if pkt.PDUType != gosnmp.GetBulkRequest && resp.Error == gosnmp.NoError && vblSize(resp.Variables) > budget {
		c.tooBig.Add(1)
		resp.Error, resp.ErrorIndex, resp.Variables = gosnmp.TooBig, 0, nil
		if v1 {
			resp.Variables = echo(sc, pkt.Variables)
		}
	}
	out, err := resp.MarshalMsg()
	if err != nil || len(out) > s.maxMsg {
		c.dropEncode.Add(1)
		return nil
	}
	return out
}

// echo returns the request's names with Null values, for error responses.
func echo(sc *scratch, req []gosnmp.SnmpPDU) []gosnmp.SnmpPDU {
	out := sc.vbs[:0]
	for _, v := range req {
		out = append(out, gosnmp.SnmpPDU{Name: v.Name, Type: gosnmp.Null})
	}
	sc.vbs = out
	return out
}

// errIndex is a 1-based varbind index as gosnmp carries it (one octet).
func errIndex(i int) uint8 { return uint8(min(i+1, 255)) }

func (s *Server) get(sc *scratch, d *device, snap snapshot, req []gosnmp.SnmpPDU, v1 bool) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, uint8) {
	out := sc.vbs[:0]
	for i, v := range req {
		o, err := appendOID(sc.oid, v.Name)
		if err != nil {
			if v1 {
				return echo(sc, req), gosnmp.NoSuchName, errIndex(i)
			}
			out = append(out, gosnmp.SnmpPDU{Name: v.Name, Type: gosnmp.NoSuchObject})
			continue
		}
		sc.oid = o
		idx, found := d.tab.search(o)
		if found && !(v1 && d.tab.entries[idx].typ == gosnmp.Counter64) {
			e := &d.tab.entries[idx]
			typ, val := d.value(e, snap)
			out = append(out, gosnmp.SnmpPDU{Name: e.name, Type: typ, Value: val})
			continue
		}
		if v1 {
			sc.vbs = out
			return echo(sc, req), gosnmp.NoSuchName, errIndex(i)
		}
		typ := gosnmp.NoSuchObject
		if d.tab.instanceOf(o, idx) {
			typ = gosnmp.NoSuchInstance
		}
		out = append(out, gosnmp.SnmpPDU{Name: v.Name, Type: typ})
	}
	sc.vbs = out
	return out, gosnmp.NoError, 0
}

// instanceOf guesses whether o names a missing instance of an object the
// table has (noSuchInstance) rather than an unknown object (noSuchObject):
// a neighbour entry without its last arc (the instance) is a prefix of o.
func (t *table) instanceOf(o OID, idx int) bool {
	for _, i := range [2]int{idx - 1, idx} {
		if i < 0 || i >= len(t.entries) {
			continue
		}
		e := t.entries[i].oid
		if len(e) > 1 && len(o) >= len(e) && o.HasPrefix(e[:len(e)-1]) {
			return true
		}
	}
	return false
}

// nextIndex returns the index of the first entry after name, or len.
func (s *Server) nextIndex(sc *scratch, d *device, name string) int {
	o, err := appendOID(sc.oid, name)
	if err != nil {
		// gosnmp hands us dotted numbers, so this is out of range arcs:
		// nothing we serve follows it.
		return len(d.tab.entries)
	}
	sc.oid = o
	idx, found := d.tab.search(o)
	if found {
		idx++
	}
	return idx
}

// skipV1 advances past Counter64 entries, which SNMPv1 cannot carry
// (RFC 3584 section 4.2.2.1).
func skipV1(d *device, idx int, v1 bool) int {
	if v1 {
		for idx < len(d.tab.entries) && d.tab.entries[idx].typ == gosnmp.Counter64 {
			idx++
		}
	}
	return idx
}

func (s *Server) getNext(sc *scratch, d *device, snap snapshot, req []gosnmp.SnmpPDU, v1 bool) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, uint8) {
	out := sc.vbs[:0]
	for i, v := range req {
		idx := skipV1(d, s.nextIndex(sc, d, v.Name), v1)
		if idx >= len(d.tab.entries) {
			if v1 {
				sc.vbs = out
				return echo(sc, req), gosnmp.NoSuchName, errIndex(i)
			}
			out = append(out, gosnmp.SnmpPDU{Name: v.Name, Type: gosnmp.EndOfMibView})
			continue
		}
		e := &d.tab.entries[idx]
		typ, val := d.value(e, snap)
		out = append(out, gosnmp.SnmpPDU{Name: e.name, Type: typ, Value: val})
	}
	sc.vbs = out
	return out, gosnmp.NoError, 0
}

// getBulk follows RFC 3416 4.2.3: non-repeaters get one successor each, then
// up to max-repetitions rows of the repeaters. Rows stop early when every
// repeater is at endOfMibView; varbinds are cut from the end to fit the size
// budget and the varbind cap (cut reports that).
func (s *Server) getBulk(sc *scratch, d *device, snap snapshot, pkt *gosnmp.SnmpPacket, budget int) (out []gosnmp.SnmpPDU, cut bool) {
	req := pkt.Variables
	nonRep := min(int(pkt.NonRepeaters), len(req))
	maxRep := int(pkt.MaxRepetitions)
	out = sc.vbs[:0]
	used := 0
	// add appends v if it fits; nlen is its name's BER length, or -1.
	add := func(v gosnmp.SnmpPDU, nlen int) bool {
		if nlen < 0 {
			nlen = oidContent(v.Name)
		}
		n := vbSizeN(v, nlen)
		if used+n > budget || len(out) >= s.maxVB {
			return false
		}
		used += n
		out = append(out, v)
		return true
	}
	defer func() { sc.vbs = out }()
	for _, v := range req[:nonRep] {
		idx := s.nextIndex(sc, d, v.Name)
		vb, nlen := gosnmp.SnmpPDU{Name: v.Name, Type: gosnmp.EndOfMibView}, -1
		if idx < len(d.tab.entries) {
			e := &d.tab.entries[idx]
			typ, val := d.value(e, snap)
			vb, nlen = gosnmp.SnmpPDU{Name: e.name, Type: typ, Value: val}, e.nlen
		}
		if !add(vb, nlen) {
			return out, true
		}
	}
	reps := req[nonRep:]
	if len(reps) == 0 || maxRep <= 0 {
		return out, false
	}
	sc.pos = sc.pos[:0]
	sc.cur = sc.cur[:0]
	for _, v := range reps {
		sc.pos = append(sc.pos, s.nextIndex(sc, d, v.Name))
		sc.cur = append(sc.cur, v.Name)
	}
	n := len(d.tab.entries)
	for range maxRep {
		ended := 0
		for j := range reps {
			idx := sc.pos[j]
			vb, nlen := gosnmp.SnmpPDU{Name: sc.cur[j], Type: gosnmp.EndOfMibView}, -1
			if idx < n {
				e := &d.tab.entries[idx]
				typ, val := d.value(e, snap)
				vb, nlen = gosnmp.SnmpPDU{Name: e.name, Type: typ, Value: val}, e.nlen
				sc.cur[j] = e.name
				sc.pos[j] = idx + 1
			} else {
				ended++
			}
			if !add(vb, nlen) {
				return out, true
			}
		}
		if ended == len(reps) {
			break
		}
	}
	return out, false
}

// berLen is the size of a BER length field for n content octets.
func berLen(n int) int {
	switch {
	case n < 0x80:
		return 1
	case n < 0x100:
		return 2
	case n < 0x10000:
		return 3
	case n < 0x1000000:
		return 4
	}
	return 5
}

func tlv(n int) int { return 1 + berLen(n) + n }

// oidContent is the BER content size of a dotted OID (0 when it does not
// parse; the encoder rejects it later).
func oidContent(name string) int {
	n := 0
	arc := 0
	var v, first uint64
	digits := 0
	flush := func() {
		switch arc {
		case 0:
			first = v
		case 1:
			n += base128(first*40 + v)
		default:
			n += base128(v)
		}
		arc++
	}
	for i := 0; i < len(name); i++ {
		ch := name[i]
		if ch == '.' {
			if digits > 0 {
				flush()
			}
			v, digits = 0, 0
			continue
		}
		v = v*10 + uint64(ch-'0')
		digits++
	}
	if digits > 0 {
		flush()
	}
	return n
}

// oidLen is the BER content size of o.
func oidLen(o OID) int {
	if len(o) < 2 {
		return 1
	}
	n := base128(uint64(o[0])*40 + uint64(o[1]))
	for _, v := range o[2:] {
		n += base128(uint64(v))
	}
	return n
}

func base128(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func uintContent(u uint64) int {
	n := 1
	for u >= 0x80 { // a leading bit set needs a zero octet in front
		u >>= 8
		n++
	}
	return n
}

func intContent(i int) int {
	n := 1
	for i < -0x80 || i >= 0x80 {
		i >>= 8
		n++
	}
	return n
}

// vbSize is the encoded size of one varbind, as gosnmp writes it.
func vbSize(v gosnmp.SnmpPDU) int { return vbSizeN(v, oidContent(v.Name)) }

// vbSizeN is vbSize with the name's BER content length known.
func vbSizeN(v gosnmp.SnmpPDU, nlen int) int {
	var val int
	switch x := v.Value.(type) {
	case int:
		val = intContent(x)
	case uint32:
		val = uintContent(uint64(x))
	case uint64:
		val = uintContent(x)
	case uint:
		val = uintContent(uint64(x))
	case string:
		if v.Type == gosnmp.ObjectIdentifier {
			val = oidContent(x)
		} else {
			val = len(x)
		}
	case []byte:
		val = len(x)
	}
	return tlv(tlv(nlen) + tlv(val))
}

func vblSize(vs []gosnmp.SnmpPDU) int {
	n := 0
	for _, v := range vs {
		n += vbSize(v)
	}
	return n
}
