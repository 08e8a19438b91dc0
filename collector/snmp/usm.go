package snmp

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/gosnmp/gosnmp"
)

// ErrAuthFailure is returned (wrapped) when an SNMPv3 device rejected our
// credentials: a wrong auth or priv password or protocol, an unknown user, or
// a security level the user may not use. The wrapping error says which.
var ErrAuthFailure = errors.New("authentication failure")

// Security levels of SNMPv3 (RFC 3414), as written in the config.
const (
	NoAuthNoPriv = "noAuthNoPriv"
	AuthNoPriv   = "authNoPriv"
	AuthPriv     = "authPriv"
)

// USM holds a target's SNMPv3 User-based Security Model credentials.
// Protocol names are those of the config: MD5, SHA, SHA224, SHA256, SHA384,
// SHA512; DES, AES, AES192, AES256 (Blumenthal key extension, as net-snmp),
// AES192C, AES256C (Reeder key extension, as Cisco).
type USM struct {
	SecurityLevel string // NoAuthNoPriv, AuthNoPriv or AuthPriv
	Username      string
	AuthProtocol  string
	AuthPassword  string
	PrivProtocol  string
	PrivPassword  string
	Context       string // context name; "" is the default context
}

// AuthProtocols and PrivProtocols list the protocol names USM accepts, in
// the order the config documents them.
var (
	AuthProtocols = []string{"MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512"}
	PrivProtocols = []string{"DES", "AES", "AES192", "AES256", "AES192C", "AES256C"}
)

var authProtocols = map[string]gosnmp.SnmpV3AuthProtocol{
	"MD5": gosnmp.MD5, "SHA": gosnmp.SHA, "SHA224": gosnmp.SHA224,
	"SHA256": gosnmp.SHA256, "SHA384": gosnmp.SHA384, "SHA512": gosnmp.SHA512,
}

var privProtocols = map[string]gosnmp.SnmpV3PrivProtocol{
	"DES": gosnmp.DES, "AES": gosnmp.AES, "AES192": gosnmp.AES192,
	"AES256": gosnmp.AES256, "AES192C": gosnmp.AES192C, "AES256C": gosnmp.AES256C,
}

// Params turns u into gosnmp's message flags and security parameters, or
// says what is wrong with u. The trap receiver uses it too.
func (u USM) Params() (gosnmp.SnmpV3MsgFlags, *gosnmp.UsmSecurityParameters, error) {
	if u.Username == "" {
		return 0, nil, errors.New("SNMPv3 needs a username")
	}
	sp := &gosnmp.UsmSecurityParameters{UserName: u.Username}
	var flags gosnmp.SnmpV3MsgFlags
	switch u.SecurityLevel {
	case NoAuthNoPriv:
		return gosnmp.NoAuthNoPriv, sp, nil
	case AuthNoPriv:
		flags = gosnmp.AuthNoPriv
	case AuthPriv:
		flags = gosnmp.AuthPriv
	default:
		return 0, nil, fmt.Errorf("bad security level %q (want %s, %s or %s)", u.SecurityLevel, NoAuthNoPriv, AuthNoPriv, AuthPriv)
	}
	ap, ok := authProtocols[u.AuthProtocol]
	if !ok {
		return 0, nil, fmt.Errorf("bad auth protocol %q (want one of %s)", u.AuthProtocol, strings.Join(AuthProtocols, ", "))
	}
	if u.AuthPassword == "" {
		return 0, nil, errors.New("security level " + u.SecurityLevel + " needs an auth password")
	}
	sp.AuthenticationProtocol, sp.AuthenticationPassphrase = ap, u.AuthPassword
	if flags == gosnmp.AuthNoPriv {
		sp.PrivacyProtocol = gosnmp.NoPriv
		return flags, sp, nil
	}
	pp, ok := privProtocols[u.PrivProtocol]
	if !ok {
		return 0, nil, fmt.Errorf("bad priv protocol %q (want one of %s)", u.PrivProtocol, strings.Join(PrivProtocols, ", "))
	}
	if u.PrivPassword == "" {
		return 0, nil, errors.New("security level authPriv needs a priv password")
	}
	sp.PrivacyProtocol, sp.PrivacyPassphrase = pp, u.PrivPassword
	return flags, sp, nil
}

// fingerprint identifies the credentials, so that a cached engine (and the
// keys localized to it) is never used with other credentials.
func (u USM) fingerprint() [32]byte {
	return sha256.Sum256([]byte(strings.Join([]string{u.SecurityLevel, u.Username, u.AuthProtocol,
		u.AuthPassword, u.PrivProtocol, u.PrivPassword}, "\x00")))
}

