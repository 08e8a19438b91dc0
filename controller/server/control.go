package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/netaiops/netaiops/collector/limits"
	"github.com/netaiops/netaiops/controller/auth"
	"github.com/netaiops/netaiops/controller/store"
	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

// silentHeartbeats heartbeat intervals without any message from an agent
// end its stream: the agent sends a heartbeat every interval.
const silentHeartbeats = 3

type controlService struct {
	netaiopsv1.UnimplementedControlServiceServer
	s *Server
}

type connectStream = grpc.BidiStreamingServer[netaiopsv1.ConnectRequest, netaiopsv1.ConnectResponse]

// agentStream is one agent's registered Connect stream.
type agentStream struct {
	agentID  string
	replaced chan struct{} // closed when a newer stream of the agent registers
	// configChanged wakes the stream's goroutine to compare the desired
	// configuration with what it last sent (coalescing: capacity 1).
	configChanged chan struct{}
	out           *sender
	done          chan struct{} // closed when the stream's handler returns
}

// notifyConfig wakes every open stream to re-check its agent's desired
// configuration (after SetConfig or DeleteConfig).
func (s *Server) notifyConfig() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.streams {
		select {
		case st.configChanged <- struct{}{}:
		default:
		}
	}
}

// stream returns the agent's open stream, nil if it has none.
func (s *Server) stream(agentID string) *agentStream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streams[agentID]
}

// register makes st the agent's stream and ends the older one, if any.
func (s *Server) register(st *agentStream) {
	s.mu.Lock()
	old := s.streams[st.agentID]
	s.streams[st.agentID] = st
	s.mu.Unlock()
	if old != nil {
		close(old.replaced)
		s.replaced.Add(1)
	}
}

// unregister drops st and marks the agent disconnected, unless a newer
// stream took over. The store write happens under the lock so that it cannot
// land after a newer stream's hello marked the agent connected.
func (s *Server) unregister(st *agentStream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.streams[st.agentID] != st {
		return
	}
	delete(s.streams, st.agentID)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.store.Disconnect(ctx, st.agentID); err != nil {
		s.logger.Warn("mark agent disconnected", "agent", st.agentID, "err", err)
	}
}

