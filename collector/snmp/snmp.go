// Package snmp polls devices over SNMP v1, v2c and v3 (USM) and turns the
// replies into collector samples. It owns everything gosnmp-specific behind
// one call, Poller.Poll:
//
//   - what to read: a Plan compiled from profiles (collector/snmp/profile):
//     scalars read with Get (at most MaxOIDsPerGet per request), tables
//     walked whole, up to MaxWalks at a time, each walker on its own socket;
//   - walks that real agents survive: GetBulk with max-repetitions lowered on
//     tooBig or a timed-out answer, GetNext for v1 and for devices that answer
//     GetBulk badly (remembered per target), stop at endOfMibView or the end
//     of the table, and a walk that meets a non-increasing OID ends there,
//     keeping its rows (counted, not fatal);
//   - SNMPv3: every security level, auth MD5/SHA/SHA-2 and priv DES/AES
//     (Blumenthal and Reeder key extension), context names, the engine ID,
//     boots, time and localized keys cached per target and rediscovered when
//     the engine changes; rejected credentials fail with ErrAuthFailure
//     saying whether auth or priv failed;
//   - samples: profile metrics, derived memoryUtilization, cpuUtilization,
//     temperatureCelsius, and per-target rates (see rate.go) with wrap and
//     discontinuity handling;
//   - bad input: undecodable varbinds are dropped and counted, datagrams that
//     are not well-formed BER or come from another address are dropped and
//     counted before gosnmp sees them; never a panic;
//   - self-metrics (Metrics) from a registry the caller passes in.
//
// It never imports the agent: what to poll and how often is decided by the
// caller. Traps are received by collector/snmp/trap.
package snmp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/netaiops/netaiops/collector"
)

// ErrTimeout is returned (wrapped) when the device did not answer a request
// within Timeout, after every retry. A stopped agent, an unreachable host and
// a wrong community (agents drop those silently) all look like this.
var ErrTimeout = errors.New("request timeout")

// DefaultPort is the SNMP port used when a target's address has none.
const DefaultPort = 161

// Options says what to poll and how. Secrets (the community) travel here,
// never in collector.Target.
type Options struct {
	Target         collector.Target
	Community      string
	Timeout        time.Duration // per request; 0: 2s
	Retries        int           // resends after a timeout; negative counts as 0
	MaxRepetitions uint32        // GetBulk max-repetitions (v2c, v3); 0: 25
	USM            USM           // SNMPv3 credentials and context (Target.Version "3")
	Plan           *Plan         // what to read; nil: DefaultPlan (system and if_mib)
	MaxOIDsPerGet  int           // scalars per Get request; 0: 60
	MaxWalks       int           // tables walked at once, each on its own socket; 0: DefaultMaxWalks
}

// Poller polls devices. One Poller is safe for concurrent use: every Poll
// opens its own session (one UDP socket) and closes it before returning. The
// only per-device state is the SNMPv3 engine cache (engine ID, boots, time
// and localized keys), so that a v3 poll needs no discovery round trip.
type Poller struct {
	log     *slog.Logger
	engines engines
	noBulk  sync.Map // engineKey -> true: walk this device with GetNext
	rates   sync.Map // engineKey -> *rates
	metrics *Metrics // nil: none
}

// NewPoller returns a Poller that logs to logger (nil: discard).
func NewPoller(logger *slog.Logger, opts ...PollerOption) *Poller {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &Poller{log: logger}
	for _, o := range opts {
		o(p)
	}
	return p
}

// PollerOption changes how NewPoller builds a Poller.
type PollerOption func(*Poller)

// WithMetrics makes the Poller record its self-metrics in m.
func WithMetrics(m *Metrics) PollerOption { return func(p *Poller) { p.metrics = m } }

