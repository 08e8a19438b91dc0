// Package snmp polls devices over SNMP v1, v2c and v3 (USM) and turns the
// replies into collector samples. It owns everything gosnmp-specific: sessions, GetBulk
// and GetNext walks, value decoding and error classification, behind one
// call, Poller.Poll. It never imports the agent: what to poll and how often
// is decided by the caller.
package snmp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gosnmp/gosnmp"

	"github.com/netaiops/netaiops/collector"
)

// ErrTimeout is returned (wrapped) when the device did not answer a request
// within Timeout, after every retry. A stopped agent, an unreachable host and
// a wrong community (agents drop those silently) all look like this.
var ErrTimeout = errors.New("request timeout")

// DefaultPort is the SNMP port used when a target's address has none.
const DefaultPort = 161

// maxRowsPerColumn bounds one column walk, so that a device that keeps
// inventing rows cannot keep a poll going forever.
const maxRowsPerColumn = 100_000

// Options says what to poll and how. Secrets (the community) travel here,
// never in collector.Target.
type Options struct {
	Target         collector.Target
	Community      string
	Timeout        time.Duration // per request; 0: 2s
	Retries        int           // resends after a timeout; negative counts as 0
	MaxRepetitions uint32        // GetBulk max-repetitions (v2c, v3); 0: 25
	USM            USM           // SNMPv3 credentials and context (Target.Version "3")
}

// Poller polls devices. One Poller is safe for concurrent use: every Poll
// opens its own session (one UDP socket) and closes it before returning. The
// only per-device state is the SNMPv3 engine cache (engine ID, boots, time
// and localized keys), so that a v3 poll needs no discovery round trip.
type Poller struct {
	log     *slog.Logger
	engines engines
}

// NewPoller returns a Poller that logs to logger (nil: discard).
func NewPoller(logger *slog.Logger) *Poller {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Poller{log: logger}
}

// Object identifiers of what a poll reads, with gosnmp's leading dot.
const (
	oidSysUpTime     = ".1.3.6.1.2.1.1.3.0"
	oidSysName       = ".1.3.6.1.2.1.1.5.0"
	oidIfDescr       = ".1.3.6.1.2.1.2.2.1.2"
	oidIfAdminStatus = ".1.3.6.1.2.1.2.2.1.7"
	oidIfOperStatus  = ".1.3.6.1.2.1.2.2.1.8"
	oidIfName        = ".1.3.6.1.2.1.31.1.1.1.1"
	oidIfHCInOctets  = ".1.3.6.1.2.1.31.1.1.1.6"
	oidIfHCOutOctets = ".1.3.6.1.2.1.31.1.1.1.10"
)

// Poll reads sysUpTime, sysName and the interface table of o.Target and
// returns them as samples stamped with the poll's start time, or an error
// naming the target and the step that failed. It returns when the poll is
// done, fails, or ctx ends, whichever is first.
func (p *Poller) Poll(ctx context.Context, o Options) collector.Poll {
	start := time.Now()
	res := collector.Poll{Target: o.Target, Time: start}
	samples, err := p.poll(ctx, o, start)
	if err != nil && o.Target.Version == "3" && ctx.Err() == nil && (errors.Is(err, errRediscover) || errors.Is(err, ErrTimeout)) {
		// The device's engine may have changed under our cache (a new engine
		// ID after a reboot that lost its state): its reports cannot be
		// authenticated with the old keys, so they look like no answer.
		// Forget the engine; after a report asking for rediscovery, rediscover now.
		cached := p.engines.forget(o)
		if cached && errors.Is(err, errRediscover) {
			p.log.Debug("rediscovering SNMPv3 engine", "device", o.Target.Name, "err", err)
			samples, err = p.poll(ctx, o, start)
		}
	}
	res.Duration = time.Since(start)
	if err != nil {
		res.Err = fmt.Errorf("poll %s (%s): %w", o.Target.Name, o.Target.Address, err)
		return res
	}
	res.Samples = samples
	p.log.Debug("poll done", "device", o.Target.Name, "samples", len(samples), "duration", res.Duration)
	return res
}

