// Package uplink owns the agent's side of the controller stream
// (netaiops.v1.ControlService/Connect, see docs/stream.md): it dials the
// controller, says hello, streams the outbox's entries as event batches with a
// bounded window in flight, deletes what the controller acks, exchanges
// heartbeats, notices a dead stream and reconnects with jittered, capped
// backoff. It is the only agent package that imports the generated gRPC code;
// the rest of the agent speaks domain types.
package uplink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/netaiops/netaiops/agent/outbox"
	"github.com/netaiops/netaiops/collector"
	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

// Defaults; docs/stream.md fixes the protocol ones.
const (
	DefaultHeartbeatInterval = 10 * time.Second // until the welcome says otherwise
	DefaultMaxBatchEvents    = 500              // when the welcome says 0
	DefaultMaxInFlight       = 4                // batches sent and not yet acked
	DefaultBackoffMin        = time.Second
	DefaultBackoffMax        = 30 * time.Second
	DefaultResetAfter        = time.Minute // a stream that lived this long resets the backoff
	// deadAfter heartbeat intervals without any message from the controller
	// mean the stream is dead.
	deadAfter = 3
	// KeepaliveTime is how often gRPC pings an idle connection; the
	// controller's enforcement MinTime is 20s, so never less than that
	// (a client that pings more often is sent GOAWAY).
	KeepaliveTime = 30 * time.Second
	// MaxMsgSize bounds one gRPC message each way, as the controller does.
	MaxMsgSize = 8 << 20
	// DefaultMaxBatchBytes bounds the encoded size of one event batch, far
	// below MaxMsgSize, when the welcome does not say.
	DefaultMaxBatchBytes = 1 << 20
)

// Config says where the controller is and who the agent is.
type Config struct {
	Address  string // host:port of the controller
	Insecure bool   // plaintext; otherwise TLS
	// CAFile verifies the controller (PEM); empty: the system's roots.
	CAFile string
	// CertFile and KeyFile: the agent's client certificate for mTLS.
	CertFile, KeyFile string
	// ServerName overrides the name checked in the controller's certificate.
	ServerName string
	// Token is sent as "authorization: Bearer <token>"; TokenFile is read
	// at every connection instead (rotation without restart).
	Token, TokenFile string
	AgentID          string
	Version          string
	Hostname         string
	Labels           map[string]string
	Targets          []collector.Target // names and addresses only; never secrets
	// Handler applies configuration pushes and runs commands; its State
	// replaces Targets in hellos. Nil: pushes are NACKed and commands
	// answered Unimplemented.
	Handler Handler

	// Zero values mean the defaults above.
	MaxInFlight int
	BackoffMin  time.Duration
	BackoffMax  time.Duration
	ResetAfter  time.Duration
	// HandshakeTimeout bounds the wait for the welcome; default
	// 3 × DefaultHeartbeatInterval.
	HandshakeTimeout time.Duration
}

// Stats is a snapshot of the uplink's counters.
type Stats struct {
	Connected bool   // a stream is open and welcomed
	Sessions  uint64 // streams that got a welcome
	Attempts  uint64 // streams tried
	Batches   uint64 // event batches sent
	Events    uint64 // events sent (resends after a reconnect count again)
	Acked     uint64 // highest seq acked by the controller on this log
	// DroppedCommands counts commands dropped because MaxCommands were
	// already queued.
	DroppedCommands uint64
	// ConfigPushes counts configuration pushes answered (ACK or NACK).
	ConfigPushes uint64
	// Undecodable counts outbox entries skipped because they could not be
	// decoded (damaged, or of an unknown format).
	Undecodable uint64
}

// Uplink streams an outbox to the controller. Run it once.
type Uplink struct {
	cfg Config
	ob  *outbox.Outbox
	log *slog.Logger

	connected       atomic.Bool
	droppedCommands atomic.Uint64
	configPushes    atomic.Uint64
	sessions        atomic.Uint64
	attempts        atomic.Uint64
	batches         atomic.Uint64
	events          atomic.Uint64
	acked           atomic.Uint64
	undecodable     atomic.Uint64
}

