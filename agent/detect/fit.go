package detect

import (
	"maps"
	"sort"
	"strconv"
	"strings"

	"github.com/netaiops/netaiops/collector/limits"
)

// AttrTruncated names, on an issue whose text the engine cut to the
// controller's limits (package limits), what it cut: "summary",
// "object", "attributes[ifDescr]", ... comma-separated.
const AttrTruncated = "truncated"

// maxTruncatedNote bounds the AttrTruncated value itself.
const maxTruncatedNote = 512

// Fit returns the issue cut to the controller's limits as the engine cuts
// every change it emits (an issue already within them comes back equal):
// for changes recorded before the engine did, such as those an older
// version left in the agent's outbox. The attributes are copied.
func Fit(is Issue) Issue {
	is.Attributes = maps.Clone(is.Attributes)
	fit(&is)
	return is
}

// fit cuts an issue, in place, to the sizes the controller accepts, so
// that the agent never sends an event it refuses: long text is truncated
// (limits.Truncate, ending in limits.TruncatedMark), attribute names that
// are too long and attributes beyond the count are dropped, and when the
// whole issue is still too large its longest values are shortened. It is
// deterministic: the same issue always fits the same way, so the
// fingerprint and caused_by of the changes of one issue stay equal. Text
// comes from devices (interface names, descriptions) and can be any size.
func fit(is *Issue) {
	var notes []string
	// A note already there (an issue fitted before) is kept, and counted
	// as the note, not as evidence.
	if n, ok := is.Attributes[AttrTruncated]; ok {
		delete(is.Attributes, AttrTruncated)
		notes = append(notes, n)
	}
	text := func(name string, s *string, max int) {
		if len(*s) > max {
			*s = limits.Truncate(*s, max)
			notes = append(notes, name)
		}
	}
	text("id", &is.ID, limits.MaxIDBytes)
	text("kind", &is.Kind, limits.MaxKindBytes)
	text("device", &is.Device, limits.MaxDeviceBytes)
	text("object", &is.Object, limits.MaxObjectBytes)
	text("fingerprint", &is.Fingerprint, limits.MaxFingerprintBytes)
	text("caused_by", &is.CausedBy, limits.MaxFingerprintBytes)
	text("summary", &is.Summary, limits.MaxSummaryBytes)

	keys := make([]string, 0, len(is.Attributes))
	for k := range is.Attributes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	kept := keys[:0]
	for _, k := range keys {
		if k == "" || len(k) > limits.MaxAttributeKeyBytes {
			delete(is.Attributes, k)
			notes = append(notes, "attributes["+limits.Truncate(k, 32)+"]")
			continue
		}
		if v := is.Attributes[k]; len(v) > limits.MaxAttributeValueBytes {
			is.Attributes[k] = limits.Truncate(v, limits.MaxAttributeValueBytes)
			notes = append(notes, "attributes["+k+"]")
		}
		kept = append(kept, k)
	}
	// Keep room for the note.
	maxAttrs := limits.MaxAttributes - 1
	if len(kept) > limits.MaxAttributes {
		for _, k := range kept[maxAttrs:] {
			delete(is.Attributes, k)
		}
		notes = append(notes, "attributes (more than "+strconv.Itoa(limits.MaxAttributes)+")")
		kept = kept[:maxAttrs]
	}
	// The controller adds the agent id to the issue; count it at its most.
	budget := limits.MaxIssueBytes - limits.MaxAgentIDBytes - len(AttrTruncated) - maxTruncatedNote
	size := limits.IssueBytes(is.Attributes, is.ID, is.Kind, is.Device, is.Object, is.Fingerprint, is.CausedBy, is.Summary)
	// The fields above take at most 3 844 bytes, so attributes remain while
	// the issue is too large.
	for size > budget && len(kept) > 0 {
		// Shorten the longest value (the first of equals in key order).
		longest := kept[0]
		for _, k := range kept[1:] {
			if len(is.Attributes[k]) > len(is.Attributes[longest]) {
				longest = k
			}
		}
		v := is.Attributes[longest]
		if len(v) <= len(limits.TruncatedMark) {
			// Nothing left to shorten: drop attributes, last first.
			last := kept[len(kept)-1]
			size -= len(last) + len(is.Attributes[last])
			delete(is.Attributes, last)
			kept = kept[:len(kept)-1]
			notes = append(notes, "attributes["+last+"]")
			continue
		}
		short := limits.Truncate(v, max(len(v)-(size-budget), len(limits.TruncatedMark)))
		size -= len(v) - len(short)
		is.Attributes[longest] = short
		notes = append(notes, "attributes["+longest+"]")
	}
	if len(notes) == 0 {
		return
	}
	if len(kept) > maxAttrs {
		last := kept[len(kept)-1]
		delete(is.Attributes, last)
		notes = append(notes, "attributes["+last+"]")
	}
	if is.Attributes == nil {
		is.Attributes = map[string]string{}
	}
	is.Attributes[AttrTruncated] = limits.Truncate(strings.Join(dedupe(notes), ","), maxTruncatedNote)
}

func dedupe(s []string) []string {
	seen := make(map[string]bool, len(s))
	out := s[:0]
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
