package server

import (
	"context"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/netaiops/netaiops/controller/store"
	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

// MaxOpenIssues bounds the open-issue set one agent may report (the sum of
// its OpenIssues messages), so that a broken agent cannot grow a stream's
// memory without bound. It is far above what one agent detects: 300
// unreachable devices with 48 interfaces each hold under 15 000.
const MaxOpenIssues = 200_000

// openSet collects an agent's OpenIssues messages on one stream. The agent
// sends a set after the events it reflects (docs/stream.md), so a complete
// set is applied at once.
type openSet struct {
	building *store.OpenSet // messages received so far, nil between sets
	ready    *store.OpenSet // complete, not yet applied
}

// add takes one message; a set is complete with its last message (more false).
func (o *openSet) add(hello *netaiopsv1.Hello, m *netaiopsv1.OpenIssues) error {
	if m.GetLogId() != hello.GetLogId() {
		return status.Errorf(codes.InvalidArgument, "open_issues.log_id: %q is not the hello's log_id %q", m.GetLogId(), hello.GetLogId())
	}
	if o.building == nil {
		o.building = &store.OpenSet{LogID: m.GetLogId(), AsOfSeq: m.GetAsOfSeq(), IDs: map[string]bool{}}
	} else if m.GetAsOfSeq() != o.building.AsOfSeq {
		return status.Errorf(codes.InvalidArgument, "open_issues.as_of_seq: %d, but the set being sent is as of seq %d", m.GetAsOfSeq(), o.building.AsOfSeq)
	}
	for i, r := range m.GetIssues() {
		if r.GetId() == "" {
			return status.Errorf(codes.InvalidArgument, "open_issues.issues[%d].id: required", i)
		}
		o.building.IDs[r.GetId()] = true
	}
	if n := len(o.building.IDs); n > MaxOpenIssues {
		o.building = nil
		return status.Errorf(codes.InvalidArgument, "open_issues: more than %d open issues in one set", MaxOpenIssues)
	}
	if !m.GetMore() {
		o.ready, o.building = o.building, nil
	}
	return nil
}

// reconcile applies a complete set, resolving the agent's open issues it
// does not hold, and publishes the resolutions. It does nothing while no
// set is complete.
func (s *Server) reconcile(ctx context.Context, log *slog.Logger, agentID string, o *openSet) error {
	if o.ready == nil {
		return nil
	}
	set := *o.ready
	o.ready = nil
	changes, err := s.store.ReconcileOpen(ctx, agentID, set)
	if err != nil {
		return s.streamStoreError("reconcile open issues", err)
	}
	if len(changes) > 0 {
		log.Info("resolved issues the agent no longer holds open", "resolved", len(changes), "agent_open", len(set.IDs), "as_of_seq", set.AsOfSeq)
	}
	s.reconciled.Add(uint64(len(changes)))
	s.hub.Publish(changes...)
	return nil
}