// Object identifiers the tests and the priv probe use, with gosnmp's leading dot.
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
	var st pollStats
	samples, err := p.poll(ctx, o, start, &st)
	if err != nil && o.Target.Version == "3" && ctx.Err() == nil && (errors.Is(err, errRediscover) || errors.Is(err, ErrTimeout)) {
		// The device's engine may have changed under our cache (a new engine
		// ID after a reboot that lost its state): its reports cannot be
		// authenticated with the old keys, so they look like no answer.
		// Forget the engine; after a report asking for rediscovery, rediscover now.
		cached := p.engines.forget(o)
		if cached && errors.Is(err, errRediscover) {
			p.log.Debug("rediscovering SNMPv3 engine", "device", o.Target.Name, "err", err)
			samples, err = p.poll(ctx, o, start, &st)
		}
	}
	res.Duration = time.Since(start)
	if err != nil {
		res.Err = fmt.Errorf("poll %s (%s): %w", o.Target.Name, o.Target.Address, err)
	} else {
		res.Samples = samples
	}
	if ctx.Err() == nil { // a poll cut short by shutdown says nothing about the device
		p.metrics.observe(res, st)
	}
	if err != nil {
		return res
	}
	p.log.Debug("poll done", "device", o.Target.Name, "samples", len(samples), "duration", res.Duration)
	return res
}

func (p *Poller) poll(ctx context.Context, o Options, at time.Time, st *pollStats) ([]collector.Sample, error) {
	plan := o.Plan
	if plan == nil {
		var err error
		if plan, err = DefaultPlan(); err != nil {
			return nil, err
		}
	}
	s, err := p.dial(ctx, o)
	if err != nil {
		return nil, err
	}
	defer p.closeSession(s, o)

	res := newResult(plan)
	if len(plan.scalars) > 0 {
		oids := make([]string, len(plan.scalars))
		for i, sc := range plan.scalars {
			oids[i] = sc.oid
		}
		n, err := s.get(ctx, oids, res.addScalar)
		st.requests += n
		if err != nil {
			return nil, fmt.Errorf("get scalars: %w", err)
		}
		p.keepEngine(s, o) // parallel walkers dial with the engine just learnt
	}
	if err := p.walkTables(ctx, o, s, plan, res, st); err != nil {
		return nil, err
	}
	base := collector.Sample{Device: o.Target.Name, Time: at}
	samples, counters := res.samples(o.Target.Name, base)
	samples = derive(samples, base)
	samples = p.targetRates(o).observe(samples, counters, at)
	for _, b := range res.bad {
		st.bad += b
	}
	if st.bad > 0 {
		p.log.Debug("dropped undecodable varbinds", "device", o.Target.Name, "count", st.bad, "first", res.firstBad())
	}
	for _, f := range st.faults {
		p.log.Debug("walk ended early; kept the rows read", "device", o.Target.Name, "err", f)
	}
	return samples, nil
}

// pollStats counts what one poll did, for the self-metrics.
type pollStats struct {
	requests int
	varbinds int
	bad      int         // varbinds dropped as undecodable
	faults   []walkFault // walks ended early on a device bug
	fellBack bool        // GetBulk abandoned for GetNext
}

