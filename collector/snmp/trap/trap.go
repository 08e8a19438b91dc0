// Package trap receives SNMP traps and informs (v1, v2c, v3 USM) and turns
// them into collector events for the detection engine. Informs are
// acknowledged. The sending device is matched to a configured target by its
// address, else reported by address. Packets that fail to decode, carry an
// unknown community or fail USM are dropped and counted, never a panic.
package trap

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gosnmp/gosnmp"

	"github.com/netaiops/netaiops/collector"
	"github.com/netaiops/netaiops/collector/snmp"
)

// Config says where to listen and whom to believe.
type Config struct {
	Listen      string             // host:port; port 0 picks one (tests)
	Communities []string           // v1/v2c communities accepted; empty: any
	Users       []snmp.USM         // v3 users accepted (Context is ignored)
	Targets     []collector.Target // senders are matched to these by address
	// EngineID is this receiver's SNMP engine ID, which v3 inform senders
	// discover and localize their keys to; "": a random one per Receiver.
	EngineID string
}

// Event types of the well-known generic traps (RFC 3418 / RFC 1215); any
// other trap is TypeTrap with its OID in Attrs["trap_oid"].
const (
	TypeColdStart   = "cold_start"
	TypeWarmStart   = "warm_start"
	TypeLinkDown    = "link_down"
	TypeLinkUp      = "link_up"
	TypeAuthFail    = "authentication_failure"
	TypeEGPNeighbor = "egp_neighbor_loss"
	TypeTrap        = "trap"
)

var genericTypes = map[string]string{
	"1.3.6.1.6.3.1.1.5.1": TypeColdStart,
	"1.3.6.1.6.3.1.1.5.2": TypeWarmStart,
	"1.3.6.1.6.3.1.1.5.3": TypeLinkDown,
	"1.3.6.1.6.3.1.1.5.4": TypeLinkUp,
	"1.3.6.1.6.3.1.1.5.5": TypeAuthFail,
	"1.3.6.1.6.3.1.1.5.6": TypeEGPNeighbor,
}

// Well-known varbinds that become named attributes besides their OID.
var namedVarbinds = map[string]string{
	"1.3.6.1.2.1.1.3.0":      "sysUpTime",
	"1.3.6.1.2.1.2.2.1.1":    "ifIndex",
	"1.3.6.1.2.1.2.2.1.2":    "ifDescr",
	"1.3.6.1.2.1.2.2.1.7":    "ifAdminStatus",
	"1.3.6.1.2.1.2.2.1.8":    "ifOperStatus",
	"1.3.6.1.2.1.31.1.1.1.1": "ifName",
}

const (
	oidSnmpTrapOID  = ".1.3.6.1.6.3.1.1.4.1.0"
	oidSysUpTime    = ".1.3.6.1.2.1.1.3.0"
	oidUnknownEngID = ".1.3.6.1.6.3.15.1.1.4.0"
	// maxAttrs and maxValue bound what one (possibly hostile) trap may put
	// into an event.
	maxAttrs = 64
	maxValue = 256
	// maxKeys bounds the cache of v3 keys localized to sender engine IDs.
	maxKeys = 4096
)

// Stats counts what the receiver did with the datagrams it read.
type Stats struct {
	Received         uint64 // datagrams read
	Events           uint64 // events delivered
	Informs          uint64 // informs acknowledged
	Discoveries      uint64 // v3 engine discovery requests answered
	DroppedMalformed uint64 // not decodable as SNMP
	DroppedCommunity uint64 // v1/v2c community not accepted
	DroppedAuth      uint64 // v3: unknown user, wrong digest, undecryptable
	DroppedPDU       uint64 // not a trap or inform (a Get sent to us, a response)
	DroppedQueueFull uint64 // the event channel was full
}

