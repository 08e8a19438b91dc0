package store

import (
	"context"
	"testing"
)

// droppedIssue returns the agent_events_dropped issues of an agent.
func droppedIssues(t *testing.T, s *Store, agent string) []Issue {
	t.Helper()
	is, _, err := s.ListIssues(context.Background(), IssueFilter{Kind: KindEventsDropped, AgentID: agent}, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	return is
}

func TestHeartbeatDropCountRaisesIssue(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	mustConnect(t, s, "a1", "L1")
	if err := s.Heartbeat(ctx, "a1", 10, 0); err != nil {
		t.Fatal(err)
	}
	if got := droppedIssues(t, s, "a1"); len(got) != 0 {
		t.Fatalf("issue raised without drops: %+v", got)
	}
	if err := s.Heartbeat(ctx, "a1", 10, 7); err != nil {
		t.Fatal(err)
	}
	got := droppedIssues(t, s, "a1")
	if len(got) != 1 {
		t.Fatalf("%d agent_events_dropped issues after the count grew, want 1", len(got))
	}
	is := got[0]
	if is.Device != "a1" || is.AgentID != "a1" || is.State != StateOpen || is.Severity != SeverityMajor ||
		is.Attributes["dropped_events"] != "7" || is.Attributes["log_id"] != "L1" {
		t.Fatalf("issue %+v", is)
	}
	// The same count again (every heartbeat, or after a controller restart)
	// changes nothing; a larger one updates the same issue.
	if err := s.Heartbeat(ctx, "a1", 10, 7); err != nil {
		t.Fatal(err)
	}
	again, _ := s.GetIssue(ctx, is.ID)
	if !again.UpdateTime.Equal(is.UpdateTime) || again.Summary != is.Summary {
		t.Fatalf("unchanged count rewrote the issue: %+v", again)
	}
	if err := s.Heartbeat(ctx, "a1", 10, 9); err != nil {
		t.Fatal(err)
	}
	got = droppedIssues(t, s, "a1")
	if len(got) != 1 || got[0].ID != is.ID || got[0].Attributes["dropped_events"] != "9" {
		t.Fatalf("after growth to 9: %+v", got)
	}
	// Unknown agents are ignored, as before.
	if err := s.Heartbeat(ctx, "nobody", 1, 5); err != nil {
		t.Fatalf("heartbeat of an unknown agent: %v", err)
	}
}

func TestIngestGapRaisesIssue(t *testing.T) {
	s := openTest(t, "")
	mustConnect(t, s, "a1", "L1")
	res := mustIngest(t, s, "a1", "L1", ev(1, EventOpened, "i1", StateOpen, "down"), ev(2, EventOpened, "i2", StateOpen, "down"))
	if len(droppedIssues(t, s, "a1")) != 0 || len(res.Changed) != 2 {
		t.Fatalf("no gap, but: changed %d, dropped issues %d", len(res.Changed), len(droppedIssues(t, s, "a1")))
	}
	// Seqs 3-5 never arrive, then 7 after 6.
	res = mustIngest(t, s, "a1", "L1", ev(6, EventOpened, "i3", StateOpen, "down"), ev(8, EventOpened, "i4", StateOpen, "down"))
	if len(res.Gaps) != 2 {
		t.Fatalf("gaps %+v", res.Gaps)
	}
	last := res.Changed[len(res.Changed)-1]
	if last.Issue.Kind != KindEventsDropped || last.Type != EventOpened || last.Issue.Attributes["missing_events"] != "4" {
		t.Fatalf("last change %+v, want the opened agent_events_dropped issue with 4 missing", last)
	}
	// A replay of the same batch finds no gap and changes nothing.
	res = mustIngest(t, s, "a1", "L1", ev(6, EventOpened, "i3", StateOpen, "down"), ev(8, EventOpened, "i4", StateOpen, "down"))
	if len(res.Changed) != 0 {
		t.Fatalf("replay changed %+v", res.Changed)
	}
	got := droppedIssues(t, s, "a1")
	if len(got) != 1 || got[0].Attributes["missing_events"] != "4" || got[0].Device != "a1" {
		t.Fatalf("issues %+v", got)
	}
	// A new log (the agent's outbox wiped) gets its own issue.
	mustConnect(t, s, "a1", "L2")
	mustIngest(t, s, "a1", "L2", ev(3, EventOpened, "i5", StateOpen, "down"))
	if got := droppedIssues(t, s, "a1"); len(got) != 2 {
		t.Fatalf("%d issues after a gap in a second log, want 2", len(got))
	}
}
