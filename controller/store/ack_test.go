package store

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestAcknowledgeComment keeps the comment with the acknowledgement,
// through a later event of the agent (the change watchers get carries it)
// and a second acknowledgement (which changes nothing).
func TestAcknowledgeComment(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	mustConnect(t, s, "a1", "L1")
	mustIngest(t, s, "a1", "L1", ev(1, EventOpened, "i1", StateOpen, "down"))

	is, changed, err := s.AcknowledgeWithComment(ctx, "i1", "alice", "fibre cut, carrier ticket 4711")
	if err != nil || !changed || is.AcknowledgedComment != "fibre cut, carrier ticket 4711" || is.AcknowledgedBy != "alice" {
		t.Fatalf("AcknowledgeWithComment = %+v, %v, %v", is, changed, err)
	}
	if _, changed, _ := s.AcknowledgeWithComment(ctx, "i1", "bob", "me too"); changed {
		t.Error("a second acknowledgement changed the issue")
	}
	res := mustIngest(t, s, "a1", "L1", ev(2, EventUpdated, "i1", StateOpen, "still down"))
	if len(res.Changed) != 1 || res.Changed[0].Issue.AcknowledgedComment != "fibre cut, carrier ticket 4711" {
		t.Errorf("change after an event = %+v", res.Changed)
	}
	got, err := s.GetIssue(ctx, "i1")
	if err != nil || got.AcknowledgedComment != "fibre cut, carrier ticket 4711" || got.AcknowledgedBy != "alice" || got.Summary != "still down" {
		t.Errorf("GetIssue = %+v, %v", got, err)
	}

	var ae *ArgError
	mustIngest(t, s, "a1", "L1", ev(3, EventOpened, "i2", StateOpen, "down"))
	if _, _, err := s.AcknowledgeWithComment(ctx, "i2", "alice", strings.Repeat("x", MaxAckCommentBytes+1)); !errors.As(err, &ae) || ae.Field != "comment" {
		t.Errorf("long comment: err = %v, want a comment ArgError", err)
	}
}