// Receiver is one listening socket. Build it with New, run it with Run.
type Receiver struct {
	cfg      Config
	log      *slog.Logger
	conn     *net.UDPConn
	engineID string
	start    time.Time
	byAddr   map[netip.Addr]string // sender address -> target name
	users    map[string]snmp.USM
	comms    map[string]bool

	mu   sync.Mutex
	keys map[string]*gosnmp.UsmSecurityParameters // user + engine ID -> localized keys

	received, events, informs, discoveries                 atomic.Uint64
	malformed, community, auth, pdu, queueFull, debugCount atomic.Uint64
}

// New checks cfg and opens the socket, so that Addr is known at once.
func New(cfg Config, logger *slog.Logger) (*Receiver, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Receiver{cfg: cfg, log: logger, start: time.Now(), byAddr: map[netip.Addr]string{},
		users: map[string]snmp.USM{}, comms: map[string]bool{}, keys: map[string]*gosnmp.UsmSecurityParameters{}}
	for _, c := range cfg.Communities {
		r.comms[c] = true
	}
	for _, u := range cfg.Users {
		if _, _, err := u.Params(); err != nil {
			return nil, fmt.Errorf("trap receiver: user %q: %w", u.Username, err)
		}
		r.users[u.Username] = u
	}
	for _, t := range cfg.Targets {
		host := t.Address
		if h, _, err := net.SplitHostPort(t.Address); err == nil {
			host = h
		}
		if a, err := netip.ParseAddr(host); err == nil {
			r.byAddr[a.Unmap()] = t.Name
			continue
		}
		// A host name: resolve it once; a sender we cannot match is
		// reported by address, which is no worse.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		cancel()
		if err != nil {
			logger.Debug("trap receiver: cannot resolve target; its traps will be reported by address", "target", t.Name, "err", err)
		}
		for _, a := range addrs {
			r.byAddr[a.Unmap()] = t.Name
		}
	}
	r.engineID = cfg.EngineID
	if r.engineID == "" {
		// RFC 3411 format 5 (octets) under a private enterprise number (8072: net-snmp's).
		id := make([]byte, 13)
		copy(id, []byte{0x80, 0x00, 0x1f, 0x88, 0x05})
		_, _ = rand.Read(id[5:])
		r.engineID = string(id)
	}
	addr, err := net.ResolveUDPAddr("udp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("trap receiver: listen %s: %w", cfg.Listen, err)
	}
	r.conn, err = net.ListenUDP("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("trap receiver: listen %s: %w", cfg.Listen, err)
	}
	return r, nil
}

// Addr returns the address the receiver listens on.
func (r *Receiver) Addr() net.Addr { return r.conn.LocalAddr() }

// EngineID returns the receiver's SNMP engine ID.
func (r *Receiver) EngineID() string { return r.engineID }

// Stats returns the receiver's counters.
func (r *Receiver) Stats() Stats {
	return Stats{Received: r.received.Load(), Events: r.events.Load(), Informs: r.informs.Load(),
		Discoveries: r.discoveries.Load(), DroppedMalformed: r.malformed.Load(), DroppedCommunity: r.community.Load(),
		DroppedAuth: r.auth.Load(), DroppedPDU: r.pdu.Load(), DroppedQueueFull: r.queueFull.Load()}
}

// Run reads datagrams until ctx ends, sending an event per trap or inform
// to out without blocking: when out is full the event is dropped and
// counted. It closes the socket and returns nil when ctx ends.
func (r *Receiver) Run(ctx context.Context, out chan<- collector.Event) error {
	stop := context.AfterFunc(ctx, func() { _ = r.conn.Close() })
	defer stop()
	defer r.conn.Close()
	buf := make([]byte, 65535)
	for {
		n, from, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("trap receiver %s: %w", r.cfg.Listen, err)
			}
			continue // a transient read error (ICMP); keep listening
		}
		r.received.Add(1)
		ev, ok := r.handle(buf[:n], from)
		if !ok {
			continue
		}
		select {
		case out <- ev:
			r.events.Add(1)
		default:
			r.queueFull.Add(1)
			r.debug("trap dropped: event queue full", "from", from.String(), "type", ev.Type)
		}
	}
}

