package e2e

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite" // reads the controller's database file

	"github.com/netaiops/netaiops/agent/outbox"
)

// flapLoad describes a simulator scenario that makes many issue changes
// fast and then stops: every interface of every device goes down Flaps
// times, for half of Period each time, starting Start after the simulator
// starts. Interfaces are staggered so that polls see a steady stream. A
// period of 4s keeps the state changes below interface_flapping's
// threshold (which would fold the downs into one issue and slow the load).
type flapLoad struct {
	Devices, Interfaces, Flaps int
	Start, Period              time.Duration
}

// End is when the last fault is over, relative to the simulator's start.
func (l flapLoad) End() time.Duration { return l.Start + time.Duration(l.Flaps)*l.Period }

// write writes the scenario file into dir and returns its path.
func (l flapLoad) write(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("devices:\n")
	for d := 1; d <= l.Devices; d++ {
		fmt.Fprintf(&b, "  - name: fd%02d\n    interfaces: %d\n    seed: %d\n    faults:\n", d, l.Interfaces, d)
		for i := 1; i <= l.Interfaces; i++ {
			stagger := time.Duration(i%8) * l.Period / 16
			for k := 0; k < l.Flaps; k++ {
				at := l.Start + time.Duration(k)*l.Period + stagger
				fmt.Fprintf(&b, "      - {kind: interface_down, interface: %d, at: %dms, duration: %dms}\n",
					i, at.Milliseconds(), (l.Period / 2).Milliseconds())
			}
		}
	}
	p := filepath.Join(dir, "flaps.yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// agentYAML is the config of an agent polling every device of the load
// every 200ms; three failed polls in a row open device_unreachable.
// Extra lines go into the agent section.
func (l flapLoad) agentYAML(id, dataDir, controller, sim string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `agent:
  id: %s
  data_dir: %s
%scontroller:
  address: %s
  insecure: true
snmp:
  interval: 200ms
  timeout: 180ms
  retries: 0
targets:
`, id, dataDir, strings.Join(extra, ""), controller)
	for d := 1; d <= l.Devices; d++ {
		fmt.Fprintf(&b, "  - {name: fd%02d, address: %q, community: fd%02d}\n", d, sim, d)
	}
	return b.String()
}

// kill ends the process with SIGKILL (no chance to flush or say goodbye)
// and waits for it.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %s: %v", p.name, err)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s still running 10s after SIGKILL", p.name)
	}
}

// ledger is what the controller's database holds for one agent.
type ledger struct {
	logs      map[string]uint64 // events per log id
	rows      int               // issue_events rows of the agent
	dupSeq    int               // rows whose (log, seq) another row has too
	dupEvent  int               // rows with the same issue, type and time as another row
	watermark map[string]uint64 // per log
	missing   map[string][]uint64
	dropped   []string // ids of agent_events_dropped issues
	// open counts the agent's open issues by fingerprint (the store allows
	// one; more would be duplicates).
	open map[string]int
	// droppedIssue is the last agent_events_dropped issue read.
	droppedIssue struct {
		device string
		state  int
		attrs  map[string]string
	}
}