// walkTables walks the plan's tables, at most o.MaxWalks at a time, each
// walker on its own session (s is the first walker's).
func (p *Poller) walkTables(ctx context.Context, o Options, s *session, plan *Plan, res *result, st *pollStats) error {
	if len(plan.tables) == 0 {
		return nil
	}
	workers := o.MaxWalks
	if workers <= 0 {
		workers = DefaultMaxWalks
	}
	workers = min(workers, len(plan.tables))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan int, len(plan.tables))
	for i := range plan.tables {
		jobs <- i
	}
	close(jobs)
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
			cancel()
		}
		mu.Unlock()
	}
	for w := range workers {
		var first *session
		if w == 0 {
			first = s // the other walkers dial their own session
		}
		wg.Go(func() {
			ws := first
			for ti := range jobs {
				if ws == nil {
					var err error
					if ws, err = p.dial(ctx, o); err != nil {
						fail(err)
						return
					}
					defer p.closeSession(ws, o)
				}
				t := plan.tables[ti]
				wst, err := ws.walk(ctx, t.root, func(v *gosnmp.SnmpPDU) { res.addColumn(ti, v) })
				mu.Lock()
				st.requests += wst.requests
				st.varbinds += wst.varbinds
				st.fellBack = st.fellBack || wst.fellBack
				if errors.Is(err, errNotIncreasing) || errors.Is(err, errTooManyRows) {
					st.faults = append(st.faults, walkFault{table: t.name, err: err})
					err = nil
				}
				mu.Unlock()
				if err != nil {
					fail(fmt.Errorf("walk %s: %w", t.name, err))
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}

// session is one gosnmp connection: one UDP socket, used by one poll.
type session struct {
	g       *gosnmp.GoSNMP
	stop    func() bool
	version gosnmp.SnmpVersion
	usm     USM
	rc      *recordingConn
	maxReps uint32 // GetBulk max-repetitions; lowered on tooBig and timeouts
	maxOIDs int    // OIDs per Get
	noBulk  bool   // walk with GetNext: v1, or the device answers GetBulk badly
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
		flags, sp, err := o.USM.Params()
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
	s := &session{version: version, usm: o.USM, maxReps: maxReps, maxOIDs: o.MaxOIDsPerGet, noBulk: p.bulkBroken(o)}
	if s.maxOIDs <= 0 {
		s.maxOIDs = DefaultMaxOIDsPerGet
	}
	if uc, ok := g.Conn.(*net.UDPConn); ok {
		s.rc = &recordingConn{UDPConn: uc, record: version == gosnmp.Version3}
		if ua, err := net.ResolveUDPAddr("udp", net.JoinHostPort(host, strconv.Itoa(int(port)))); err == nil {
			if a, ok := netip.AddrFromSlice(ua.IP); ok {
				s.rc.peer = a.Unmap()
			}
		}
		g.Conn = s.rc
	}
	conn := g.Conn
	s.g = g
	s.stop = context.AfterFunc(ctx, func() { _ = conn.Close() })
	return s, nil
}

// DefaultMaxWalks is how many tables of one device are walked at once unless
// told otherwise: a second walker hides one round trip, more load the device.
const DefaultMaxWalks = 2

// DefaultMaxOIDsPerGet is how many OIDs one Get asks for unless told otherwise
// (gosnmp's own limit, and what most agents take).
const DefaultMaxOIDsPerGet = 60

// closeSession closes s and keeps what it learnt about the device's engine
// and its GetBulk support.
func (p *Poller) closeSession(s *session, o Options) {
	s.stop()
	_ = s.g.Close() // a second close after cancellation fails harmlessly
	p.keepEngine(s, o)
	if s.rc != nil && (s.rc.malformed > 0 || s.rc.foreign > 0) {
		p.metrics.badReplies(o.Target.Name, s.rc.malformed, s.rc.foreign)
		p.log.Debug("dropped bad replies", "device", o.Target.Name, "malformed", s.rc.malformed, "foreign_source", s.rc.foreign)
	}
	if s.noBulk && s.version != gosnmp.Version1 {
		p.noBulk.Store(engineKey(o), true)
	}
}

// keepEngine caches the v3 engine a session has been answered by.
func (p *Poller) keepEngine(s *session, o Options) {
	if sp, ok := s.g.SecurityParameters.(*gosnmp.UsmSecurityParameters); ok && s.version == gosnmp.Version3 && s.engineOK {
		cp := sp.Copy().(*gosnmp.UsmSecurityParameters)
		p.engines.put(o, cp, time.Now())
	}
}

// bulkBroken reports whether o's device answered GetBulk badly before.
func (p *Poller) bulkBroken(o Options) bool {
	_, ok := p.noBulk.Load(engineKey(o))
	return ok
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

// Forget drops what the Poller keeps about o's target (SNMPv3 engine and
// keys, GetBulk support, counter state for rates): call it when a target
// leaves the configuration, so that the caches do not grow with every target
// ever polled.
func (p *Poller) Forget(o Options) {
	p.engines.forget(o)
	p.noBulk.Delete(engineKey(o))
	p.rates.Delete(engineKey(o))
}
