// Package uplinktest runs, for tests, a small controller that implements the
// server side of docs/stream.md over a real TCP socket: it validates hellos,
// replaces an agent's older stream, stores batches idempotently under a
// per-log watermark and acks after storing, and exchanges heartbeats. Its
// Options let a test make it misbehave in ways the real controller never
// does: refuse streams, stay silent, stop reading.
//
// It lives beside agent/uplink because it speaks proto; agent tests use it
// through domain types.
package uplinktest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/netaiops/netaiops/agent/uplink"
	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

// Options shape the server's welcome and its faults.
type Options struct {
	HeartbeatInterval time.Duration // default 10s
	MaxBatchEvents    uint32        // default 500
	// RejectStreams ends every stream after the hello with Unavailable
	// (also settable later with SetRejectStreams).
	RejectStreams bool
	// Silent sends the welcome and then nothing: no acks, no heartbeats.
	Silent bool
	// Stuck sends the welcome and then neither reads nor sends until the
	// stream ends, so that the agent's sends block on flow control.
	Stuck bool
}

// Event is one stored event.
type Event struct {
	AgentID string
	LogID   string
	Entry   uplink.Event
}

// Hello is one hello received, with when it arrived.
type Hello struct {
	At      time.Time
	AgentID string
	LogID   string
	Oldest  uint64
	Targets int
	Version string
}

// Store is what the server committed; it outlives a server so a restart
// keeps it, like the controller's database.
type Store struct {
	mu         sync.Mutex
	events     []Event
	watermark  map[string]uint64 // agent NUL log -> highest seq stored
	hellos     []Hello
	heartbeats int
	pending    uint64 // from the last agent heartbeat
	dropped    uint64
	gaps       int
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{watermark: map[string]uint64{}} }

// Events returns every stored event in the order stored.
func (s *Store) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

// Seqs returns the sorted stored seqs of one log.
func (s *Store) Seqs(logID string) []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []uint64
	for _, e := range s.events {
		if e.LogID == logID {
			out = append(out, e.Entry.Seq)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Hellos returns every hello received.
func (s *Store) Hellos() []Hello {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Hello(nil), s.hellos...)
}

// Heartbeats returns how many agent heartbeats arrived and the pending and
// dropped counts of the last one.
func (s *Store) Heartbeats() (n int, pending, dropped uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.heartbeats, s.pending, s.dropped
}

// Gaps returns how many batches skipped seqs (the agent dropped events).
func (s *Store) Gaps() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gaps
}

// Server is a running test controller.
type Server struct {
	addr  string
	opts  Options
	store *Store
	grpc  *grpc.Server
	done  chan struct{}
	err   error

	reject  atomic.Bool
	readers sync.WaitGroup // stream readers, which outlive their handlers

	mu      sync.Mutex
	streams map[string]chan struct{} // agent id -> closed when replaced
}

// Start listens on addr ("127.0.0.1:0" for a free port) and serves.
func Start(addr string, store *Store, opts Options) (*Server, error) {
	if opts.HeartbeatInterval <= 0 {
		opts.HeartbeatInterval = 10 * time.Second
	}
	if opts.MaxBatchEvents == 0 {
		opts.MaxBatchEvents = 500
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("start test controller: listen %s: %w", addr, err)
	}
	s := &Server{
		addr:    lis.Addr().String(),
		opts:    opts,
		store:   store,
		done:    make(chan struct{}),
		streams: map[string]chan struct{}{},
	}
	s.reject.Store(opts.RejectStreams)
	// WaitForHandlers: Stop returns only after every handler did, so no
	// handler starts a reader while Stop waits for the readers.
	s.grpc = grpc.NewServer(grpc.WaitForHandlers(true), grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
		MinTime: 20 * time.Second, PermitWithoutStream: true,
	}))
	netaiopsv1.RegisterControlServiceServer(s.grpc, &service{Server: s})
	go func() { // owned by Stop, which waits on done
		s.err = s.grpc.Serve(lis)
		close(s.done)
	}()
	return s, nil
}

// SetRejectStreams makes the server end new streams right after their hello
// with Unavailable, or stop doing so.
func (s *Server) SetRejectStreams(v bool) { s.reject.Store(v) }

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.addr }

// Stop ends every stream at once (like a crash of the controller) and
// waits for the server to stop.
func (s *Server) Stop() {
	s.grpc.Stop()
	<-s.done
	s.readers.Wait()
}

type service struct {
	netaiopsv1.UnimplementedControlServiceServer
	*Server
}

func (s *service) register(agentID string) (replaced chan struct{}, unregister func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.streams[agentID]; ok {
		close(old)
	}
	ch := make(chan struct{})
	s.streams[agentID] = ch
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.streams[agentID] == ch {
			delete(s.streams, agentID)
		}
	}
}