func (p *Poller) poll(ctx context.Context, o Options, at time.Time) ([]collector.Sample, error) {
	s, err := p.dial(ctx, o)
	if err != nil {
		return nil, err
	}
	defer p.closeSession(s, o)

	var samples []collector.Sample
	add := func(metric string, kind collector.MetricKind, value float64, labels collector.Labels) {
		samples = append(samples, collector.Sample{
			Device: o.Target.Name, Metric: metric, Labels: labels, Value: value, Kind: kind, Time: at,
		})
	}

	sys, err := s.get(ctx, []string{oidSysUpTime, oidSysName})
	if err != nil {
		return nil, fmt.Errorf("get system: %w", err)
	}
	for _, v := range sys {
		switch v.Name {
		case oidSysUpTime:
			ticks, err := number(v)
			if err != nil {
				return nil, fmt.Errorf("get system: sysUpTime: %w", err)
			}
			add("sysUpTime", collector.Gauge, ticks/100, nil)
		case oidSysName:
			name, err := text(v)
			if err != nil {
				return nil, fmt.Errorf("get system: sysName: %w", err)
			}
			add("sysName", collector.Info, 1, collector.NewLabels("sysName", name))
		}
	}

	rows := map[uint32]*ifRow{}
	row := func(i uint32) *ifRow {
		r := rows[i]
		if r == nil {
			r = &ifRow{}
			rows[i] = r
		}
		return r
	}
	columns := []struct {
		name, oid string
		set       func(r *ifRow, v gosnmp.SnmpPDU) error
	}{
		{"ifDescr", oidIfDescr, func(r *ifRow, v gosnmp.SnmpPDU) (err error) { r.descr, err = text(v); return }},
		{"ifAdminStatus", oidIfAdminStatus, func(r *ifRow, v gosnmp.SnmpPDU) (err error) { r.admin, err = present(number(v)); return }},
		{"ifOperStatus", oidIfOperStatus, func(r *ifRow, v gosnmp.SnmpPDU) (err error) { r.oper, err = present(number(v)); return }},
		{"ifName", oidIfName, func(r *ifRow, v gosnmp.SnmpPDU) (err error) { r.name, err = text(v); return }},
		{"ifHCInOctets", oidIfHCInOctets, func(r *ifRow, v gosnmp.SnmpPDU) (err error) { r.in, err = present(number(v)); return }},
		{"ifHCOutOctets", oidIfHCOutOctets, func(r *ifRow, v gosnmp.SnmpPDU) (err error) { r.out, err = present(number(v)); return }},
	}
	for _, c := range columns {
		err := s.walk(ctx, c.oid, func(index string, v gosnmp.SnmpPDU) error {
			i, err := strconv.ParseUint(index, 10, 31)
			if err != nil || i == 0 {
				return fmt.Errorf("%s: bad ifIndex %q (want 1-2147483647)", v.Name, index)
			}
			if err := c.set(row(uint32(i)), v); err != nil {
				return fmt.Errorf("%s: %w", v.Name, err)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("walk %s: %w", c.name, err)
		}
	}

	indexes := make([]uint32, 0, len(rows))
	for i := range rows {
		indexes = append(indexes, i)
	}
	sort.Slice(indexes, func(a, b int) bool { return indexes[a] < indexes[b] })
	for _, i := range indexes {
		r := rows[i]
		name := r.name
		if name == "" {
			name = r.descr
		}
		labels := collector.NewLabels("ifIndex", strconv.FormatUint(uint64(i), 10), "ifName", name, "ifDescr", r.descr)
		if r.admin.ok {
			add("ifAdminStatus", collector.Gauge, r.admin.v, labels)
		}
		if r.oper.ok {
			add("ifOperStatus", collector.Gauge, r.oper.v, labels)
		}
		if r.in.ok {
			add("ifHCInOctets", collector.Counter, r.in.v, labels)
		}
		if r.out.ok {
			add("ifHCOutOctets", collector.Counter, r.out.v, labels)
		}
	}
	return samples, nil
}

// ifRow joins one interface's columns from ifTable and ifXTable.
type ifRow struct {
	descr, name          string
	admin, oper, in, out optional
}

type optional struct {
	v  float64
	ok bool
}

func present(v float64, err error) (optional, error) {
	return optional{v: v, ok: err == nil}, err
}

// session is one gosnmp connection: one UDP socket, used by one poll.
type session struct {
	g       *gosnmp.GoSNMP
	stop    func() bool
	version gosnmp.SnmpVersion
	usm     USM
	rc      *recordingConn // v3 only
	// engineOK is set once an authenticated answer arrived, so that only an
	// engine that answered us is cached.
	engineOK bool
}

func (p *Poller) dial(ctx context.Context, o Options) (*session, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	host, port, err := splitAddress(o.Target.Address)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	var version gosnmp.SnmpVersion
	switch o.Target.Version {
	case "1":
		version = gosnmp.Version1
	case "2c", "":
		version = gosnmp.Version2c
	case "3":
		version = gosnmp.Version3
	default:
		return nil, fmt.Errorf("connect: bad SNMP version %q (want \"1\", \"2c\" or \"3\")", o.Target.Version)
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	maxReps := o.MaxRepetitions
	if maxReps == 0 {
		maxReps = 25
	}
	g := &gosnmp.GoSNMP{
		Target:         host,
		Port:           port,
		Transport:      "udp",
		Community:      o.Community,
		Version:        version,
		Context:        ctx,
		Timeout:        timeout,
		Retries:        max(o.Retries, 0),
		MaxRepetitions: maxReps,
		// Like net-snmp's own tools: accept the answer whichever address it
		// comes from (multi-homed devices), and treat an ICMP port unreachable
		// as no answer, so a dead agent is a timeout, not a socket error.
		UseUnconnectedUDPSocket: true,
	}
	if version == gosnmp.Version3 {
		flags, sp, err := o.USM.params()
		if err != nil {
			return nil, fmt.Errorf("connect: %w", err)
		}
		if c, ok := p.engines.get(o, time.Now()); ok {
			sp.AuthoritativeEngineID = c.id
			sp.AuthoritativeEngineBoots, sp.AuthoritativeEngineTime = c.boots, c.time
			sp.SecretKey, sp.PrivacyKey = c.authKey, c.privKey
		}
		g.SecurityModel, g.MsgFlags, g.SecurityParameters = gosnmp.UserSecurityModel, flags, sp
		g.ContextName = o.USM.Context
	}
	connect := g.Connect
	if ip := net.ParseIP(host); ip != nil && ip.To4() != nil {
		connect = g.ConnectIPv4
	} else if ip != nil {
		connect = g.ConnectIPv6
	}
	if err := connect(); err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	// gosnmp looks at ctx only between retries; closing the socket makes a
	// cancelled poll return now instead of after the request timeout.
	s := &session{version: version, usm: o.USM}
	if uc, ok := g.Conn.(*net.UDPConn); ok && version == gosnmp.Version3 {
		s.rc = &recordingConn{UDPConn: uc}
		g.Conn = s.rc
	}
	conn := g.Conn
	s.g = g
	s.stop = context.AfterFunc(ctx, func() { _ = conn.Close() })
	return s, nil
}

// closeSession closes s and keeps what it learnt about the device's engine.
func (p *Poller) closeSession(s *session, o Options) {
	s.stop()
	_ = s.g.Close() // a second close after cancellation fails harmlessly
	if sp, ok := s.g.SecurityParameters.(*gosnmp.UsmSecurityParameters); ok && s.version == gosnmp.Version3 && s.engineOK {
		cp := sp.Copy().(*gosnmp.UsmSecurityParameters)
		p.engines.put(o, cp, time.Now())
	}
}

// splitAddress parses "host:port" or "host" (port 161).
func splitAddress(addr string) (string, uint16, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		h := strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
		if h == "" || (strings.Contains(h, ":") && net.ParseIP(h) == nil) {
			return "", 0, fmt.Errorf("bad address %q: want host:port", addr)
		}
		return h, DefaultPort, nil
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 || host == "" {
		return "", 0, fmt.Errorf("bad address %q: want host:port with port 1-65535", addr)
	}
	return host, uint16(port), nil
}

// get reads scalars with one Get. Objects the device lacks are left out of
// the result: noSuchObject/noSuchInstance in v2c, and in v1, where a missing
// object fails the whole request with noSuchName, by asking again without it.
func (s *session) get(ctx context.Context, oids []string) ([]gosnmp.SnmpPDU, error) {
	for len(oids) > 0 {
		pkt, err := s.g.Get(oids)
		if err != nil {
			return nil, s.classify(ctx, pkt, err)
		}
		s.engineOK = true
		if pkt.Error == gosnmp.NoSuchName && s.version == gosnmp.Version1 &&
			pkt.ErrorIndex >= 1 && int(pkt.ErrorIndex) <= len(oids) {
			i := int(pkt.ErrorIndex) - 1
			oids = append(oids[:i:i], oids[i+1:]...)
			continue
		}
		if pkt.Error != gosnmp.NoError {
			return nil, fmt.Errorf("device answered %s (error index %d)", pkt.Error, pkt.ErrorIndex)
		}
		var out []gosnmp.SnmpPDU
		for _, v := range pkt.Variables {
			switch v.Type {
			case gosnmp.NoSuchObject, gosnmp.NoSuchInstance, gosnmp.EndOfMibView, gosnmp.Null:
				continue
			}
			out = append(out, v)
		}
		return out, nil
	}
	return nil, nil
}

// walk reads every instance under column, in order, calling fn with the
// instance's index (the OID suffix after the column) and its value. v2c uses
// GetBulk, v1 GetNext. A device that answers with an OID that does not
// increase ends the walk with an error instead of looping.
func (s *session) walk(ctx context.Context, column string, fn func(index string, v gosnmp.SnmpPDU) error) error {
	prefix := column + "."
	last, err := parseOID(column)
	if err != nil {
		return err
	}
	next := column
	rows := 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var pkt *gosnmp.SnmpPacket
		if s.version == gosnmp.Version1 {
			pkt, err = s.g.GetNext([]string{next})
		} else {
			pkt, err = s.g.GetBulk([]string{next}, 0, s.g.MaxRepetitions)
		}
		if err != nil {
			return s.classify(ctx, pkt, err)
		}
		s.engineOK = true
		if pkt.Error == gosnmp.NoSuchName && s.version == gosnmp.Version1 {
			return nil // v1's end of the MIB view
		}
		if pkt.Error != gosnmp.NoError {
			return fmt.Errorf("after %s: device answered %s (error index %d)", next, pkt.Error, pkt.ErrorIndex)
		}
		if len(pkt.Variables) == 0 {
			return fmt.Errorf("after %s: empty response", next)
		}
		for _, v := range pkt.Variables {
			switch v.Type {
			case gosnmp.EndOfMibView, gosnmp.NoSuchObject, gosnmp.NoSuchInstance:
				return nil
			}
			if !strings.HasPrefix(v.Name, prefix) {
				return nil // past the column
			}
			oid, err := parseOID(v.Name)
			if err != nil {
				return err
			}
			if compareOID(oid, last) <= 0 {
				return fmt.Errorf("OID %s does not increase after %s", v.Name, next)
			}
			if rows++; rows > maxRowsPerColumn {
				return fmt.Errorf("more than %d rows", maxRowsPerColumn)
			}
			if err := fn(strings.TrimPrefix(v.Name, prefix), v); err != nil {
				return err
			}
			last, next = oid, v.Name
		}
	}
}

// errRediscover marks an SNMPv3 failure that a fresh engine discovery may cure.
var errRediscover = errors.New("engine changed")

// reportNames names the SNMPv3 report OIDs that gosnmp lumps together as
// "unknown report PDU".
var reportNames = map[string]string{
	".1.3.6.1.6.3.12.1.1.4.0": "snmpUnknownContexts: the device has no such context",
	".1.3.6.1.6.3.12.1.1.5.0": "snmpUnavailableContexts: the context is unavailable",
	".1.3.6.1.6.3.11.2.1.1.0": "snmpUnknownSecurityModels",
	".1.3.6.1.6.3.11.2.1.2.0": "snmpInvalidMsgs",
	".1.3.6.1.6.3.11.2.1.3.0": "snmpUnknownPDUHandlers",
}

// classify maps gosnmp's errors to ours: ctx's error when the poll was
// cancelled, ErrTimeout when the device did not answer, ErrAuthFailure
// (saying auth or priv) when a v3 device rejected our credentials.
func (s *session) classify(ctx context.Context, pkt *gosnmp.SnmpPacket, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if s.version == gosnmp.Version3 {
		if strings.Contains(err.Error(), "not authentic") && s.rc != nil {
			if r, ok := reportErrors[s.rc.report(s.usm.Username)]; ok {
				err = r
			}
		}
		if errors.Is(err, gosnmp.ErrNotInTimeWindow) || errors.Is(err, gosnmp.ErrUnknownEngineID) {
			return fmt.Errorf("%w: %w", errRediscover, usmError(err, s.usm))
		}
		if errors.Is(err, gosnmp.ErrUnknownReportPDU) && pkt != nil && len(pkt.Variables) == 1 {
			name := pkt.Variables[0].Name
			if n, ok := reportNames[name]; ok {
				name = n
			}
			ctxName := ""
			if s.usm.Context != "" {
				ctxName = fmt.Sprintf(" (context %q)", s.usm.Context)
			}
			return fmt.Errorf("device reported %s%s", name, ctxName)
		}
		if u := usmError(err, s.usm); u != err {
			return u
		}
	}
	// gosnmp reports a socket deadline taken from ctx as ctx's error, a hair
	// before ctx itself expires; that is the caller's deadline, not the device's.
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err
	}
	var ne net.Error
	if errors.Is(err, gosnmp.ErrMaxRetriesExceeded) && strings.Contains(err.Error(), "timeout") ||
		errors.As(err, &ne) && ne.Timeout() {
		if s.version == gosnmp.Version3 && s.usm.SecurityLevel == AuthPriv && s.rc != nil && s.rc.received && !s.engineOK {
			if perr := s.diagnosePriv(); perr != nil {
				return perr
			}
		}
		return ErrTimeout
	}
	return err
}

func parseOID(s string) ([]uint32, error) {
	parts := strings.Split(strings.TrimPrefix(s, "."), ".")
	oid := make([]uint32, len(parts))
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("bad OID %q", s)
		}
		oid[i] = uint32(n)
	}
	return oid, nil
}

func compareOID(a, b []uint32) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return len(a) - len(b)
}

// number decodes any SNMP integer type.
func number(v gosnmp.SnmpPDU) (float64, error) {
	switch x := v.Value.(type) {
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case uint:
		return float64(x), nil
	case uint32:
		return float64(x), nil
	case uint64:
		return float64(x), nil
	}
	return 0, fmt.Errorf("want a number, got %s", v.Type)
}

// text decodes an OCTET STRING as display text: trailing NULs (some devices
// send C strings) dropped, invalid UTF-8 replaced.
func text(v gosnmp.SnmpPDU) (string, error) {
	b, ok := v.Value.([]byte)
	if !ok || v.Type != gosnmp.OctetString {
		return "", fmt.Errorf("want an OCTET STRING, got %s", v.Type)
	}
	s := strings.TrimRight(string(b), "\x00")
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return s, nil
}
