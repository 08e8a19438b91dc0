package server

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/netaiops/netaiops/controller/auth"
	"github.com/netaiops/netaiops/controller/store"
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
	is, changed, err := i.s.store.Acknowledge(ctx, req.GetId(), by)
	if err != nil {
		return nil, i.s.toStatus("acknowledge issue", err)
	}
	if changed {
		i.s.hub.Publish(store.Change{Type: store.EventUpdated, Issue: is})
	}
	return &netaiopsv1.AcknowledgeIssueResponse{Issue: issueToProto(is)}, nil
}

// WatchIssues streams every matching change from the moment the response
// headers are sent; a watcher that falls too far behind is ended with
// ResourceExhausted.
func (i *issueService) WatchIssues(req *netaiopsv1.WatchIssuesRequest, stream grpc.ServerStreamingServer[netaiopsv1.WatchIssuesResponse]) error {
	f, err := filterFromProto(req.GetState(), req.GetKind(), req.GetSeverity(), req.GetAgentId(), req.GetDevice())
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	w := i.s.hub.Subscribe(f)
	defer w.Close()
	// Headers tell the client the subscription is in place.
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	ctx := stream.Context()
	for {
		select {
		case c := <-w.Changes():
			if err := stream.Send(&netaiopsv1.WatchIssuesResponse{Type: netaiopsv1.IssueEventType(c.Type), Issue: issueToProto(c.Issue)}); err != nil {
				return err
			}
		case <-w.Overflowed():
			i.s.logger.Warn("issue watcher too slow: ended", "buffer", cap(w.Changes()))
			return status.Errorf(codes.ResourceExhausted, "watcher fell more than %d changes behind; watch again and list issues to catch up", cap(w.Changes()))
		case <-i.s.shutdown:
			return status.Error(codes.Unavailable, "controller shutting down")
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
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
