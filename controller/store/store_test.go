package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func testLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openTest(t *testing.T, path string) *Store {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "sub", "controller.db")
	}
	s, err := Open(context.Background(), path, testLogger())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func ev(seq uint64, typ EventType, id string, state State, summary string) Event {
	return Event{Seq: seq, Type: typ, Time: t0.Add(time.Duration(seq) * time.Second), Issue: Issue{
		ID: id, Device: "core-sw1", Kind: "interface_down", Severity: SeverityMajor, State: state,
		Summary: summary, FirstSeen: t0, LastSeen: t0.Add(time.Duration(seq) * time.Second),
		Attributes: map[string]string{"ifName": "ge-0/0/1"}, Object: "ifIndex=3/" + id,
		Fingerprint: "interface_down/core-sw1/ifIndex=3/" + id, // one condition per issue id
	}}
}

func mustConnect(t *testing.T, s *Store, agent, logID string) ConnectResult {
	t.Helper()
	res, err := s.Connect(context.Background(), AgentInfo{ID: agent, Version: "v1", Hostname: "edge-" + agent, LogID: logID,
		Labels: map[string]string{"site": "lab"}, Targets: []Target{{Name: "core-sw1", Address: "10.0.0.1:161", SNMPVersion: "2c"}}})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return res
}

func mustIngest(t *testing.T, s *Store, agent, logID string, evs ...Event) IngestResult {
	t.Helper()
	res, err := s.Ingest(context.Background(), agent, logID, evs)
	if err != nil {
		t.Fatalf("Ingest: %v", err)
	}
	return res
}

func TestMigrations(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	s, err := Open(ctx, path, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	ms, err := loadMigrations(migrationFS)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.SchemaVersion(ctx)
	if want := ms[len(ms)-1].version; err != nil || v != want {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, want)
	}
	// A database from a newer controller is refused.
	if _, err := s.db.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, '0099_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = Open(ctx, path, testLogger())
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open newer db: err = %v, want ErrSchemaTooNew", err)
	}
	t.Logf("newer schema refused: %v", err)
}

func TestMigrationNames(t *testing.T) {
	ms, err := loadMigrations(migrationFS)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		if m.version != i+1 {
			t.Errorf("migration %s has version %d, want %d (numbering must have no holes)", m.name, m.version, i+1)
		}
	}
}

