package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/netaiops/netaiops/collector/limits"
)

// TestIngestRefusesOutOfLimits: every string and map of an event has a
// bound, and an event beyond one is refused with the field named and
// nothing of its batch stored.
func TestIngestRefusesOutOfLimits(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	mustConnect(t, s, "a1", "L1")
	with := func(f func(e *Event)) Event {
		e := ev(2, EventOpened, "i2", StateOpen, "down")
		f(&e)
		return e
	}
	many := map[string]string{}
	for i := range limits.MaxAttributes + 1 {
		many[fmt.Sprintf("k%02d", i)] = "v"
	}
	big := map[string]string{}
	for i := range 5 {
		big[fmt.Sprintf("k%d", i)] = strings.Repeat("x", limits.MaxAttributeValueBytes)
	}
	cases := []struct {
		name string
		ev   Event
		want string // the whole ArgError text
	}{
		{"7 MiB attribute", with(func(e *Event) { e.Issue.Attributes = map[string]string{"x": strings.Repeat("x", 7<<20)} }),
			`seq 2: issue.attributes["x"]: value is 7340032 bytes, at most 4096`},
		{"long key", with(func(e *Event) { e.Issue.Attributes = map[string]string{strings.Repeat("k", 129): "v"} }),
			`seq 2: issue.attributes["` + limits.Truncate(strings.Repeat("k", 129), 64) + `"]: key is 129 bytes, at most 128`},
		{"empty key", with(func(e *Event) { e.Issue.Attributes = map[string]string{"": "v"} }),
			`seq 2: issue.attributes[""]: empty key`},
		{"65 attributes", with(func(e *Event) { e.Issue.Attributes = many }),
			`seq 2: issue.attributes: 65 attributes, at most 64`},
		{"whole issue", with(func(e *Event) { e.Issue.Attributes = big }),
			fmt.Sprintf("seq 2: issue: %d bytes of text and attributes, at most 16384", 5*(2+4096)+2+len("core-sw1")+len("interface_down")+len("ifIndex=3/i2")+len("interface_down/core-sw1/ifIndex=3/i2")+len("down"))},
		{"summary", with(func(e *Event) { e.Issue.Summary = strings.Repeat("s", 1025) }),
			`seq 2: issue.summary: 1025 bytes, at most 1024`},
		{"id", with(func(e *Event) { e.Issue.ID = strings.Repeat("i", 129) }), `seq 2: issue.id: 129 bytes, at most 128`},
		{"agent id", with(func(e *Event) { e.Issue.AgentID = strings.Repeat("a", 129) }), `seq 2: issue.agent_id: 129 bytes, at most 128`},
		{"kind", with(func(e *Event) { e.Issue.Kind = strings.Repeat("k", 129) }), `seq 2: issue.kind: 129 bytes, at most 128`},
		{"device", with(func(e *Event) { e.Issue.Device = strings.Repeat("d", 257) }), `seq 2: issue.device: 257 bytes, at most 256`},
		{"object", with(func(e *Event) { e.Issue.Object = strings.Repeat("o", 513) }), `seq 2: issue.object: 513 bytes, at most 512`},
		{"fingerprint", with(func(e *Event) { e.Issue.Fingerprint = strings.Repeat("f", 899) }), `seq 2: issue.fingerprint: 899 bytes, at most 898`},
		{"caused by", with(func(e *Event) { e.Issue.CausedBy = strings.Repeat("c", 899) }), `seq 2: issue.caused_by: 899 bytes, at most 898`},
		{"type 99", with(func(e *Event) { e.Type = 99 }), `seq 2: type: unknown value 99`},
		{"no type", with(func(e *Event) { e.Type = EventUnspecified }), `seq 2: type: required`},
		{"severity 77", with(func(e *Event) { e.Issue.Severity = 77 }), `seq 2: issue.severity: unknown value 77`},
		{"no severity", with(func(e *Event) { e.Issue.Severity = SeverityUnspecified }), `seq 2: issue.severity: required`},
		{"state 5", with(func(e *Event) { e.Issue.State = 5 }), `seq 2: issue.state: unknown value 5`},
		{"no state", with(func(e *Event) { e.Issue.State = StateUnspecified }), `seq 2: issue.state: required`},
		{"resolved event, open issue", with(func(e *Event) { e.Type = EventResolved }),
			`seq 2: issue.state: OPEN, but a RESOLVED event leaves the issue RESOLVED`},
		{"opened event, resolved issue", with(func(e *Event) { e.Issue.State = StateResolved }),
			`seq 2: issue.state: RESOLVED, but a OPENED event leaves the issue OPEN`},
		{"no first_seen", with(func(e *Event) { e.Issue.FirstSeen = time.Time{} }), `seq 2: issue.first_seen: required`},
		{"first_seen before 1970", with(func(e *Event) { e.Issue.FirstSeen = time.Unix(-1, 0) }),
			`seq 2: issue.first_seen: 1969-12-31T23:59:59Z is out of range: must be after 1970-01-01T00:00:00Z and before 2200-01-01T00:00:00Z`},
		{"last_seen in year 9999", with(func(e *Event) { e.Issue.LastSeen = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC) }),
			`seq 2: issue.last_seen: 9999-01-01T00:00:00Z is out of range: must be after 1970-01-01T00:00:00Z and before 2200-01-01T00:00:00Z`},
		{"time in year 2262", with(func(e *Event) { e.Time = time.Date(2262, 6, 1, 0, 0, 0, 0, time.UTC) }),
			`seq 2: time: 2262-06-01T00:00:00Z is out of range: must be after 1970-01-01T00:00:00Z and before 2200-01-01T00:00:00Z`},
	}
	for _, c := range cases {
		_, err := s.Ingest(ctx, "a1", "L1", []Event{ev(1, EventOpened, "i1", StateOpen, "ok"), c.ev})
		var ae *ArgError
		if !errors.As(err, &ae) || ae.Error() != c.want {
			t.Errorf("%s:\n got %v\nwant %s", c.name, err, c.want)
		}
	}
	if wm, _ := s.Watermark(ctx, "a1", "L1"); wm != 0 {
		t.Fatalf("watermark after refused batches = %d, want 0", wm)
	}
	// At the limits exactly, the event is stored.
	atLimit := with(func(e *Event) {
		e.Issue.Summary = strings.Repeat("s", limits.MaxSummaryBytes)
		e.Issue.Attributes = map[string]string{strings.Repeat("k", limits.MaxAttributeKeyBytes): strings.Repeat("v", limits.MaxAttributeValueBytes)}
	})
	if res := mustIngest(t, s, "a1", "L1", ev(1, EventOpened, "i1", StateOpen, "ok"), atLimit); res.Stored != 2 {
		t.Fatalf("at the limits: %+v", res)
	}
}