// debug logs at most the first 100 drops, then every 1000th, so that a
// flood of hostile packets cannot flood the log.
func (r *Receiver) debug(msg string, args ...any) {
	n := r.debugCount.Add(1)
	if n <= 100 || n%1000 == 0 {
		r.log.Debug(msg, append(args, "drops_logged", n)...)
	}
}

// handle decodes one datagram and returns its event. It never panics:
// gosnmp decodes with its own recover, and handle checks what it is given.
func (r *Receiver) handle(msg []byte, from netip.AddrPort) (ev collector.Event, ok bool) {
	defer func() {
		if p := recover(); p != nil {
			r.malformed.Add(1)
			r.debug("trap dropped: decoder panic", "from", from.String(), "panic", fmt.Sprint(p))
			ok = false
		}
	}()
	version, err := peekVersion(msg)
	if err != nil {
		r.malformed.Add(1)
		r.debug("trap dropped: not SNMP", "from", from.String())
		return ev, false
	}
	var pkt *gosnmp.SnmpPacket
	switch version {
	case 0, 1:
		g := &gosnmp.GoSNMP{Version: gosnmp.SnmpVersion(version)}
		pkt, err = g.SnmpDecodePacket(msg)
		if err != nil || pkt == nil {
			r.malformed.Add(1)
			r.debug("trap dropped: undecodable", "from", from.String(), "err", err)
			return ev, false
		}
		if len(r.comms) > 0 && !r.comms[pkt.Community] {
			r.community.Add(1)
			r.debug("trap dropped: community not accepted", "from", from.String())
			return ev, false
		}
	case 3:
		pkt, ok = r.decodeV3(msg, from)
		if !ok {
			return ev, false
		}
	default:
		r.malformed.Add(1)
		r.debug("trap dropped: unknown SNMP version", "from", from.String(), "version", version)
		return ev, false
	}
	switch pkt.PDUType {
	case gosnmp.Trap, gosnmp.SNMPv2Trap, gosnmp.InformRequest:
	default:
		r.pdu.Add(1)
		r.debug("trap dropped: not a notification", "from", from.String(), "pdu", pkt.PDUType.String())
		return ev, false
	}
	ev = r.event(pkt, from)
	if pkt.PDUType == gosnmp.InformRequest {
		r.ack(pkt, from)
	}
	return ev, true
}

// decodeV3 answers engine discovery, finds the user's keys for the sender's
// engine and decodes (authenticates, decrypts) the message.
func (r *Receiver) decodeV3(msg []byte, from netip.AddrPort) (*gosnmp.SnmpPacket, bool) {
	engineID, user, err := v3Identity(msg)
	if err != nil {
		r.malformed.Add(1)
		r.debug("trap dropped: undecodable v3 header", "from", from.String())
		return nil, false
	}
	if engineID == "" && user == "" {
		r.discover(msg, from)
		return nil, false
	}
	u, known := r.users[user]
	if !known {
		r.auth.Add(1)
		r.debug("trap dropped: unknown v3 user", "from", from.String(), "user", user)
		return nil, false
	}
	sp, err := r.keysFor(u, engineID)
	if err != nil {
		r.auth.Add(1)
		r.debug("trap dropped: cannot localize keys", "from", from.String(), "user", user, "err", err)
		return nil, false
	}
	flags, _, _ := u.Params()
	g := &gosnmp.GoSNMP{Version: gosnmp.Version3, SecurityModel: gosnmp.UserSecurityModel, MsgFlags: flags}
	table := gosnmp.NewSnmpV3SecurityParametersTable(gosnmp.NewLogger(nil))
	if err := table.Add(user, sp.Copy()); err != nil {
		r.auth.Add(1)
		return nil, false
	}
	g.SetTrapSecurityParametersTable(table)
	pkt, err := g.UnmarshalTrap(msg, true)
	if err != nil || pkt == nil {
		r.auth.Add(1)
		r.debug("trap dropped: v3 authentication or decryption failed", "from", from.String(), "user", user, "err", err)
		return nil, false
	}
	return pkt, true
}