func TestIngestIdempotent(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	if r := mustConnect(t, s, "a1", "L1"); r.Watermark != 0 || !r.NewAgent {
		t.Fatalf("first connect = %+v", r)
	}
	batch := []Event{
		ev(1, EventOpened, "i1", StateOpen, "down"),
		ev(2, EventUpdated, "i1", StateOpen, "still down"),
		ev(3, EventOpened, "i2", StateOpen, "other"),
	}
	res := mustIngest(t, s, "a1", "L1", batch...)
	if res.Watermark != 3 || res.Stored != 3 || len(res.Changed) != 3 || len(res.Gaps) != 0 {
		t.Fatalf("first ingest = %+v", res)
	}
	if res.Changed[1].Issue.Summary != "still down" || res.Changed[1].Type != EventUpdated {
		t.Fatalf("changed[1] = %+v", res.Changed[1])
	}
	before, err := s.GetIssue(ctx, "i1")
	if err != nil {
		t.Fatal(err)
	}
	// Replay: nothing changes.
	res = mustIngest(t, s, "a1", "L1", batch...)
	if res.Watermark != 3 || res.Stored != 0 || res.Replayed != 3 || len(res.Changed) != 0 {
		t.Fatalf("replay = %+v", res)
	}
	after, _ := s.GetIssue(ctx, "i1")
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("replay changed issue:\n%+v\n%+v", before, after)
	}
	// A batch overlapping the watermark stores only the new tail.
	res = mustIngest(t, s, "a1", "L1", ev(3, EventOpened, "i2", StateOpen, "other"), ev(4, EventResolved, "i1", StateResolved, "up again"))
	if res.Watermark != 4 || res.Stored != 1 || res.Replayed != 1 || len(res.Changed) != 1 {
		t.Fatalf("overlap = %+v", res)
	}
	// An older seq arriving late never overwrites newer state.
	res = mustIngest(t, s, "a1", "L1", ev(2, EventUpdated, "i1", StateOpen, "still down"))
	if res.Stored != 0 || len(res.Changed) != 0 {
		t.Fatalf("old seq = %+v", res)
	}
	got, _ := s.GetIssue(ctx, "i1")
	if got.State != StateResolved || got.Summary != "up again" {
		t.Fatalf("issue after stale event = %+v", got)
	}
	// A gap is accepted and reported.
	res = mustIngest(t, s, "a1", "L1", ev(7, EventUpdated, "i2", StateOpen, "x"), ev(9, EventUpdated, "i2", StateOpen, "y"))
	if res.Watermark != 9 || !reflect.DeepEqual(res.Gaps, []Gap{{After: 4, Next: 7}, {After: 7, Next: 9}}) {
		t.Fatalf("gap = %+v", res)
	}
	if wm, _ := s.Watermark(ctx, "a1", "L1"); wm != 9 {
		t.Fatalf("watermark = %d", wm)
	}
	var n int
	s.db.QueryRow(`SELECT COUNT(*) FROM issue_events WHERE agent_id = 'a1'`).Scan(&n)
	if n != 6 {
		t.Fatalf("stored events = %d, want 6", n)
	}

	// A new log id: numbering restarts, the old log's watermark stays.
	r := mustConnect(t, s, "a1", "L2")
	if r.Watermark != 0 || r.PreviousLogID != "L1" || r.NewAgent {
		t.Fatalf("connect new log = %+v", r)
	}
	res = mustIngest(t, s, "a1", "L2", ev(1, EventUpdated, "i2", StateOpen, "from new log"))
	if res.Watermark != 1 || len(res.Changed) != 1 {
		t.Fatalf("new log ingest = %+v", res)
	}
	if got, _ := s.GetIssue(ctx, "i2"); got.Summary != "from new log" {
		t.Fatalf("new log did not update i2: %+v", got)
	}
	if wm, _ := s.Watermark(ctx, "a1", "L1"); wm != 9 {
		t.Fatalf("L1 watermark = %d", wm)
	}
	agents, _, err := s.ListAgents(ctx, 0, "")
	if err != nil || len(agents) != 1 || agents[0].LogID != "L2" || agents[0].LastStoredSeq != 1 {
		t.Fatalf("agents = %+v, %v", agents, err)
	}
}

func TestIngestRejectsBadBatch(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	mustConnect(t, s, "a1", "L1")
	mustConnect(t, s, "a2", "M1")
	mustIngest(t, s, "a2", "M1", ev(1, EventOpened, "owned", StateOpen, ""))
	noKind := ev(2, EventOpened, "i2", StateOpen, "")
	noKind.Issue.Kind = ""
	noDevice := ev(2, EventOpened, "i2", StateOpen, "")
	noDevice.Issue.Device = ""
	otherAgent := ev(2, EventOpened, "i2", StateOpen, "")
	otherAgent.Issue.AgentID = "a2"
	cases := []struct {
		name  string
		evs   []Event
		field string
	}{
		{"unordered", []Event{ev(2, EventOpened, "i1", StateOpen, ""), ev(1, EventOpened, "i1", StateOpen, "")}, "seq 1"},
		{"duplicate", []Event{ev(1, EventOpened, "i1", StateOpen, ""), ev(1, EventOpened, "i1", StateOpen, "")}, "seq 1"},
		{"zero seq", []Event{ev(0, EventOpened, "i1", StateOpen, "")}, "events[0].seq"},
		{"no id", []Event{ev(1, EventOpened, "i1", StateOpen, ""), ev(2, EventOpened, "", StateOpen, "")}, "seq 2: issue.id"},
		{"no kind", []Event{ev(1, EventOpened, "i1", StateOpen, ""), noKind}, "seq 2: issue.kind"},
		{"no device", []Event{ev(1, EventOpened, "i1", StateOpen, ""), noDevice}, "seq 2: issue.device"},
		{"other agent", []Event{ev(1, EventOpened, "i1", StateOpen, ""), otherAgent}, "seq 2: issue.agent_id"},
		{"foreign issue id", []Event{ev(1, EventOpened, "i1", StateOpen, ""), ev(2, EventOpened, "owned", StateOpen, "")}, "seq 2: issue.id"},
	}
	for _, c := range cases {
		_, err := s.Ingest(ctx, "a1", "L1", c.evs)
		var ae *ArgError
		if !errors.As(err, &ae) || ae.Field != c.field {
			t.Errorf("%s: err = %v, want ArgError on %q", c.name, err, c.field)
		}
	}
	if wm, _ := s.Watermark(ctx, "a1", "L1"); wm != 0 {
		t.Fatalf("watermark after bad batches = %d, want 0", wm)
	}
	if _, err := s.GetIssue(ctx, "i1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("issue of a bad batch stored: %v", err)
	}
	if _, err := s.Ingest(ctx, "nobody", "L1", []Event{ev(1, EventOpened, "i9", StateOpen, "")}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown agent: err = %v", err)
	}
}

