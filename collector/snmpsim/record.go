package snmpsim

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/gosnmp/gosnmp"
)

// Warning is a recording line that was skipped or served differently from
// what it says (a duplicate OID, a value that does not fit its type).
type Warning struct {
	File string
	Line int
	Msg  string
}

func (w Warning) Error() string { return fmt.Sprintf("%s:%d: %s", w.File, w.Line, w.Msg) }

// maxRecordLine bounds one line of a recording.
const maxRecordLine = 1 << 20

var oidSysUpTime = OID{1, 3, 6, 1, 2, 1, 1, 3, 0}

// loadRecording parses a recorded walk: snmpsim's "OID|TAG|VALUE" format
// (.snmprec) or net-snmp "snmpwalk -On" output, told apart by the first data
// line. Entries are sorted numerically and deduplicated (the first
// occurrence wins). Lines that cannot be served are skipped with a Warning;
// an error is returned only when the file cannot be read or holds no usable
// line.
func loadRecording(path string) (*table, []Warning, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("load recording: %w", err)
	}
	defer f.Close()
	return parseRecording(f, filepath.Base(path))
}

type recLine struct {
	line int
	e    entry
}

func parseRecording(r io.Reader, name string) (*table, []Warning, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), maxRecordLine)
	var (
		recs  []recLine
		warns []Warning
		walk  = -1 // unknown until the first data line
		// pending snmpwalk value continued on following lines
		pendOID  OID
		pendType string
		pendVal  strings.Builder
		pendLine int
		pending  bool
	)
	warn := func(line int, format string, args ...any) {
		warns = append(warns, Warning{File: name, Line: line, Msg: fmt.Sprintf(format, args...)})
	}
	flush := func() {
		if !pending {
			return
		}
		pending = false
		typ, val, err := walkValue(pendType, pendVal.String())
		if errors.Is(err, errException) {
			return // net-snmp's text for noSuchObject/endOfMibView: not a value
		}
		if err != nil {
			warn(pendLine, "%s: %v; line skipped", pendOID, err)
			return
		}
		recs = append(recs, recLine{line: pendLine, e: entry{oid: pendOID, typ: typ, val: val}})
	}
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		trimmed := strings.TrimSpace(line)
		if walk == -1 {
			if trimmed == "" || strings.HasPrefix(trimmed, "#") {
				continue
			}
			// "1.3.6.1...|4|x" is snmprec, ".1.3.6.1... = STRING: x" a walk.
			walk = 0
			if _, _, ok := walkStart(line); ok {
				if o, _, _ := strings.Cut(trimmed, "|"); strings.Contains(o, " ") {
					walk = 1
				}
			}
		}
		if walk == 0 {
			if trimmed == "" || strings.HasPrefix(trimmed, "#") {
				continue
			}
			e, err := snmprecLine(trimmed)
			if err != nil {
				warn(n, "%v; line skipped", err)
				continue
			}
			recs = append(recs, recLine{line: n, e: e})
			continue
		}
		// snmpwalk text: a new value starts with an OID and " = ".
		if o, rest, ok := walkStart(line); ok {
			flush()
			pendOID, pendLine, pending = o, n, true
			pendVal.Reset()
			pendType = ""
			if t, v, ok := strings.Cut(rest, ": "); ok && !strings.HasPrefix(rest, "\"") {
				pendType, rest = t, v
			} else if strings.HasSuffix(rest, ":") && !strings.HasPrefix(rest, "\"") {
				pendType, rest = strings.TrimSuffix(rest, ":"), ""
			}
			pendVal.WriteString(rest)
			continue
		}
		if pending {
			pendVal.WriteByte('\n')
			pendVal.WriteString(line)
			continue
		}
		if trimmed != "" {
			warn(n, "not an snmpwalk line; line skipped")
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		return nil, warns, fmt.Errorf("load recording %s: line %d: %w", name, n+1, err)
	}
	slices.SortStableFunc(recs, func(a, b recLine) int { return a.e.oid.Compare(b.e.oid) })
	es := make([]entry, 0, len(recs))
	for i, rl := range recs {
		if i > 0 && rl.e.oid.Compare(recs[i-1].e.oid) == 0 {
			warn(rl.line, "%s: duplicate oid, keeping the first value; line skipped", rl.e.oid)
			continue
		}
		e := rl.e
		e.name = e.oid.String()
		e.nlen = oidLen(e.oid)
		if _, ok := e.val.(uint32); ok && e.typ == gosnmp.TimeTicks && e.oid.Compare(oidSysUpTime) == 0 {
			// Served as time since (re)boot; the recorded value is the
			// uptime at the simulator's start.
			e.col = colSysUpTime
		}
		es = append(es, e)
	}
	slices.SortStableFunc(warns, func(a, b Warning) int { return a.Line - b.Line })
	if len(es) == 0 {
		return nil, warns, fmt.Errorf("load recording %s: no usable oid lines", name)
	}
	return &table{entries: es}, warns, nil
}

