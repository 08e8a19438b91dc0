package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/netaiops/netaiops/collector/limits"
	"github.com/netaiops/netaiops/controller/store"
	"github.com/netaiops/netaiops/controller/watch"
	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

// FuzzIngest drives the ingest path of a Connect stream with arbitrary
// event batches (the wire bytes of an EventBatch): the server's conversion
// (eventsFromProto), the store's Ingest on a real SQLite file, and the
// mapping of its error to a gRPC status. Every input is either stored or
// refused with InvalidArgument; a refused batch stores nothing; the
// watermark of a log never moves backwards and ends at the batch's highest
// seq when stored; what is stored is within the limits. The batch's log_id
// picks the log, so inputs land on fresh and on used logs (replays).
func FuzzIngest(f *testing.F) {
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Open(ctx, filepath.Join(f.TempDir(), "controller.db"), logger)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	if _, err := st.Connect(ctx, store.AgentInfo{ID: "a1", LogID: "L1"}); err != nil {
		f.Fatal(err)
	}
	srv := New(Config{}, st, watch.New(0), logger)
	f.Cleanup(func() { srv.Shutdown(); srv.Wait() })

	for _, b := range fuzzSeeds() {
		data, err := proto.Marshal(b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var b netaiopsv1.EventBatch
		if err := proto.Unmarshal(data, &b); err != nil {
			return // not an EventBatch: gRPC refuses it before the server sees it
		}
		logID := b.GetLogId()
		if logID == "" {
			logID = "L1"
		}
		before, err := st.Watermark(ctx, "a1", logID)
		if err != nil {
			t.Fatal(err)
		}
		var res store.IngestResult
		evs, err := eventsFromProto(b.GetEvents())
		if err != nil {
			err = status.Error(codes.InvalidArgument, "events: "+err.Error())
		} else if res, err = st.Ingest(ctx, "a1", logID, evs); err != nil {
			err = srv.streamStoreError("ingest", err)
		}
		after, werr := st.Watermark(ctx, "a1", logID)
		if werr != nil {
			t.Fatal(werr)
		}
		if after < before {
			t.Fatalf("watermark moved backwards: %d -> %d", before, after)
		}
		if err != nil {
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("refused with %v, want InvalidArgument", err)
			}
			if after != before {
				t.Fatalf("refused batch moved the watermark %d -> %d: %v", before, after, err)
			}
			return
		}
		want, fresh := before, 0
		for _, e := range b.GetEvents() {
			if e.GetSeq() > before {
				want, fresh = max(want, e.GetSeq()), fresh+1
			}
		}
		if after != want || res.Watermark != want || res.Stored != fresh {
			t.Fatalf("stored batch: watermark %d (result %d, stored %d), want %d (%d fresh)", after, res.Watermark, res.Stored, want, fresh)
		}
		for _, ch := range res.Changed {
			is := ch.Issue
			n := limits.IssueBytes(is.Attributes, is.ID, is.AgentID, is.Kind, is.Device, is.Object, is.Fingerprint, is.CausedBy, is.Summary)
			if n > limits.MaxIssueBytes || len(is.Attributes) > limits.MaxAttributes || is.State < store.StateOpen || is.State > store.StateResolved ||
				is.Severity < store.SeverityInfo || is.Severity > store.SeverityCritical {
				t.Fatalf("stored an issue beyond the limits: %d bytes, %d attributes, state %d, severity %d", n, len(is.Attributes), is.State, is.Severity)
			}
		}
		if _, _, err := st.ListIssues(ctx, store.IssueFilter{AgentID: "a1"}, 0, ""); err != nil {
			t.Fatalf("ListIssues after ingest: %v", err)
		}
	})
}