func TestAcknowledgeSurvivesUpdatesAndRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "var", "controller.db")
	now := t0.Add(time.Hour)
	s, err := Open(ctx, path, testLogger(), WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	mustConnect(t, s, "a1", "L1")
	mustIngest(t, s, "a1", "L1", ev(1, EventOpened, "i1", StateOpen, "down"))
	is, changed, err := s.Acknowledge(ctx, "i1", "alice")
	if err != nil || !changed || !is.Acknowledged || is.AcknowledgedBy != "alice" || !is.AcknowledgedAt.Equal(now) || !is.UpdateTime.Equal(now) {
		t.Fatalf("Acknowledge = %+v, %v, %v", is, changed, err)
	}
	if _, changed, _ := s.Acknowledge(ctx, "i1", "bob"); changed {
		t.Fatal("second acknowledge changed the issue")
	}
	if _, _, err := s.Acknowledge(ctx, "nope", "bob"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("acknowledge unknown: %v", err)
	}
	now = now.Add(time.Minute)
	res := mustIngest(t, s, "a1", "L1", ev(2, EventUpdated, "i1", StateOpen, "still down"))
	if got := res.Changed[0].Issue; !got.Acknowledged || got.AcknowledgedBy != "alice" || !got.UpdateTime.Equal(now) {
		t.Fatalf("update lost the acknowledgement: %+v", got)
	}
	want, _ := s.GetIssue(ctx, "i1")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := openTest(t, path)
	got, err := s2.GetIssue(ctx, "i1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after restart:\n got %+v\nwant %+v", got, want)
	}
	if got.Attributes["ifName"] != "ge-0/0/1" || !got.FirstSeen.Equal(t0) {
		t.Fatalf("fields lost: %+v", got)
	}
	if wm, _ := s2.Watermark(ctx, "a1", "L1"); wm != 2 {
		t.Fatalf("watermark after restart = %d", wm)
	}
	// Replaying after a restart changes nothing either.
	if res, err := s2.Ingest(ctx, "a1", "L1", []Event{ev(2, EventUpdated, "i1", StateOpen, "still down")}); err != nil || res.Stored != 0 {
		t.Fatalf("replay after restart = %+v, %v", res, err)
	}
}

