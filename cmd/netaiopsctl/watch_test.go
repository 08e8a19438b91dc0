package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until buf holds want n times.
func waitFor(t *testing.T, buf *syncBuffer, want string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(buf.String(), want) < n {
		if time.Now().After(deadline) {
			t.Fatalf("no %d× %q in:\n%s", n, want, buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWatchResumes watches while the controller restarts on the same
// database: the watch resumes after the last position it saw, prints each
// change once (also those committed while it was away) and ends cleanly
// when its context ends (Ctrl-C).
func TestWatchResumes(t *testing.T) {
	db := filepath.Join(t.TempDir(), "c.db")
	addr, stop := startController(t, "", db, false)
	ag := startAgent(t, addr, "edge-1", "")
	now := time.Now()

	var out, errOut syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	var code int
	finished := make(chan struct{})
	go func() { // owned: the cleanup waits for it
		defer close(finished)
		code = run(ctx, []string{"--insecure", "--address", addr, "issues", "watch", "--device", "core-sw1"},
			func(string) string { return "" }, &out, &errOut, false)
	}()
	t.Cleanup(func() {
		cancel()
		<-finished
	})
	// The watch is in place once the controller counts it; until then an
	// event could go unseen, so the first one is sent until it shows.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "i-a") {
		if time.Now().After(deadline) {
			t.Fatalf("watch printed nothing: %s %s", out.String(), errOut.String())
		}
		ag.event(opened, testIssue("i-a", "interface_down", "core-sw1", sevMajor, now, "ge-0/0/1 down"), now)
		time.Sleep(100 * time.Millisecond)
	}
	ag.event(opened, testIssue("i-other", "interface_down", "edge-sw9", sevMajor, now, "filtered out"), now)
	ag.event(updated, testIssue("i-a", "interface_down", "core-sw1", sevCrit, now, "ge-0/0/1 down 5m"), now.Add(time.Minute))
	waitFor(t, &out, "ge-0/0/1 down 5m", 1)
	if code, _, _ := ctl(t, nil, "--insecure", "--address", addr, "issues", "ack", "i-a", "--by", "bob", "--comment", "on it"); code != exitOK {
		t.Fatalf("issues ack: exit %d", code)
	}
	waitFor(t, &out, "(acknowledged by bob: on it)", 1)

	// Restart: the watch breaks, retries, and resumes after i-a's update.
	ag.stop()
	stop()
	addr2, _ := startController(t, addr, db, false)
	ag2 := startAgent(t, addr2, "edge-2", "")
	ag2.event(opened, testIssue("i-b", "interface_down", "core-sw1", sevWarn, now, "ge-0/0/3 down"), now)
	waitFor(t, &out, "i-b", 1)
	r := testIssue("i-b", "interface_down", "core-sw1", sevWarn, now, "ge-0/0/3 up")
	r.State, r.ResolvedAt = netaiopsv1.IssueState_ISSUE_STATE_RESOLVED, r.LastSeen
	ag2.event(resolved, r, now.Add(time.Minute))
	waitFor(t, &out, "ge-0/0/3 up", 1)

	cancel()
	select {
	case <-finished:
		if code != exitOK {
			t.Errorf("watch ended with exit %d on Ctrl-C; stderr %s", code, errOut.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("watch did not end with its context")
	}
	got := out.String()
	t.Logf("watch printed:\n%s\nstderr:\n%s", got, errOut.String())
	if !strings.Contains(errOut.String(), "reconnecting to resume after position") {
		t.Errorf("the watch never resumed: %s", errOut.String())
	}
	if strings.Contains(got, "i-other") {
		t.Error("the device filter let edge-sw9 through")
	}
	lines := strings.Split(strings.TrimSpace(got), "\n")
	var kinds []string
	for _, l := range lines {
		f := strings.Fields(l)
		kinds = append(kinds, f[1]+":"+f[5])
	}
	// i-a may show opened more than once only if the first send raced the
	// subscription; every later change exactly once.
	if want := "updated:i-a acked:i-a opened:i-b resolved:i-b"; !strings.HasSuffix(strings.Join(kinds, " "), want) || strings.Count(strings.Join(kinds, " "), "updated:i-a") != 1 {
		t.Errorf("watch lines %v, want them to end with %s, each once", kinds, want)
	}
}
