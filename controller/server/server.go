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
	// DefaultWatchSendTimeout ends a WatchIssues stream whose client
	// accepts no message for this long (it stopped reading).
	DefaultWatchSendTimeout = 30 * time.Second
	// DefaultMaxWatchers bounds the WatchIssues streams open at once, and
	// DefaultMaxWatchersPerCaller those of one caller (token or
	// certificate name; peer IP address when authentication is off).
	DefaultMaxWatchers          = 2000
	DefaultMaxWatchersPerCaller = 64
	// DefaultIngestQueue bounds the batches waiting for the group-commit
	// writer; DefaultMaxGroupEvents bounds the events of one commit.
	DefaultIngestQueue    = 4096
	DefaultMaxGroupEvents = 20000
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
	// WatchSendTimeout ends a WatchIssues stream whose client accepts no
	// message for this long, with its position to resume after.
	WatchSendTimeout time.Duration
	// MaxWatchers and MaxWatchersPerCaller cap WatchIssues streams in
	// total and per caller; more are refused with ResourceExhausted.
	MaxWatchers          int
	MaxWatchersPerCaller int
	// IngestQueue bounds the batches (of all agents) waiting to be
	// committed; a stream whose batch finds it full waits (and stops
	// reading its agent), counted in Stats.IngestQueueFull.
	IngestQueue int
	// MaxGroupEvents bounds the events one group commit carries.
	MaxGroupEvents int
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
	if c.WatchSendTimeout <= 0 {
		c.WatchSendTimeout = DefaultWatchSendTimeout
	}
	if c.MaxWatchers <= 0 {
		c.MaxWatchers = DefaultMaxWatchers
	}
	if c.MaxWatchersPerCaller <= 0 {
		c.MaxWatchersPerCaller = DefaultMaxWatchersPerCaller
	}
	if c.IngestQueue <= 0 {
		c.IngestQueue = DefaultIngestQueue
	}
	if c.MaxGroupEvents <= 0 {
		c.MaxGroupEvents = DefaultMaxGroupEvents
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
	// writers are the goroutines that send WatchIssues streams; a writer
	// blocked in Send returns only once its handler has returned.
	writers sync.WaitGroup

	// watchMu guards the counts of open WatchIssues streams.
	watchMu       sync.Mutex
	watchTotal    int
	watchByCaller map[string]int

	ingest *groupWriter

	droppedSends  atomic.Uint64
	batches       atomic.Uint64
	replaced      atomic.Uint64
	watchRefused  atomic.Uint64
	watchCutOff   atomic.Uint64
	watchCaughtUp atomic.Uint64
	reconciled    atomic.Uint64 // issues resolved because the agent's open set lacked them
}

// New builds the services over a store and a watch hub.
//
// New makes the store publish its commits to the hub, and starts the
// group-commit writer: Wait waits for it after Shutdown.
func New(cfg Config, st *store.Store, hub *watch.Hub, logger *slog.Logger) *Server {
	s := &Server{
		cfg:           cfg.withDefaults(),
		store:         st,
		hub:           hub,
		logger:        logger,
		shutdown:      make(chan struct{}),
		streams:       map[string]*agentStream{},
		pending:       map[uint64]*pendingCommand{},
		watchByCaller: map[string]int{},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := st.SetPublisher(ctx, hub); err != nil {
		// The hub then starts at position 0: a watcher that resumes from
		// an older position catches up from the store all the same.
		logger.Error("watch hub: read the newest change position", "err", err)
	}
	s.ingest = newGroupWriter(s.cfg, st, logger, s.shutdown)
	return s
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
func (s *Server) Wait() {
	s.readers.Wait()
	s.writers.Wait()
	s.ingest.wait()
}

// Stats are counters of the services, for logs and tests.
type Stats struct {
	ConnectedAgents   int
	Batches           uint64
	ReplacedStreams   uint64
	DroppedHeartbeats uint64
	Watchers          int
	// WatchOverflows counts watch streams ended for not reading.
	WatchOverflows uint64
	// WatchRefused counts watch streams refused by the caps;
	// WatchCaughtUp counts catch-ups from the store.
	WatchRefused  uint64
	WatchCaughtUp uint64
	// Group commits: how many, the batches they carried, the largest, and
	// the times a batch found the ingest queue full.
	GroupCommits    uint64
	GroupedBatches  uint64
	MaxGroupBatches uint64
	IngestQueueFull uint64
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
		WatchOverflows:    s.watchCutOff.Load(),
		WatchRefused:      s.watchRefused.Load(),
		WatchCaughtUp:     s.watchCaughtUp.Load(),
		GroupCommits:      s.ingest.commits.Load(),
		GroupedBatches:    s.ingest.grouped.Load(),
		MaxGroupBatches:   s.ingest.maxGroup.Load(),
		IngestQueueFull:   s.ingest.full.Load(),
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
