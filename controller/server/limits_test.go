package server

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/netaiops/netaiops/collector/limits"
	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

// maxEvent is an event of agent a1 whose issue has the most text the
// controller accepts: limits.MaxIssueBytes, with a summary of
// limits.MaxSummaryBytes and attributes of the largest key and value size.
func maxEvent(seq uint64, id string) *netaiopsv1.IssueEvent {
	e := event(seq, id, "core-sw1")
	is := e.Issue
	is.AgentId = "a1"
	is.Summary = strings.Repeat("s", limits.MaxSummaryBytes)
	is.Attributes = map[string]string{}
	left := limits.MaxIssueBytes - limits.IssueBytes(nil, is.Id, is.AgentId, is.Device, is.Kind, is.Summary, is.Object, is.Fingerprint, is.CausedBy)
	for i := 0; left > 0; i++ {
		key := fmt.Sprintf("%03d", i) + strings.Repeat("k", limits.MaxAttributeKeyBytes-3)
		n := min(limits.MaxAttributeValueBytes, left-len(key))
		is.Attributes[key] = strings.Repeat("v", n)
		left -= len(key) + n
	}
	return e
}

// TestIngestRefusesOversizeEvent: an event with a 7 MiB attribute ends
// the stream with InvalidArgument naming the seq, the attribute and both
// sizes; nothing of its batch is stored, and ListIssues keeps working.
// Before, it was stored, and two of them made the default ListIssues fail
// with ResourceExhausted for every caller.
func TestIngestRefusesOversizeEvent(t *testing.T) {
	e := start(t, Config{HeartbeatInterval: time.Hour}, 0)
	ctx := context.Background()
	for i := range 2 {
		a := dial(t, e)
		a.welcome("a1", "L1")
		big := event(2, fmt.Sprintf("big-%d", i), "core-sw1")
		big.Issue.Attributes["x"] = strings.Repeat("x", 7<<20)
		a.send(batch("L1", event(1, fmt.Sprintf("ok-%d", i), "core-sw1"), big))
		wantCode(t, a.drain(), codes.InvalidArgument, `seq 2: issue.attributes["x"]: value is 7340032 bytes, at most 4096`)
	}
	resp, err := e.issues.ListIssues(ctx, &netaiopsv1.ListIssuesRequest{})
	if err != nil || len(resp.GetIssues()) != 0 {
		t.Fatalf("ListIssues after refused batches = %d issues, %v", len(resp.GetIssues()), err)
	}
}

// TestIngestRefusesUnknownEnumsAndBadTimes: enums outside the proto's
// values, contradictory states and malformed or absurd timestamps are
// InvalidArgument naming the field.
func TestIngestRefusesUnknownEnumsAndBadTimes(t *testing.T) {
	e := start(t, Config{HeartbeatInterval: time.Hour}, 0)
	with := func(f func(e *netaiopsv1.IssueEvent)) *netaiopsv1.IssueEvent {
		ev := event(1, "i1", "core-sw1")
		f(ev)
		return ev
	}
	cases := []struct {
		name string
		ev   *netaiopsv1.IssueEvent
		want string
	}{
		{"type 99", with(func(e *netaiopsv1.IssueEvent) { e.Type = 99 }), "seq 1: type: unknown value 99"},
		{"severity 77", with(func(e *netaiopsv1.IssueEvent) { e.Issue.Severity = 77 }), "seq 1: issue.severity: unknown value 77"},
		{"state 9", with(func(e *netaiopsv1.IssueEvent) { e.Issue.State = 9 }), "seq 1: issue.state: unknown value 9"},
		{"resolved event of an open issue", with(func(e *netaiopsv1.IssueEvent) { e.Type = netaiopsv1.IssueEventType_ISSUE_EVENT_TYPE_RESOLVED }),
			"seq 1: issue.state: OPEN, but a RESOLVED event leaves the issue RESOLVED"},
		{"no first_seen", with(func(e *netaiopsv1.IssueEvent) { e.Issue.FirstSeen = nil }), "seq 1: issue.first_seen: required"},
		{"negative nanos", with(func(e *netaiopsv1.IssueEvent) { e.Time = &timestamppb.Timestamp{Seconds: 1, Nanos: -1} }),
			"seq 1: time: invalid timestamp (1 s, -1 ns)"},
		{"year 10000", with(func(e *netaiopsv1.IssueEvent) { e.Issue.LastSeen = &timestamppb.Timestamp{Seconds: 253402300800} }),
			"seq 1: issue.last_seen: invalid timestamp (253402300800 s, 0 ns)"},
		{"year 9999", with(func(e *netaiopsv1.IssueEvent) {
			e.Issue.ResolvedAt = timestamppb.New(time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC))
		}),
			"seq 1: issue.resolved_at: 9999-12-31T00:00:00Z is out of range"},
		{"before 1970", with(func(e *netaiopsv1.IssueEvent) { e.Issue.FirstSeen = &timestamppb.Timestamp{Seconds: -5} }),
			"seq 1: issue.first_seen: 1969-12-31T23:59:55Z is out of range"},
	}
	for _, c := range cases {
		a := dial(t, e)
		a.welcome("a1", "L1")
		a.send(batch("L1", c.ev))
		t.Run(c.name, func(t *testing.T) { wantCode(t, a.drain(), codes.InvalidArgument, c.want) })
	}
	if wm, _ := e.store.Watermark(context.Background(), "a1", "L1"); wm != 0 {
		t.Fatalf("watermark after refused batches = %d", wm)
	}
}