// New checks the config and fills its defaults.
func New(cfg Config, ob *outbox.Outbox, logger *slog.Logger) (*Uplink, error) {
	if cfg.Address == "" {
		return nil, errors.New("create uplink: controller address is empty")
	}
	if cfg.AgentID == "" {
		return nil, errors.New("create uplink: agent id is empty")
	}
	if ob == nil {
		return nil, errors.New("create uplink: outbox is nil")
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = DefaultBackoffMin
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = DefaultBackoffMax
	}
	if cfg.BackoffMax < cfg.BackoffMin {
		cfg.BackoffMax = cfg.BackoffMin
	}
	if cfg.ResetAfter <= 0 {
		cfg.ResetAfter = DefaultResetAfter
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = deadAfter * DefaultHeartbeatInterval
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Uplink{cfg: cfg, ob: ob, log: logger.With("controller", cfg.Address)}, nil
}

// Stats returns the uplink's counters.
func (u *Uplink) Stats() Stats {
	return Stats{
		Connected: u.connected.Load(),
		Sessions:  u.sessions.Load(),
		Attempts:  u.attempts.Load(),
		Batches:   u.batches.Load(),
		Events:    u.events.Load(),
		Acked:     u.acked.Load(),

		DroppedCommands: u.droppedCommands.Load(),
		ConfigPushes:    u.configPushes.Load(),
		Undecodable:     u.undecodable.Load(),
	}
}

// transportCredentials builds TLS from the config's files (or plaintext).
func (c Config) transportCredentials() (credentials.TransportCredentials, error) {
	if c.Insecure {
		return insecure.NewCredentials(), nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("controller CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("controller CA %s: no PEM certificate in it", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" || c.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate %s, key %s: %w", c.CertFile, c.KeyFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return credentials.NewTLS(tc), nil
}

// token returns the bearer token to send, "" for none.
func (c Config) token() (string, error) {
	if c.TokenFile == "" {
		return c.Token, nil
	}
	b, err := os.ReadFile(c.TokenFile)
	if err != nil {
		return "", fmt.Errorf("read token: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("read token: %s is empty", c.TokenFile)
	}
	return t, nil
}

func (u *Uplink) dialOptions(creds credentials.TransportCredentials) []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		// Bounded both ways, like the controller's server; batches stay
		// far below (MaxBatchBytes).
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMsgSize), grpc.MaxCallSendMsgSize(MaxMsgSize)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                KeepaliveTime,
			Timeout:             20 * time.Second,
			PermitWithoutStream: true,
		}),
		// gRPC's own reconnect of the TCP connection follows the same
		// bounds as our stream backoff.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: grpcbackoff.Config{
				BaseDelay:  u.cfg.BackoffMin,
				Multiplier: 2,
				Jitter:     0.2,
				MaxDelay:   u.cfg.BackoffMax,
			},
			MinConnectTimeout: 20 * time.Second,
		}),
	}
}

