package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

// recorder is a Publisher that keeps what it was given.
type recorder struct {
	mu      sync.Mutex
	head    uint64
	changes []Change
}

func (r *recorder) Start(head uint64) { r.head = head }
func (r *recorder) Publish(cs ...Change) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changes = append(r.changes, cs...)
}

func positions(cs []Change) string {
	s := ""
	for _, c := range cs {
		s += fmt.Sprintf("%s@%d ", c.Issue.ID, c.Pos)
	}
	return s
}

// Every committed change of an issue gets the next position; commits are
// published in position order; ChangesAfter resumes from any position with
// each issue once, in its newest state.
func TestChangePositionsAndChangesAfter(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	rec := &recorder{}
	if err := s.SetPublisher(ctx, rec); err != nil {
		t.Fatal(err)
	}
	mustConnect(t, s, "a1", "L1")
	res := mustIngest(t, s, "a1", "L1", ev(1, EventOpened, "x", StateOpen, "x down"), ev(2, EventOpened, "y", StateOpen, "y down"))
	if got := positions(res.Changed); got != "x@1 y@2 " {
		t.Fatalf("ingest changes %s", got)
	}
	mustIngest(t, s, "a1", "L1", ev(3, EventResolved, "x", StateResolved, "x up"))
	if _, changed, err := s.Acknowledge(ctx, "y", "alice"); err != nil || !changed {
		t.Fatalf("ack: %v %v", changed, err)
	}
	// A replay writes nothing and takes no position.
	mustIngest(t, s, "a1", "L1", ev(3, EventResolved, "x", StateResolved, "x up"))
	if got := positions(rec.changes); got != "x@1 y@2 x@3 y@4 " {
		t.Fatalf("published %s", got)
	}
	if h, err := s.Head(ctx); err != nil || h != 4 {
		t.Fatalf("head %d %v", h, err)
	}

	cs, next, err := s.ChangesAfter(ctx, IssueFilter{}, 0, 10)
	if err != nil || positions(cs) != "x@3 y@4 " || next != 4 {
		t.Fatalf("ChangesAfter(0) = %s, %d, %v", positions(cs), next, err)
	}
	if cs[0].Type != EventResolved || cs[0].Issue.Summary != "x up" || cs[1].Type != EventUpdated || !cs[1].Issue.Acknowledged {
		t.Fatalf("catch-up changes %+v", cs)
	}
	// The limit bounds what is examined; next advances past changes that
	// do not match the filter.
	cs, next, err = s.ChangesAfter(ctx, IssueFilter{State: StateOpen}, 0, 1)
	if err != nil || len(cs) != 0 || next != 3 {
		t.Fatalf("ChangesAfter(open, 0, 1) = %s, %d, %v", positions(cs), next, err)
	}
	cs, next, err = s.ChangesAfter(ctx, IssueFilter{State: StateOpen}, next, 1)
	if err != nil || positions(cs) != "y@4 " || next != 4 {
		t.Fatalf("ChangesAfter(open, 3, 1) = %s, %d, %v", positions(cs), next, err)
	}
	cs, next, err = s.ChangesAfter(ctx, IssueFilter{}, 4, 10)
	if err != nil || len(cs) != 0 || next != 4 {
		t.Fatalf("ChangesAfter(head) = %s, %d, %v", positions(cs), next, err)
	}

	// A new publisher starts at the stored head.
	rec2 := &recorder{}
	if err := s.SetPublisher(ctx, rec2); err != nil || rec2.head != 4 {
		t.Fatalf("start head %d, %v", rec2.head, err)
	}
}

