package server

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

func openIssues(logID string, asOf uint64, more bool, ids ...string) *netaiopsv1.ConnectRequest {
	m := &netaiopsv1.OpenIssues{LogId: logID, AsOfSeq: asOf, More: more}
	for _, id := range ids {
		m.Issues = append(m.Issues, &netaiopsv1.OpenIssueRef{Id: id, Fingerprint: "interface_down/sw1/" + id})
	}
	return &netaiopsv1.ConnectRequest{Msg: &netaiopsv1.ConnectRequest_OpenIssues{OpenIssues: m}}
}

// openIDs lists the open issues of agent a1 by id, in the API's order.
func openIDs(t *testing.T, e *env) map[string]bool {
	t.Helper()
	resp, err := e.issues.ListIssues(context.Background(), &netaiopsv1.ListIssuesRequest{
		AgentId: "a1", State: netaiopsv1.IssueState_ISSUE_STATE_OPEN})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, is := range resp.GetIssues() {
		out[is.GetId()] = true
	}
	return out
}

// The open-issue set an agent sends on connect (after the events it
// reflects) resolves that agent's issues it no longer holds (a restart
// without state, a resolve event lost), but not an issue written by an event
// newer than the set.
func TestOpenIssuesReconcile(t *testing.T) {
	e := start(t, Config{HeartbeatInterval: time.Hour}, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	watch, err := e.issues.WatchIssues(ctx, &netaiopsv1.WatchIssuesRequest{State: netaiopsv1.IssueState_ISSUE_STATE_RESOLVED})
	if err != nil {
		t.Fatal(err)
	}

	a := dial(t, e)
	a.welcome("a1", "log-1")
	a.send(batch("log-1", event(1, "i1", "sw1"), event(2, "i2", "sw1"), event(3, "i3", "sw1")))
	if got := a.ack(); got != 3 {
		t.Fatalf("ack = %d", got)
	}
	if err := a.end(); err != nil {
		t.Fatal(err)
	}

	// Reconnect: the agent holds i1 and i4 open as of seq 4; it sends its
	// queued events (4: i4 opens, 5: i5 opens after the set was taken),
	// then the set, in two messages.
	b := dial(t, e)
	if w := b.welcome("a1", "log-1"); w.GetLastStoredSeq() != 3 {
		t.Fatalf("welcome watermark = %d", w.GetLastStoredSeq())
	}
	b.send(batch("log-1", event(4, "i4", "sw1"), event(5, "i5", "sw1")))
	if got := b.ack(); got != 5 {
		t.Fatalf("ack = %d", got)
	}
	if got := openIDs(t, e); len(got) != 5 {
		t.Fatalf("open before the set = %v; want i1 to i5", got)
	}
	b.send(openIssues("log-1", 4, true, "i1"))
	b.send(openIssues("log-1", 4, false, "i4"))
	waitFor(t, 10*time.Second, "i2 and i3 resolved", func() bool {
		got := openIDs(t, e)
		return len(got) == 3 && got["i1"] && got["i4"] && got["i5"]
	})
	for _, want := range []string{"i2", "i3"} {
		m, err := watch.Recv()
		if err != nil {
			t.Fatal(err)
		}
		is := m.GetIssue()
		if is.GetId() != want || m.GetType() != netaiopsv1.IssueEventType_ISSUE_EVENT_TYPE_RESOLVED ||
			is.GetAttributes()["resolution"] != "no longer open at the agent" || is.GetResolvedAt() == nil {
			t.Fatalf("watch got %v; want %s resolved as no longer open at the agent", m, want)
		}
	}
	if n := e.srv.Stats().ReconciledIssues; n != 2 {
		t.Errorf("ReconciledIssues = %d; want 2", n)
	}

	// A set of another log than the hello's is refused, naming the field.
	c := dial(t, e)
	c.welcome("a1", "log-1")
	c.send(openIssues("log-9", 4, false))
	_, err = c.recv()
	wantCode(t, err, codes.InvalidArgument, "open_issues.log_id")
}
