package outbox

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// limitFileSize makes writes past n bytes of any file fail (EFBIG), as a
// full disk fails them, until lift is called (at the latest at cleanup).
// The limit is process-wide: the tests using it do not run in parallel
// and log nothing while it holds (the log may be a file).
func limitFileSize(t *testing.T, n uint64) (lift func()) {
	t.Helper()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Skipf("cannot read the file size limit: %v", err)
	}
	lim := old
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Skipf("cannot limit the file size: %v", err)
	}
	var once sync.Once
	lift = func() {
		once.Do(func() {
			if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
				panic(err)
			}
		})
	}
	t.Cleanup(lift)
	return lift
}

// crash releases the outbox's files and lock without what Close writes,
// as a kill -9 would.
func crash(o *Outbox) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range o.disk.segs {
		s.f.Close()
	}
	o.disk.lock.Close()
	o.closed = true
}

// A new segment whose header cannot be written must fail its creation:
// registering it anyway (the error was shadowed) left a file without a
// header, which the next Open counted as corrupt and, with no other
// segment, answered with a new log id.
func TestSegmentHeaderWriteErrorIsReported(t *testing.T) {
	dir := t.TempDir()
	lift := limitFileSize(t, headerFrame-10)
	o, err := Open(dir, Options{AgentID: "edge-1"})
	lift()
	if err == nil {
		o.Close()
		t.Fatal("Open succeeded although the first segment's header could not be written")
	}
	if !strings.Contains(err.Error(), "create segment 00000000000000000001.seg") || !errors.Is(err, syscall.EFBIG) {
		t.Fatalf("Open: %v, want the segment creation's write error", err)
	}
	if segs := segFiles(t, dir); len(segs) != 0 {
		t.Fatalf("segment files %v left behind by the failed creation", segs)
	}
	o = mustOpen(t, dir, Options{AgentID: "edge-1"})
	if o.Corrupt() != 0 {
		t.Fatalf("corrupt %d after the failed creation, want 0", o.Corrupt())
	}

	// The same at rotation: the append that needed the new segment fails
	// and the log stays whole.
	mustClose(t, o)
	opts := Options{AgentID: "edge-1", SegmentBytes: 1024}
	o = mustOpen(t, dir, opts)
	id := o.LogID()
	var sizes int64
	for sizes+int64(len(richChange(0).Payload))+64 < 1024 {
		if _, err := o.Append(richChange(1)); err != nil {
			t.Fatal(err)
		}
		sizes = o.Bytes()
	}
	create := o.disk.createFile
	o.disk.createFile = func(name string) (*os.File, error) {
		f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
		if err == nil {
			f.Close() // writes to it fail
		}
		return f, err
	}
	last := o.LastSeq()
	if es, err := o.Append(richChange(2)); err == nil || len(es) != 0 || !strings.Contains(err.Error(), "create segment") {
		t.Fatalf("append needing a new segment whose header write fails: %v %v, want the error", es, err)
	}
	if o.LastSeq() != last || o.Dropped() != 1 {
		t.Fatalf("after the failed rotation: last seq %d (want %d), dropped %d (want 1)", o.LastSeq(), last, o.Dropped())
	}
	o.disk.createFile = create
	if es, err := o.Append(richChange(3)); err != nil || es[0].Seq != last+1 {
		t.Fatalf("append once segments can be created again: %v %v, want seq %d", es, err, last+1)
	}
	mustClose(t, o)
	o = mustOpen(t, dir, opts)
	if o.LogID() != id || o.Corrupt() != 0 || o.LastSeq() != last+1 || o.Dropped() != 1 {
		t.Fatalf("after restart: log %s corrupt %d last %d dropped %d, want %s 0 %d 1", o.LogID(), o.Corrupt(), o.LastSeq(), o.Dropped(), id, last+1)
	}
}