// engine is what USM discovery learnt about a device's SNMP engine, and the
// keys localized to it (RFC 3414 section 2.6), so that later polls need
// neither a discovery round trip nor a million-byte password hash.
type engine struct {
	creds       [32]byte
	id          string
	boots, time uint32
	at          time.Time // when time was current
	authKey     []byte
	privKey     []byte
}

// engines caches one engine per target (name and address), shared by the
// Poller's concurrent polls.
type engines struct {
	mu sync.Mutex
	m  map[string]engine
}

func engineKey(o Options) string { return o.Target.Name + "\x00" + o.Target.Address }

// get returns the cached engine of o's target, with the engine's time
// advanced to now, or false when there is none for these credentials.
func (e *engines) get(o Options, now time.Time) (engine, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, ok := e.m[engineKey(o)]
	if !ok || c.creds != o.USM.fingerprint() {
		return engine{}, false
	}
	if d := now.Sub(c.at); d > 0 {
		c.time += uint32(d / time.Second)
	}
	return c, true
}

// put records what a session learnt about its engine.
func (e *engines) put(o Options, sp *gosnmp.UsmSecurityParameters, now time.Time) {
	if sp.AuthoritativeEngineID == "" {
		return
	}
	c := engine{creds: o.USM.fingerprint(), id: sp.AuthoritativeEngineID,
		boots: sp.AuthoritativeEngineBoots, time: sp.AuthoritativeEngineTime, at: now,
		authKey: sp.SecretKey, privKey: sp.PrivacyKey}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		e.m = map[string]engine{}
	}
	e.m[engineKey(o)] = c
}

// forget drops o's target's engine, so that the next session discovers it
// again (the device was replaced, or its engine ID changed).
// It reports whether there was one.
func (e *engines) forget(o Options) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.m[engineKey(o)]
	delete(e.m, engineKey(o))
	return ok
}

// usmError turns gosnmp's report errors into ours, naming whether the
// device rejected authentication or privacy.
func usmError(err error, u USM) error {
	switch {
	case errors.Is(err, gosnmp.ErrWrongDigest):
		return fmt.Errorf("%w: auth failed for user %q: the device reports a wrong digest (usmStatsWrongDigests): check auth_password and auth_protocol (%s)",
			ErrAuthFailure, u.Username, u.AuthProtocol)
	case errors.Is(err, gosnmp.ErrDecryption):
		return fmt.Errorf("%w: priv failed for user %q: the device cannot decrypt our requests: check priv_password and priv_protocol (%s)",
			ErrAuthFailure, u.Username, u.PrivProtocol)
	case errors.Is(err, gosnmp.ErrUnknownUsername):
		return fmt.Errorf("%w: the device does not know user %q (usmStatsUnknownUserNames)", ErrAuthFailure, u.Username)
	case errors.Is(err, gosnmp.ErrUnknownSecurityLevel):
		return fmt.Errorf("%w: user %q may not use security level %s on the device (usmStatsUnsupportedSecLevels)",
			ErrAuthFailure, u.Username, u.SecurityLevel)
	case errors.Is(err, gosnmp.ErrNotInTimeWindow):
		return fmt.Errorf("not in time window (usmStatsNotInTimeWindows) after resynchronizing: %w", err)
	case errors.Is(err, gosnmp.ErrUnknownEngineID):
		return fmt.Errorf("unknown engine ID (usmStatsUnknownEngineIDs) after rediscovery: %w", err)
	}
	return err
}

// recordingConn is a session's socket as gosnmp sees it. It drops, and
// counts, datagrams that are not well-formed BER or that come from another
// address than the device's, before gosnmp sees them: gosnmp gives up a
// request on the first undecodable datagram, so one spoofed or truncated
// packet would fail a poll. For v3 it also keeps the last datagram, so that
// a report gosnmp drops as "not authentic" (RFC 3414 sends wrongDigest,
// unknownUser, unknownEngineID and, from net-snmp, notInTimeWindow reports
// without authentication) can still say why the device rejected us.
type recordingConn struct {
	*net.UDPConn
	peer      netip.Addr // the device's address; invalid: accept any
	record    bool       // keep the last datagram (v3)
	last      []byte
	received  bool
	malformed int // datagrams dropped as not well-formed BER
	foreign   int // datagrams dropped as coming from another address
}

