package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// openIssues lists the agent's open issues by id.
func openIssues(t *testing.T, s *Store, agent string) map[string]Issue {
	t.Helper()
	list, _, err := s.ListIssues(context.Background(), IssueFilter{State: StateOpen, AgentID: agent}, MaxPageSize, "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Issue{}
	for _, is := range list {
		out[is.ID] = is
	}
	return out
}

// A new occurrence of a condition (an agent restarted without its state)
// resolves the older open issue of the same fingerprint in the same
// transaction, and reports both changes.
func TestIngestSupersedesOpenIssueOfSameFingerprint(t *testing.T) {
	s := openTest(t, "")
	mustConnect(t, s, "a1", "log-1")
	same := func(e Event) Event {
		e.Issue.Object, e.Issue.Fingerprint = "ge-1", "interface_down/core-sw1/ge-1"
		return e
	}
	mustIngest(t, s, "a1", "log-1", same(ev(1, EventOpened, "old", StateOpen, "down")))
	// The agent restarted with a new log and opened the same condition anew.
	mustConnect(t, s, "a1", "log-2")
	res := mustIngest(t, s, "a1", "log-2", same(ev(1, EventOpened, "new", StateOpen, "down again")))
	if len(res.Changed) != 2 || res.Changed[0].Issue.ID != "old" || res.Changed[0].Type != EventResolved ||
		res.Changed[1].Issue.ID != "new" || res.Changed[1].Type != EventOpened {
		t.Fatalf("Changed = %+v; want old resolved, then new opened", res.Changed)
	}
	old := res.Changed[0].Issue
	if old.State != StateResolved || old.Attributes["resolution"] != ResolutionSuperseded || old.Attributes["superseded_by"] != "new" {
		t.Errorf("old issue = %+v", old)
	}
	if open := openIssues(t, s, "a1"); len(open) != 1 || open["new"].ID != "new" {
		t.Errorf("open issues = %v; want only new", open)
	}
	// The store itself refuses a second open issue of one fingerprint.
	_, err := s.db.Exec(`UPDATE issues SET state = 1 WHERE id = 'old'`)
	if err == nil || !strings.Contains(err.Error(), "UNIQUE") {
		t.Errorf("second open issue of one fingerprint: err = %v; want a UNIQUE constraint error", err)
	}
}

func TestReconcileOpen(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	mustConnect(t, s, "a1", "log-1")
	fp := func(e Event, obj string) Event {
		e.Issue.Object = obj
		e.Issue.Fingerprint = "interface_down/core-sw1/" + obj
		return e
	}
	mustIngest(t, s, "a1", "log-1",
		fp(ev(1, EventOpened, "kept", StateOpen, ""), "ge-1"),
		fp(ev(2, EventOpened, "gone", StateOpen, ""), "ge-2"),
		fp(ev(3, EventOpened, "newer", StateOpen, ""), "ge-3"),
	)
	// Another agent's issue is never touched.
	mustConnect(t, s, "a2", "log-x")
	mustIngest(t, s, "a2", "log-x", fp(ev(1, EventOpened, "other-agent", StateOpen, ""), "ge-1"))

	// The set was taken at seq 2: "newer" (seq 3) is newer than the set.
	got, err := s.ReconcileOpen(ctx, "a1", OpenSet{LogID: "log-1", AsOfSeq: 2, IDs: map[string]bool{"kept": true}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Issue.ID != "gone" || got[0].Type != EventResolved ||
		got[0].Issue.Attributes["resolution"] != ResolutionNotOpenAtAgent || got[0].Issue.ResolvedAt.IsZero() {
		t.Fatalf("ReconcileOpen = %+v; want gone resolved", got)
	}
	open := openIssues(t, s, "a1")
	if len(open) != 2 || open["kept"].ID == "" || open["newer"].ID == "" {
		t.Errorf("open issues of a1 = %v; want kept and newer", open)
	}
	if len(openIssues(t, s, "a2")) != 1 {
		t.Error("another agent's issue was resolved")
	}
	// A new log (the agent lost its old one) resolves everything of the old
	// log that its set does not hold, whatever the seq; the controller's own
	// agent_events_dropped issue stays.
	mustConnect(t, s, "a1", "log-2")
	mustIngest(t, s, "a1", "log-2", fp(ev(5, EventOpened, "fresh", StateOpen, ""), "ge-9")) // gap: raises agent_events_dropped
	got, err = s.ReconcileOpen(ctx, "a1", OpenSet{LogID: "log-2", AsOfSeq: 5, IDs: map[string]bool{"fresh": true}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("ReconcileOpen after a new log = %+v; want kept and newer resolved", got)
	}
	open = openIssues(t, s, "a1")
	var kinds []string
	for _, is := range open {
		kinds = append(kinds, is.Kind)
	}
	if len(open) != 2 || open["fresh"].ID == "" {
		t.Errorf("open issues = %v (kinds %v); want fresh and agent_events_dropped", open, kinds)
	}
	// Reconciling again changes nothing.
	if got, err := s.ReconcileOpen(ctx, "a1", OpenSet{LogID: "log-2", AsOfSeq: 5, IDs: map[string]bool{"fresh": true}}); err != nil || len(got) != 0 {
		t.Errorf("second ReconcileOpen = %v, %v; want nothing", got, err)
	}
}

// A database written before the one-open-issue-per-fingerprint rule may
// hold duplicates: the migration resolves all but the newest.
func TestMigrationResolvesDuplicateOpenIssues(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	s := openTest(t, path)
	mustConnect(t, s, "a1", "log-1")
	s.Close()
	// Roll the schema back to before the open-fingerprint migration (and
	// the later ones) and insert duplicates, as an old controller stored
	// them.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`ALTER TABLE issues DROP COLUMN acknowledged_comment`,
		`DROP INDEX issues_open_fingerprint`,
		`DELETE FROM schema_migrations WHERE version >= 4`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for i, id := range []string{"first", "second", "third"} {
		if _, err := db.Exec(`INSERT INTO issues (id, agent_id, device, kind, severity, state, summary, first_seen, last_seen,
			attributes, object, fingerprint, caused_by, update_time, last_log_id, last_seq)
			VALUES (?, 'a1', 'd', 'device_unreachable', 4, 1, '', ?, ?, '{}', '', 'device_unreachable/d/', '', 0, 'log-1', ?)`,
			id, int64(i+1)*1e9, int64(i+1)*1e9, i+1); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s = openTest(t, path)
	open := openIssues(t, s, "a1")
	if len(open) != 1 || open["third"].ID == "" {
		t.Fatalf("open after migration = %v; want only the newest (third)", open)
	}
	old, err := s.GetIssue(ctx, "first")
	if err != nil || old.State != StateResolved || old.Attributes["resolution"] == "" || old.ResolvedAt.IsZero() {
		t.Errorf("first after migration = %+v, %v", old, err)
	}
}

// The changes Ingest returns (built from the event, not read back) are the
// issues as stored, acknowledgement included.
func TestIngestChangesAreWhatIsStored(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	mustConnect(t, s, "a1", "log-1")
	mustIngest(t, s, "a1", "log-1", ev(1, EventOpened, "i1", StateOpen, "down"))
	if _, _, err := s.Acknowledge(ctx, "i1", "alice"); err != nil {
		t.Fatal(err)
	}
	e2 := ev(2, EventUpdated, "i1", StateOpen, "still down")
	e2.Issue.Attributes = nil
	e3 := ev(3, EventOpened, "i2", StateOpen, "other")
	e3.Issue.FirstSeen = e3.Issue.FirstSeen.Local() // any location: stored as UTC
	res := mustIngest(t, s, "a1", "log-1", e2, e3)
	if len(res.Changed) != 2 {
		t.Fatalf("Changed = %+v", res.Changed)
	}
	for _, ch := range res.Changed {
		stored, err := s.GetIssue(ctx, ch.Issue.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ch.Issue, stored) {
			t.Errorf("change of %s:\n%+v\nstored:\n%+v", ch.Issue.ID, ch.Issue, stored)
		}
	}
	if !res.Changed[0].Issue.Acknowledged || res.Changed[0].Issue.AcknowledgedBy != "alice" {
		t.Errorf("the update lost the acknowledgement: %+v", res.Changed[0].Issue)
	}
}

// The WAL is copied into the database file by the store's own checkpoints
// (SQLite's automatic ones, inside a writer's commit, are off): the file
// grows within a few seconds of a write, with no further write.
func TestBackgroundCheckpoints(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	s := openTest(t, path)
	mustConnect(t, s, "a1", "log-1")
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	before := st.Size()
	var evs []Event
	for i := 1; i <= 400; i++ {
		evs = append(evs, ev(uint64(i), EventOpened, fmt.Sprintf("i%d", i), StateOpen, strings.Repeat("s", 500)))
	}
	mustIngest(t, s, "a1", "log-1", evs...)
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > before+100_000 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("database file %d bytes, %d before the write: the WAL was not checkpointed", st.Size(), before)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
