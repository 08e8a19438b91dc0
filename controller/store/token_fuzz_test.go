package store

import (
	"context"
	"errors"
	"testing"
)

// FuzzPageToken: any page token either pages or is refused as an ArgError
// on page_token; never a panic or another error.
func FuzzPageToken(f *testing.F) {
	s, err := Open(context.Background(), f.TempDir()+"/fuzz.db", testLogger())
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if _, err := s.Connect(ctx, AgentInfo{ID: "a", LogID: "L"}); err != nil {
		f.Fatal(err)
	}
	if _, err := s.Ingest(ctx, "a", "L", []Event{ev(1, EventOpened, "i1", StateOpen, ""), ev(2, EventOpened, "i2", StateOpen, "")}); err != nil {
		f.Fatal(err)
	}
	_, next, err := s.ListIssues(ctx, IssueFilter{}, 1, "")
	if err != nil || next == "" {
		f.Fatalf("seed token: %q %v", next, err)
	}
	_, agentNext, _ := s.ListAgents(ctx, 1, "")
	for _, seed := range []string{next, agentNext, "", "e30", "eyJ0IjoxfQ", "%%", "bnVsbA"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		var ae *ArgError
		if _, _, err := s.ListIssues(ctx, IssueFilter{}, 1, tok); err != nil && (!errors.As(err, &ae) || ae.Field != "page_token") {
			t.Fatalf("ListIssues(%q): %v", tok, err)
		}
		if _, _, err := s.ListAgents(ctx, 1, tok); err != nil && (!errors.As(err, &ae) || ae.Field != "page_token") {
			t.Fatalf("ListAgents(%q): %v", tok, err)
		}
	})
}
