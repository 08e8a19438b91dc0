package store

import (
	"errors"
	"time"
)

// Severity orders issues by urgency; the numbers match netaiops.v1.Severity.
type Severity int32

// Severities, least urgent first.
const (
	SeverityUnspecified Severity = iota
	SeverityInfo
	SeverityWarning
	SeverityMajor
	SeverityCritical
)

// State is the lifecycle state of an issue; the numbers match netaiops.v1.IssueState.
type State int32

// Issue states.
const (
	StateUnspecified State = iota
	StateOpen
	StateResolved
)

// EventType says what an issue event changed; the numbers match
// netaiops.v1.IssueEventType.
type EventType int32

// Event types.
const (
	EventUnspecified EventType = iota
	EventOpened
	EventUpdated
	EventResolved
)

// Issue is the stored state of one issue. Zero times are unset.
type Issue struct {
	ID             string            `json:"id"`
	AgentID        string            `json:"agent_id"`
	Device         string            `json:"device"`
	Kind           string            `json:"kind"`
	Severity       Severity          `json:"severity"`
	State          State             `json:"state"`
	Summary        string            `json:"summary,omitempty"`
	FirstSeen      time.Time         `json:"first_seen"`
	LastSeen       time.Time         `json:"last_seen"`
	ResolvedAt     time.Time         `json:"resolved_at"`
	Attributes     map[string]string `json:"attributes,omitempty"`
	Object         string            `json:"object,omitempty"`
	Fingerprint    string            `json:"fingerprint,omitempty"`
	CausedBy       string            `json:"caused_by,omitempty"`
	Acknowledged   bool              `json:"acknowledged,omitempty"`
	AcknowledgedBy string            `json:"acknowledged_by,omitempty"`
	AcknowledgedAt time.Time         `json:"acknowledged_at"`
	// AcknowledgedComment is the operator's comment with the acknowledgement.
	AcknowledgedComment string    `json:"acknowledged_comment,omitempty"`
	UpdateTime          time.Time `json:"update_time"`
}

// Event is one numbered change of an issue, as an agent sent it: the whole
// issue snapshot after the change.
type Event struct {
	Seq   uint64    `json:"seq"`
	Type  EventType `json:"type"`
	Time  time.Time `json:"time"`
	Issue Issue     `json:"issue"`
}

// Change is an issue as stored after a change, for watchers.
type Change struct {
	Type  EventType
	Issue Issue
	// Pos is the change's position: every write of an issue takes the next
	// number of one global counter, in commit order (see ChangesAfter).
	Pos uint64
}

// Gap is a run of seqs an agent never sent: every seq after After and
// before Next is missing (the agent dropped those events).
type Gap struct {
	After, Next uint64
}

// IngestResult says what one Ingest stored.
type IngestResult struct {
	// Watermark is the highest seq stored for the log after the ingest.
	Watermark uint64
	// Stored counts new events; Replayed counts events at or below the old
	// watermark, which were ignored.
	Stored, Replayed int
	// Gaps lists missing seqs between the old watermark and the batch.
	Gaps []Gap
	// Changed holds the issues whose snapshot the batch wrote, in seq
	// order; an event older than the stored state writes nothing.
	Changed []Change
}

// Target is one device an agent polls.
type Target struct {
	Name        string `json:"name"`
	Address     string `json:"address"`
	SNMPVersion string `json:"snmp_version"`
}

// AgentInfo is what an agent says of itself in its hello.
type AgentInfo struct {
	ID       string
	Version  string
	Hostname string
	Labels   map[string]string
	Targets  []Target
	LogID    string
	// The controller configuration the agent runs (its hello or last ACK);
	// "" when it runs its local file only.
	AppliedConfigHash    string
	AppliedConfigVersion uint64
}

// Agent is what the controller knows of one agent.
type Agent struct {
	AgentInfo
	Connected     bool
	LastSeen      time.Time
	LastStoredSeq uint64
	Pending       uint64
	Dropped       uint64
	// The agent's last NACK: the hash it rejected and why.
	ConfigError     string
	ConfigErrorHash string
}

// ConnectResult is what the store knew when an agent said hello.
type ConnectResult struct {
	// Watermark is the highest seq stored for the hello's log (0 if new).
	Watermark uint64
	// NewAgent is true when the agent was never seen before.
	NewAgent bool
	// PreviousLogID is the log id the agent had before, when it differs
	// from the hello's (the agent lost its event log).
	PreviousLogID string
}

// IssueFilter selects issues; zero fields match everything.
type IssueFilter struct {
	State    State
	Kind     string
	Severity Severity
	AgentID  string
	Device   string
}

// Match reports whether the issue passes the filter.
func (f IssueFilter) Match(is Issue) bool {
	return (f.State == StateUnspecified || f.State == is.State) &&
		(f.Kind == "" || f.Kind == is.Kind) &&
		(f.Severity == SeverityUnspecified || f.Severity == is.Severity) &&
		(f.AgentID == "" || f.AgentID == is.AgentID) &&
		(f.Device == "" || f.Device == is.Device)
}

// Paging limits for List calls.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// ErrNotFound is returned for an unknown issue or agent.
var ErrNotFound = errors.New("not found")

// ArgError is bad input from a caller: a field and why it is wrong. The gRPC
// edge turns it into InvalidArgument.
type ArgError struct {
	Field  string
	Reason string
}

func (e *ArgError) Error() string { return e.Field + ": " + e.Reason }

func argErr(field, reason string) error { return &ArgError{Field: field, Reason: reason} }
