package store

import (
	"context"
	"errors"
	"testing"
)

// TestListIssueEvents pages through one issue's timeline, oldest first,
// across a new event log of the same agent, and leaves out other issues.
func TestListIssueEvents(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	mustConnect(t, s, "a1", "L1")
	mustIngest(t, s, "a1", "L1",
		ev(1, EventOpened, "i1", StateOpen, "down"),
		ev(2, EventOpened, "i2", StateOpen, "other"),
		ev(3, EventUpdated, "i1", StateOpen, "still down"),
	)
	// The agent lost its log: the issue continues under a new one.
	mustConnect(t, s, "a1", "L2")
	mustIngest(t, s, "a1", "L2", ev(4, EventResolved, "i1", StateResolved, "up"))

	var got []Event
	tok := ""
	pages := 0
	for {
		evs, next, err := s.ListIssueEvents(ctx, "i1", 2, tok)
		if err != nil {
			t.Fatalf("ListIssueEvents: %v", err)
		}
		pages++
		got = append(got, evs...)
		if next == "" {
			break
		}
		tok = next
	}
	if pages != 2 || len(got) != 3 {
		t.Fatalf("got %d events in %d pages, want 3 in 2", len(got), pages)
	}
	for i, want := range []struct {
		seq     uint64
		typ     EventType
		summary string
	}{{1, EventOpened, "down"}, {3, EventUpdated, "still down"}, {4, EventResolved, "up"}} {
		if g := got[i]; g.Seq != want.seq || g.Type != want.typ || g.Issue.Summary != want.summary || g.Issue.ID != "i1" {
			t.Errorf("event %d = seq %d type %d %q, want seq %d type %d %q", i, g.Seq, g.Type, g.Issue.Summary, want.seq, want.typ, want.summary)
		}
	}
	if got[0].Issue.Attributes["ifName"] != "ge-0/0/1" || !got[2].Time.Equal(t0.Add(4e9)) {
		t.Errorf("event payload not kept: %+v", got[0])
	}

	if _, _, err := s.ListIssueEvents(ctx, "nope", 0, ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown issue: err = %v, want ErrNotFound", err)
	}
	_, next, _ := s.ListIssueEvents(ctx, "i1", 1, "")
	var ae *ArgError
	if _, _, err := s.ListIssueEvents(ctx, "i2", 1, next); !errors.As(err, &ae) || ae.Field != "page_token" {
		t.Errorf("token of another issue: err = %v, want page_token ArgError", err)
	}
	if _, _, err := s.ListIssueEvents(ctx, "", 1, ""); !errors.As(err, &ae) || ae.Field != "issue_id" {
		t.Errorf("no issue id: err = %v, want issue_id ArgError", err)
	}
}