// readLedger reads the controller's database file directly (the
// controller may be running: WAL readers do not block it).
func readLedger(t *testing.T, dbPath, agentID string) ledger {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+dbPath+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l := ledger{logs: map[string]uint64{}, watermark: map[string]uint64{}, missing: map[string][]uint64{}, open: map[string]int{}}
	q := func(query string, args []any, scan func(*sql.Rows) error) {
		rows, err := db.Query(query, args...)
		if err != nil {
			t.Fatalf("read %s: %v", dbPath, err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				t.Fatalf("read %s: %v", dbPath, err)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("read %s: %v", dbPath, err)
		}
	}
	a := []any{agentID}
	q(`SELECT log_id, COUNT(*), COUNT(DISTINCT seq) FROM issue_events WHERE agent_id = ? GROUP BY log_id`, a, func(r *sql.Rows) error {
		var log string
		var n, distinct uint64
		if err := r.Scan(&log, &n, &distinct); err != nil {
			return err
		}
		l.logs[log] = n
		l.rows += int(n)
		l.dupSeq += int(n - distinct)
		return nil
	})
	q(`SELECT COALESCE(SUM(c - 1), 0) FROM (SELECT COUNT(*) AS c FROM issue_events WHERE agent_id = ?
		GROUP BY issue_id, type, time HAVING COUNT(*) > 1)`, a, func(r *sql.Rows) error { return r.Scan(&l.dupEvent) })
	q(`SELECT log_id, seq FROM log_watermarks WHERE agent_id = ?`, a, func(r *sql.Rows) error {
		var log string
		var wm uint64
		if err := r.Scan(&log, &wm); err != nil {
			return err
		}
		l.watermark[log] = wm
		return nil
	})
	for log, wm := range l.watermark {
		have := map[uint64]bool{}
		q(`SELECT seq FROM issue_events WHERE agent_id = ? AND log_id = ?`, []any{agentID, log}, func(r *sql.Rows) error {
			var s uint64
			err := r.Scan(&s)
			have[s] = true
			return err
		})
		for s := uint64(1); s <= wm; s++ {
			if !have[s] {
				l.missing[log] = append(l.missing[log], s)
			}
		}
	}
	q(`SELECT fingerprint FROM issues WHERE agent_id = ? AND state = 1`, a, func(r *sql.Rows) error {
		var fp string
		err := r.Scan(&fp)
		l.open[fp]++
		return err
	})
	q(`SELECT id, device, state, attributes FROM issues WHERE agent_id = ? AND kind = 'agent_events_dropped'`, a, func(r *sql.Rows) error {
		var id, attrs string
		d := &l.droppedIssue
		if err := r.Scan(&id, &d.device, &d.state, &attrs); err != nil {
			return err
		}
		l.dropped = append(l.dropped, id)
		return json.Unmarshal([]byte(attrs), &d.attrs)
	})
	return l
}

// outboxState opens a stopped agent's outbox to see what it numbered.
type outboxState struct {
	logID            string
	lastSeq          uint64
	pending          int
	dropped, corrupt uint64
}

func readOutbox(t *testing.T, dataDir string) outboxState {
	t.Helper()
	o, err := outbox.Open(filepath.Join(dataDir, "outbox"), outbox.Options{})
	if err != nil {
		t.Fatalf("open the agent's outbox: %v", err)
	}
	defer o.Close()
	return outboxState{logID: o.LogID(), lastSeq: o.LastSeq(), pending: o.Len(), dropped: o.Dropped(), corrupt: o.Corrupt()}
}

// waitDrained waits until the agent is connected (says connected, from
// the running controller's log) and, all the while, its watermark in the
// controller's database stopped moving for quiet and it reports nothing
// pending.
func waitDrained(t *testing.T, dbPath, agentID string, connected func() bool, quiet, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last uint64
	since := time.Now()
	for time.Now().Before(deadline) {
		db, err := sql.Open("sqlite", "file:"+dbPath+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		var wm, pending uint64
		err = db.QueryRow(`SELECT COALESCE(MAX(w.seq), 0), COALESCE(MAX(a.pending_events), 0) FROM agents a
			LEFT JOIN log_watermarks w ON w.agent_id = a.id AND w.log_id = a.log_id WHERE a.id = ?`, agentID).Scan(&wm, &pending)
		db.Close()
		if err == nil {
			if wm != last || !connected() {
				last, since = wm, time.Now()
			} else if pending == 0 && wm > 0 && time.Since(since) >= quiet {
				return
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("agent %s not drained within %v (watermark %d)", agentID, timeout, last)
}

// check compares what the agent numbered with what the controller stored
// and reports the fault test's numbers: every event exactly once.
func check(t *testing.T, name string, ob outboxState, l ledger) {
	t.Helper()
	stored := l.logs[ob.logID]
	var lost uint64
	if ob.lastSeq > stored+ob.dropped {
		lost = ob.lastSeq - stored - ob.dropped
	}
	t.Logf("%s: events sent %d, stored %d, duplicates stored %d (same seq) %d (same issue/type/time), lost %d, dropped %d, pending %d, corrupt %d, logs %d",
		name, ob.lastSeq, stored, l.dupSeq, l.dupEvent, lost, ob.dropped, ob.pending, ob.corrupt, len(l.logs))
	if len(l.logs) != 1 {
		t.Errorf("events stored under %d log ids %v, want 1 (the log id must survive restarts)", len(l.logs), l.logs)
	}
	if l.dupSeq != 0 || l.dupEvent != 0 {
		t.Errorf("duplicates stored: %d by seq, %d by issue/type/time", l.dupSeq, l.dupEvent)
	}
	if lost != 0 || len(l.missing[ob.logID]) != 0 || stored != ob.lastSeq {
		t.Errorf("lost %d events; missing seqs %v (first 20); stored %d of %d", lost, head(l.missing[ob.logID], 20), stored, ob.lastSeq)
	}
	if ob.pending != 0 || ob.dropped != 0 || ob.corrupt != 0 {
		t.Errorf("outbox after drain: pending %d dropped %d corrupt %d, want 0 0 0", ob.pending, ob.dropped, ob.corrupt)
	}
	if len(l.dropped) != 0 {
		t.Errorf("agent_events_dropped raised (%v) although nothing was dropped", l.dropped)
	}
	if ob.lastSeq < 1000 {
		t.Errorf("only %d events: the load is too small to show anything", ob.lastSeq)
	}
}

// checkOpen compares the controller's open issues of the agent with the
// conditions that hold (want, by fingerprint): none missing, none stale
// (open with its condition gone), none duplicated.
func checkOpen(t *testing.T, name string, l ledger, want []string) {
	t.Helper()
	wanted := map[string]bool{}
	for _, fp := range want {
		wanted[fp] = true
	}
	var missing, stale, dup []string
	total := 0
	for fp, n := range l.open {
		total += n
		if n > 1 {
			dup = append(dup, fmt.Sprintf("%s x%d", fp, n))
		}
		if !wanted[fp] {
			stale = append(stale, fp)
		}
	}
	for _, fp := range want {
		if l.open[fp] == 0 {
			missing = append(missing, fp)
		}
	}
	t.Logf("%s: issues open %d, conditions holding %d, missing %d, stale %d, duplicated %d",
		name, total, len(want), len(missing), len(stale), len(dup))
	if len(missing)+len(stale)+len(dup) > 0 {
		t.Errorf("open issues are not the conditions that hold: missing %v, stale %v, duplicated %v",
			head(missing, 10), head(stale, 10), dup)
	}
}

func head[T any](s []T, n int) []T {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// retryDelays returns the retry_in of every "controller stream ended" line
// of an agent log, in order.
func retryDelays(t *testing.T, log string) []time.Duration {
	t.Helper()
	re := regexp.MustCompile(`msg="controller stream ended".* retry_in=([0-9.a-zµ]+)`)
	var out []time.Duration
	for _, m := range re.FindAllStringSubmatch(log, -1) {
		d, err := time.ParseDuration(m[1])
		if err != nil {
			t.Fatalf("retry_in %q: %v", m[1], err)
		}
		out = append(out, d)
	}
	return out
}

// agentRow reads whether the controller's database marks the agent
// connected and the watermark of its current log; ok is false while the
// database or the agent is not there yet.
func agentRow(dbPath, agentID string) (connected bool, wm uint64, ok bool) {
	db, err := sql.Open("sqlite", "file:"+dbPath+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return false, 0, false
	}
	defer db.Close()
	err = db.QueryRow(`SELECT a.connected, COALESCE(w.seq, 0) FROM agents a
		LEFT JOIN log_watermarks w ON w.agent_id = a.id AND w.log_id = a.log_id WHERE a.id = ?`, agentID).Scan(&connected, &wm)
	return connected, wm, err == nil
}

// waitStreaming waits until the agent is connected and its watermark moved
// past after: events are flowing.
func waitStreaming(t *testing.T, dbPath, agentID string, after uint64, timeout time.Duration) uint64 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if c, wm, ok := agentRow(dbPath, agentID); ok && c && wm > after {
			return wm
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("agent %s not streaming past seq %d within %v", agentID, after, timeout)
	return 0
}