// Connect implements the controller's side of docs/stream.md.
func (s *service) Connect(stream grpc.BidiStreamingServer[netaiopsv1.ConnectRequest, netaiopsv1.ConnectResponse]) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	h := first.GetHello()
	switch {
	case h == nil:
		return status.Error(codes.InvalidArgument, "first message must be a hello")
	case h.GetAgentId() == "":
		return status.Error(codes.InvalidArgument, "hello: agent_id is required")
	case h.GetLogId() == "":
		return status.Error(codes.InvalidArgument, "hello: log_id is required")
	}
	st := s.store
	key := h.GetAgentId() + "\x00" + h.GetLogId()
	st.mu.Lock()
	st.hellos = append(st.hellos, Hello{At: time.Now(), AgentID: h.GetAgentId(), LogID: h.GetLogId(),
		Oldest: h.GetOldestUnackedSeq(), Targets: len(h.GetTargets()), Version: h.GetVersion()})
	wm := st.watermark[key]
	st.mu.Unlock()
	if s.reject.Load() {
		return status.Error(codes.Unavailable, "test controller rejects streams")
	}

	replaced, unregister := s.register(h.GetAgentId())
	defer unregister()

	if err := stream.Send(&netaiopsv1.ConnectResponse{Msg: &netaiopsv1.ConnectResponse_Welcome{Welcome: &netaiopsv1.Welcome{
		LastStoredSeq:     wm,
		HeartbeatInterval: durationpb.New(s.opts.HeartbeatInterval),
		MaxBatchEvents:    s.opts.MaxBatchEvents,
	}}}); err != nil {
		return err
	}

	if s.opts.Stuck {
		<-stream.Context().Done()
		return stream.Context().Err()
	}

	// The reader outlives this handler by a moment: its Recv returns only
	// once the handler has returned and gRPC cancels the stream. The server
	// owns it and Stop waits for it.
	reqs := make(chan *netaiopsv1.ConnectRequest)
	errc := make(chan error, 1)
	quit := make(chan struct{})
	defer close(quit)
	s.readers.Go(func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				errc <- err
				return
			}
			select {
			case reqs <- m:
			case <-quit:
				return
			}
		}
	})

	ticker := time.NewTicker(s.opts.HeartbeatInterval)
	defer ticker.Stop()
	for {
		select {
		case <-replaced:
			return status.Error(codes.Aborted, "replaced by a newer stream")
		case err := <-errc:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-ticker.C:
			if s.opts.Silent {
				continue
			}
			if err := stream.Send(&netaiopsv1.ConnectResponse{Msg: &netaiopsv1.ConnectResponse_Heartbeat{Heartbeat: &netaiopsv1.Heartbeat{Time: timestamppb.Now()}}}); err != nil {
				return err
			}
		case m := <-reqs:
			switch m := m.GetMsg().(type) {
			case *netaiopsv1.ConnectRequest_Heartbeat:
				st.mu.Lock()
				st.heartbeats++
				st.pending, st.dropped = m.Heartbeat.GetPendingEvents(), m.Heartbeat.GetDroppedEvents()
				st.mu.Unlock()
			case *netaiopsv1.ConnectRequest_Hello:
				return status.Error(codes.InvalidArgument, "second hello on one stream")
			case *netaiopsv1.ConnectRequest_Events:
				acked, err := s.commit(h.GetAgentId(), key, m.Events)
				if err != nil {
					return err
				}
				if s.opts.Silent {
					continue
				}
				if err := stream.Send(&netaiopsv1.ConnectResponse{Msg: &netaiopsv1.ConnectResponse_Ack{Ack: &netaiopsv1.Ack{
					LogId: m.Events.GetLogId(), AckedSeq: acked,
				}}}); err != nil {
					return err
				}
			}
		}
	}
}

// commit stores one batch all or nothing and returns the new watermark.
func (s *service) commit(agentID, key string, b *netaiopsv1.EventBatch) (uint64, error) {
	st := s.store
	st.mu.Lock()
	defer st.mu.Unlock()
	wm := st.watermark[key]
	if want := key[len(agentID)+1:]; b.GetLogId() != want {
		return 0, status.Errorf(codes.InvalidArgument, "batch log_id %q, want %q", b.GetLogId(), want)
	}
	var prev uint64
	for _, ev := range b.GetEvents() {
		switch {
		case ev.GetSeq() <= prev:
			return 0, status.Errorf(codes.InvalidArgument, "event seq %d: seqs not increasing", ev.GetSeq())
		case ev.GetIssue().GetId() == "":
			return 0, status.Errorf(codes.InvalidArgument, "event seq %d: issue.id is required", ev.GetSeq())
		case ev.GetIssue().GetKind() == "":
			return 0, status.Errorf(codes.InvalidArgument, "event seq %d: issue.kind is required", ev.GetSeq())
		case ev.GetIssue().GetDevice() == "":
			return 0, status.Errorf(codes.InvalidArgument, "event seq %d: issue.device is required", ev.GetSeq())
		}
		prev = ev.GetSeq()
	}
	for _, ev := range b.GetEvents() {
		if ev.GetSeq() <= wm {
			continue // a replay changes nothing
		}
		if ev.GetSeq() > wm+1 {
			st.gaps++
		}
		e, _ := uplink.EventFromProto(ev)
		st.events = append(st.events, Event{AgentID: agentID, LogID: b.GetLogId(), Entry: e})
		wm = ev.GetSeq()
	}
	st.watermark[key] = wm
	return wm, nil
}