// Connect implements the agent stream of docs/stream.md.
func (c *controlService) Connect(stream connectStream) error {
	s := c.s
	ctx := stream.Context()

	// Recv blocks until the handler returns (which cancels the stream), so
	// the reader cannot be waited for here; Server.Wait owns it.
	msgs := make(chan *netaiopsv1.ConnectRequest)
	recvErr := make(chan error, 1)
	done := make(chan struct{})
	defer close(done)
	s.readers.Add(1)
	go func() {
		defer s.readers.Done()
		for {
			m, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case msgs <- m:
			case <-done:
				return
			}
		}
	}()

	hello, err := c.awaitHello(ctx, msgs, recvErr)
	if err != nil {
		return err
	}
	info := agentInfoFromHello(hello)
	log := s.logger.With("agent", info.ID, "log_id", info.LogID)
	p, err := principal(ctx)
	if err != nil {
		return err
	}
	if p.Kind == auth.KindAgent && p.Name != info.ID {
		log.Warn("agent refused: its credentials name another agent", "authenticated_as", p.Name, "via", p.Via)
		return status.Errorf(codes.PermissionDenied, "hello.agent_id: %q, but the %s credentials are for agent %q", limits.Truncate(info.ID, limits.MaxAgentIDBytes), p.Via, p.Name)
	}

	out := newSender(stream, s.cfg.SendQueue, s.droppedSends.Add)
	st := &agentStream{agentID: info.ID, replaced: make(chan struct{}), configChanged: make(chan struct{}, 1), out: out, done: make(chan struct{})}
	defer close(st.done)
	s.register(st)
	defer s.unregister(st)

	res, err := s.store.Connect(ctx, info)
	if err != nil {
		return s.streamStoreError("connect", err)
	}
	switch {
	case res.NewAgent:
		log.Info("new agent connected", "version", info.Version, "hostname", info.Hostname, "targets", len(info.Targets))
	case res.PreviousLogID != "":
		log.Warn("agent started a new event log: its outbox was wiped", "previous_log_id", res.PreviousLogID)
	default:
		log.Info("agent connected", "version", info.Version, "last_stored_seq", res.Watermark)
	}
	if o := hello.GetOldestUnackedSeq(); o > res.Watermark+1 {
		log.Warn("agent dropped events before connecting", "last_stored_seq", res.Watermark, "oldest_unacked_seq", o)
	}
	welcome := &netaiopsv1.ConnectResponse{Msg: &netaiopsv1.ConnectResponse_Welcome{Welcome: &netaiopsv1.Welcome{
		LastStoredSeq:     res.Watermark,
		HeartbeatInterval: durationpb.New(s.cfg.HeartbeatInterval),
		MaxBatchEvents:    uint32(s.cfg.MaxBatchEvents),
		MaxBatchBytes:     uint32(s.cfg.MaxBatchBytes),
	}}}
	if err := stream.Send(welcome); err != nil {
		return err
	}
	out.lastSent.Store(time.Now().UnixNano())

	// From here on the sender is the stream's only writer.
	var wg sync.WaitGroup
	wg.Go(out.run)
	defer wg.Wait()
	defer out.close()

	// sentHash is the configuration the agent runs or will run once it
	// answers the last push: a push is due only when the desired hash
	// differs from it, so a NACKed push is not repeated on this stream.
	sentHash := hello.GetAppliedConfigHash()
	syncConfig := func() error {
		want, ok, err := s.store.DesiredConfig(ctx, info.ID, info.Labels)
		if err != nil {
			return s.streamStoreError("desired config", err)
		}
		if !ok {
			want = store.Config{}
		}
		if want.Hash == sentHash {
			return nil
		}
		log.Info("pushing configuration", "source", want.Source, "version", want.Version, "hash", want.Hash, "agent_runs", sentHash)
		out.config(&netaiopsv1.ConfigPush{Version: want.Version, Hash: want.Hash, Source: want.Source, Yaml: want.YAML})
		sentHash = want.Hash
		return nil
	}
	if err := syncConfig(); err != nil {
		return err
	}

	// Batches are committed by the server's group-commit writer; this
	// stream's ingester waits for each commit and acks it, so the loop
	// below keeps reading, heartbeating and pushing configuration while
	// the agent's batches wait for the database. It stops reading the
	// agent's messages while its queue is full (gRPC flow control then
	// holds the agent back).
	ing := &streamIngest{s: s, log: log, agentID: info.ID, logID: hello.GetLogId(), out: out,
		ctx: ctx, queue: make(chan ingestItem, ingestWindow), stop: make(chan struct{}), failed: make(chan error, 1)}
	wg.Go(ing.run)
	defer close(ing.stop)

	// The ticker runs at half the heartbeat interval and a heartbeat goes
	// out when nothing was sent for a quarter of it, so the agent never
	// waits longer than about 3/4 of the interval for a message, whatever
	// the scheduling delays; a stream busy with acks sends no heartbeat.
	ticker := time.NewTicker(s.cfg.HeartbeatInterval / 2)
	defer ticker.Stop()
	silentLimit := silentHeartbeats * s.cfg.HeartbeatInterval
	lastMsg := time.Now()
	for {
		in := msgs
		if len(ing.queue) == cap(ing.queue) {
			in = nil
		}
		select {
		case m := <-in:
			lastMsg = time.Now()
			if err := c.handle(ctx, log, hello, m, out, ing); err != nil {
				log.Info("agent stream ended", "err", err)
				return err
			}
		case err := <-ing.failed:
			log.Info("agent stream ended", "err", err)
			return err
		case err := <-recvErr:
			if errors.Is(err, io.EOF) {
				log.Info("agent closed its stream")
				return nil
			}
			log.Info("agent stream broke", "err", err)
			return err
		case now := <-ticker.C:
			if ing.pending.Load() > 0 {
				// Its batches wait for the database: the agent is not
				// silent, we are not reading it.
				lastMsg = now
			}
			if silent := now.Sub(lastMsg); silent > silentLimit {
				log.Warn("agent silent: ending its stream", "silent", silent.Round(time.Millisecond))
				return status.Errorf(codes.DeadlineExceeded, "no message from the agent for %s (%d heartbeat intervals)", silent.Round(time.Millisecond), silentHeartbeats)
			}
			if now.Sub(time.Unix(0, out.lastSent.Load())) >= s.cfg.HeartbeatInterval/4 {
				out.heartbeat(&netaiopsv1.Heartbeat{Time: timestamppb.Now()})
			}
		case <-st.configChanged:
			if err := syncConfig(); err != nil {
				return err
			}
		case <-st.replaced:
			log.Info("agent stream replaced by a newer stream")
			return status.Error(codes.Aborted, "replaced by a newer stream")
		case <-out.failed:
			log.Info("send to agent failed", "err", out.err)
			return out.err
		case <-s.shutdown:
			return status.Error(codes.Unavailable, "controller shutting down")
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

// ingestWindow bounds the batches of one stream waiting for their commit:
// the agent's default window (uplink.DefaultMaxInFlight is 4).
const ingestWindow = 4

// ingestItem is one batch of events, or (open set) the agent's complete
// open-issue set, which must be applied after the batches before it.
type ingestItem struct {
	events []store.Event
	open   *store.OpenSet
}

// streamIngest hands one stream's batches to the group-commit writer in
// order, waits for each commit and acks it; an open-issue set queued
// between batches is applied in its turn.
type streamIngest struct {
	s              *Server
	ctx            context.Context // the stream's
	log            *slog.Logger
	agentID, logID string
	out            *sender
	open           openSet // the set being received (handle)
	queue          chan ingestItem
	stop           chan struct{} // closed when the stream's handler returns
	failed         chan error    // the error that ends the stream
	pending        atomic.Int32  // batches queued and not yet acked
}

func (ig *streamIngest) run() {
	s := ig.s
	for {
		var item ingestItem
		select {
		case item = <-ig.queue:
		case <-ig.stop:
			return
		}
		if item.open != nil {
			if err := s.reconcile(ig.ctx, ig.log, ig.agentID, *item.open); err != nil {
				ig.failed <- err
				return
			}
			continue
		}
		evs := item.events
		reply, ok := s.ingest.submit(store.IngestRequest{AgentID: ig.agentID, LogID: ig.logID, Events: evs}, ig.stop)
		if !ok {
			return
		}
		var o store.IngestOutcome
		select {
		case o = <-reply:
		case <-ig.stop:
			return
		}
		if o.Err != nil {
			ig.failed <- s.streamStoreError("ingest", o.Err)
			return
		}
		res := o.Result
		s.batches.Add(1)
		for _, g := range res.Gaps {
			ig.log.Warn("agent skipped events: it dropped them", "after_seq", g.After, "next_seq", g.Next, "missing", g.Next-g.After-1)
		}
		ig.log.Debug("batch stored", "events", len(evs), "stored", res.Stored, "replayed", res.Replayed,
			"changed", len(res.Changed), "watermark", res.Watermark)
		ig.out.ack(&netaiopsv1.Ack{LogId: ig.logID, AckedSeq: res.Watermark})
		ig.pending.Add(-1)
	}
}

// awaitHello reads the first message, which must be a valid hello.
func (c *controlService) awaitHello(ctx context.Context, msgs <-chan *netaiopsv1.ConnectRequest, recvErr <-chan error) (*netaiopsv1.Hello, error) {
	timer := time.NewTimer(c.s.cfg.HelloTimeout)
	defer timer.Stop()
	var first *netaiopsv1.ConnectRequest
	select {
	case first = <-msgs:
	case err := <-recvErr:
		if errors.Is(err, io.EOF) {
			return nil, status.Error(codes.InvalidArgument, "hello: stream closed before the first message")
		}
		return nil, err
	case <-timer.C:
		return nil, status.Errorf(codes.DeadlineExceeded, "hello: no hello within %s", c.s.cfg.HelloTimeout)
	case <-c.s.shutdown:
		return nil, status.Error(codes.Unavailable, "controller shutting down")
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	hello := first.GetHello()
	switch {
	case hello == nil:
		return nil, status.Errorf(codes.InvalidArgument, "hello: the first message must be a hello, got %s", msgKind(first))
	case hello.GetAgentId() == "":
		return nil, status.Error(codes.InvalidArgument, "hello.agent_id: required")
	case hello.GetLogId() == "":
		return nil, status.Error(codes.InvalidArgument, "hello.log_id: required")
	}
	return hello, nil
}

func msgKind(m *netaiopsv1.ConnectRequest) string {
	switch m.GetMsg().(type) {
	case *netaiopsv1.ConnectRequest_Hello:
		return "hello"
	case *netaiopsv1.ConnectRequest_Events:
		return "events"
	case *netaiopsv1.ConnectRequest_Heartbeat:
		return "heartbeat"
	case *netaiopsv1.ConnectRequest_ConfigStatus:
		return "config_status"
	case *netaiopsv1.ConnectRequest_CommandResult:
		return "command_result"
	case *netaiopsv1.ConnectRequest_OpenIssues:
		return "open_issues"
	}
	return "an empty message"
}

// handle processes one message after the hello; an error ends the stream.
func (c *controlService) handle(ctx context.Context, log *slog.Logger, hello *netaiopsv1.Hello, m *netaiopsv1.ConnectRequest, out *sender, ing *streamIngest) error {
	s := c.s
	switch msg := m.GetMsg().(type) {
	case *netaiopsv1.ConnectRequest_Events:
		return c.ingest(hello, msg.Events, ing)
	case *netaiopsv1.ConnectRequest_OpenIssues:
		set, err := ing.open.add(hello, msg.OpenIssues)
		if err != nil || set == nil {
			return err
		}
		// After the batches queued before it (the loop only reads a
		// message when the queue has room).
		ing.queue <- ingestItem{open: set}
		return nil
	case *netaiopsv1.ConnectRequest_Heartbeat:
		// Level-triggered: the newest state is written with the next group
		// commit.
		hb := msg.Heartbeat
		s.ingest.status(store.AgentStatus{AgentID: hello.GetAgentId(), Pending: hb.GetPendingEvents(), Dropped: hb.GetDroppedEvents()})
		return nil
	case *netaiopsv1.ConnectRequest_ConfigStatus:
		cs := msg.ConfigStatus
		if cs.GetError() == "" {
			log.Info("agent applied configuration", "version", cs.GetVersion(), "hash", cs.GetHash())
			targets := make([]store.Target, 0, len(cs.GetTargets()))
			for _, t := range cs.GetTargets() {
				targets = append(targets, store.Target{Name: t.GetName(), Address: t.GetAddress(), SNMPVersion: t.GetSnmpVersion()})
			}
			if err := s.store.ConfigApplied(ctx, hello.GetAgentId(), limits.Truncate(cs.GetHash(), limits.MaxIDBytes), cs.GetVersion(), targets); err != nil {
				return s.streamStoreError("config ack", err)
			}
			return nil
		}
		nack := limits.Truncate(cs.GetError(), limits.MaxConfigErrorBytes)
		log.Warn("agent rejected configuration", "version", cs.GetVersion(), "hash", cs.GetHash(), "err", nack)
		if err := s.store.ConfigRejected(ctx, hello.GetAgentId(), limits.Truncate(cs.GetHash(), limits.MaxIDBytes), nack); err != nil {
			return s.streamStoreError("config nack", err)
		}
		return nil
	case *netaiopsv1.ConnectRequest_CommandResult:
		s.commandResult(log, hello.GetAgentId(), msg.CommandResult)
		return nil
	case *netaiopsv1.ConnectRequest_Hello:
		return status.Error(codes.InvalidArgument, "hello: sent twice; only the first message is a hello")
	default:
		return status.Error(codes.InvalidArgument, "msg: empty ConnectRequest (no hello, events or heartbeat)")
	}
}

// ingest checks a batch and queues it to the stream's ingester (the loop
// only reads a message when the queue has room).
func (c *controlService) ingest(hello *netaiopsv1.Hello, b *netaiopsv1.EventBatch, ing *streamIngest) error {
	s := c.s
	if b.GetLogId() != hello.GetLogId() {
		return status.Errorf(codes.InvalidArgument, "events.log_id: %q is not the hello's log_id %q", limits.Truncate(b.GetLogId(), limits.MaxIDBytes), hello.GetLogId())
	}
	if n := len(b.GetEvents()); n > s.cfg.MaxBatchEvents {
		return status.Errorf(codes.InvalidArgument, "events.events: %d events, more than max_batch_events %d", n, s.cfg.MaxBatchEvents)
	}
	evs, err := eventsFromProto(b.GetEvents())
	if err != nil {
		return status.Error(codes.InvalidArgument, "events: "+err.Error())
	}
	ing.pending.Add(1)
	ing.queue <- ingestItem{events: evs}
	return nil
}

// streamStoreError maps a store failure on a Connect stream: bad input is
// InvalidArgument; anything else is Unavailable, so the agent reconnects
// and resends (its events stay in its outbox until acked).
func (s *Server) streamStoreError(op string, err error) error {
	var ae *store.ArgError
	switch {
	case errors.As(err, &ae):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	}
	s.logger.Error("agent stream: store failed", "op", op, "err", err)
	return status.Error(codes.Unavailable, fmt.Sprintf("%s: store failed, retry later", op))
}

// sender is the one goroutine that writes to an agent stream. Acks are
// cumulative, so only the newest pending ack is kept; heartbeats go through
// a bounded queue and are dropped (and counted) when it is full.
type sender struct {
	stream connectStream
	drop   func(uint64) uint64

	mu            sync.Mutex
	pendingAck    *netaiopsv1.Ack
	pendingConfig *netaiopsv1.ConfigPush
	wake          chan struct{}

	heartbeats chan *netaiopsv1.Heartbeat
	commands   chan *netaiopsv1.Command
	stop       chan struct{}
	failed     chan struct{}
	err        error // set before failed is closed
	// lastSent is when the last message went out (Unix nanoseconds).
	lastSent atomic.Int64
}

func newSender(stream connectStream, queue int, drop func(uint64) uint64) *sender {
	return &sender{
		stream:     stream,
		drop:       drop,
		wake:       make(chan struct{}, 1),
		heartbeats: make(chan *netaiopsv1.Heartbeat, queue),
		commands:   make(chan *netaiopsv1.Command, queue),
		stop:       make(chan struct{}),
		failed:     make(chan struct{}),
	}
}

func (o *sender) ack(a *netaiopsv1.Ack) {
	o.mu.Lock()
	o.pendingAck = a
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// config queues a configuration push; only the newest pending one is
// sent (level-triggered: an older one is obsolete).
func (o *sender) config(c *netaiopsv1.ConfigPush) {
	o.mu.Lock()
	o.pendingConfig = c
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// command queues a command; false when the queue is full (the caller
// answers ResourceExhausted rather than wait).
func (o *sender) command(c *netaiopsv1.Command) bool {
	select {
	case o.commands <- c:
		return true
	default:
		return false
	}
}

func (o *sender) heartbeat(h *netaiopsv1.Heartbeat) {
	select {
	case o.heartbeats <- h:
	default:
		o.drop(1)
	}
}

func (o *sender) close() { close(o.stop) }

func (o *sender) run() {
	for {
		var m *netaiopsv1.ConnectResponse
		select {
		case <-o.stop:
			// A last ack is worth sending: it spares the agent a resend.
			o.mu.Lock()
			a := o.pendingAck
			o.mu.Unlock()
			if a != nil {
				_ = o.stream.Send(&netaiopsv1.ConnectResponse{Msg: &netaiopsv1.ConnectResponse_Ack{Ack: a}})
			}
			return
		case <-o.wake:
			o.mu.Lock()
			a, c := o.pendingAck, o.pendingConfig
			o.pendingAck, o.pendingConfig = nil, nil
			o.mu.Unlock()
			if a != nil {
				if err := o.send(&netaiopsv1.ConnectResponse{Msg: &netaiopsv1.ConnectResponse_Ack{Ack: a}}); err != nil {
					return
				}
			}
			if c != nil {
				if err := o.send(&netaiopsv1.ConnectResponse{Msg: &netaiopsv1.ConnectResponse_Config{Config: c}}); err != nil {
					return
				}
			}
			continue
		case c := <-o.commands:
			m = &netaiopsv1.ConnectResponse{Msg: &netaiopsv1.ConnectResponse_Command{Command: c}}
		case h := <-o.heartbeats:
			m = &netaiopsv1.ConnectResponse{Msg: &netaiopsv1.ConnectResponse_Heartbeat{Heartbeat: h}}
		}
		if err := o.send(m); err != nil {
			return
		}
	}
}

// send writes one message; a failure is reported once through failed.
func (o *sender) send(m *netaiopsv1.ConnectResponse) error {
	if err := o.stream.Send(m); err != nil {
		o.err = err
		close(o.failed)
		return err
	}
	o.lastSent.Store(time.Now().UnixNano())
	return nil
}