// ReadFrom implements net.PacketConn, which gosnmp uses for unconnected
// sockets. It returns the first acceptable datagram.
func (c *recordingConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, from, err := c.UDPConn.ReadFromUDPAddrPort(b)
		if err != nil {
			return n, nil, err
		}
		if c.peer.IsValid() && from.Addr().Unmap() != c.peer {
			c.foreign++
			continue
		}
		if !wellFormed(b[:n]) {
			c.malformed++
			continue
		}
		c.received = true
		if c.record {
			c.last = append(c.last[:0], b[:n]...)
		}
		return n, net.UDPAddrFromAddrPort(from), nil
	}
}

// wellFormed reports whether msg is one BER SEQUENCE whose nested
// constructed elements all fit their lengths: the structure every SNMP
// message has. It does not allocate.
func wellFormed(msg []byte) bool {
	n, ok := berElement(msg, 0)
	return ok && n == len(msg) && len(msg) > 0 && msg[0] == 0x30
}

// berElement checks the element at the start of b and returns its length.
func berElement(b []byte, depth int) (int, bool) {
	if len(b) < 2 || depth > 16 {
		return 0, false
	}
	tag, l, i := b[0], int(b[1]), 2
	if l&0x80 != 0 {
		k := l & 0x7f
		if k == 0 || k > 3 || len(b) < 2+k {
			return 0, false
		}
		l = 0
		for _, c := range b[2 : 2+k] {
			l = l<<8 | int(c)
		}
		i += k
	}
	if len(b)-i < l {
		return 0, false
	}
	if tag&0x20 != 0 { // constructed: SEQUENCE, PDUs
		body := b[i : i+l]
		for len(body) > 0 {
			n, ok := berElement(body, depth+1)
			if !ok {
				return 0, false
			}
			body = body[n:]
		}
	}
	return i + l, true
}

// report decodes the last datagram as an unauthenticated SNMPv3 report and
// returns its OID, or "".
func (c *recordingConn) report(user string) string {
	if len(c.last) == 0 {
		return ""
	}

	dec := &gosnmp.GoSNMP{Version: gosnmp.Version3, SecurityModel: gosnmp.UserSecurityModel,
		MsgFlags: gosnmp.NoAuthNoPriv, SecurityParameters: &gosnmp.UsmSecurityParameters{UserName: user}}
	pkt, err := dec.SnmpDecodePacket(c.last)
	if err != nil || pkt.PDUType != gosnmp.Report || len(pkt.Variables) != 1 {
		return ""
	}
	return pkt.Variables[0].Name
}

// Report OIDs of RFC 3414's usmStats, which gosnmp does not export.
var reportErrors = map[string]error{
	".1.3.6.1.6.3.15.1.1.1.0": gosnmp.ErrUnknownSecurityLevel,
	".1.3.6.1.6.3.15.1.1.2.0": gosnmp.ErrNotInTimeWindow,
	".1.3.6.1.6.3.15.1.1.3.0": gosnmp.ErrUnknownUsername,
	".1.3.6.1.6.3.15.1.1.4.0": gosnmp.ErrUnknownEngineID,
	".1.3.6.1.6.3.15.1.1.5.0": gosnmp.ErrWrongDigest,
	".1.3.6.1.6.3.15.1.1.6.0": gosnmp.ErrDecryption,
}

// diagnosePriv runs after an authPriv request timed out although the device
// answered on this session (discovery): net-snmp drops a request it cannot
// decrypt without a report. One authNoPriv request tells a wrong priv
// password (the device answers it) from a dead device (it does not).
func (s *session) diagnosePriv() error {
	sp, ok := s.g.SecurityParameters.(*gosnmp.UsmSecurityParameters)
	if !ok {
		return nil
	}
	probe := sp.Copy().(*gosnmp.UsmSecurityParameters)
	probe.PrivacyProtocol, probe.PrivacyPassphrase, probe.PrivacyKey = gosnmp.NoPriv, "", nil
	g := &gosnmp.GoSNMP{
		Target: s.g.Target, Port: s.g.Port, Transport: "udp", Version: gosnmp.Version3,
		Context: s.g.Context, Timeout: s.g.Timeout, Retries: 0, ContextName: s.g.ContextName,
		SecurityModel: gosnmp.UserSecurityModel, MsgFlags: gosnmp.AuthNoPriv, SecurityParameters: probe,
		UseUnconnectedUDPSocket: true,
	}
	if err := g.Connect(); err != nil {
		return nil
	}
	defer g.Close()
	if _, err := g.Get([]string{oidSysUpTime}); err != nil {
		return nil
	}
	return usmError(gosnmp.ErrDecryption, s.usm)
}
