package server

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/netaiops/netaiops/controller/store"
	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

func toTimestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func fromTimestamp(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

func issueToProto(is store.Issue) *netaiopsv1.Issue {
	return &netaiopsv1.Issue{
		Id:             is.ID,
		AgentId:        is.AgentID,
		Device:         is.Device,
		Kind:           is.Kind,
		Severity:       netaiopsv1.Severity(is.Severity),
		State:          netaiopsv1.IssueState(is.State),
		Summary:        is.Summary,
		FirstSeen:      toTimestamp(is.FirstSeen),
		LastSeen:       toTimestamp(is.LastSeen),
		ResolvedAt:     toTimestamp(is.ResolvedAt),
		Attributes:     is.Attributes,
		Object:         is.Object,
		Fingerprint:    is.Fingerprint,
		CausedBy:       is.CausedBy,
		Acknowledged:   is.Acknowledged,
		AcknowledgedBy: is.AcknowledgedBy,
		AcknowledgedAt: toTimestamp(is.AcknowledgedAt),
		UpdateTime:     toTimestamp(is.UpdateTime),

		AcknowledgedComment: is.AcknowledgedComment,
	}
}

func issueFromProto(p *netaiopsv1.Issue) store.Issue {
	return store.Issue{
		ID:          p.GetId(),
		AgentID:     p.GetAgentId(),
		Device:      p.GetDevice(),
		Kind:        p.GetKind(),
		Severity:    store.Severity(p.GetSeverity()),
		State:       store.State(p.GetState()),
		Summary:     p.GetSummary(),
		FirstSeen:   fromTimestamp(p.GetFirstSeen()),
		LastSeen:    fromTimestamp(p.GetLastSeen()),
		ResolvedAt:  fromTimestamp(p.GetResolvedAt()),
		Attributes:  p.GetAttributes(),
		Object:      p.GetObject(),
		Fingerprint: p.GetFingerprint(),
		CausedBy:    p.GetCausedBy(),
		// Acknowledgement and update_time belong to the controller: an
		// agent's snapshot never sets them.
	}
}

// eventsFromProto converts a batch; an event without an issue or with a
// malformed timestamp is bad input. Enums, sizes and time ranges are the
// store's to check (store.Ingest), on the domain values.
func eventsFromProto(evs []*netaiopsv1.IssueEvent) ([]store.Event, error) {
	out := make([]store.Event, 0, len(evs))
	for i, e := range evs {
		if e.GetIssue() == nil {
			return nil, &store.ArgError{Field: fmt.Sprintf("seq %d: issue", e.GetSeq()), Reason: fmt.Sprintf("required (events[%d])", i)}
		}
		is := e.GetIssue()
		for _, ts := range []struct {
			field string
			ts    *timestamppb.Timestamp
		}{{"time", e.GetTime()}, {"issue.first_seen", is.GetFirstSeen()}, {"issue.last_seen", is.GetLastSeen()}, {"issue.resolved_at", is.GetResolvedAt()}} {
			if ts.ts == nil {
				continue
			}
			if err := ts.ts.CheckValid(); err != nil {
				return nil, &store.ArgError{Field: fmt.Sprintf("seq %d: %s", e.GetSeq(), ts.field), Reason: fmt.Sprintf("invalid timestamp (%d s, %d ns): must be a valid google.protobuf.Timestamp", ts.ts.GetSeconds(), ts.ts.GetNanos())}
			}
		}
		out = append(out, store.Event{
			Seq:   e.GetSeq(),
			Type:  store.EventType(e.GetType()),
			Time:  fromTimestamp(e.GetTime()),
			Issue: issueFromProto(e.GetIssue()),
		})
	}
	return out, nil
}

func agentInfoFromHello(h *netaiopsv1.Hello) store.AgentInfo {
	targets := make([]store.Target, 0, len(h.GetTargets()))
	for _, t := range h.GetTargets() {
		targets = append(targets, store.Target{Name: t.GetName(), Address: t.GetAddress(), SNMPVersion: t.GetSnmpVersion()})
	}
	return store.AgentInfo{
		ID:                   h.GetAgentId(),
		Version:              h.GetVersion(),
		Hostname:             h.GetHostname(),
		Labels:               h.GetLabels(),
		Targets:              targets,
		LogID:                h.GetLogId(),
		AppliedConfigHash:    h.GetAppliedConfigHash(),
		AppliedConfigVersion: h.GetAppliedConfigVersion(),
	}
}

func agentToProto(a store.Agent) *netaiopsv1.Agent {
	targets := make([]*netaiopsv1.TargetInfo, 0, len(a.Targets))
	for _, t := range a.Targets {
		targets = append(targets, &netaiopsv1.TargetInfo{Name: t.Name, Address: t.Address, SnmpVersion: t.SNMPVersion})
	}
	return &netaiopsv1.Agent{
		Id:            a.ID,
		Version:       a.Version,
		Hostname:      a.Hostname,
		Connected:     a.Connected,
		LastSeen:      toTimestamp(a.LastSeen),
		TargetCount:   int32(len(a.Targets)),
		Targets:       targets,
		LogId:         a.LogID,
		LastStoredSeq: a.LastStoredSeq,
		PendingEvents: a.Pending,
		DroppedEvents: a.Dropped,
		Labels:        a.Labels,

		AppliedConfigVersion: a.AppliedConfigVersion,
		AppliedConfigHash:    a.AppliedConfigHash,
		ConfigError:          a.ConfigError,
		ConfigErrorHash:      a.ConfigErrorHash,
	}
}

// filterFromProto checks and converts the filter fields shared by
// ListIssues and WatchIssues.
func filterFromProto(state netaiopsv1.IssueState, kind string, sev netaiopsv1.Severity, agentID, device string) (store.IssueFilter, error) {
	if _, ok := netaiopsv1.IssueState_name[int32(state)]; !ok {
		return store.IssueFilter{}, &store.ArgError{Field: "state", Reason: fmt.Sprintf("unknown value %d", state)}
	}
	if _, ok := netaiopsv1.Severity_name[int32(sev)]; !ok {
		return store.IssueFilter{}, &store.ArgError{Field: "severity", Reason: fmt.Sprintf("unknown value %d", sev)}
	}
	return store.IssueFilter{State: store.State(state), Kind: kind, Severity: store.Severity(sev), AgentID: agentID, Device: device}, nil
}