// snmprecLine parses "OID|TAG|VALUE".
func snmprecLine(line string) (entry, error) {
	parts := strings.SplitN(line, "|", 3)
	if len(parts) != 3 {
		return entry{}, errors.New("want OID|TAG|VALUE")
	}
	o, err := ParseOID(parts[0])
	if err != nil {
		return entry{}, err
	}
	tag, val := parts[1], parts[2]
	enc := byte(0)
	if strings.Contains(tag, ":") {
		return entry{}, fmt.Errorf("%s: tag %q: variation modules are not supported", o, tag)
	}
	if n := len(tag); n > 0 && (tag[n-1] == 'x' || tag[n-1] == 'e') {
		enc, tag = tag[n-1], tag[:n-1]
	}
	num, err := strconv.Atoi(tag)
	if err != nil {
		return entry{}, fmt.Errorf("%s: tag %q: not a number", o, parts[1])
	}
	var raw []byte
	switch enc {
	case 'x':
		raw, err = hex.DecodeString(strings.TrimSpace(val))
		if err != nil {
			return entry{}, fmt.Errorf("%s: tag %s: bad hex value: %v", o, parts[1], err)
		}
	case 'e':
		raw, err = unescape(val)
		if err != nil {
			return entry{}, fmt.Errorf("%s: tag %s: bad escaped value: %v", o, parts[1], err)
		}
	default:
		raw = []byte(val)
	}
	typ, v, err := typedValue(gosnmp.Asn1BER(num), raw, enc != 0)
	if err != nil {
		return entry{}, fmt.Errorf("%s: tag %s: %v", o, parts[1], err)
	}
	return entry{oid: o, typ: typ, val: v}, nil
}

// typedValue converts a recorded value to what gosnmp's encoder takes.
// binary says raw came from hex or escapes, so numbers are big-endian bytes.
func typedValue(typ gosnmp.Asn1BER, raw []byte, binary bool) (gosnmp.Asn1BER, any, error) {
	num := func(bits int, signed bool) (uint64, int64, error) {
		if binary {
			if len(raw) == 0 || len(raw) > bits/8+1 {
				return 0, 0, fmt.Errorf("%d bytes do not fit %d bits", len(raw), bits)
			}
			var u uint64
			for _, b := range raw {
				u = u<<8 | uint64(b)
			}
			return u, int64(u), nil
		}
		s := strings.TrimSpace(string(raw))
		if signed {
			i, err := strconv.ParseInt(s, 10, bits)
			return uint64(i), i, err
		}
		u, err := strconv.ParseUint(s, 10, bits)
		return u, int64(u), err
	}
	switch typ {
	case gosnmp.Integer:
		_, i, err := num(32, true)
		if err != nil {
			return 0, nil, fmt.Errorf("integer %q: %v", raw, errors.Unwrap(err))
		}
		return typ, int(i), nil
	case gosnmp.Counter32, gosnmp.Gauge32, gosnmp.TimeTicks, gosnmp.Uinteger32:
		u, _, err := num(32, false)
		if err != nil || u > 0xFFFFFFFF {
			return 0, nil, fmt.Errorf("%s %q: not an unsigned 32-bit number", typ, raw)
		}
		return typ, uint32(u), nil
	case gosnmp.Counter64:
		u, _, err := num(64, false)
		if err != nil {
			return 0, nil, fmt.Errorf("Counter64 %q: not an unsigned 64-bit number", raw)
		}
		return typ, u, nil
	case gosnmp.OctetString, gosnmp.Opaque, gosnmp.BitString:
		return typ, raw, nil
	case gosnmp.ObjectIdentifier:
		o, err := ParseOID(strings.TrimSpace(string(raw)))
		if err != nil || !o.validBER() {
			return 0, nil, fmt.Errorf("object identifier %q is not encodable", raw)
		}
		return typ, o.String(), nil
	case gosnmp.IPAddress:
		if binary {
			if len(raw) != 4 {
				return 0, nil, fmt.Errorf("IpAddress of %d bytes, want 4", len(raw))
			}
			return typ, raw, nil
		}
		a, err := netip.ParseAddr(strings.TrimSpace(string(raw)))
		if err != nil || !a.Is4() {
			return 0, nil, fmt.Errorf("IpAddress %q: not a dotted IPv4 address", raw)
		}
		b := a.As4()
		return typ, b[:], nil
	case gosnmp.Null:
		return typ, nil, nil
	}
	return 0, nil, fmt.Errorf("type %d is not servable", typ)
}