// IngestGroup commits several agents' batches and heartbeat states in one
// transaction; a bad batch is refused alone and stores nothing.
func TestIngestGroupRefusesABadBatchAlone(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	rec := &recorder{}
	if err := s.SetPublisher(ctx, rec); err != nil {
		t.Fatal(err)
	}
	mustConnect(t, s, "a1", "L1")
	mustConnect(t, s, "a2", "L2")
	mustIngest(t, s, "a1", "L1", ev(1, EventOpened, "x", StateOpen, "x down"))
	reqs := []IngestRequest{
		{AgentID: "a1", LogID: "L1", Events: []Event{ev(2, EventUpdated, "x", StateOpen, "x still down")}},
		// a2 writes a1's issue after a good event: the whole batch is refused.
		{AgentID: "a2", LogID: "L2", Events: []Event{ev(1, EventOpened, "z", StateOpen, "z"), ev(2, EventOpened, "x", StateOpen, "stolen")}},
		{AgentID: "nobody", LogID: "L9", Events: []Event{ev(1, EventOpened, "n", StateOpen, "n")}},
		{AgentID: "a2", LogID: "L2", Events: []Event{ev(0, EventOpened, "bad", StateOpen, "seq 0")}},
		{AgentID: "a2", LogID: "L2", Events: []Event{ev(1, EventOpened, "w", StateOpen, "w down")}},
	}
	out, err := s.IngestGroup(ctx, reqs, []AgentStatus{{AgentID: "a2", Pending: 7, Dropped: 0}})
	if err != nil {
		t.Fatal(err)
	}
	var ae *ArgError
	switch {
	case out[0].Err != nil || out[0].Result.Watermark != 2:
		t.Fatalf("batch 0: %+v", out[0])
	case !errors.As(out[1].Err, &ae) || ae.Field != "seq 2: issue.id":
		t.Fatalf("batch 1: %v", out[1].Err)
	case !errors.Is(out[2].Err, ErrNotFound):
		t.Fatalf("batch 2: %v", out[2].Err)
	case !errors.As(out[3].Err, &ae):
		t.Fatalf("batch 3: %v", out[3].Err)
	case out[4].Err != nil || out[4].Result.Watermark != 1:
		t.Fatalf("batch 4: %+v", out[4])
	}
	if _, err := s.GetIssue(ctx, "z"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("issue z of the refused batch: %v", err)
	}
	if is, _ := s.GetIssue(ctx, "x"); is.Summary != "x still down" || is.AgentID != "a1" {
		t.Fatalf("issue x = %+v", is)
	}
	// The published positions are consecutive: the refused batch's
	// positions were rolled back with it.
	if got := positions(rec.changes); got != "x@1 x@2 w@3 " {
		t.Fatalf("published %s", got)
	}
	agents, _, err := s.ListAgents(ctx, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range agents {
		if a.ID == "a2" && (a.Pending != 7 || a.LastStoredSeq != 1) {
			t.Fatalf("agent a2 = %+v", a)
		}
	}
}

// Migration 0003 numbers the issues of an existing database in first_seen
// order and continues from there.
func TestMigrationNumbersExistingIssues(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "controller.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := loadMigrations(migrationFS)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := migrate(ctx, db, ms[:2], t0); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO agents (id, first_seen, last_seen) VALUES ('a1', 0, 0)`); err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"late", "early", "mid"} {
		first := map[string]int{"early": 1, "mid": 2, "late": 3}[id]
		if _, err := db.Exec(`INSERT INTO issues (id, agent_id, device, kind, severity, state, summary, first_seen, attributes,
			object, fingerprint, caused_by, update_time, last_log_id, last_seq) VALUES (?, 'a1', 'd', 'k', 1, ?, '', ?, '{}', '', ?, '', 0, 'L0', ?)`,
			id, 1+i%2, first, "k/d/"+id, i+1); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s := openTest(t, path)
	cs, next, err := s.ChangesAfter(ctx, IssueFilter{}, 0, 10)
	if err != nil || positions(cs) != "early@1 mid@2 late@3 " || next != 3 {
		t.Fatalf("after migration: %s, %d, %v", positions(cs), next, err)
	}
	if cs[0].Type != EventResolved || cs[1].Type != EventOpened {
		t.Fatalf("types %v %v", cs[0].Type, cs[1].Type)
	}
	mustConnect(t, s, "a1", "L")
	res := mustIngest(t, s, "a1", "L", ev(1, EventUpdated, "mid", StateOpen, "again"))
	if got := positions(res.Changed); got != "mid@4 " {
		t.Fatalf("next change %s", got)
	}
}