// With the disk full, acks must free the acked active segment while the
// agent runs: before, it was never reclaimed and every new event was
// dropped until a restart.
func TestFullDiskReclaimedAfterAck(t *testing.T) {
	for _, tc := range []struct {
		name    string
		noSpace bool // no room for a new segment file either
	}{
		{"new segment", false},
		{"in place", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{AgentID: "edge-1", SegmentBytes: 1 << 20}
			o := mustOpen(t, dir, opts)
			id := o.LogID()
			if tc.noSpace {
				o.disk.createFile = func(string) (*os.File, error) { return nil, syscall.ENOSPC }
			}
			const limit = 8 << 10
			lift := limitFileSize(t, limit)
			var stored, failed int
			for failed < 3 {
				if _, err := o.Append(richChange(stored + failed)); err != nil {
					failed++
				} else {
					stored++
				}
			}
			// Everything stored is acked, yet the disk stays full of it
			// unless the outbox frees it.
			o.Ack(o.LastSeq())
			es, err := o.Append(richChange(100))
			lift()
			if err != nil || len(es) != 1 {
				t.Fatalf("append after the controller acked all %d stored events: %v %v: the acked segment was not reclaimed", stored, es, err)
			}
			if stored < 10 || o.Dropped() != 3 {
				t.Fatalf("stored %d before the disk was full, dropped %d: want >= 10 and 3", stored, o.Dropped())
			}
			if b := dirBytes(t, dir); b > 2<<10 {
				t.Fatalf("segment files hold %d bytes after the reclaim", b)
			}

			// All acked again and the disk full again: the append that
			// finds it full frees the acked events and is stored.
			o.Ack(o.LastSeq())
			lift = limitFileSize(t, uint64(dirBytes(t, dir)))
			es, err = o.Append(richChange(102))
			lift()
			if err != nil || len(es) != 1 {
				t.Fatalf("append to a full disk holding only acked events: %v %v", es, err)
			}
			want := es[0].Seq
			mustClose(t, o)
			o = mustOpen(t, dir, opts)
			if o.LogID() != id || o.LastSeq() != want || o.Dropped() != 3 || o.Corrupt() != 0 {
				t.Fatalf("after restart: log %s last %d dropped %d corrupt %d, want %s %d 3 0", o.LogID(), o.LastSeq(), o.Dropped(), o.Corrupt(), id, want)
			}
			if p := o.Pending(0, 0); len(p) != 1 || p[0].Seq != want || !bytes.Equal(p[0].Payload, richChange(102).Payload) {
				t.Fatalf("pending after restart %v, want seq %d", seqs(p), want)
			}
		})
	}
}

// Drops of events that were never stored (a failed write, a record too
// large) are counted after a restart too, a crash included.
func TestFailedWriteDropsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	opts := Options{AgentID: "edge-1", SegmentBytes: 1 << 20, MaxBytes: 64 << 10}
	o := mustOpen(t, dir, opts)
	for i := 0; i < 3; i++ {
		if _, err := o.Append(richChange(i)); err != nil {
			t.Fatal(err)
		}
	}
	lift := limitFileSize(t, uint64(dirBytes(t, dir)))
	_, err := o.Append(richChange(3), richChange(4))
	lift()
	if err == nil || o.Dropped() != 2 {
		t.Fatalf("append to a full disk: %v, dropped %d, want an error and 2", err, o.Dropped())
	}
	big := Record{Format: testFormat, Payload: bytes.Repeat([]byte("x"), 128<<10)}
	if _, err := o.Append(big); err == nil || o.Dropped() != 3 {
		t.Fatalf("append of a record larger than the outbox: %v, dropped %d, want an error and 3", err, o.Dropped())
	}
	crash(o)
	o = mustOpen(t, dir, opts)
	if o.Dropped() != 3 || o.LastSeq() != 3 || o.Len() != 3 {
		t.Fatalf("after a crash: dropped %d last %d len %d, want 3 3 3", o.Dropped(), o.LastSeq(), o.Len())
	}
}

