// Package limits owns the sizes the controller accepts in what an agent
// sends (issue events, the hello) and the bound on how far an event log's
// seq may jump. Both sides use these numbers: the controller refuses
// anything larger with InvalidArgument naming the field, and the agent's
// engine cuts its evidence to fit (Truncate), so a real agent never sends
// an event the controller refuses. It is a leaf: standard library only.
package limits

import "unicode/utf8"

// Sizes are in bytes of UTF-8 text.
const (
	// MaxIDBytes bounds an issue id. Agents use 32 hex characters; room
	// for other id schemes, not for payloads.
	MaxIDBytes = 128
	// MaxAgentIDBytes bounds an agent id (hello.agent_id, issue.agent_id).
	MaxAgentIDBytes = 128
	// MaxKindBytes bounds an issue kind: a snake_case noun such as
	// interface_down.
	MaxKindBytes = 128
	// MaxDeviceBytes bounds a device (target) name: a DNS name has at most
	// 253 characters.
	MaxDeviceBytes = 256
	// MaxObjectBytes bounds the object of an issue: an interface name (at
	// most 255 by IF-MIB's DisplayString) or a metric with its labels.
	MaxObjectBytes = 512
	// MaxFingerprintBytes bounds a fingerprint, kind/device/object, and
	// caused_by, which is another issue's fingerprint.
	MaxFingerprintBytes = MaxKindBytes + 1 + MaxDeviceBytes + 1 + MaxObjectBytes
	// MaxSummaryBytes bounds the summary: one line a human reads in a list.
	MaxSummaryBytes = 1 << 10
	// MaxAttributes bounds the number of evidence attributes of an issue;
	// the engine's rules use fewer than 16.
	MaxAttributes = 64
	// MaxAttributeKeyBytes bounds an attribute name.
	MaxAttributeKeyBytes = 128
	// MaxAttributeValueBytes bounds one attribute value: room for a list
	// of neighbours or flows, not for a dump.
	MaxAttributeValueBytes = 4 << 10
	// MaxIssueBytes bounds all the text of one issue together (IssueBytes):
	// with it a page of DefaultPageSize (100) issues stays near 1.6 MiB,
	// well inside gRPC's default 4 MiB message, and a batch of 500 events
	// inside the 8 MiB the stream allows.
	MaxIssueBytes = 16 << 10
)

// Limits of the hello (and of the targets a ConfigStatus reports).
const (
	// MaxLabels bounds the labels of an agent; labels select configurations.
	MaxLabels = 64
	// MaxLabelKeyBytes and MaxLabelValueBytes bound one label.
	MaxLabelKeyBytes   = 128
	MaxLabelValueBytes = 256
	// MaxVersionBytes and MaxHostnameBytes bound the agent's self-description.
	MaxVersionBytes  = 128
	MaxHostnameBytes = 256
	// MaxTargets bounds the targets one agent reports: twice the 10 000
	// devices one agent is measured to poll; at its per-target sizes the
	// list stays below the 8 MiB stream message.
	MaxTargets = 20000
	// MaxTargetNameBytes is MaxDeviceBytes: a target's name is the device
	// of its issues.
	MaxTargetNameBytes = MaxDeviceBytes
	// MaxTargetAddressBytes bounds host:port (a DNS name and a port).
	MaxTargetAddressBytes = 270
	// MaxSNMPVersionBytes bounds "1", "2c", "3".
	MaxSNMPVersionBytes = 8
	// MaxTargetListBytes bounds the names, addresses and versions of all
	// of an agent's targets together (10 000 targets of 40 bytes take
	// 400 KB), so that one agent's record stays well inside a 4 MiB answer
	// of ListAgents.
	MaxTargetListBytes = 1 << 20
	// MaxConfigErrorBytes bounds the error of a NACK the controller keeps
	// (longer ones are cut, not refused: the agent's own validation
	// message can list many problems).
	MaxConfigErrorBytes = 4 << 10
)

// MaxSeqGap bounds how far ahead of the controller's watermark an event's
// seq may be: seq <= watermark + MaxSeqGap. A real agent gets there only
// by numbering 2^32 events the controller never acked (at 100 events a
// second, 16 months unacked); a corrupt or hostile seq (2^62, MaxInt64) is
// refused instead of moving the watermark so far that every later real
// event would look like a replay, and the watermark stays 2^31 such jumps
// away from the int64 the database stores.
const MaxSeqGap = 1 << 32

// TruncatedMark ends a value Truncate cut short.
const TruncatedMark = "…[truncated]"

// Truncate returns s if it has at most max bytes, else the longest prefix
// of s that ends on a UTF-8 boundary and, followed by TruncatedMark, has at
// most max bytes. With max below the mark's length it returns a prefix of
// the mark itself, so the result never exceeds max.
func Truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	if max < len(TruncatedMark) {
		return cut(TruncatedMark, max)
	}
	return cut(s, max-len(TruncatedMark)) + TruncatedMark
}

// cut returns the longest prefix of s with at most n bytes that does not
// split a UTF-8 sequence.
func cut(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// IssueBytes is the size MaxIssueBytes bounds: the lengths of an issue's
// text fields plus the keys and values of its attributes.
func IssueBytes(attrs map[string]string, fields ...string) int {
	n := 0
	for _, f := range fields {
		n += len(f)
	}
	for k, v := range attrs {
		n += len(k) + len(v)
	}
	return n
}
