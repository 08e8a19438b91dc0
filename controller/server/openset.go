package server

import (
	"context"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/netaiops/netaiops/collector/limits"
	"github.com/netaiops/netaiops/controller/store"
	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

// MaxOpenIssues bounds the open-issue set one agent may report (the sum of
// its OpenIssues messages), so that a broken agent cannot grow a stream's
// memory without bound. It is far above what one agent detects: 300
// unreachable devices with 48 interfaces each hold under 15 000.
const MaxOpenIssues = 200_000

// openSet collects an agent's OpenIssues messages on one stream. The agent
// sends a set after the events it reflects (docs/stream.md); the stream's
// ingester applies it after the batches received before it.
type openSet struct {
	building *store.OpenSet // messages received so far, nil between sets
}

// add takes one message and returns the set it completes (its last
// message, more false), else nil.
func (o *openSet) add(hello *netaiopsv1.Hello, m *netaiopsv1.OpenIssues) (*store.OpenSet, error) {
	if m.GetLogId() != hello.GetLogId() {
		return nil, status.Errorf(codes.InvalidArgument, "open_issues.log_id: %q is not the hello's log_id %q",
			limits.Truncate(m.GetLogId(), limits.MaxIDBytes), hello.GetLogId())
	}
	if o.building == nil {
		o.building = &store.OpenSet{LogID: m.GetLogId(), AsOfSeq: m.GetAsOfSeq(), IDs: map[string]bool{}}
	} else if m.GetAsOfSeq() != o.building.AsOfSeq {
		return nil, status.Errorf(codes.InvalidArgument, "open_issues.as_of_seq: %d, but the set being sent is as of seq %d", m.GetAsOfSeq(), o.building.AsOfSeq)
	}
	for i, r := range m.GetIssues() {
		switch n := len(r.GetId()); {
		case n == 0:
			return nil, status.Errorf(codes.InvalidArgument, "open_issues.issues[%d].id: required", i)
		case n > limits.MaxIDBytes:
			return nil, status.Errorf(codes.InvalidArgument, "open_issues.issues[%d].id: %d bytes, at most %d", i, n, limits.MaxIDBytes)
		}
		o.building.IDs[r.GetId()] = true
	}
	if n := len(o.building.IDs); n > MaxOpenIssues {
		o.building = nil
		return nil, status.Errorf(codes.InvalidArgument, "open_issues: more than %d open issues in one set", MaxOpenIssues)
	}
	if m.GetMore() {
		return nil, nil
	}
	set := o.building
	o.building = nil
	return set, nil
}

// reconcile applies a complete set, resolving the agent's open issues it
// does not hold; the store publishes the resolutions to watchers.
func (s *Server) reconcile(ctx context.Context, log *slog.Logger, agentID string, set store.OpenSet) error {
	changes, err := s.store.ReconcileOpen(ctx, agentID, set)
	if err != nil {
		return s.streamStoreError("reconcile open issues", err)
	}
	if len(changes) > 0 {
		log.Info("resolved issues the agent no longer holds open", "resolved", len(changes), "agent_open", len(set.IDs), "as_of_seq", set.AsOfSeq)
	}
	s.reconciled.Add(uint64(len(changes)))
	return nil
}