// TestIngestRefusesSeqJump: a seq more than limits.MaxSeqGap past the
// watermark is refused and the watermark stays; real events after it are
// stored, not acked as replays.
func TestIngestRefusesSeqJump(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	mustConnect(t, s, "a1", "L1")
	mustIngest(t, s, "a1", "L1", ev(1, EventOpened, "i1", StateOpen, "down"))
	for _, seq := range []uint64{1 + limits.MaxSeqGap + 1, 1 << 62, math.MaxInt64} {
		_, err := s.Ingest(ctx, "a1", "L1", []Event{ev(2, EventUpdated, "i1", StateOpen, "x"), ev(seq, EventUpdated, "i1", StateOpen, "poison")})
		want := fmt.Sprintf("seq %d: jumps %d past the stored watermark 1, at most 4294967296 (limits.MaxSeqGap)", seq, seq-1)
		var ae *ArgError
		if !errors.As(err, &ae) || ae.Error() != want {
			t.Errorf("seq %d:\n got %v\nwant %s", seq, err, want)
		}
	}
	// The largest jump allowed is stored as a gap.
	res := mustIngest(t, s, "a1", "L1", ev(1+limits.MaxSeqGap, EventUpdated, "i1", StateOpen, "after a long outage"))
	if res.Watermark != 1+limits.MaxSeqGap || res.Stored != 1 || len(res.Gaps) != 1 {
		t.Fatalf("largest jump: %+v", res)
	}
	res = mustIngest(t, s, "a1", "L1", ev(2+limits.MaxSeqGap, EventResolved, "i1", StateResolved, "up"))
	if res.Stored != 1 || res.Replayed != 0 {
		t.Fatalf("real event after the jump: %+v", res)
	}
	if is, _ := s.GetIssue(ctx, "i1"); is.State != StateResolved {
		t.Fatalf("issue after the real event = %+v", is)
	}
}

