package trap

import "errors"

var errBER = errors.New("malformed BER")

// berReader reads the few BER elements of an SNMPv3 message header that
// are needed before its user's keys are known: the authoritative engine ID
// and the user name (RFC 3412 section 6, RFC 3414 section 2.4).
type berReader struct {
	b []byte
}

// next returns the next element's tag and contents and moves past it.
func (r *berReader) next() (byte, []byte, error) {
	if len(r.b) < 2 {
		return 0, nil, errBER
	}
	tag, l := r.b[0], int(r.b[1])
	i := 2
	if l&0x80 != 0 {
		n := l & 0x7f
		if n == 0 || n > 3 || len(r.b) < 2+n {
			return 0, nil, errBER
		}
		l = 0
		for _, c := range r.b[2 : 2+n] {
			l = l<<8 | int(c)
		}
		i += n
	}
	if l < 0 || len(r.b)-i < l {
		return 0, nil, errBER
	}
	v := r.b[i : i+l]
	r.b = r.b[i+l:]
	return tag, v, nil
}

// v3Identity returns the msgAuthoritativeEngineID and msgUserName of an
// SNMPv3 message.
func v3Identity(msg []byte) (engineID, user string, err error) {
	r := berReader{b: msg}
	tag, body, err := r.next() // SNMPv3Message
	if err != nil || tag != 0x30 {
		return "", "", errBER
	}
	r = berReader{b: body}
	if tag, _, err = r.next(); err != nil || tag != 0x02 { // msgVersion
		return "", "", errBER
	}
	if tag, _, err = r.next(); err != nil || tag != 0x30 { // msgGlobalData
		return "", "", errBER
	}
	tag, sec, err := r.next() // msgSecurityParameters
	if err != nil || tag != 0x04 {
		return "", "", errBER
	}
	r = berReader{b: sec}
	if tag, body, err = r.next(); err != nil || tag != 0x30 {
		return "", "", errBER
	}
	r = berReader{b: body}
	tag, eid, err := r.next()
	if err != nil || tag != 0x04 {
		return "", "", errBER
	}
	for range 2 { // boots, time
		if tag, _, err = r.next(); err != nil || tag != 0x02 {
			return "", "", errBER
		}
	}
	tag, u, err := r.next()
	if err != nil || tag != 0x04 {
		return "", "", errBER
	}
	return string(eid), string(u), nil
}

// peekVersion returns the msgVersion of an SNMP message: 0 (v1), 1 (v2c), 3.
func peekVersion(msg []byte) (int, error) {
	r := berReader{b: msg}
	tag, body, err := r.next()
	if err != nil || tag != 0x30 {
		return 0, errBER
	}
	r = berReader{b: body}
	tag, v, err := r.next()
	if err != nil || tag != 0x02 || len(v) != 1 {
		return 0, errBER
	}
	return int(v[0]), nil
}