// Run keeps a stream to the controller open until ctx ends, reconnecting
// after every failure. It returns nil when ctx ends and an error only when
// the connection cannot be set up at all (a malformed address).
func (u *Uplink) Run(ctx context.Context) error {
	creds, err := u.cfg.transportCredentials()
	if err != nil {
		return fmt.Errorf("uplink to %s: %w", u.cfg.Address, err)
	}
	// Each attempt gets a connection of its own: after a stream was
	// declared dead (a silent controller, a cut link), reusing the old
	// connection would wait on the same dead TCP socket until keepalive
	// gives up, instead of dialing afresh at the next backoff step.
	probe, err := grpc.NewClient(u.cfg.Address, u.dialOptions(creds)...)
	if err != nil {
		return fmt.Errorf("uplink to %s: %w", u.cfg.Address, err)
	}
	probe.Close()

	bo := newBackoff(u.cfg.BackoffMin, u.cfg.BackoffMax)
	var lastErr string
	for {
		start := time.Now()
		conn, err := grpc.NewClient(u.cfg.Address, u.dialOptions(creds)...)
		if err != nil {
			return fmt.Errorf("uplink to %s: %w", u.cfg.Address, err)
		}
		err = u.session(ctx, netaiopsv1.NewControlServiceClient(conn))
		conn.Close()
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			err = errors.New("stream ended")
		}
		lived := time.Since(start)
		if lived >= u.cfg.ResetAfter {
			bo.Reset()
		}
		delay := bo.Next()
		// Log a repeated failure (controller down for an hour) at debug,
		// so that the log shows changes, not every retry.
		level := slog.LevelWarn
		if err.Error() == lastErr {
			level = slog.LevelDebug
		}
		lastErr = err.Error()
		if status.Code(err) == codes.Aborted { // replaced by a newer stream of ours
			level = slog.LevelInfo
		}
		u.log.Log(ctx, level, "controller stream ended", "err", err, "lived", lived.Round(time.Millisecond), "retry_in", delay.Round(time.Millisecond))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// session runs one stream from hello to its end. It returns nil only when
// ctx ended; any other end is an error that says why.
func (u *Uplink) session(ctx context.Context, client netaiopsv1.ControlServiceClient) error {
	u.attempts.Add(1)
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	// The watchdog ends the stream when the controller is silent for too
	// long: first HandshakeTimeout for the welcome, then deadAfter
	// heartbeat intervals. Cancelling the stream's context also frees a
	// Send blocked by a controller that stopped reading.
	var silence atomic.Int64 // current allowance, in nanoseconds
	silence.Store(int64(u.cfg.HandshakeTimeout))
	watchdog := time.AfterFunc(u.cfg.HandshakeTimeout, func() {
		cancel(fmt.Errorf("stream dead: no message from controller for %s", time.Duration(silence.Load())))
	})
	defer watchdog.Stop()
	heard := func() { watchdog.Reset(time.Duration(silence.Load())) }

	// fail reports why the stream ended: nothing when ctx ended, the
	// watchdog's verdict when it fired, else err.
	fail := func(err error) error {
		if ctx.Err() != nil {
			return nil
		}
		if sctx.Err() != nil {
			return context.Cause(sctx)
		}
		return err
	}

	tok, err := u.cfg.token()
	if err != nil {
		return err
	}
	streamCtx := sctx
	if tok != "" {
		streamCtx = metadata.AppendToOutgoingContext(sctx, "authorization", "Bearer "+tok)
	}
	stream, err := client.Connect(streamCtx)
	if err != nil {
		return fail(fmt.Errorf("open stream: %w", err))
	}

	// The reader is the only goroutine that calls Recv; this goroutine is
	// the only one that calls Send. The reader hands over the welcome once,
	// publishes acks through an atomic and a coalescing wake-up (so it never
	// blocks on us), and reports the stream's end once.
	var (
		welcomec = make(chan *netaiopsv1.Welcome, 1)
		ackc     = make(chan struct{}, 1)
		errc     = make(chan error, 1)
		ackedSeq atomic.Uint64
		wg       sync.WaitGroup
		in       = inbox{config: make(chan struct{}, 1), commands: make(chan *netaiopsv1.Command, MaxCommands), dropped: &u.droppedCommands}
	)
	wg.Go(func() {
		errc <- u.read(stream, welcomec, ackc, &ackedSeq, heard, &in)
	})
	defer wg.Wait() // runs after cancel: Recv returns once sctx is done
	defer cancel(nil)

	// Commands run in their own goroutines (at most MaxCommands); their
	// results come back here, to the stream's only writer. results has room
	// for every running command, so a command goroutine never blocks.
	var cmdWG sync.WaitGroup
	results := make(chan *netaiopsv1.CommandResult, MaxCommands)
	running := 0
	defer cmdWG.Wait() // after cancel: polls end with sctx

	// sendErr turns a failed Send into the stream's real status: Send
	// reports io.EOF when the stream ended, and the reason comes from Recv.
	sendErr := func(what string, err error) error {
		if errors.Is(err, io.EOF) {
			select {
			case rerr := <-errc:
				return fail(rerr)
			case <-time.After(5 * time.Second):
			}
		}
		return fail(fmt.Errorf("send %s: %w", what, err))
	}

	state := State{Targets: u.cfg.Targets}
	if u.cfg.Handler != nil {
		state = u.cfg.Handler.State()
	}
	hello := &netaiopsv1.Hello{
		AgentId:              u.cfg.AgentID,
		Version:              u.cfg.Version,
		Hostname:             u.cfg.Hostname,
		Labels:               u.cfg.Labels,
		LogId:                u.ob.LogID(),
		OldestUnackedSeq:     u.ob.OldestUnacked(),
		AppliedConfigHash:    state.ConfigHash,
		AppliedConfigVersion: state.ConfigVersion,
	}
	hello.Targets = targetInfos(state.Targets)
	if err := stream.Send(&netaiopsv1.ConnectRequest{Msg: &netaiopsv1.ConnectRequest_Hello{Hello: hello}}); err != nil {
		return sendErr("hello", err)
	}

	var welcome *netaiopsv1.Welcome
	select {
	case <-sctx.Done():
		return fail(nil)
	case err := <-errc:
		return fail(err)
	case welcome = <-welcomec:
	}

	hb := welcome.GetHeartbeatInterval().AsDuration()
	if hb <= 0 {
		hb = DefaultHeartbeatInterval
	}
	silence.Store(int64(deadAfter * hb))
	heard()
	maxBatch := int(welcome.GetMaxBatchEvents())
	if maxBatch <= 0 {
		maxBatch = DefaultMaxBatchEvents
	}
	maxBytes := int(welcome.GetMaxBatchBytes())
	if maxBytes <= 0 || maxBytes > MaxMsgSize/2 {
		maxBytes = DefaultMaxBatchBytes
	}
	sent := welcome.GetLastStoredSeq() // highest seq sent or stored
	u.applyAck(sent)
	u.sessions.Add(1)
	u.connected.Store(true)
	defer u.connected.Store(false)
	u.log.Info("connected to controller", "log_id", u.ob.LogID(), "last_stored_seq", sent,
		"pending", u.ob.Len(), "heartbeat_interval", hb, "max_batch_events", maxBatch)

	// The open-issue set goes out once every event it reflects that is
	// still queued has been sent, so that the controller, which handles a
	// stream's messages in order, judges it after those events.
	var openSet *OpenSet
	if src, ok := u.cfg.Handler.(OpenIssuesSource); ok {
		set, err := src.OpenIssues(sctx)
		if err != nil {
			return fail(fmt.Errorf("take open-issue set: %w", err))
		}
		openSet = &set
	}

	var inflight []uint64 // highest seq of each batch sent and not yet acked
	ticker := time.NewTicker(hb)
	defer ticker.Stop()
	for {
		for len(inflight) < u.cfg.MaxInFlight {
			es := u.ob.Pending(sent, maxBatch)
			if len(es) == 0 {
				break
			}
			// A batch ends before maxBytes (each event costs its size plus
			// a few bytes of framing); an event alone is sent whatever
			// its size, the gRPC limit being far above.
			batch := &netaiopsv1.EventBatch{LogId: u.ob.LogID(), Events: make([]*netaiopsv1.IssueEvent, 0, len(es))}
			size, last := 0, sent
			for _, e := range es {
				ev, err := EventToProto(u.cfg.AgentID, e)
				if err != nil {
					// Cannot be sent: skipped; the cumulative ack of a
					// later event deletes it, and the controller sees
					// the gap.
					u.log.Error("outbox entry skipped", "err", err)
					u.undecodable.Add(1)
					last = e.Seq
					continue
				}
				n := proto.Size(ev) + 8
				if len(batch.Events) > 0 && size+n > maxBytes {
					break
				}
				size += n
				batch.Events = append(batch.Events, ev)
				last = e.Seq
			}
			if len(batch.Events) == 0 {
				sent = last
				continue
			}
			first, n := batch.Events[0].GetSeq(), len(batch.Events)
			if err := stream.Send(&netaiopsv1.ConnectRequest{Msg: &netaiopsv1.ConnectRequest_Events{Events: batch}}); err != nil {
				return sendErr(fmt.Sprintf("events %d-%d", first, batch.Events[n-1].GetSeq()), err)
			}
			sent = last
			inflight = append(inflight, sent)
			u.batches.Add(1)
			u.events.Add(uint64(n))
		}
		if openSet != nil {
			if next := u.ob.Pending(sent, 1); len(next) == 0 || next[0].Seq > openSet.AsOfSeq {
				if err := sendOpenSet(stream, u.ob.LogID(), openSet); err != nil {
					return sendErr("open issues", err)
				}
				u.log.Info("sent open-issue set", "open", len(openSet.Issues), "as_of_seq", openSet.AsOfSeq)
				openSet = nil
			}
		}

		select {
		case <-sctx.Done():
			if ctx.Err() != nil {
				_ = stream.CloseSend()
			}
			return fail(nil)
		case err := <-errc:
			return fail(err)
		case <-ackc:
			a := ackedSeq.Load()
			u.applyAck(a)
			for len(inflight) > 0 && inflight[0] <= a {
				inflight = inflight[1:]
			}
			sent = max(sent, a)
		case <-in.config:
			push := in.takeConfig()
			if push == nil {
				continue
			}
			u.configPushes.Add(1)
			st := &netaiopsv1.ConfigStatus{Version: push.GetVersion(), Hash: push.GetHash()}
			if err := u.applyConfig(sctx, push); err != nil {
				st.Error = err.Error()
			} else {
				st.Targets = targetInfos(u.cfg.Handler.State().Targets)
			}
			if err := stream.Send(&netaiopsv1.ConnectRequest{Msg: &netaiopsv1.ConnectRequest_ConfigStatus{ConfigStatus: st}}); err != nil {
				return sendErr("config status", err)
			}
		case cmd := <-in.commands:
			if running >= MaxCommands {
				r := &netaiopsv1.CommandResult{Id: cmd.GetId(), Code: int32(codes.ResourceExhausted), Message: fmt.Sprintf("agent runs %d commands already", running)}
				if err := stream.Send(&netaiopsv1.ConnectRequest{Msg: &netaiopsv1.ConnectRequest_CommandResult{CommandResult: r}}); err != nil {
					return sendErr("command result", err)
				}
				continue
			}
			running++
			cmdWG.Go(func() { results <- commandResult(sctx, u.cfg.Handler, cmd) })
		case r := <-results:
			running--
			if err := stream.Send(&netaiopsv1.ConnectRequest{Msg: &netaiopsv1.ConnectRequest_CommandResult{CommandResult: r}}); err != nil {
				return sendErr("command result", err)
			}
		case <-u.ob.Notify():
			// new entries: the loop's top sends them
		case now := <-ticker.C:
			beat := &netaiopsv1.Heartbeat{
				Time:          timestamppb.New(now),
				PendingEvents: uint64(u.ob.Len()),
				DroppedEvents: u.ob.Dropped(),
			}
			if err := stream.Send(&netaiopsv1.ConnectRequest{Msg: &netaiopsv1.ConnectRequest_Heartbeat{Heartbeat: beat}}); err != nil {
				return sendErr("heartbeat", err)
			}
		}
	}
}

// openSetChunk is how many issues one OpenIssues message carries (about
// 100 KiB), so a large set never nears the gRPC message limit.
const openSetChunk = 1000

// sendOpenSet sends set in messages of at most openSetChunk issues; an
// empty set is one message.
func sendOpenSet(stream grpc.BidiStreamingClient[netaiopsv1.ConnectRequest, netaiopsv1.ConnectResponse], logID string, set *OpenSet) error {
	rest := set.Issues
	for {
		n := min(len(rest), openSetChunk)
		m := &netaiopsv1.OpenIssues{LogId: logID, AsOfSeq: set.AsOfSeq, More: n < len(rest),
			Issues: make([]*netaiopsv1.OpenIssueRef, 0, n)}
		for _, is := range rest[:n] {
			m.Issues = append(m.Issues, &netaiopsv1.OpenIssueRef{Id: is.ID, Fingerprint: is.Fingerprint})
		}
		if err := stream.Send(&netaiopsv1.ConnectRequest{Msg: &netaiopsv1.ConnectRequest_OpenIssues{OpenIssues: m}}); err != nil {
			return err
		}
		rest = rest[n:]
		if len(rest) == 0 {
			return nil
		}
	}
}

func targetInfos(ts []collector.Target) []*netaiopsv1.TargetInfo {
	out := make([]*netaiopsv1.TargetInfo, 0, len(ts))
	for _, t := range ts {
		out = append(out, &netaiopsv1.TargetInfo{Name: t.Name, Address: t.Address, SnmpVersion: t.Version})
	}
	return out
}

// applyConfig hands a push to the handler; its error is the NACK.
func (u *Uplink) applyConfig(ctx context.Context, push *netaiopsv1.ConfigPush) error {
	if u.cfg.Handler == nil {
		return errors.New("this agent takes no configuration from the controller")
	}
	err := u.cfg.Handler.ApplyConfig(ctx, RemoteConfig{Version: push.GetVersion(), Hash: push.GetHash(), Source: push.GetSource(), YAML: push.GetYaml()})
	if err != nil {
		u.log.Warn("rejected configuration from the controller", "source", push.GetSource(), "version", push.GetVersion(), "err", err)
		return err
	}
	u.log.Info("applied configuration from the controller", "source", push.GetSource(), "version", push.GetVersion(), "hash", push.GetHash())
	return nil
}

// inbox carries what the reader receives besides acks to the session
// goroutine without ever blocking the reader: the newest config push in
// one slot (an older push is obsolete), commands in a bounded queue (a
// command that finds it full is dropped and counted; the controller's
// caller then sees DeadlineExceeded).
type inbox struct {
	mu       sync.Mutex
	push     *netaiopsv1.ConfigPush
	config   chan struct{}
	commands chan *netaiopsv1.Command
	dropped  *atomic.Uint64
}

func (in *inbox) putConfig(p *netaiopsv1.ConfigPush) {
	in.mu.Lock()
	in.push = p
	in.mu.Unlock()
	select {
	case in.config <- struct{}{}:
	default:
	}
}

func (in *inbox) takeConfig() *netaiopsv1.ConfigPush {
	in.mu.Lock()
	defer in.mu.Unlock()
	p := in.push
	in.push = nil
	return p
}

func (in *inbox) putCommand(c *netaiopsv1.Command) {
	select {
	case in.commands <- c:
	default:
		in.dropped.Add(1)
	}
}

// applyAck deletes what the controller stored.
func (u *Uplink) applyAck(seq uint64) {
	if seq == 0 {
		return
	}
	u.ob.Ack(seq)
	for {
		old := u.acked.Load()
		if seq <= old || u.acked.CompareAndSwap(old, seq) {
			return
		}
	}
}

// read receives until the stream ends and returns why it ended.
func (u *Uplink) read(stream grpc.BidiStreamingClient[netaiopsv1.ConnectRequest, netaiopsv1.ConnectResponse],
	welcomec chan<- *netaiopsv1.Welcome, ackc chan<- struct{}, acked *atomic.Uint64, heard func(), in *inbox) error {
	welcomed := false
	for {
		msg, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return errors.New("receive: controller closed the stream")
			}
			return fmt.Errorf("receive: %w", err)
		}
		heard()
		switch m := msg.GetMsg().(type) {
		case *netaiopsv1.ConnectResponse_Welcome:
			if welcomed {
				return errors.New("receive: second welcome on one stream")
			}
			welcomed = true
			welcomec <- m.Welcome
		case *netaiopsv1.ConnectResponse_Ack:
			if !welcomed {
				return errors.New("receive: ack before welcome")
			}
			if got := m.Ack.GetLogId(); got != u.ob.LogID() {
				return fmt.Errorf("receive ack: log id %q, want %q", got, u.ob.LogID())
			}
			for {
				old := acked.Load()
				if m.Ack.GetAckedSeq() <= old || acked.CompareAndSwap(old, m.Ack.GetAckedSeq()) {
					break
				}
			}
			select {
			case ackc <- struct{}{}:
			default: // a wake-up is pending; it will read the newest ack
			}
		case *netaiopsv1.ConnectResponse_Config:
			if !welcomed {
				return errors.New("receive: config before welcome")
			}
			in.putConfig(m.Config)
		case *netaiopsv1.ConnectResponse_Command:
			if !welcomed {
				return errors.New("receive: command before welcome")
			}
			in.putCommand(m.Command)
		case *netaiopsv1.ConnectResponse_Heartbeat:
			// heard() is all a heartbeat is for
		default:
			u.log.Debug("ignoring unknown message from controller", "type", fmt.Sprintf("%T", m))
		}
	}
}