// fuzzSeeds are batches that reach each branch of the ingest path: stored,
// gaps, replays (same and different), and each kind of refusal.
func fuzzSeeds() []*netaiopsv1.EventBatch {
	ts := timestamppb.New(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	ev := func(seq uint64, typ netaiopsv1.IssueEventType, state netaiopsv1.IssueState, summary string) *netaiopsv1.IssueEvent {
		return &netaiopsv1.IssueEvent{Seq: seq, Type: typ, Time: ts, Issue: &netaiopsv1.Issue{
			Id: "i1", Device: "core-sw1", Kind: "interface_down", Severity: netaiopsv1.Severity_SEVERITY_MAJOR, State: state,
			Summary: summary, FirstSeen: ts, LastSeen: ts, Attributes: map[string]string{"ifName": "ge-0/0/1"},
			Object: "ge-0/0/1", Fingerprint: "interface_down/core-sw1/ge-0/0/1"}}
	}
	opened, updated, resolved := netaiopsv1.IssueEventType_ISSUE_EVENT_TYPE_OPENED, netaiopsv1.IssueEventType_ISSUE_EVENT_TYPE_UPDATED, netaiopsv1.IssueEventType_ISSUE_EVENT_TYPE_RESOLVED
	open, closed := netaiopsv1.IssueState_ISSUE_STATE_OPEN, netaiopsv1.IssueState_ISSUE_STATE_RESOLVED
	long := ev(3, updated, open, "long")
	long.Issue.Attributes["evidence"] = strings.Repeat("x", limits.MaxAttributeValueBytes+1)
	enum := ev(4, 99, open, "type 99")
	enum.Issue.Severity = 77
	badTime := ev(5, updated, open, "bad time")
	badTime.Time = &timestamppb.Timestamp{Seconds: -1, Nanos: 2e9}
	noIssue := ev(6, updated, open, "")
	noIssue.Issue = nil
	return []*netaiopsv1.EventBatch{
		{LogId: "L1", Events: []*netaiopsv1.IssueEvent{ev(1, opened, open, "down"), ev(2, updated, open, "still down")}},
		{LogId: "L1", Events: []*netaiopsv1.IssueEvent{ev(2, updated, open, "still down"), ev(9, resolved, closed, "up")}},
		{LogId: "L1", Events: []*netaiopsv1.IssueEvent{ev(2, updated, open, "different")}},
		{LogId: "L2", Events: []*netaiopsv1.IssueEvent{ev(1<<62, opened, open, "jump")}},
		{LogId: "L3", Events: []*netaiopsv1.IssueEvent{long}},
		{LogId: "L3", Events: []*netaiopsv1.IssueEvent{enum}},
		{LogId: "L3", Events: []*netaiopsv1.IssueEvent{badTime}},
		{LogId: "L3", Events: []*netaiopsv1.IssueEvent{noIssue}},
		{LogId: "L4", Events: []*netaiopsv1.IssueEvent{ev(2, opened, open, "a"), ev(1, updated, open, "unordered")}},
		{},
	}
}

// TestFuzzSeedsReachEveryOutcome keeps the seeds meaningful: some are
// stored, some refused, for the reasons they were written for.
func TestFuzzSeedsReachEveryOutcome(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "controller.db"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Connect(ctx, store.AgentInfo{ID: "a1", LogID: "L1"}); err != nil {
		t.Fatal(err)
	}
	want := []string{"", "", "seq 2: issue.summary: differs", "seq 4611686018427387904: jumps", `seq 3: issue.attributes["evidence"]: value is 4097 bytes`,
		"seq 4: type: unknown value 99", "seq 5: time: invalid timestamp", "seq 6: issue: required", "seq 1: not greater than the previous seq 2", "log_id: required"}
	for i, b := range fuzzSeeds() {
		evs, err := eventsFromProto(b.GetEvents())
		if err == nil {
			_, err = st.Ingest(ctx, "a1", b.GetLogId(), evs)
		}
		var ae *store.ArgError
		switch {
		case want[i] == "" && err != nil:
			t.Errorf("seed %d: %v, want stored", i, err)
		case want[i] != "" && (!errors.As(err, &ae) || !strings.Contains(err.Error(), want[i])):
			t.Errorf("seed %d: %v, want an ArgError containing %q", i, err, want[i])
		}
	}
}