// An outbox belongs to the agent that created it: another agent id must
// not continue its log (the controller would see its seqs jump and raise a
// false agent_events_dropped).
func TestOpenRefusesAnotherAgentsLog(t *testing.T) {
	dir := t.TempDir()
	o := mustOpen(t, dir, Options{AgentID: "edge-1"})
	o.Append(richChange(1))
	id := o.LogID()
	mustClose(t, o)
	owner, err := os.ReadFile(filepath.Join(dir, "OWNER"))
	if err != nil || string(owner) != "edge-1\n" {
		t.Fatalf("OWNER %q %v, want edge-1", owner, err)
	}
	_, err = Open(dir, Options{AgentID: "edge-2"})
	want := `open outbox ` + dir + `: belongs to agent "edge-1", not to agent "edge-2": give each agent its own data_dir, ` +
		`or remove the directory to discard the events agent "edge-1" has not delivered`
	if err == nil || err.Error() != want {
		t.Fatalf("Open by another agent: %v\nwant %s", err, want)
	}
	// The refusal leaves the directory to its owner, and an inspecting
	// tool (no agent id) may read it.
	o = mustOpen(t, dir, Options{})
	mustClose(t, o)
	o = mustOpen(t, dir, Options{AgentID: "edge-1"})
	if o.LogID() != id || o.Len() != 1 {
		t.Fatalf("the owner reopens: log %s len %d, want %s 1", o.LogID(), o.Len(), id)
	}
}

// copyDir copies a fixture directory to a temporary one that Open may
// change.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	des, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		b, err := os.ReadFile(filepath.Join(src, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, de.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// testdata/v1-json is an outbox written by the version before record
// formats (commit 9648bcd): six events of JSON-encoded detect.Change in
// 1 KiB segments with MaxEntries 4, seq 3 a resolve (expendable), so that
// seq 3 and then seq 1 were dropped, then an ack of seq 2. Its events must
// read back as LegacyFormat, with the log's id and counters, next to the
// records of today's format.
func TestReadsLegacyRecords(t *testing.T) {
	dir := copyDir(t, "testdata/v1-json")
	opts := Options{AgentID: "edge-1", MaxEntries: 4, SegmentBytes: 1024}
	o := mustOpen(t, dir, opts)
	const id = "62af4675eb9ded0635ea586c6aa16c57"
	if o.LogID() != id || o.LastSeq() != 6 || o.Len() != 3 || o.Dropped() != 2 || o.Corrupt() != 0 {
		t.Fatalf("legacy log: id %s last %d len %d dropped %d corrupt %d, want %s 6 3 2 0",
			o.LogID(), o.LastSeq(), o.Len(), o.Dropped(), o.Corrupt(), id)
	}
	check := func(p []Entry, want []uint64) {
		t.Helper()
		if !equal(seqs(p), want) {
			t.Fatalf("pending %v, want %v", seqs(p), want)
		}
		for _, e := range p {
			if e.Seq > 6 {
				if e.Format != testFormat || !bytes.Equal(e.Payload, richChange(int(e.Seq)).Payload) {
					t.Fatalf("seq %d: format %d payload %q", e.Seq, e.Format, e.Payload)
				}
				continue
			}
			if e.Format != LegacyFormat || !bytes.Contains(e.Payload, []byte(`"Fingerprint":"interface_down/core-sw1/eth"`)) {
				t.Fatalf("legacy seq %d: format %d payload %s", e.Seq, e.Format, e.Payload)
			}
		}
	}
	check(o.Pending(0, 0), []uint64{4, 5, 6})
	// New records join the log; full, it drops the oldest legacy event.
	for i := 7; i <= 8; i++ {
		if es, err := o.Append(richChange(i)); err != nil || es[0].Seq != uint64(i) {
			t.Fatalf("append to the legacy log: %v %v, want seq %d", es, err, i)
		}
	}
	check(o.Pending(0, 0), []uint64{5, 6, 7, 8})
	mustClose(t, o)
	o = mustOpen(t, dir, opts)
	check(o.Pending(0, 0), []uint64{5, 6, 7, 8})
	if o.LogID() != id || o.Dropped() != 3 {
		t.Fatalf("after restart: id %s dropped %d, want %s 3", o.LogID(), o.Dropped(), id)
	}
}