// keysFor returns u's security parameters with keys localized to engineID,
// from a bounded cache: localizing costs a million-byte hash.
func (r *Receiver) keysFor(u snmp.USM, engineID string) (*gosnmp.UsmSecurityParameters, error) {
	k := u.Username + "\x00" + engineID
	r.mu.Lock()
	defer r.mu.Unlock()
	if sp := r.keys[k]; sp != nil {
		return sp, nil
	}
	_, sp, err := u.Params()
	if err != nil {
		return nil, err
	}
	sp.AuthoritativeEngineID = engineID
	if err := sp.InitSecurityKeys(); err != nil {
		return nil, err
	}
	if len(r.keys) >= maxKeys {
		clear(r.keys) // a flood of invented engine IDs: start over rather than grow
	}
	r.keys[k] = sp
	return sp, nil
}

// discover answers an inform sender's engine discovery with a report of
// this receiver's engine ID (RFC 3414 section 4).
func (r *Receiver) discover(msg []byte, from netip.AddrPort) {
	g := &gosnmp.GoSNMP{Version: gosnmp.Version3, SecurityModel: gosnmp.UserSecurityModel, MsgFlags: gosnmp.NoAuthNoPriv,
		SecurityParameters: &gosnmp.UsmSecurityParameters{UserName: "-"}}
	req, err := g.SnmpDecodePacket(msg)
	if err != nil || req == nil {
		r.malformed.Add(1)
		r.debug("trap dropped: undecodable v3 discovery", "from", from.String())
		return
	}
	rep := &gosnmp.SnmpPacket{
		Version: gosnmp.Version3, MsgFlags: gosnmp.NoAuthNoPriv, SecurityModel: gosnmp.UserSecurityModel,
		MsgID: req.MsgID, RequestID: req.RequestID, MsgMaxSize: 65507, PDUType: gosnmp.Report,
		ContextEngineID: r.engineID,
		SecurityParameters: &gosnmp.UsmSecurityParameters{AuthoritativeEngineID: r.engineID, AuthoritativeEngineBoots: 1,
			AuthoritativeEngineTime: uint32(time.Since(r.start) / time.Second)},
		Variables: []gosnmp.SnmpPDU{{Name: oidUnknownEngID, Type: gosnmp.Counter32, Value: uint32(r.discoveries.Add(1))}},
	}
	out, err := rep.MarshalMsg()
	if err != nil {
		r.debug("trap receiver: cannot encode discovery report", "err", err)
		return
	}
	_, _ = r.conn.WriteToUDPAddrPort(out, from)
}

// ack answers an inform with a response carrying its varbinds.
func (r *Receiver) ack(pkt *gosnmp.SnmpPacket, from netip.AddrPort) {
	resp := *pkt
	resp.PDUType, resp.Error, resp.ErrorIndex = gosnmp.GetResponse, gosnmp.NoError, 0
	resp.MsgFlags &^= gosnmp.Reportable
	if sp, ok := pkt.SecurityParameters.(*gosnmp.UsmSecurityParameters); ok && pkt.Version == gosnmp.Version3 {
		cp := sp.Copy().(*gosnmp.UsmSecurityParameters)
		cp.AuthoritativeEngineBoots, cp.AuthoritativeEngineTime = 1, uint32(time.Since(r.start)/time.Second)
		resp.SecurityParameters = cp
		if err := cp.InitPacket(&resp); err != nil && resp.MsgFlags&gosnmp.AuthPriv == gosnmp.AuthPriv {
			r.debug("trap receiver: cannot secure inform response", "err", err)
			return
		}
	}
	out, err := resp.MarshalMsg()
	if err != nil {
		r.debug("trap receiver: cannot encode inform response", "from", from.String(), "err", err)
		return
	}
	if _, err := r.conn.WriteToUDPAddrPort(out, from); err == nil {
		r.informs.Add(1)
	}
}

