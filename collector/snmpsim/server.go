package snmpsim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gosnmp/gosnmp"
)

// Options configure a Server. The zero value is usable.
type Options struct {
	// Logger receives load warnings and serve errors; default: discard.
	Logger *slog.Logger
	// Clock is the time source; faults and counters follow it, so tests
	// inject one instead of sleeping. Default: time.Now.
	Clock func() time.Time
	// Start is the simulator's time zero for scripted faults. Default:
	// Clock() when NewServer runs.
	Start time.Time
	// MaxMessageSize caps a response datagram; GetBulk responses are cut to
	// fit, Get and GetNext answer tooBig. Default 65507 (largest UDP/IPv4
	// payload); at least 484, the minimum every SNMP agent must accept.
	MaxMessageSize int
	// MaxVarbinds caps the varbinds of one GetBulk response, bounding the
	// work of max-repetitions 2^31. Default 1000.
	MaxVarbinds int
	// Workers is the number of goroutines reading the socket. Default
	// GOMAXPROCS.
	Workers int
}

// Defaults for Options.
const (
	DefaultMaxMessageSize = 65507
	DefaultMaxVarbinds    = 1000
	minMessageSize        = 484
)

// Server answers SNMP v1/v2c requests for the devices of a Scenario. Its
// devices are immutable and every moving value is computed from the clock,
// so any number of workers handle requests without locks.
type Server struct {
	log     *slog.Logger
	clock   func() time.Time
	start   time.Time
	maxMsg  int
	maxVB   int
	workers int
	devices map[string]*device
	names   []string
	st      counters
	pool    sync.Pool // *scratch
}

// NewServer builds the devices of sc: generated tables are shared per
// interface count, recordings are loaded once per file. Recording lines that
// cannot be served are logged as warnings (one summary per file, details at
// debug level); unreadable or empty recordings are errors.
func NewServer(sc *Scenario, opts Options) (*Server, error) {
	if sc == nil {
		return nil, errors.New("new snmp simulator: nil scenario")
	}
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("new snmp simulator: %w", err)
	}
	s := &Server{
		log:     opts.Logger,
		clock:   opts.Clock,
		start:   opts.Start,
		maxMsg:  opts.MaxMessageSize,
		maxVB:   opts.MaxVarbinds,
		workers: opts.Workers,
		devices: make(map[string]*device, len(sc.Devices)),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.start.IsZero() {
		s.start = s.clock()
	}
	if s.maxMsg == 0 {
		s.maxMsg = DefaultMaxMessageSize
	}
	if s.maxMsg < minMessageSize || s.maxMsg > DefaultMaxMessageSize {
		return nil, fmt.Errorf("new snmp simulator: max message size %d out of range %d..%d", s.maxMsg, minMessageSize, DefaultMaxMessageSize)
	}
	if s.maxVB <= 0 {
		s.maxVB = DefaultMaxVarbinds
	}
	if s.workers <= 0 {
		s.workers = runtime.GOMAXPROCS(0)
	}
	recs := map[string]*table{}
	for _, spec := range sc.Devices {
		var d *device
		if spec.SNMPRec == "" {
			d = newGenerated(spec, s.start)
		} else {
			tab, ok := recs[spec.SNMPRec]
			if !ok {
				var warns []Warning
				var err error
				tab, warns, err = loadRecording(spec.SNMPRec)
				if err != nil {
					return nil, fmt.Errorf("new snmp simulator: device %s: %w", spec.Name, err)
				}
				recs[spec.SNMPRec] = tab
				s.logWarnings(spec, tab, warns)
			}
			d = newRecorded(spec, tab)
		}
		s.devices[d.community] = d
		s.names = append(s.names, d.name)
	}
	s.pool.New = func() any { return new(scratch) }
	return s, nil
}

func (s *Server) logWarnings(spec DeviceSpec, tab *table, warns []Warning) {
	log := s.log.With("device", spec.Name, "file", spec.SNMPRec)
	for _, w := range warns {
		log.Debug("recording line not served as written", "line", w.Line, "reason", w.Msg)
	}
	if len(warns) > 0 {
		log.Warn("recording loaded with warnings", "oids", len(tab.entries), "warnings", len(warns), "first", warns[0].Error())
		return
	}
	log.Debug("recording loaded", "oids", len(tab.entries))
}

// Devices returns the names of the served devices in scenario order.
func (s *Server) Devices() []string { return append([]string(nil), s.names...) }

// Start returns the simulator's time zero.
func (s *Server) Start() time.Time { return s.start }

// ListenAndServe listens on the UDP address addr and serves until ctx ends.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	conn, err := net.ListenUDP("udp", ua)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	return s.Serve(ctx, conn)
}