// unescape decodes snmpsim's "e" values: Python byte-string escapes.
func unescape(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i >= len(s) {
			return nil, errors.New("trailing backslash")
		}
		switch s[i] {
		case 'x':
			if i+3 > len(s) {
				return nil, errors.New("short \\x escape")
			}
			b, err := hex.DecodeString(s[i+1 : i+3])
			if err != nil {
				return nil, fmt.Errorf("bad \\x escape %q", s[i-1:i+3])
			}
			out = append(out, b[0])
			i += 2
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case '0':
			out = append(out, 0)
		case '\\', '\'', '"':
			out = append(out, s[i])
		default:
			out = append(out, '\\', s[i])
		}
	}
	return out, nil
}

// walkStart recognises ".1.3.6... = rest".
func walkStart(line string) (OID, string, bool) {
	l, rest, ok := strings.Cut(line, " = ")
	if !ok {
		// "= " with an empty value: ".1.3 = "
		if l2, ok2 := strings.CutSuffix(line, " ="); ok2 {
			l, rest, ok = l2, "", true
		}
	}
	if !ok {
		return nil, "", false
	}
	l = strings.TrimSpace(l)
	if l == "" || (l[0] != '.' && (l[0] < '0' || l[0] > '9')) {
		return nil, "", false
	}
	o, err := ParseOID(l)
	if err != nil {
		return nil, "", false
	}
	return o, rest, true
}

// errException marks net-snmp's rendering of a varbind exception.
var errException = errors.New("exception")

var exceptionTexts = []string{"No Such Object", "No Such Instance", "No more variables left"}

// walkValue converts one net-snmp "TYPE: value" pair.
func walkValue(typ, val string) (gosnmp.Asn1BER, any, error) {
	t := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(typ), " ", ""))
	v := strings.TrimSpace(val)
	switch t {
	case "":
		// `= ""`, or an exception text such as "No Such Object available ..."
		if strings.HasPrefix(v, "\"") || v == "" {
			return gosnmp.OctetString, []byte(unquote(v)), nil
		}
		if v == "NULL" {
			return gosnmp.Null, nil, nil
		}
		for _, p := range exceptionTexts {
			if strings.HasPrefix(v, p) {
				return 0, nil, errException
			}
		}
		return 0, nil, fmt.Errorf("value %q has no type", firstLine(v))
	case "string":
		return gosnmp.OctetString, []byte(unquote(v)), nil
	case "hex-string", "bits":
		b, err := hex.DecodeString(strings.Join(strings.Fields(hexPart(v)), ""))
		if err != nil {
			return 0, nil, fmt.Errorf("%s %q: bad hex", typ, firstLine(v))
		}
		return gosnmp.OctetString, b, nil
	case "integer":
		return typedValue(gosnmp.Integer, []byte(enumNumber(v)), false)
	case "gauge32", "unsigned32", "uinteger32":
		return typedValue(gosnmp.Gauge32, []byte(firstField(v)), false)
	case "counter32":
		return typedValue(gosnmp.Counter32, []byte(firstField(v)), false)
	case "counter64":
		return typedValue(gosnmp.Counter64, []byte(firstField(v)), false)
	case "timeticks":
		if i, j := strings.Index(v, "("), strings.Index(v, ")"); i >= 0 && j > i {
			v = v[i+1 : j]
		}
		return typedValue(gosnmp.TimeTicks, []byte(v), false)
	case "oid":
		return typedValue(gosnmp.ObjectIdentifier, []byte(v), false)
	case "ipaddress", "networkaddress":
		return typedValue(gosnmp.IPAddress, []byte(v), false)
	case "opaque":
		return gosnmp.Opaque, []byte(v), nil
	}
	return 0, nil, fmt.Errorf("type %q unknown", typ)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func firstField(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return s
}

// enumNumber turns "up(1)" into "1" and "1500 octets" into "1500".
func enumNumber(s string) string {
	if i, j := strings.LastIndex(s, "("), strings.LastIndex(s, ")"); i >= 0 && j > i {
		return s[i+1 : j]
	}
	return firstField(s)
}

// hexPart drops net-snmp's trailing text after a BITS hex dump ("80 00 a(0)").
func hexPart(s string) string {
	var out []string
	for _, f := range strings.Fields(s) {
		if len(f) != 2 {
			break
		}
		out = append(out, f)
	}
	return strings.Join(out, " ")
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	} else {
		s = strings.TrimPrefix(s, "\"")
	}
	return strings.ReplaceAll(s, `\"`, `"`)
}

// newRecorded builds a device that replays a recording. A recorded
// sysUpTime keeps counting from its recorded value, and a reboot fault
// restarts it from zero; every other value is served as recorded.
func newRecorded(spec DeviceSpec, tab *table) *device {
	d := &device{name: spec.Name, community: spec.Community, tab: tab}
	if i, ok := tab.search(oidSysUpTime); ok && tab.entries[i].col == colSysUpTime {
		d.bootAge = float64(tab.entries[i].val.(uint32)) / 100
	}
	d.addFaults(spec.Faults)
	return d
}
