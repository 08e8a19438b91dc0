// Package server is the controller's gRPC edge: ControlService (the agents'
// Connect streams), IssueService and FleetService. It converts between the
// netaiops.v1 messages and the store's domain types, maps domain errors to
// gRPC status codes, keeps the registry of agent streams (one per agent) and
// publishes stored changes to the watch hub.
package server

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/netaiops/netaiops/controller/store"
	"github.com/netaiops/netaiops/controller/watch"
	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

// Defaults for Config.
const (
	DefaultHeartbeatInterval = 10 * time.Second
	DefaultMaxBatchEvents    = 500
	DefaultHelloTimeout      = 30 * time.Second
	DefaultSendQueue         = 16
	// DefaultMaxMsgSize bounds one gRPC message each way, in bytes.
	DefaultMaxMsgSize = 8 << 20
	// DefaultMaxBatchBytes bounds one encoded event batch, told to agents
	// in the welcome: far below DefaultMaxMsgSize.
	DefaultMaxBatchBytes = 1 << 20
	// DefaultCommandTimeout and MaxCommandTimeout bound PollTarget's wait.
	DefaultCommandTimeout = 10 * time.Second
	MaxCommandTimeout     = time.Minute
	// MaxConfigBytes bounds a configuration document.
	MaxConfigBytes = 1 << 20
)

// Config tunes the services. Zero fields take the defaults.
type Config struct {
	// HeartbeatInterval is how often each side of a Connect stream sends a
	// heartbeat; told to agents in the welcome.
	HeartbeatInterval time.Duration
	// MaxBatchEvents is the most events accepted in one batch; told to
	// agents in the welcome.
	MaxBatchEvents int
	// HelloTimeout ends a Connect stream that sends no hello in time.
	HelloTimeout time.Duration
	// SendQueue bounds the heartbeats and the commands queued to one agent
	// stream (acks and configuration pushes coalesce into one slot each, so
	// they are never dropped; a command that finds the queue full is
	// refused with ResourceExhausted).
	SendQueue int
	// MaxBatchBytes bounds one encoded event batch; told to agents.
	MaxBatchBytes int
}

func (c Config) withDefaults() Config {
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.MaxBatchEvents <= 0 {
		c.MaxBatchEvents = DefaultMaxBatchEvents
	}
	if c.HelloTimeout <= 0 {
		c.HelloTimeout = DefaultHelloTimeout
	}
	if c.SendQueue <= 0 {
		c.SendQueue = DefaultSendQueue
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = DefaultMaxBatchBytes
	}
	return c
}

// Server holds what the services share. Create it with New, register it on
// a grpc.Server with Register; on shutdown call Shutdown before stopping the
// grpc.Server and Wait after.
type Server struct {
	cfg    Config
	store  *store.Store
	hub    *watch.Hub
	logger *slog.Logger

	shutdown     chan struct{}
	shutdownOnce sync.Once

	mu      sync.Mutex
	streams map[string]*agentStream // by agent id: the stream that owns the agent

	cmdMu   sync.Mutex
	nextCmd uint64
	pending map[uint64]*pendingCommand // commands sent and not yet answered

	// readers are the Recv goroutines of Connect streams; a Recv returns
	// only once its handler has returned, so they outlive handlers and are
	// waited for in Wait.
	readers sync.WaitGroup

	droppedSends atomic.Uint64
	batches      atomic.Uint64
	replaced     atomic.Uint64
	reconciled   atomic.Uint64 // issues resolved because the agent's open set lacked them
}

// New builds the services over a store and a watch hub.
func New(cfg Config, st *store.Store, hub *watch.Hub, logger *slog.Logger) *Server {
	return &Server{
		cfg:      cfg.withDefaults(),
		store:    st,
		hub:      hub,
		logger:   logger,
		shutdown: make(chan struct{}),
		streams:  map[string]*agentStream{},
		pending:  map[uint64]*pendingCommand{},
	}
}

// ServiceNames are the fully qualified names of the registered services.
var ServiceNames = []string{
	netaiopsv1.ControlService_ServiceDesc.ServiceName,
	netaiopsv1.IssueService_ServiceDesc.ServiceName,
	netaiopsv1.FleetService_ServiceDesc.ServiceName,
}

// Register adds ControlService, IssueService and FleetService to g.
func (s *Server) Register(g grpc.ServiceRegistrar) {
	netaiopsv1.RegisterControlServiceServer(g, &controlService{s: s})
	netaiopsv1.RegisterIssueServiceServer(g, &issueService{s: s})
	netaiopsv1.RegisterFleetServiceServer(g, &fleetService{s: s})
}

// Shutdown ends every open Connect and WatchIssues stream with Unavailable,
// so that a graceful stop of the grpc.Server does not wait for them.
func (s *Server) Shutdown() {
	s.shutdownOnce.Do(func() { close(s.shutdown) })
}

// Wait returns when every goroutine the services started has ended. Call it
// after the grpc.Server stopped.
func (s *Server) Wait() { s.readers.Wait() }

// Stats are counters of the services, for logs and tests.
type Stats struct {
	ConnectedAgents   int
	Batches           uint64
	ReplacedStreams   uint64
	DroppedHeartbeats uint64
	Watchers          int
	WatchOverflows    uint64
	// ReconciledIssues counts open issues resolved because the agent's
	// open-issue set, sent on connect, did not hold them.
	ReconciledIssues uint64
}

// Stats returns the current counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	n := len(s.streams)
	s.mu.Unlock()
	return Stats{
		ConnectedAgents:   n,
		Batches:           s.batches.Load(),
		ReplacedStreams:   s.replaced.Load(),
		DroppedHeartbeats: s.droppedSends.Load(),
		Watchers:          s.hub.Watchers(),
		WatchOverflows:    s.hub.Overflows(),
		ReconciledIssues:  s.reconciled.Load(),
	}
}

// toStatus maps a domain error to a gRPC status; unexpected errors are
// logged here, since the client only sees a code.
func (s *Server) toStatus(op string, err error) error {
	var ae *store.ArgError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ae):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, store.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	s.logger.Error("request failed", "op", op, "err", err)
	return status.Error(codes.Internal, op+": internal error")
}
