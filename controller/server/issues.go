package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/netaiops/netaiops/controller/auth"
	"github.com/netaiops/netaiops/controller/store"
	"github.com/netaiops/netaiops/controller/watch"
	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

type issueService struct {
	netaiopsv1.UnimplementedIssueServiceServer
	s *Server
}

func (i *issueService) ListIssues(ctx context.Context, req *netaiopsv1.ListIssuesRequest) (*netaiopsv1.ListIssuesResponse, error) {
	f, err := filterFromProto(req.GetState(), req.GetKind(), req.GetSeverity(), req.GetAgentId(), req.GetDevice())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	issues, next, err := i.s.store.ListIssues(ctx, f, int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, i.s.toStatus("list issues", err)
	}
	resp := &netaiopsv1.ListIssuesResponse{Issues: make([]*netaiopsv1.Issue, 0, len(issues)), NextPageToken: next}
	for _, is := range issues {
		resp.Issues = append(resp.Issues, issueToProto(is))
	}
	return resp, nil
}

func (i *issueService) GetIssue(ctx context.Context, req *netaiopsv1.GetIssueRequest) (*netaiopsv1.GetIssueResponse, error) {
	if req.GetId() == "" {
		return nil, status.Error(codes.InvalidArgument, "id: required")
	}
	is, err := i.s.store.GetIssue(ctx, req.GetId())
	if err != nil {
		return nil, i.s.toStatus("get issue", err)
	}
	return &netaiopsv1.GetIssueResponse{Issue: issueToProto(is)}, nil
}

func (i *issueService) AcknowledgeIssue(ctx context.Context, req *netaiopsv1.AcknowledgeIssueRequest) (*netaiopsv1.AcknowledgeIssueResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	// An authenticated operator acknowledges under the token's name; by is
	// free text only when authentication is off.
	by := req.GetBy()
	if p.Kind == auth.KindOperator {
		by = p.Name
	}
	switch {
	case req.GetId() == "":
		return nil, status.Error(codes.InvalidArgument, "id: required")
	case by == "":
		return nil, status.Error(codes.InvalidArgument, "by: required (who acknowledges)")
	}
	// The store publishes the change to watchers.
	is, _, err := i.s.store.AcknowledgeWithComment(ctx, req.GetId(), by, req.GetComment())
	if err != nil {
		return nil, i.s.toStatus("acknowledge issue", err)
	}
	return &netaiopsv1.AcknowledgeIssueResponse{Issue: issueToProto(is)}, nil
}

// ListIssueEvents returns one issue's timeline, oldest first.
func (i *issueService) ListIssueEvents(ctx context.Context, req *netaiopsv1.ListIssueEventsRequest) (*netaiopsv1.ListIssueEventsResponse, error) {
	if req.GetIssueId() == "" {
		return nil, status.Error(codes.InvalidArgument, "issue_id: required")
	}
	evs, next, err := i.s.store.ListIssueEvents(ctx, req.GetIssueId(), int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, i.s.toStatus("list issue events", err)
	}
	resp := &netaiopsv1.ListIssueEventsResponse{Events: make([]*netaiopsv1.IssueEvent, 0, len(evs)), NextPageToken: next}
	for _, ev := range evs {
		resp.Events = append(resp.Events, &netaiopsv1.IssueEvent{Seq: ev.Seq, Type: netaiopsv1.IssueEventType(ev.Type),
			Time: toTimestamp(ev.Time), Issue: issueToProto(ev.Issue)})
	}
	return resp, nil
}

// Watch stream tuning.
const (
	// watchBatch is how many changes a watch stream takes from the hub or
	// the store at a time.
	watchBatch = 256
	// Metadata keys: the position a watch starts from (header) and the one
	// to resume after (trailer of an ended watch).
	watchPositionHeader = "netaiops-watch-position"
	watchResumeTrailer  = "netaiops-resume-after"
)

