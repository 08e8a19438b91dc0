package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sort"
	"time"

	"github.com/netaiops/netaiops/collector/limits"
)

// Times an agent may send: after the Unix epoch (0 means unset in the
// database) and before 2200, well inside the Unix nanoseconds of an int64
// the database stores (they end in April 2262).
var (
	minEventTime = time.Unix(0, 1).UTC()
	maxEventTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// validateEvent checks one event's enums, times and sizes against the
// numbers of package limits.
func validateEvent(ev Event) error {
	if err := checkEvent(ev); err != nil {
		var ae *ArgError
		if errors.As(err, &ae) {
			// Name the event: "seq 12: issue.summary".
			return argErr(fmt.Sprintf("seq %d: %s", ev.Seq, ae.Field), ae.Reason)
		}
		return err
	}
	return nil
}

func checkEvent(ev Event) error {
	switch ev.Type {
	case EventOpened, EventUpdated, EventResolved:
	case EventUnspecified:
		return argErr("type", "required")
	default:
		return argErr("type", fmt.Sprintf("unknown value %d", ev.Type))
	}
	is := ev.Issue
	switch is.Severity {
	case SeverityInfo, SeverityWarning, SeverityMajor, SeverityCritical:
	case SeverityUnspecified:
		return argErr("issue.severity", "required")
	default:
		return argErr("issue.severity", fmt.Sprintf("unknown value %d", is.Severity))
	}
	switch is.State {
	case StateOpen, StateResolved:
	case StateUnspecified:
		return argErr("issue.state", "required")
	default:
		return argErr("issue.state", fmt.Sprintf("unknown value %d", is.State))
	}
	// The snapshot is the issue after the change: a resolve leaves it
	// resolved, an open or update leaves it open.
	if want := wantState(ev.Type); is.State != want {
		return argErr("issue.state", fmt.Sprintf("%s, but a %s event leaves the issue %s", stateName(is.State), eventName(ev.Type), stateName(want)))
	}
	if is.FirstSeen.IsZero() {
		return argErr("issue.first_seen", "required")
	}
	for _, t := range []struct {
		field string
		t     time.Time
	}{{"time", ev.Time}, {"issue.first_seen", is.FirstSeen}, {"issue.last_seen", is.LastSeen}, {"issue.resolved_at", is.ResolvedAt}} {
		if err := checkTime(t.field, t.t); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		field string
		v     string
		max   int
	}{
		{"issue.id", is.ID, limits.MaxIDBytes},
		{"issue.agent_id", is.AgentID, limits.MaxAgentIDBytes},
		{"issue.kind", is.Kind, limits.MaxKindBytes},
		{"issue.device", is.Device, limits.MaxDeviceBytes},
		{"issue.object", is.Object, limits.MaxObjectBytes},
		{"issue.fingerprint", is.Fingerprint, limits.MaxFingerprintBytes},
		{"issue.caused_by", is.CausedBy, limits.MaxFingerprintBytes},
		{"issue.summary", is.Summary, limits.MaxSummaryBytes},
	} {
		if err := checkLen(f.field, f.v, f.max); err != nil {
			return err
		}
	}
	if n := len(is.Attributes); n > limits.MaxAttributes {
		return argErr("issue.attributes", fmt.Sprintf("%d attributes, at most %d", n, limits.MaxAttributes))
	}
	if err := checkMap("issue.attributes", is.Attributes, limits.MaxAttributeKeyBytes, limits.MaxAttributeValueBytes); err != nil {
		return err
	}
	if n := limits.IssueBytes(is.Attributes, is.ID, is.AgentID, is.Kind, is.Device, is.Object, is.Fingerprint, is.CausedBy, is.Summary); n > limits.MaxIssueBytes {
		return argErr("issue", fmt.Sprintf("%d bytes of text and attributes, at most %d", n, limits.MaxIssueBytes))
	}
	return nil
}

// validateAgentInfo checks the sizes of a hello.
func validateAgentInfo(a AgentInfo) error {
	for _, f := range []struct {
		field string
		v     string
		max   int
	}{
		{"hello.agent_id", a.ID, limits.MaxAgentIDBytes},
		{"hello.log_id", a.LogID, limits.MaxIDBytes},
		{"hello.version", a.Version, limits.MaxVersionBytes},
		{"hello.hostname", a.Hostname, limits.MaxHostnameBytes},
		{"hello.applied_config_hash", a.AppliedConfigHash, limits.MaxIDBytes},
	} {
		if err := checkLen(f.field, f.v, f.max); err != nil {
			return err
		}
	}
	if n := len(a.Labels); n > limits.MaxLabels {
		return argErr("hello.labels", fmt.Sprintf("%d labels, at most %d", n, limits.MaxLabels))
	}
	if err := checkMap("hello.labels", a.Labels, limits.MaxLabelKeyBytes, limits.MaxLabelValueBytes); err != nil {
		return err
	}
	return validateTargets("hello.targets", a.Targets)
}

// validateTargets checks the size of a target list (a hello's, or the one
// a config ACK reports).
func validateTargets(field string, targets []Target) error {
	if n := len(targets); n > limits.MaxTargets {
		return argErr(field, fmt.Sprintf("%d targets, at most %d", n, limits.MaxTargets))
	}
	total := 0
	for i, t := range targets {
		if total += len(t.Name) + len(t.Address) + len(t.SNMPVersion); total > limits.MaxTargetListBytes {
			return argErr(field, fmt.Sprintf("more than %d bytes of names, addresses and versions (at targets[%d])", limits.MaxTargetListBytes, i))
		}
		for _, f := range []struct {
			field string
			v     string
			max   int
		}{
			{"name", t.Name, limits.MaxTargetNameBytes},
			{"address", t.Address, limits.MaxTargetAddressBytes},
			{"snmp_version", t.SNMPVersion, limits.MaxSNMPVersionBytes},
		} {
			if err := checkLen(fmt.Sprintf("%s[%d].%s", field, i, f.field), f.v, f.max); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkLen(field, v string, max int) error {
	if len(v) > max {
		return argErr(field, fmt.Sprintf("%d bytes, at most %d", len(v), max))
	}
	return nil
}

// checkMap checks each key and value. The error names the first bad key
// in key order, so that it is the same for the same input; the common case
// (nothing wrong) neither sorts nor allocates.
func checkMap(field string, m map[string]string, maxKey, maxValue int) error {
	bad := func(k, v string) bool { return k == "" || len(k) > maxKey || len(v) > maxValue }
	any := false
	for k, v := range m {
		if bad(k, v) {
			any = true
			break
		}
	}
	if !any {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !bad(k, m[k]) {
			continue
		}
		name := fmt.Sprintf("%s[%q]", field, limits.Truncate(k, 64))
		switch {
		case k == "":
			return argErr(name, "empty key")
		case len(k) > maxKey:
			return argErr(name, fmt.Sprintf("key is %d bytes, at most %d", len(k), maxKey))
		default:
			return argErr(name, fmt.Sprintf("value is %d bytes, at most %d", len(m[k]), maxValue))
		}
	}
	return nil
}

func checkTime(field string, t time.Time) error {
	if t.IsZero() {
		return nil
	}
	if t.Before(minEventTime) || !t.Before(maxEventTime) {
		return argErr(field, fmt.Sprintf("%s is out of range: must be after %s and before %s",
			t.UTC().Format(time.RFC3339Nano), time.Unix(0, 0).UTC().Format(time.RFC3339), maxEventTime.Format(time.RFC3339)))
	}
	return nil
}

func wantState(t EventType) State {
	if t == EventResolved {
		return StateResolved
	}
	return StateOpen
}

func stateName(s State) string {
	switch s {
	case StateOpen:
		return "OPEN"
	case StateResolved:
		return "RESOLVED"
	}
	return fmt.Sprintf("state %d", s)
}

func eventName(t EventType) string {
	switch t {
	case EventOpened:
		return "OPENED"
	case EventUpdated:
		return "UPDATED"
	case EventResolved:
		return "RESOLVED"
	}
	return fmt.Sprintf("type %d", t)
}

// checkSeqGap refuses a seq further than limits.MaxSeqGap beyond the
// log's watermark (docs/stream.md): stored, it would turn every later real
// event into a replay.
func checkSeqGap(seq, watermark uint64) error {
	if seq-watermark > limits.MaxSeqGap {
		return argErr(fmt.Sprintf("seq %d", seq), fmt.Sprintf("jumps %d past the stored watermark %d, at most %d (limits.MaxSeqGap)", seq-watermark, watermark, uint64(limits.MaxSeqGap)))
	}
	return nil
}

// checkReplay compares an event at or below the watermark with the event
// stored at its seq: an identical replay is a no-op, a different event at
// a stored seq is refused (the agent's log numbers two changes alike, so
// one of them would be lost silently). A seq stored as missing (a gap) has
// nothing to compare with and passes as a replay.
func checkReplay(ctx context.Context, tx *sql.Tx, agentID, logID string, ev Event) error {
	var payload string
	err := tx.QueryRowContext(ctx, `SELECT payload FROM issue_events WHERE agent_id = ? AND log_id = ? AND seq = ?`,
		agentID, logID, int64(ev.Seq)).Scan(&payload)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read stored event seq %d: %w", ev.Seq, err)
	}
	var stored Event
	if err := json.Unmarshal([]byte(payload), &stored); err != nil {
		return fmt.Errorf("decode stored event seq %d: %w", ev.Seq, err)
	}
	if field := eventDiff(stored, ev); field != "" {
		return argErr(fmt.Sprintf("seq %d: %s", ev.Seq, field),
			"differs from the event already stored at this seq: a replay must repeat it exactly (the agent's event log reuses a seq)")
	}
	return nil
}

// eventDiff names the first field in which two events of one agent
// differ, "" if none does. Fields the controller owns (acknowledgement,
// update time) and the agent id (filled in by the controller) are not
// compared.
func eventDiff(a, b Event) string {
	x, y := a.Issue, b.Issue
	switch {
	case a.Type != b.Type:
		return "type"
	case !a.Time.Equal(b.Time):
		return "time"
	case x.ID != y.ID:
		return "issue.id"
	case x.Device != y.Device:
		return "issue.device"
	case x.Kind != y.Kind:
		return "issue.kind"
	case x.Severity != y.Severity:
		return "issue.severity"
	case x.State != y.State:
		return "issue.state"
	case x.Summary != y.Summary:
		return "issue.summary"
	case !x.FirstSeen.Equal(y.FirstSeen):
		return "issue.first_seen"
	case !x.LastSeen.Equal(y.LastSeen):
		return "issue.last_seen"
	case !x.ResolvedAt.Equal(y.ResolvedAt):
		return "issue.resolved_at"
	case !maps.Equal(x.Attributes, y.Attributes):
		return "issue.attributes"
	case x.Object != y.Object:
		return "issue.object"
	case x.Fingerprint != y.Fingerprint:
		return "issue.fingerprint"
	case x.CausedBy != y.CausedBy:
		return "issue.caused_by"
	}
	return ""
}
