package uplink

import (
	"encoding/json"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/netaiops/netaiops/agent/detect"
	"github.com/netaiops/netaiops/agent/outbox"
	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

// FormatIssueEvent is the format of the outbox records the uplink writes:
// the protobuf of netaiops.v1.IssueEvent without seq and issue.agent_id,
// which the uplink sets when it sends the event. The wire contract only
// grows, so a record stays readable across upgrades. Records of
// outbox.LegacyFormat (JSON of detect.Change, written before records had a
// format) are read with a copy of that struct frozen here.
const FormatIssueEvent uint8 = 2

// Event is an issue change with its seq, as the controller receives it.
type Event struct {
	Seq    uint64
	Change detect.Change
}

// Expendable reports whether a change is dropped before others when the
// outbox is full: resolves, and changes of info or warning severity.
func Expendable(c detect.Change) bool {
	return c.Type == detect.Resolved || c.Issue.Severity <= detect.SeverityWarning
}

// Record encodes an issue change as an outbox record (FormatIssueEvent).
func Record(c detect.Change) (outbox.Record, error) {
	b, err := proto.Marshal(ChangeToProto("", 0, c))
	if err != nil {
		return outbox.Record{}, fmt.Errorf("encode %s change of %s: %w", c.Type, c.Issue.Fingerprint, err)
	}
	return outbox.Record{Format: FormatIssueEvent, Payload: b, Expendable: Expendable(c)}, nil
}

// Append queues issue changes in the outbox as records (see Record) and
// returns the entries stored, as outbox.Append does.
func Append(ob *outbox.Outbox, changes ...detect.Change) ([]outbox.Entry, error) {
	recs := make([]outbox.Record, len(changes))
	for i, c := range changes {
		r, err := Record(c)
		if err != nil {
			return nil, fmt.Errorf("append to outbox: %w", err)
		}
		recs[i] = r
	}
	return ob.Append(recs...)
}

// EventToProto decodes an outbox entry into the IssueEvent the controller
// ingests; agentID fills the issue's agent_id.
func EventToProto(agentID string, e outbox.Entry) (*netaiopsv1.IssueEvent, error) {
	switch e.Format {
	case FormatIssueEvent:
		ev := &netaiopsv1.IssueEvent{}
		if err := proto.Unmarshal(e.Payload, ev); err != nil {
			return nil, fmt.Errorf("decode outbox seq %d: %w", e.Seq, err)
		}
		if ev.Issue == nil {
			return nil, fmt.Errorf("decode outbox seq %d: no issue", e.Seq)
		}
		ev.Seq = e.Seq
		ev.Issue.AgentId = agentID
		return ev, nil
	case outbox.LegacyFormat:
		var c legacyChange
		if err := json.Unmarshal(e.Payload, &c); err != nil {
			return nil, fmt.Errorf("decode outbox seq %d (legacy JSON): %w", e.Seq, err)
		}
		return ChangeToProto(agentID, e.Seq, c.change()), nil
	}
	return nil, fmt.Errorf("decode outbox seq %d: unknown record format %d", e.Seq, e.Format)
}

// legacyChange is the JSON the outbox stored before records had a format:
// detect.Change as it was then, frozen, so that renaming a field of
// detect.Change cannot garble a record written before the upgrade.
type legacyChange struct {
	Type  int
	Time  time.Time
	Issue struct {
		ID          string
		Device      string
		Kind        string
		Object      string
		Fingerprint string
		Severity    int
		State       int
		Summary     string
		FirstSeen   time.Time
		LastSeen    time.Time
		ResolvedAt  time.Time
		Attributes  map[string]string
		CausedBy    string
	}
}

func (l legacyChange) change() detect.Change {
	is := l.Issue
	return detect.Change{
		Type: detect.ChangeType(l.Type),
		Time: l.Time,
		Issue: detect.Issue{
			ID: is.ID, Device: is.Device, Kind: is.Kind, Object: is.Object, Fingerprint: is.Fingerprint,
			Severity: detect.Severity(is.Severity), State: detect.State(is.State), Summary: is.Summary,
			FirstSeen: is.FirstSeen, LastSeen: is.LastSeen, ResolvedAt: is.ResolvedAt,
			Attributes: is.Attributes, CausedBy: is.CausedBy,
		},
	}
}

// ChangeToProto converts an issue change with its seq into the IssueEvent
// the controller ingests; agentID fills the issue's agent_id. The
// attribute map is shared, not copied.
func ChangeToProto(agentID string, seq uint64, c detect.Change) *netaiopsv1.IssueEvent {
	// Cut to the controller's limits (detect.Fit): a record an older agent
	// wrote may hold more than the controller accepts, and a refused event
	// would block the log forever.
	is := detect.Fit(c.Issue)
	return &netaiopsv1.IssueEvent{
		Seq:  seq,
		Type: netaiopsv1.IssueEventType(c.Type),
		Time: timeToProto(c.Time),
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

// EventFromProto is the inverse of ChangeToProto: it returns the event and
// the agent id the issue names. Fields the agent does not own
// (acknowledgement, update_time) are ignored.
func EventFromProto(ev *netaiopsv1.IssueEvent) (Event, string) {
	is := ev.GetIssue()
	return Event{
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