// TestIngestRefusesSeqJumpAndDifferentReplay: a seq 2^62 past the
// watermark is refused, not acked (before, it moved the watermark and
// every later real event was acked and discarded as a replay); a different
// event at a stored seq is refused; an identical replay is acked.
func TestIngestRefusesSeqJumpAndDifferentReplay(t *testing.T) {
	e := start(t, Config{HeartbeatInterval: time.Hour}, 0)
	ctx := context.Background()
	a := dial(t, e)
	a.welcome("a1", "L1")
	a.send(batch("L1", event(1, "i1", "core-sw1")))
	if got := a.ack(); got != 1 {
		t.Fatalf("ack = %d", got)
	}
	a.send(batch("L1", event(1<<62, "i2", "core-sw1")))
	wantCode(t, a.drain(), codes.InvalidArgument, fmt.Sprintf("seq %d: jumps %d past the stored watermark 1, at most 4294967296", uint64(1<<62), uint64(1<<62)-1))

	a = dial(t, e)
	if w := a.welcome("a1", "L1"); w.GetLastStoredSeq() != 1 {
		t.Fatalf("welcome after the refused jump: last_stored_seq %d, want 1", w.GetLastStoredSeq())
	}
	a.send(batch("L1", event(1, "i1", "core-sw1"), event(2, "i2", "core-sw1")))
	if got := a.ack(); got != 2 {
		t.Fatalf("ack after a replay and a real event = %d, want 2", got)
	}
	if _, err := e.issues.GetIssue(ctx, &netaiopsv1.GetIssueRequest{Id: "i2"}); err != nil {
		t.Fatalf("real event after the refused jump not stored: %v", err)
	}
	other := event(2, "i2", "core-sw1")
	other.Issue.Summary = "something else"
	a.send(batch("L1", other))
	wantCode(t, a.drain(), codes.InvalidArgument, "seq 2: issue.summary: differs from the event already stored at this seq")
}