func TestListIssuesPaging(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	mustConnect(t, s, "a1", "L1")
	mustConnect(t, s, "a2", "L1")
	var evs1, evs2 []Event
	for i := 0; i < 250; i++ {
		e := ev(uint64(i/2+1), EventOpened, fmt.Sprintf("iss-%03d", i), StateOpen, "")
		// Pairs of issues share a first_seen, so the id breaks ties.
		e.Issue.FirstSeen = t0.Add(time.Duration(i/2) * time.Minute)
		if i%3 == 0 {
			e.Type, e.Issue.State = EventResolved, StateResolved
			e.Issue.ResolvedAt = e.Issue.FirstSeen.Add(time.Second)
		}
		if i%5 == 0 {
			e.Issue.Device = "edge-rtr"
			e.Issue.Severity = SeverityCritical
		}
		if i%2 == 0 {
			evs1 = append(evs1, e)
		} else {
			e.Issue.Kind = "device_unreachable"
			evs2 = append(evs2, e)
		}
	}
	mustIngest(t, s, "a1", "L1", evs1...)
	mustIngest(t, s, "a2", "L1", evs2...)

	collect := func(f IssueFilter, size int) ([]Issue, int) {
		var all []Issue
		tok, pages := "", 0
		for {
			page, next, err := s.ListIssues(ctx, f, size, tok)
			if err != nil {
				t.Fatalf("ListIssues(%+v): %v", f, err)
			}
			pages++
			all = append(all, page...)
			if next == "" {
				return all, pages
			}
			tok = next
		}
	}
	all, pages := collect(IssueFilter{}, 0)
	if len(all) != 250 || pages != 3 {
		t.Fatalf("default paging: %d issues in %d pages", len(all), pages)
	}
	seen := map[string]bool{}
	for i, is := range all {
		if seen[is.ID] {
			t.Fatalf("issue %s twice", is.ID)
		}
		seen[is.ID] = true
		if i > 0 {
			p := all[i-1]
			if p.FirstSeen.Before(is.FirstSeen) || (p.FirstSeen.Equal(is.FirstSeen) && p.ID < is.ID) {
				t.Fatalf("order broken at %d: %s %v then %s %v", i, p.ID, p.FirstSeen, is.ID, is.FirstSeen)
			}
		}
	}
	if all[0].ID != "iss-249" || all[249].ID != "iss-000" {
		t.Fatalf("first %s last %s", all[0].ID, all[249].ID)
	}
	for _, c := range []struct {
		f    IssueFilter
		want int
	}{
		{IssueFilter{State: StateResolved}, 84},
		{IssueFilter{State: StateOpen}, 166},
		{IssueFilter{Device: "edge-rtr"}, 50},
		{IssueFilter{Severity: SeverityCritical, State: StateResolved}, 17},
		{IssueFilter{AgentID: "a2"}, 125},
		{IssueFilter{Kind: "device_unreachable", Device: "edge-rtr"}, 25},
		{IssueFilter{AgentID: "nobody"}, 0},
	} {
		got, _ := collect(c.f, 7)
		if len(got) != c.want {
			t.Errorf("filter %+v: %d issues, want %d", c.f, len(got), c.want)
		}
		for _, is := range got {
			if !c.f.Match(is) {
				t.Errorf("filter %+v returned %+v", c.f, is)
			}
		}
	}
	if page, _, _ := s.ListIssues(ctx, IssueFilter{}, 5000, ""); len(page) != 250 {
		t.Fatalf("page_size above max: %d", len(page))
	}
	_, next, _ := s.ListIssues(ctx, IssueFilter{State: StateOpen}, 10, "")
	for name, tok := range map[string]string{"garbage": "%%%", "not json": "bm90IGpzb24", "other filter": next} {
		_, _, err := s.ListIssues(ctx, IssueFilter{}, 10, tok)
		var ae *ArgError
		if !errors.As(err, &ae) || ae.Field != "page_token" {
			t.Errorf("%s token: err = %v", name, err)
		}
	}
	if _, _, err := s.ListIssues(ctx, IssueFilter{}, -1, ""); err == nil {
		t.Error("negative page size accepted")
	}
}

func TestListAgentsPaging(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	for i := 0; i < 25; i++ {
		mustConnect(t, s, fmt.Sprintf("agent-%02d", i), "L")
	}
	if err := s.Heartbeat(ctx, "agent-03", 7, 2); err != nil {
		t.Fatal(err)
	}
	if err := s.Disconnect(ctx, "agent-04"); err != nil {
		t.Fatal(err)
	}
	var ids []string
	tok := ""
	for {
		page, next, err := s.ListAgents(ctx, 10, tok)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range page {
			ids = append(ids, a.ID)
			switch a.ID {
			case "agent-03":
				if a.Pending != 7 || a.Dropped != 2 || !a.Connected {
					t.Errorf("agent-03 = %+v", a)
				}
			case "agent-04":
				if a.Connected {
					t.Errorf("agent-04 still connected")
				}
			}
			if len(a.Targets) != 1 || a.Labels["site"] != "lab" || a.Hostname == "" {
				t.Errorf("agent fields lost: %+v", a)
			}
		}
		if next == "" {
			break
		}
		tok = next
	}
	if len(ids) != 25 || ids[0] != "agent-00" || ids[24] != "agent-24" {
		t.Fatalf("ids = %v", ids)
	}
	if _, _, err := s.ListAgents(ctx, 10, "!!"); err == nil {
		t.Fatal("bad agent token accepted")
	}
	if err := s.DisconnectAll(ctx); err != nil {
		t.Fatal(err)
	}
	page, _, _ := s.ListAgents(ctx, 100, "")
	for _, a := range page {
		if a.Connected {
			t.Fatalf("%s connected after DisconnectAll", a.ID)
		}
	}
}