// Serve answers requests arriving on conn until ctx ends, then closes conn
// and returns nil after every worker has stopped. A read error other than
// the close ends serving and is returned.
func (s *Server) Serve(ctx context.Context, conn *net.UDPConn) error {
	// Best effort: a bigger receive buffer absorbs the bursts of a fleet
	// benchmark; the kernel may cap it, which is fine.
	_ = conn.SetReadBuffer(4 << 20)
	_ = conn.SetWriteBuffer(4 << 20)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		readErr error
	)
	for range s.workers {
		wg.Go(func() {
			if err := s.readLoop(conn); err != nil {
				errOnce.Do(func() { readErr = err })
				conn.Close()
			}
		})
	}
	wg.Wait()
	conn.Close()
	if ctx.Err() != nil {
		return nil
	}
	return readErr
}

func (s *Server) readLoop(conn *net.UDPConn) error {
	buf := make([]byte, 65535)
	sc := new(scratch)
	for {
		n, addr, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("serve %s: read: %w", conn.LocalAddr(), err)
		}
		resp := s.handle(sc, buf[:n])
		if resp == nil {
			continue
		}
		if _, err := conn.WriteToUDPAddrPort(resp, addr); err != nil {
			s.st.dropSend.Add(1)
			continue
		}
		s.st.responses.Add(1)
	}
}

// HandlePacket answers one request datagram: it returns the response to
// send, or nil when the request is dropped (the reason is counted in Stats).
// It is safe for concurrent use; Serve uses the same path.
func (s *Server) HandlePacket(req []byte) []byte {
	sc := s.pool.Get().(*scratch)
	defer s.pool.Put(sc)
	resp := s.handle(sc, req)
	if resp != nil {
		s.st.responses.Add(1)
	}
	return resp
}

// Stats is a snapshot of the server's self-counters.
type Stats struct {
	Requests  uint64 // datagrams received
	Responses uint64 // datagrams answered
	Get       uint64 // requests by PDU type, counted after the community check
	GetNext   uint64
	GetBulk   uint64
	Set       uint64 // answered with noAccess (v2c) or noSuchName (v1): every community is read-only
	TooBig    uint64 // answered tooBig: a Get/GetNext answer, or a GetBulk's first varbind, exceeds the size cap
	Truncated uint64 // GetBulk responses cut to fit the size or varbind cap

	DroppedMalformed        uint64 // not decodable as SNMP
	DroppedUnsupported      uint64 // SNMPv3, or a PDU an agent does not answer (response, trap, v1 GetBulk)
	DroppedUnknownCommunity uint64 // community of no device: real agents stay silent
	DroppedSilent           uint64 // device inside an unreachable fault
	DroppedEncode           uint64 // response could not be encoded (e.g. an unencodable requested OID)
	DroppedSend             uint64 // socket write failed
}

// Dropped is the total of requests not answered.
func (st Stats) Dropped() uint64 {
	return st.DroppedMalformed + st.DroppedUnsupported + st.DroppedUnknownCommunity +
		st.DroppedSilent + st.DroppedEncode + st.DroppedSend
}

// LogValue renders the counters as one slog group.
func (st Stats) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Uint64("requests", st.Requests),
		slog.Uint64("responses", st.Responses),
		slog.Uint64("get", st.Get),
		slog.Uint64("getnext", st.GetNext),
		slog.Uint64("getbulk", st.GetBulk),
		slog.Uint64("set", st.Set),
		slog.Uint64("too_big", st.TooBig),
		slog.Uint64("truncated", st.Truncated),
		slog.Uint64("dropped_malformed", st.DroppedMalformed),
		slog.Uint64("dropped_unsupported", st.DroppedUnsupported),
		slog.Uint64("dropped_unknown_community", st.DroppedUnknownCommunity),
		slog.Uint64("dropped_silent", st.DroppedSilent),
		slog.Uint64("dropped_encode", st.DroppedEncode),
		slog.Uint64("dropped_send", st.DroppedSend),
	)
}

type counters struct {
	requests, responses                 atomic.Uint64
	get, getNext, getBulk, set          atomic.Uint64
	tooBig, truncated                   atomic.Uint64
	dropMalformed, dropUnsupported      atomic.Uint64
	dropUnknown, dropSilent, dropEncode atomic.Uint64
	dropSend                            atomic.Uint64
}

// Stats returns a snapshot of the self-counters.
func (s *Server) Stats() Stats {
	c := &s.st
	return Stats{
		Requests: c.requests.Load(), Responses: c.responses.Load(),
		Get: c.get.Load(), GetNext: c.getNext.Load(), GetBulk: c.getBulk.Load(), Set: c.set.Load(),
		TooBig: c.tooBig.Load(), Truncated: c.truncated.Load(),
		DroppedMalformed: c.dropMalformed.Load(), DroppedUnsupported: c.dropUnsupported.Load(),
		DroppedUnknownCommunity: c.dropUnknown.Load(), DroppedSilent: c.dropSilent.Load(),
		DroppedEncode: c.dropEncode.Load(), DroppedSend: c.dropSend.Load(),
	}
}

// scratch is one worker's reusable buffers.
type scratch struct {
	dec gosnmp.GoSNMP
	oid OID
	vbs []gosnmp.SnmpPDU
	pos []int
	cur []string
}