// TestIngestRefusesDifferentReplay: a seq at or below the watermark must
// repeat the stored event; an identical replay stays a silent no-op.
func TestIngestRefusesDifferentReplay(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	mustConnect(t, s, "a1", "L1")
	first := []Event{ev(1, EventOpened, "i1", StateOpen, "down"), ev(2, EventUpdated, "i1", StateOpen, "still down")}
	mustIngest(t, s, "a1", "L1", first...)
	if res := mustIngest(t, s, "a1", "L1", first...); res.Replayed != 2 || res.Stored != 0 {
		t.Fatalf("identical replay = %+v", res)
	}
	// The controller fills in the agent id: a replay that names it is the same event.
	named := ev(2, EventUpdated, "i1", StateOpen, "still down")
	named.Issue.AgentID = "a1"
	if res := mustIngest(t, s, "a1", "L1", named); res.Replayed != 1 {
		t.Fatalf("replay naming the agent = %+v", res)
	}
	attrs := ev(2, EventUpdated, "i1", StateOpen, "still down")
	attrs.Issue.Attributes["ifName"] = "ge-0/0/2"
	for _, c := range []struct {
		ev   Event
		want string
	}{
		{ev(2, EventUpdated, "i1", StateOpen, "other"), "seq 2: issue.summary"},
		{ev(1, EventOpened, "i9", StateOpen, "down"), "seq 1: issue.id"},
		{ev(2, EventResolved, "i1", StateResolved, "still down"), "seq 2: type"},
		{attrs, "seq 2: issue.attributes"},
	} {
		_, err := s.Ingest(ctx, "a1", "L1", []Event{c.ev, ev(3, EventUpdated, "i1", StateOpen, "new")})
		var ae *ArgError
		if !errors.As(err, &ae) || ae.Field != c.want || !strings.Contains(ae.Reason, "differs from the event already stored at this seq") {
			t.Errorf("replay of seq %d: err = %v, want ArgError on %q", c.ev.Seq, err, c.want)
		}
	}
	if wm, _ := s.Watermark(ctx, "a1", "L1"); wm != 2 {
		t.Fatalf("watermark after refused replays = %d, want 2", wm)
	}
}