func TestConfigs(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	src := func(id string, labels map[string]string) string {
		t.Helper()
		v, err := ConfigSource(id, labels)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if got := src("", map[string]string{"site": "lab", "role": "edge"}); got != "labels/role=edge,site=lab" {
		t.Errorf("source = %q", got)
	}
	if _, err := ConfigSource("a1", map[string]string{"site": "lab"}); err == nil {
		t.Error("agent id and labels both accepted")
	}
	set := func(c Config) (Config, bool) {
		t.Helper()
		got, changed, err := s.SetConfig(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		return got, changed
	}
	all, _ := set(Config{Source: src("", nil), YAML: "snmp: {interval: 30s}\n"})
	lab, _ := set(Config{Source: src("", map[string]string{"site": "lab"}), Labels: map[string]string{"site": "lab"}, YAML: "targets: []\n"})
	own, changed := set(Config{Source: src("a1", nil), AgentID: "a1", YAML: "targets: [{name: x, address: 10.0.0.1}]\n", UpdatedBy: "root"})
	if !changed || own.Version != 3 || own.Hash != s.ConfigHash(own.YAML) || lab.Version != 2 || all.Version != 1 {
		t.Fatalf("versions %d %d %d, changed %v", all.Version, lab.Version, own.Version, changed)
	}
	if again, changed := set(own); changed || again.Version != 3 {
		t.Errorf("same content: changed %v, version %d", changed, again.Version)
	}
	for _, tc := range []struct {
		id     string
		labels map[string]string
		want   string
	}{
		{"a1", map[string]string{"site": "lab"}, "agent/a1"},
		{"a2", map[string]string{"site": "lab", "rack": "1"}, "labels/site=lab"},
		{"a3", map[string]string{"site": "prod"}, "labels/"},
	} {
		c, ok, err := s.DesiredConfig(ctx, tc.id, tc.labels)
		if err != nil || !ok || c.Source != tc.want {
			t.Errorf("desired config of %s: %q %v %v, want %s", tc.id, c.Source, ok, err, tc.want)
		}
	}
	if err := s.DeleteConfig(ctx, "labels/"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.DesiredConfig(ctx, "a3", nil); ok {
		t.Error("a3 still has a configuration after the fleet default was deleted")
	}
	if err := s.DeleteConfig(ctx, "labels/"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}

	mustConnect(t, s, "a1", "L1")
	if err := s.ConfigRejected(ctx, "a1", own.Hash, "targets[0].address: bad"); err != nil {
		t.Fatal(err)
	}
	agents, _, err := s.ListAgents(ctx, 0, "")
	if err != nil || len(agents) != 1 || agents[0].ConfigError != "targets[0].address: bad" || agents[0].ConfigErrorHash != own.Hash {
		t.Fatalf("after NACK: %+v %v", agents, err)
	}
	if err := s.ConfigApplied(ctx, "a1", own.Hash, own.Version, []Target{{Name: "x", Address: "10.0.0.1:161", SNMPVersion: "2c"}}); err != nil {
		t.Fatal(err)
	}
	agents, _, _ = s.ListAgents(ctx, 0, "")
	if a := agents[0]; a.ConfigError != "" || a.AppliedConfigHash != own.Hash || a.AppliedConfigVersion != 3 || len(a.Targets) != 1 || a.Targets[0].Name != "x" {
		t.Fatalf("after ACK: %+v", a)
	}
}
