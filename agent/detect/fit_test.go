package detect

import (
	"fmt"
	"maps"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/netaiops/netaiops/collector/limits"
)

// checkLimits fails unless the issue is within every limit the controller
// enforces on ingest (controller/store validate.go), with the agent id
// the controller adds.
func checkLimits(t *testing.T, agentID string, is Issue) {
	t.Helper()
	for _, f := range []struct {
		name string
		v    string
		max  int
	}{
		{"id", is.ID, limits.MaxIDBytes}, {"kind", is.Kind, limits.MaxKindBytes}, {"device", is.Device, limits.MaxDeviceBytes},
		{"object", is.Object, limits.MaxObjectBytes}, {"fingerprint", is.Fingerprint, limits.MaxFingerprintBytes},
		{"caused_by", is.CausedBy, limits.MaxFingerprintBytes}, {"summary", is.Summary, limits.MaxSummaryBytes},
	} {
		if len(f.v) > f.max || !utf8.ValidString(f.v) {
			t.Errorf("%s: %d bytes (at most %d), valid UTF-8 %v", f.name, len(f.v), f.max, utf8.ValidString(f.v))
		}
	}
	if len(is.Attributes) > limits.MaxAttributes {
		t.Errorf("%d attributes, at most %d", len(is.Attributes), limits.MaxAttributes)
	}
	for k, v := range is.Attributes {
		if k == "" || len(k) > limits.MaxAttributeKeyBytes || len(v) > limits.MaxAttributeValueBytes || !utf8.ValidString(v) {
			t.Errorf("attribute %.40q: key %d bytes, value %d bytes", k, len(k), len(v))
		}
	}
	if n := limits.IssueBytes(is.Attributes, agentID, is.ID, is.Kind, is.Device, is.Object, is.Fingerprint, is.CausedBy, is.Summary); n > limits.MaxIssueBytes {
		t.Errorf("issue of %d bytes, at most %d", n, limits.MaxIssueBytes)
	}
}

// TestEngineFitsDeviceTextToLimits: an interface whose name and
// description (text the device chooses) are tens of KiB still yields
// changes the controller accepts, marked as truncated, and the issue's
// changes keep one id and fingerprint. Before, the engine sent the text
// whole and the controller refused the batch.
func TestEngineFitsDeviceTextToLimits(t *testing.T) {
	name := strings.Repeat("é", 5000) // 10 000 bytes, two per rune: cuts must not split one
	descr := strings.Repeat("d", 20000)
	up := iface{2, name, descr, 1, 1}
	down := iface{2, name, descr, 1, 2}
	e := New("edge-1", Options{})
	var got []Change
	for i, p := range []int{1, 2, 1} {
		f := up
		if p == 2 {
			f = down
		}
		got = append(got, e.Observe(ok(i, float64(100+10*i), f))...)
	}
	if len(got) != 2 || got[0].Type != Opened || got[1].Type != Resolved {
		t.Fatalf("changes = %v", got)
	}
	for _, c := range got {
		checkLimits(t, "edge-1", c.Issue)
		note := c.Issue.Attributes[AttrTruncated]
		for _, want := range []string{"object", "fingerprint", "summary", "attributes[ifName]", "attributes[ifDescr]"} {
			if !strings.Contains(note, want) {
				t.Errorf("%s: truncated = %q, want it to name %s", c.Type, note, want)
			}
		}
		if !strings.HasSuffix(c.Issue.Attributes["ifDescr"], limits.TruncatedMark) || !strings.HasPrefix(c.Issue.Object, "éé") {
			t.Errorf("%s: ifDescr %.20q... object %.20q...", c.Type, c.Issue.Attributes["ifDescr"], c.Issue.Object)
		}
	}
	if got[0].Issue.ID != got[1].Issue.ID || got[0].Issue.Fingerprint != got[1].Issue.Fingerprint || got[0].Issue.Object != got[1].Issue.Object {
		t.Fatalf("open and resolve differ: %q %q vs %q %q", got[0].Issue.ID, got[0].Issue.Fingerprint, got[1].Issue.ID, got[1].Issue.Fingerprint)
	}
}

// TestFit: whatever an issue holds, fit brings it within the limits,
// names what it cut, leaves an issue within the limits untouched and is
// idempotent.
func TestFit(t *testing.T) {
	small := Issue{ID: "0123", Kind: "interface_down", Device: "sw1", Object: "eth1", Fingerprint: "interface_down/sw1/eth1",
		Summary: "eth1 down", Attributes: map[string]string{"ifName": "eth1"}}
	attrs := func(n, keyLen, valLen int) map[string]string {
		m := map[string]string{}
		for i := range n {
			m[fmt.Sprintf("%04d%s", i, strings.Repeat("k", max(keyLen-4, 0)))] = strings.Repeat("v", valLen)
		}
		return m
	}
	big := func(f func(is *Issue)) Issue {
		is := small
		is.Attributes = maps.Clone(small.Attributes)
		f(&is)
		return is
	}
	cases := []struct {
		name string
		is   Issue
		note string // a part of the truncated attribute
	}{
		{"many small attributes", big(func(is *Issue) { is.Attributes = attrs(100, 8, 8) }), "attributes (more than 64)"},
		{"64 attributes and a long value", big(func(is *Issue) {
			is.Attributes = attrs(64, 8, 8)
			is.Attributes["0000kkkk"] = strings.Repeat("x", 5000)
		}), "attributes[0000kkkk]"},
		{"large values", big(func(is *Issue) { is.Attributes = attrs(60, 128, 4096) }), "attributes[0000"},
		{"long key", big(func(is *Issue) { is.Attributes[strings.Repeat("k", 200)] = "v" }), "attributes[kkkk"},
		{"empty key", big(func(is *Issue) { is.Attributes[""] = "v" }), "attributes[]"},
		{"everything long", big(func(is *Issue) {
			is.ID, is.Kind, is.Device = strings.Repeat("i", 300), strings.Repeat("k", 300), strings.Repeat("d", 300)
			is.Object, is.Fingerprint, is.CausedBy, is.Summary = strings.Repeat("o", 3000), strings.Repeat("f", 3000), strings.Repeat("c", 3000), strings.Repeat("s", 3000)
			is.Attributes = attrs(64, 128, 4096)
		}), "id,kind,device,object,fingerprint,caused_by,summary"},
	}
	for _, c := range cases {
		is := c.is
		fit(&is)
		checkLimits(t, strings.Repeat("a", limits.MaxAgentIDBytes), is)
		if note := is.Attributes[AttrTruncated]; !strings.Contains(note, c.note) {
			t.Errorf("%s: truncated = %q, want it to contain %q", c.name, note, c.note)
		}
		again := is
		again.Attributes = maps.Clone(is.Attributes)
		fit(&again)
		if !reflect.DeepEqual(again, is) {
			t.Errorf("%s: fit is not idempotent", c.name)
		}
	}
	is := big(func(*Issue) {})
	fit(&is)
	if !reflect.DeepEqual(is, small) {
		t.Fatalf("issue within the limits changed: %+v", is)
	}
}
