package detect

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// Severity orders issues by urgency; the numbers match netaiops.v1.Severity.
type Severity int

const (
	SeverityInfo     Severity = 1
	SeverityWarning  Severity = 2
	SeverityMajor    Severity = 3
	SeverityCritical Severity = 4
)

func (s Severity) String() string {
	switch s {
	case SeverityInfo:
		return "info"
	case SeverityWarning:
		return "warning"
	case SeverityMajor:
		return "major"
	case SeverityCritical:
		return "critical"
	}
	return "unspecified"
}

// State is an issue's lifecycle state; the numbers match netaiops.v1.IssueState.
type State int

const (
	StateOpen     State = 1
	StateResolved State = 2
)

// ChangeType says what happened to an issue; the numbers match
// netaiops.v1.IssueEventType.
type ChangeType int

const (
	Opened   ChangeType = 1
	Updated  ChangeType = 2
	Resolved ChangeType = 3
)

func (c ChangeType) String() string {
	switch c {
	case Opened:
		return "opened"
	case Updated:
		return "updated"
	case Resolved:
		return "resolved"
	}
	return "unspecified"
}

// Issue is one occurrence of a condition on a device.
type Issue struct {
	ID          string // IssueID(agentID, Fingerprint, FirstSeen)
	Device      string
	Kind        string // snake_case: device_unreachable, interface_down, ...
	Object      string // the object on the device (interface name), "" for device-wide issues
	Fingerprint string // Kind + "/" + Device + "/" + Object
	Severity    Severity
	State       State
	Summary     string
	FirstSeen   time.Time
	LastSeen    time.Time
	ResolvedAt  time.Time // zero while open
	Attributes  map[string]string
	CausedBy    string // fingerprint of the root issue, when correlated
}

// Change is one change of one issue, with the whole issue after the change.
type Change struct {
	Type  ChangeType
	Time  time.Time
	Issue Issue
}

// Fingerprint is the identity of a condition across its occurrences.
func Fingerprint(kind, device, object string) string {
	return kind + "/" + device + "/" + object
}

// IssueID derives an issue's id from what identifies the occurrence, so that
// the same input always yields the same ids (see docs/stream.md).
func IssueID(agentID, fingerprint string, firstSeen time.Time) string {
	h := sha256.New()
	h.Write([]byte(agentID))
	h.Write([]byte{0})
	h.Write([]byte(fingerprint))
	h.Write([]byte{0})
	h.Write([]byte(strconv.FormatInt(firstSeen.UnixNano(), 10)))
	return hex.EncodeToString(h.Sum(nil)[:16])
}