// WatchIssues streams every matching change after the watch's position:
// resume_after, else the newest change when the headers are sent. Changes
// come from the hub's memory, or, for a watcher that fell further behind,
// from the store by position: a watcher that keeps reading never loses a
// change and is never ended. A client that accepts nothing for
// WatchSendTimeout is ended with ResourceExhausted and the position to
// resume after (in the message and the netaiops-resume-after trailer).
func (i *issueService) WatchIssues(req *netaiopsv1.WatchIssuesRequest, stream grpc.ServerStreamingServer[netaiopsv1.WatchIssuesResponse]) error {
	s := i.s
	f, err := filterFromProto(req.GetState(), req.GetKind(), req.GetSeverity(), req.GetAgentId(), req.GetDevice())
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	ctx := stream.Context()
	head := s.hub.Head()
	pos := req.GetResumeAfter()
	switch {
	case pos == 0:
		pos = head
	case pos > head:
		return status.Errorf(codes.OutOfRange, "resume_after: %d is beyond the newest change position %d of this controller", pos, head)
	}
	caller := watchCaller(ctx)
	release, err := s.admitWatch(caller)
	if err != nil {
		return err
	}
	defer release()
	w := s.hub.Subscribe(f)
	defer w.Close()
	// Headers tell the client the subscription is in place, and from where.
	if err := stream.SendHeader(metadata.Pairs(watchPositionHeader, strconv.FormatUint(pos, 10))); err != nil {
		return err
	}

	ws := &watchStream{s: s, w: w, filter: f, stream: stream, stop: make(chan struct{}), done: make(chan error, 1)}
	ws.delivered.Store(pos)
	// The writer may be blocked in Send when this handler returns (that is
	// how a client that stopped reading is ended): Server.Wait owns it.
	s.writers.Add(1)
	go func() {
		defer s.writers.Done()
		ws.done <- ws.run(ctx, pos)
	}()
	defer close(ws.stop)

	timeout := s.cfg.WatchSendTimeout
	ticker := time.NewTicker(timeout / 4)
	defer ticker.Stop()
	ended := func(code codes.Code, format string, args ...any) error {
		p := ws.delivered.Load()
		stream.SetTrailer(metadata.Pairs(watchResumeTrailer, strconv.FormatUint(p, 10)))
		return status.Errorf(code, "%s; watch again with resume_after=%d to continue", fmt.Sprintf(format, args...), p)
	}
	for {
		select {
		case err := <-ws.done:
			if err != nil && status.Code(err) == codes.Unavailable {
				return ended(codes.Unavailable, "%s", status.Convert(err).Message())
			}
			return err
		case now := <-ticker.C:
			if since := ws.sendingSince.Load(); since != 0 && now.Sub(time.Unix(0, since)) > timeout {
				s.watchCutOff.Add(1)
				s.logger.Warn("issue watcher not reading: ended", "caller", caller, "timeout", timeout, "resume_after", ws.delivered.Load())
				return ended(codes.ResourceExhausted, "watch: the client accepted no change for %s", timeout)
			}
		case <-s.shutdown:
			return ended(codes.Unavailable, "controller shutting down")
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

// watchStream is the writer of one WatchIssues stream.
type watchStream struct {
	s      *Server
	w      *watch.Watcher
	filter store.IssueFilter
	stream grpc.ServerStreamingServer[netaiopsv1.WatchIssuesResponse]
	stop   chan struct{} // closed when the handler returns
	done   chan error

	delivered    atomic.Uint64 // position to resume after
	sendingSince atomic.Int64  // Unix nanoseconds when the pending Send began; 0: none
}

// run sends changes after pos until the handler stops it or a send fails.
func (ws *watchStream) run(ctx context.Context, pos uint64) error {
	s := ws.s
	for {
		changes, next, err := ws.w.Next(ws.stop, pos, watchBatch)
		switch {
		case errors.Is(err, watch.ErrStopped):
			return nil
		case errors.Is(err, watch.ErrBehind):
			s.watchCaughtUp.Add(1)
			// Everything committed up to head is in the store already.
			head := s.hub.Head()
			changes, next, err = s.store.ChangesAfter(ctx, ws.filter, pos, watchBatch)
			if err != nil {
				if ctx.Err() != nil {
					return status.FromContextError(ctx.Err()).Err()
				}
				s.logger.Error("issue watcher: catch up from the store", "after", pos, "err", err)
				return status.Error(codes.Unavailable, "watch: reading changes from the store failed")
			}
			if next == pos {
				// No issue changed after pos is left (their agents were
				// deleted): nothing to send up to head.
				next = max(pos, head)
			}
		case err != nil:
			return status.Error(codes.Internal, err.Error())
		}
		for _, c := range changes {
			ws.sendingSince.Store(time.Now().UnixNano())
			err := ws.stream.Send(&netaiopsv1.WatchIssuesResponse{Type: netaiopsv1.IssueEventType(c.Type), Issue: issueToProto(c.Issue), Position: c.Pos})
			ws.sendingSince.Store(0)
			if err != nil {
				return err
			}
			ws.delivered.Store(c.Pos)
		}
		pos = next
		ws.delivered.Store(pos)
	}
}

// watchCaller names the caller for the per-caller cap: its authenticated
// name, else its peer's IP address.
func watchCaller(ctx context.Context) string {
	if p, ok := auth.FromContext(ctx); ok && p.Name != "" {
		return p.Via + ":" + p.Name
	}
	if pr, ok := peer.FromContext(ctx); ok && pr.Addr != nil {
		addr := pr.Addr.String()
		if host, _, err := net.SplitHostPort(addr); err == nil {
			return "peer:" + host
		}
		return "peer:" + addr
	}
	return "unknown"
}

// admitWatch counts a new watch stream of caller against the caps; release
// uncounts it.
func (s *Server) admitWatch(caller string) (release func(), err error) {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	switch {
	case s.watchTotal >= s.cfg.MaxWatchers:
		s.watchRefused.Add(1)
		return nil, status.Errorf(codes.ResourceExhausted, "watch: the controller already serves %d watch streams, its maximum (max_watchers); try again later", s.watchTotal)
	case s.watchByCaller[caller] >= s.cfg.MaxWatchersPerCaller:
		s.watchRefused.Add(1)
		return nil, status.Errorf(codes.ResourceExhausted, "watch: caller %s already has %d watch streams open, the maximum per caller (max_watchers_per_caller); close one first", caller, s.watchByCaller[caller])
	}
	s.watchTotal++
	s.watchByCaller[caller]++
	return func() {
		s.watchMu.Lock()
		defer s.watchMu.Unlock()
		s.watchTotal--
		if s.watchByCaller[caller]--; s.watchByCaller[caller] == 0 {
			delete(s.watchByCaller, caller)
		}
	}, nil
}

type fleetService struct {
	netaiopsv1.UnimplementedFleetServiceServer
	s *Server
}

func (f *fleetService) ListAgents(ctx context.Context, req *netaiopsv1.ListAgentsRequest) (*netaiopsv1.ListAgentsResponse, error) {
	agents, next, err := f.s.store.ListAgents(ctx, int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, f.s.toStatus("list agents", err)
	}
	configs, err := f.s.store.ListConfigs(ctx)
	if err != nil {
		return nil, f.s.toStatus("list agents", err)
	}
	resp := &netaiopsv1.ListAgentsResponse{Agents: make([]*netaiopsv1.Agent, 0, len(agents)), NextPageToken: next}
	for _, a := range agents {
		pa := agentToProto(a)
		if want, ok := store.Resolve(configs, a.ID, a.Labels); ok {
			pa.DesiredConfigSource, pa.DesiredConfigVersion, pa.DesiredConfigHash = want.Source, want.Version, want.Hash
		}
		resp.Agents = append(resp.Agents, pa)
	}
	return resp, nil
}
