package server

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

// TestListIssueEvents reads an issue's timeline through the gRPC service,
// page by page, and the codes of bad requests.
func TestListIssueEvents(t *testing.T) {
	e := start(t, Config{}, 64)
	ctx := context.Background()
	a := dial(t, e)
	a.welcome("a1", "L1")
	up := event(2, "i1", "core-sw1")
	up.Type, up.Issue.Summary = netaiopsv1.IssueEventType_ISSUE_EVENT_TYPE_UPDATED, "still down"
	a.send(batch("L1", event(1, "i1", "core-sw1"), up, event(3, "i2", "core-sw1")))
	if got := a.ack(); got != 3 {
		t.Fatalf("acked %d, want 3", got)
	}

	var evs []*netaiopsv1.IssueEvent
	req := &netaiopsv1.ListIssueEventsRequest{IssueId: "i1", PageSize: 1}
	for pages := 0; ; pages++ {
		resp, err := e.issues.ListIssueEvents(ctx, req)
		if err != nil {
			t.Fatalf("ListIssueEvents: %v", err)
		}
		evs = append(evs, resp.GetEvents()...)
		if resp.GetNextPageToken() == "" {
			if pages != 1 {
				t.Errorf("%d pages, want 2", pages+1)
			}
			break
		}
		req.PageToken = resp.GetNextPageToken()
	}
	if len(evs) != 2 || evs[0].GetSeq() != 1 || evs[1].GetSeq() != 2 ||
		evs[1].GetType() != netaiopsv1.IssueEventType_ISSUE_EVENT_TYPE_UPDATED || evs[1].GetIssue().GetSummary() != "still down" ||
		evs[0].GetIssue().GetAttributes()["ifName"] != "ge-0/0/1" || evs[0].GetTime() == nil || evs[0].GetIssue().GetAgentId() != "a1" {
		t.Errorf("events = %v", evs)
	}

	for _, c := range []struct {
		req  *netaiopsv1.ListIssueEventsRequest
		code codes.Code
	}{
		{&netaiopsv1.ListIssueEventsRequest{}, codes.InvalidArgument},
		{&netaiopsv1.ListIssueEventsRequest{IssueId: "nope"}, codes.NotFound},
		{&netaiopsv1.ListIssueEventsRequest{IssueId: "i1", PageToken: "garbage!"}, codes.InvalidArgument},
		{&netaiopsv1.ListIssueEventsRequest{IssueId: "i1", PageSize: -1}, codes.InvalidArgument},
	} {
		if _, err := e.issues.ListIssueEvents(ctx, c.req); status.Code(err) != c.code {
			t.Errorf("ListIssueEvents(%v) = %v, want %s", c.req, err, c.code)
		}
	}
}

// TestAcknowledgeComment: the comment comes back on the issue, and one over
// the bound is InvalidArgument naming the field.
func TestAcknowledgeComment(t *testing.T) {
	e := start(t, Config{}, 64)
	ctx := context.Background()
	a := dial(t, e)
	a.welcome("a1", "L1")
	a.send(batch("L1", event(1, "i1", "core-sw1"), event(2, "i2", "core-sw1")))
	a.ack()
	resp, err := e.issues.AcknowledgeIssue(ctx, &netaiopsv1.AcknowledgeIssueRequest{Id: "i1", By: "alice", Comment: "on it"})
	if err != nil || resp.GetIssue().GetAcknowledgedComment() != "on it" {
		t.Fatalf("AcknowledgeIssue = %v, %v", resp, err)
	}
	got, err := e.issues.GetIssue(ctx, &netaiopsv1.GetIssueRequest{Id: "i1"})
	if err != nil || got.GetIssue().GetAcknowledgedComment() != "on it" || got.GetIssue().GetAcknowledgedBy() != "alice" {
		t.Errorf("GetIssue = %v, %v", got, err)
	}
	long := make([]byte, 1025)
	for i := range long {
		long[i] = 'x'
	}
	_, err = e.issues.AcknowledgeIssue(ctx, &netaiopsv1.AcknowledgeIssueRequest{Id: "i2", By: "alice", Comment: string(long)})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "comment:") {
		t.Errorf("long comment: %v", err)
	}
}