// TestListIssuesFitsTheDefaultMessage: a default page of issues of the
// largest accepted size fits a client with gRPC's default 4 MiB receive
// limit, and so does a page of page_size 1000: it ends early with a
// next_page_token.
func TestListIssuesFitsTheDefaultMessage(t *testing.T) {
	e := start(t, Config{HeartbeatInterval: time.Hour, MaxBatchEvents: 100}, 0)
	ctx := context.Background()
	a := dial(t, e)
	a.welcome("a1", "L1")
	const n = 300
	for b := range n / 100 {
		var evs []*netaiopsv1.IssueEvent
		for i := range 100 {
			seq := uint64(b*100 + i + 1)
			evs = append(evs, maxEvent(seq, fmt.Sprintf("i%03d", seq)))
		}
		a.send(batch("L1", evs...))
		if got := a.ack(); got != uint64(b+1)*100 {
			t.Fatalf("ack = %d", got)
		}
	}
	resp, err := e.issues.ListIssues(ctx, &netaiopsv1.ListIssuesRequest{})
	if err != nil || len(resp.GetIssues()) != 100 || resp.GetNextPageToken() == "" {
		t.Fatalf("default ListIssues = %d issues, next %q, %v", len(resp.GetIssues()), resp.GetNextPageToken(), err)
	}
	is := resp.GetIssues()[0]
	if got := limits.IssueBytes(is.GetAttributes(), is.GetId(), "a1", "core-sw1", "interface_down", is.GetSummary(), is.GetObject(),
		is.GetFingerprint(), ""); got != limits.MaxIssueBytes {
		t.Fatalf("issue size = %d, want %d", got, limits.MaxIssueBytes)
	}
	seen, pages, tok := map[string]bool{}, 0, ""
	for {
		resp, err := e.issues.ListIssues(ctx, &netaiopsv1.ListIssuesRequest{PageSize: 1000, PageToken: tok})
		if err != nil {
			t.Fatalf("ListIssues page %d: %v", pages, err)
		}
		pages++
		for _, is := range resp.GetIssues() {
			if seen[is.GetId()] {
				t.Fatalf("issue %s listed twice", is.GetId())
			}
			seen[is.GetId()] = true
		}
		if tok = resp.GetNextPageToken(); tok == "" {
			break
		}
	}
	if len(seen) != n || pages < 2 {
		t.Fatalf("page_size 1000: %d issues in %d pages, want %d in at least 2", len(seen), pages, n)
	}
}

// TestNackErrorIsCut: the error of a NACK is the agent's text of any
// size; the controller keeps at most limits.MaxConfigErrorBytes of it,
// so one agent cannot make ListAgents fail for everyone.
func TestNackErrorIsCut(t *testing.T) {
	e := start(t, Config{HeartbeatInterval: time.Hour}, 0)
	a := dial(t, e)
	a.welcome("a1", "L1")
	a.send(&netaiopsv1.ConnectRequest{Msg: &netaiopsv1.ConnectRequest_ConfigStatus{ConfigStatus: &netaiopsv1.ConfigStatus{
		Version: 1, Hash: "h1", Error: strings.Repeat("e", 3<<20)}}})
	a.send(batch("L1", event(1, "i1", "core-sw1"))) // handled after the NACK: its ack says the NACK is stored
	if got := a.ack(); got != 1 {
		t.Fatalf("ack = %d", got)
	}
	got := getAgent(t, e, "a1")
	if n := len(got.GetConfigError()); n > limits.MaxConfigErrorBytes || !strings.HasSuffix(got.GetConfigError(), limits.TruncatedMark) || got.GetConfigErrorHash() != "h1" {
		t.Fatalf("config error of %d bytes (at most %d, ending in %q), hash %q", n, limits.MaxConfigErrorBytes, limits.TruncatedMark, got.GetConfigErrorHash())
	}
}

// TestHugeStringsAreNotEchoed: a batch naming a 1 MiB log id is refused
// with a short message, and the hash of a config ACK is kept cut to
// limits.MaxIDBytes.
func TestHugeStringsAreNotEchoed(t *testing.T) {
	e := start(t, Config{HeartbeatInterval: time.Hour}, 0)
	a := dial(t, e)
	a.welcome("a1", "L1")
	a.send(batch(strings.Repeat("l", 1<<20), event(1, "i1", "core-sw1")))
	err := a.drain()
	wantCode(t, err, codes.InvalidArgument, `is not the hello's log_id "L1"`)
	if n := len(status.Convert(err).Message()); n > 1024 {
		t.Fatalf("status message of %d bytes", n)
	}

	a = dial(t, e)
	a.welcome("a1", "L1")
	a.send(&netaiopsv1.ConnectRequest{Msg: &netaiopsv1.ConnectRequest_ConfigStatus{ConfigStatus: &netaiopsv1.ConfigStatus{
		Version: 1, Hash: strings.Repeat("h", 1<<20)}}})
	a.send(batch("L1", event(1, "i1", "core-sw1")))
	if got := a.ack(); got != 1 {
		t.Fatalf("ack = %d", got)
	}
	if n := len(getAgent(t, e, "a1").GetAppliedConfigHash()); n > limits.MaxIDBytes {
		t.Fatalf("applied config hash of %d bytes kept", n)
	}
}