// event turns a decoded notification into an event.
func (r *Receiver) event(pkt *gosnmp.SnmpPacket, from netip.AddrPort) collector.Event {
	ev := collector.Event{Time: time.Now(), Attrs: map[string]string{
		"source":  from.String(),
		"version": map[gosnmp.SnmpVersion]string{gosnmp.Version1: "1", gosnmp.Version2c: "2c", gosnmp.Version3: "3"}[pkt.Version],
	}}
	addr := from.Addr().Unmap()
	name, known := r.byAddr[addr]
	if !known && pkt.Version == gosnmp.Version1 {
		// Through a relay, v1's agent-addr names the device.
		if a, err := netip.ParseAddr(pkt.AgentAddress); err == nil {
			if n, ok := r.byAddr[a.Unmap()]; ok {
				name, known = n, true
			}
		}
	}
	if !known {
		name = addr.String()
		ev.Attrs["unknown_source"] = "true"
	}
	ev.Device = name
	if pkt.PDUType == gosnmp.InformRequest {
		ev.Attrs["inform"] = "true"
	}
	var trapOID string
	vars := pkt.Variables
	if pkt.Version == gosnmp.Version1 {
		// RFC 3584 section 3.1: generic traps map to snmpTraps.(generic+1),
		// enterprise-specific ones to enterprise.0.specific.
		if pkt.GenericTrap >= 0 && pkt.GenericTrap < 6 {
			trapOID = "1.3.6.1.6.3.1.1.5." + strconv.Itoa(pkt.GenericTrap+1)
		} else {
			trapOID = strings.TrimPrefix(pkt.Enterprise, ".") + ".0." + strconv.Itoa(pkt.SpecificTrap)
		}
		ev.Attrs["sysUpTime"] = strconv.FormatFloat(float64(pkt.Timestamp)/100, 'f', -1, 64)
		if pkt.AgentAddress != "" {
			ev.Attrs["agent_addr"] = pkt.AgentAddress
		}
	} else {
		for _, v := range vars {
			if v.Name == oidSnmpTrapOID {
				if s, ok := v.Value.(string); ok {
					trapOID = strings.TrimPrefix(s, ".")
				}
			}
		}
	}
	ev.Type = TypeTrap
	if t, ok := genericTypes[trapOID]; ok {
		ev.Type = t
	}
	ev.Attrs["trap_oid"] = trapOID
	for _, v := range vars {
		if len(ev.Attrs) >= maxAttrs {
			ev.Attrs["truncated"] = "true"
			break
		}
		name := strings.TrimPrefix(v.Name, ".")
		if v.Name == oidSnmpTrapOID {
			continue
		}
		val := valueText(v)
		ev.Attrs[name] = val
		if v.Name == oidSysUpTime {
			if f, err := strconv.ParseFloat(val, 64); err == nil {
				ev.Attrs["sysUpTime"] = strconv.FormatFloat(f/100, 'f', -1, 64)
			}
			continue
		}
		for prefix, attr := range namedVarbinds {
			if strings.HasPrefix(name, prefix+".") {
				ev.Attrs[attr] = val
				if attr != "ifIndex" {
					ev.Attrs["ifIndex"] = strings.TrimPrefix(name, prefix+".")
				}
			}
		}
	}
	return ev
}

// valueText renders a varbind's value for an attribute, bounded in length.
func valueText(v gosnmp.SnmpPDU) string {
	var s string
	switch x := v.Value.(type) {
	case []byte:
		s = strings.TrimRight(string(x), "\x00")
		if !utf8.ValidString(s) {
			s = fmt.Sprintf("%x", x)
		}
	case string:
		s = strings.TrimPrefix(x, ".")
	case nil:
		s = v.Type.String()
	default:
		s = fmt.Sprint(x)
	}
	if len(s) > maxValue {
		s = s[:maxValue]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return s
}