// TestConnectRefusesOutOfLimits: the hello's labels, targets and
// self-description are bounded too.
func TestConnectRefusesOutOfLimits(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	base := func() AgentInfo {
		return AgentInfo{ID: "a1", LogID: "L1", Version: "v1", Hostname: "edge", Labels: map[string]string{"site": "lab"},
			Targets: []Target{{Name: "core-sw1", Address: "10.0.0.1:161", SNMPVersion: "2c"}}}
	}
	manyLabels := map[string]string{}
	for i := range limits.MaxLabels + 1 {
		manyLabels[fmt.Sprintf("l%02d", i)] = "v"
	}
	cases := []struct {
		name string
		f    func(a *AgentInfo)
		want string
	}{
		{"65 labels", func(a *AgentInfo) { a.Labels = manyLabels }, "hello.labels: 65 labels, at most 64"},
		{"label value", func(a *AgentInfo) { a.Labels = map[string]string{"site": strings.Repeat("v", 257)} }, `hello.labels["site"]: value is 257 bytes, at most 256`},
		{"label key", func(a *AgentInfo) { a.Labels = map[string]string{strings.Repeat("k", 129): "v"} },
			`hello.labels["` + limits.Truncate(strings.Repeat("k", 129), 64) + `"]: key is 129 bytes, at most 128`},
		{"targets", func(a *AgentInfo) { a.Targets = make([]Target, limits.MaxTargets+1) }, "hello.targets: 20001 targets, at most 20000"},
		{"target name", func(a *AgentInfo) { a.Targets[0].Name = strings.Repeat("n", 257) }, "hello.targets[0].name: 257 bytes, at most 256"},
		{"target address", func(a *AgentInfo) { a.Targets[0].Address = strings.Repeat("n", 271) }, "hello.targets[0].address: 271 bytes, at most 270"},
		{"hostname", func(a *AgentInfo) { a.Hostname = strings.Repeat("h", 257) }, "hello.hostname: 257 bytes, at most 256"},
		{"version", func(a *AgentInfo) { a.Version = strings.Repeat("v", 129) }, "hello.version: 129 bytes, at most 128"},
		{"agent id", func(a *AgentInfo) { a.ID = strings.Repeat("a", 7<<20) }, "hello.agent_id: 7340032 bytes, at most 128"},
		{"log id", func(a *AgentInfo) { a.LogID = strings.Repeat("l", 129) }, "hello.log_id: 129 bytes, at most 128"},
	}
	for _, c := range cases {
		a := base()
		c.f(&a)
		_, err := s.Connect(ctx, a)
		var ae *ArgError
		if !errors.As(err, &ae) || ae.Error() != c.want {
			t.Errorf("%s:\n got %v\nwant %s", c.name, err, c.want)
		}
		if err != nil && len(err.Error()) > 1024 {
			t.Errorf("%s: error of %d bytes echoes the input", c.name, len(err.Error()))
		}
	}
	if agents, _, _ := s.ListAgents(ctx, 0, ""); len(agents) != 0 {
		t.Fatalf("refused hellos stored agents: %+v", agents)
	}
	if _, err := s.Connect(ctx, base()); err != nil {
		t.Fatal(err)
	}
	err := s.ConfigApplied(ctx, "a1", "h", 1, make([]Target, limits.MaxTargets+1))
	var ae *ArgError
	if !errors.As(err, &ae) || ae.Error() != "config_status.targets: 20001 targets, at most 20000" {
		t.Fatalf("config ack with too many targets: %v", err)
	}
}

// TestTargetListAndAgentPages: an agent's targets together are bounded in
// bytes, and a page of agents ends early (with a token) once it would pass
// MaxPageBytes, so ListAgents fits any client.
func TestTargetListAndAgentPages(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	targets := func(n, nameLen int) []Target {
		ts := make([]Target, n)
		for i := range ts {
			ts[i] = Target{Name: fmt.Sprintf("%05d", i) + strings.Repeat("n", nameLen-5), Address: "10.0.0.1:161", SNMPVersion: "2c"}
		}
		return ts
	}
	_, err := s.Connect(ctx, AgentInfo{ID: "big", LogID: "L1", Targets: targets(5000, 256)})
	var ae *ArgError
	want := fmt.Sprintf("hello.targets: more than %d bytes of names, addresses and versions (at targets[3883])", limits.MaxTargetListBytes)
	if !errors.As(err, &ae) || ae.Error() != want {
		t.Fatalf("Connect with 1.3 MB of targets:\n got %v\nwant %s", err, want)
	}
	// Five agents of 0.8 MB of targets each: more than one page of 2 MiB.
	for i := range 5 {
		if _, err := s.Connect(ctx, AgentInfo{ID: fmt.Sprintf("a%d", i), LogID: "L1", Targets: targets(3000, 256)}); err != nil {
			t.Fatal(err)
		}
	}
	seen, pages, tok := 0, 0, ""
	for {
		page, next, err := s.ListAgents(ctx, 0, tok)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		seen += len(page)
		if len(page) == 0 || len(page) > 2 {
			t.Fatalf("page %d: %d agents, want 1 or 2 of 0.8 MB each", pages, len(page))
		}
		if tok = next; tok == "" {
			break
		}
	}
	if seen != 5 || pages < 3 {
		t.Fatalf("%d agents in %d pages, want 5 in at least 3", seen, pages)
	}
}
