package uplink

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/netaiops/netaiops/agent/detect"
	"github.com/netaiops/netaiops/agent/outbox"
	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

// EventToProto converts an outbox entry into the IssueEvent the controller
// ingests; agentID fills the issue's agent_id. The issue is cut to the
// controller's limits (detect.Fit): an entry an older agent wrote may hold
// more than the controller accepts, and a refused event would block the
// log forever.
func EventToProto(agentID string, e outbox.Entry) *netaiopsv1.IssueEvent {
	is := detect.Fit(e.Change.Issue)
	return &netaiopsv1.IssueEvent{
		Seq:  e.Seq,
		Type: netaiopsv1.IssueEventType(e.Change.Type),
		Time: timeToProto(e.Change.Time),
		Issue: &netaiopsv1.Issue{
			Id:          is.ID,
			AgentId:     agentID,
			Device:      is.Device,
			Kind:        is.Kind,
			Severity:    netaiopsv1.Severity(is.Severity),
			State:       netaiopsv1.IssueState(is.State),
			Summary:     is.Summary,
			FirstSeen:   timeToProto(is.FirstSeen),
			LastSeen:    timeToProto(is.LastSeen),
			ResolvedAt:  timeToProto(is.ResolvedAt),
			Attributes:  is.Attributes,
			Object:      is.Object,
			Fingerprint: is.Fingerprint,
			CausedBy:    is.CausedBy,
		},
	}
}

// EventFromProto is the inverse of EventToProto: it returns the entry and
// the agent id the issue names. Fields the agent does not own
// (acknowledgement, update_time) are ignored.
func EventFromProto(ev *netaiopsv1.IssueEvent) (outbox.Entry, string) {
	is := ev.GetIssue()
	return outbox.Entry{
		Seq: ev.GetSeq(),
		Change: detect.Change{
			Type: detect.ChangeType(ev.GetType()),
			Time: timeFromProto(ev.GetTime()),
			Issue: detect.Issue{
				ID:          is.GetId(),
				Device:      is.GetDevice(),
				Kind:        is.GetKind(),
				Object:      is.GetObject(),
				Fingerprint: is.GetFingerprint(),
				Severity:    detect.Severity(is.GetSeverity()),
				State:       detect.State(is.GetState()),
				Summary:     is.GetSummary(),
				FirstSeen:   timeFromProto(is.GetFirstSeen()),
				LastSeen:    timeFromProto(is.GetLastSeen()),
				ResolvedAt:  timeFromProto(is.GetResolvedAt()),
				Attributes:  is.GetAttributes(),
				CausedBy:    is.GetCausedBy(),
			},
		},
	}, is.GetAgentId()
}

// timeToProto leaves the zero time unset, so "not yet" (resolved_at of an
// open issue) reads as absent rather than as year 1.
func timeToProto(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func timeFromProto(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}
