package outbox

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func mustOpen(t *testing.T, dir string, opts Options) *Outbox {
	t.Helper()
	o, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

func mustClose(t *testing.T, o *Outbox) {
	t.Helper()
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
}

// richChange is a record of a few hundred bytes, like an issue event,
// whose payload names it.
func richChange(i int) Record {
	return Record{Format: testFormat, Payload: []byte(fmt.Sprintf(`{"n":%d,"pad":%q}`, i, strings.Repeat("p", 300)))}
}

func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(m)
	return m
}

func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	for _, f := range segFiles(t, dir) {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		n += st.Size()
	}
	return n
}

func TestOpenKeepsLogAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	o := mustOpen(t, dir, Options{})
	id := o.LogID()
	if len(id) != 32 {
		t.Fatalf("log id %q: want 32 hex digits", id)
	}
	var want []Record
	for i := 1; i <= 10; i++ {
		c := richChange(i)
		want = append(want, c)
		es, err := o.Append(c)
		if err != nil || len(es) != 1 || es[0].Seq != uint64(i) {
			t.Fatalf("append %d: %v %v", i, es, err)
		}
	}
	o.Ack(4)
	mustClose(t, o)

	o = mustOpen(t, dir, Options{})
	if o.LogID() != id {
		t.Fatalf("log id after restart %q, want %q", o.LogID(), id)
	}
	if o.LastSeq() != 10 || o.Len() != 6 || o.OldestUnacked() != 5 || o.Corrupt() != 0 {
		t.Fatalf("after restart: last %d len %d oldest %d corrupt %d, want 10 6 5 0", o.LastSeq(), o.Len(), o.OldestUnacked(), o.Corrupt())
	}
	got := o.Pending(0, 0)
	if !equal(seqs(got), []uint64{5, 6, 7, 8, 9, 10}) {
		t.Fatalf("pending after restart %v", seqs(got))
	}
	for _, e := range got {
		if w := want[e.Seq-1]; !bytes.Equal(e.Payload, w.Payload) || e.Format != w.Format {
			t.Fatalf("seq %d after restart:\n got %d %q\nwant %d %q", e.Seq, e.Format, e.Payload, w.Format, w.Payload)
		}
	}
	es, err := o.Append(richChange(11))
	if err != nil || es[0].Seq != 11 {
		t.Fatalf("append after restart: %v %v, want seq 11", es, err)
	}
}

func TestOpenAfterEverythingAckedKeepsNumbering(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 1024}
	o := mustOpen(t, dir, opts)
	for i := 0; i < 50; i++ {
		if _, err := o.Append(richChange(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(segFiles(t, dir)); n < 5 {
		t.Fatalf("%d segment files for 50 events in 1 KiB segments; want several", n)
	}
	o.Ack(50)
	if n := len(segFiles(t, dir)); n != 1 {
		t.Fatalf("%d segment files after acking everything, want only the active one", n)
	}
	mustClose(t, o)
	o = mustOpen(t, dir, opts)
	if o.Len() != 0 || o.LastSeq() != 50 {
		t.Fatalf("after restart: len %d last %d, want 0 50", o.Len(), o.LastSeq())
	}
	es, _ := o.Append(richChange(51))
	if es[0].Seq != 51 {
		t.Fatalf("seq after restart %d, want 51: a restarted count would be taken for replays", es[0].Seq)
	}
	mustClose(t, o)
	// Restarts without new events do not pile up files.
	for i := 0; i < 3; i++ {
		o = mustOpen(t, dir, opts)
		mustClose(t, o)
	}
	if n := len(segFiles(t, dir)); n > 2 {
		t.Fatalf("%d segment files after idle restarts", n)
	}
}

func TestTruncatedTailIsSkipped(t *testing.T) {
	dir := t.TempDir()
	o := mustOpen(t, dir, Options{})
	for i := 1; i <= 5; i++ {
		o.Append(richChange(i))
	}
	mustClose(t, o)
	files := segFiles(t, dir)
	last := files[len(files)-1]
	st, _ := os.Stat(last)
	// Power loss in the middle of the last record's write.
	if err := os.Truncate(last, st.Size()-7); err != nil {
		t.Fatal(err)
	}
	o = mustOpen(t, dir, Options{})
	if o.Corrupt() != 1 {
		t.Fatalf("corrupt %d, want 1", o.Corrupt())
	}
	if got := seqs(o.Pending(0, 0)); !equal(got, []uint64{1, 2, 3, 4}) {
		t.Fatalf("pending %v, want the intact [1 2 3 4]", got)
	}
	es, _ := o.Append(richChange(6))
	if es[0].Seq != 5 {
		t.Fatalf("next seq %d, want 5 (the torn record was never acknowledged to the caller)", es[0].Seq)
	}
	mustClose(t, o)
	o = mustOpen(t, dir, Options{})
	if o.Corrupt() != 0 || !equal(seqs(o.Pending(0, 0)), []uint64{1, 2, 3, 4, 5}) {
		t.Fatalf("second restart: corrupt %d pending %v: the damage must be counted once", o.Corrupt(), seqs(o.Pending(0, 0)))
	}
}

func TestCorruptRecordIsSkippedRestKept(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(data []byte, off int)
	}{
		{"payload bit flip", func(data []byte, off int) { data[off+frameHeader+20] ^= 0x40 }},
		{"length overwritten", func(data []byte, off int) { data[off+4], data[off+5], data[off+6] = 0xff, 0xff, 0x7f }},
		{"zeroed record", func(data []byte, off int) {
			for i := off; i < off+40; i++ {
				data[i] = 0
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			o := mustOpen(t, dir, Options{})
			var offs []int64
			for i := 1; i <= 6; i++ {
				o.Append(richChange(i))
			}
			o.mu.Lock()
			for _, it := range o.items {
				offs = append(offs, it.off)
			}
			o.mu.Unlock()
			mustClose(t, o)
			files := segFiles(t, dir)
			data, err := os.ReadFile(files[0])
			if err != nil {
				t.Fatal(err)
			}
			tc.damage(data, int(offs[2])) // seq 3
			if err := os.WriteFile(files[0], data, 0o600); err != nil {
				t.Fatal(err)
			}
			o = mustOpen(t, dir, Options{})
			if o.Corrupt() != 1 {
				t.Fatalf("corrupt %d, want 1", o.Corrupt())
			}
			if got := seqs(o.Pending(0, 0)); !equal(got, []uint64{1, 2, 4, 5, 6}) {
				t.Fatalf("pending %v, want [1 2 4 5 6]", got)
			}
			if es, _ := o.Append(richChange(7)); es[0].Seq != 7 {
				t.Fatalf("next seq %d, want 7", es[0].Seq)
			}
		})
	}
}

func TestDropsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	size := int64(frameHeader + len(recordPayload(1, false, testFormat, richChange(1).Payload)))
	opts := Options{MaxBytes: 4 * size, SegmentBytes: 4096}
	o := mustOpen(t, dir, opts)
	for i := 1; i <= 4; i++ {
		c := richChange(i)
		if i == 2 {
			c.Expendable = true // a resolve
		}
		o.Append(c)
	}
	o.Append(richChange(5)) // full: drops the resolve, seq 2
	o.Append(richChange(6)) // full: drops the oldest, seq 1
	if o.Dropped() != 2 || !equal(seqs(o.Pending(0, 0)), []uint64{3, 4, 5, 6}) {
		t.Fatalf("dropped %d pending %v", o.Dropped(), seqs(o.Pending(0, 0)))
	}
	if o.Bytes() > opts.MaxBytes {
		t.Fatalf("bytes %d over the bound %d", o.Bytes(), opts.MaxBytes)
	}
	mustClose(t, o)
	o = mustOpen(t, dir, opts)
	if o.Dropped() != 2 || !equal(seqs(o.Pending(0, 0)), []uint64{3, 4, 5, 6}) {
		t.Fatalf("after restart: dropped %d pending %v: drops must stay dropped and counted", o.Dropped(), seqs(o.Pending(0, 0)))
	}
	// A smaller bound at restart drops down to it, oldest first.
	mustClose(t, o)
	opts.MaxBytes = 2 * size
	o = mustOpen(t, dir, opts)
	if o.Dropped() != 4 || !equal(seqs(o.Pending(0, 0)), []uint64{5, 6}) {
		t.Fatalf("smaller bound: dropped %d pending %v", o.Dropped(), seqs(o.Pending(0, 0)))
	}
}

func TestSustainedOverflowBoundsFiles(t *testing.T) {
	dir := t.TempDir()
	opts := Options{MaxBytes: 32 << 10, SegmentBytes: 4 << 10}
	o := mustOpen(t, dir, opts)
	const n = 3000
	for i := 0; i < n; i++ {
		// Mostly expendable changes, which go first, so that the
		// survivors are scattered over many segments: only rewriting
		// them keeps the files bounded.
		c := richChange(i)
		if i%8 != 0 {
			c.Expendable = true
		}
		if _, err := o.Append(c); err != nil {
			t.Fatal(err)
		}
		if b := dirBytes(t, dir); i%100 == 0 && b > 2*opts.MaxBytes+2*opts.SegmentBytes {
			t.Fatalf("after %d appends the files hold %d bytes; bound %d", i, b, 2*opts.MaxBytes)
		}
	}
	if o.Bytes() > opts.MaxBytes || o.Dropped() == 0 {
		t.Fatalf("live bytes %d (bound %d), dropped %d", o.Bytes(), opts.MaxBytes, o.Dropped())
	}
	pend := o.Pending(0, 0)
	live, dropped := len(pend), o.Dropped()
	if uint64(live)+dropped != n {
		t.Fatalf("pending %d + dropped %d != appended %d", live, dropped, n)
	}
	if o.disk.rewrites == 0 {
		t.Fatal("no segment was rewritten: the test does not exercise compaction")
	}
	// Rewritten segments still hold the right records at the right places.
	for _, e := range pend {
		if want := richChange(int(e.Seq - 1)); !bytes.Equal(e.Payload, want.Payload) {
			t.Fatalf("seq %d reads back as %q, want %q", e.Seq, e.Payload, want.Payload)
		}
	}
	mustClose(t, o)
	o = mustOpen(t, dir, opts)
	if !equal(seqs(o.Pending(0, 0)), seqs(pend)) || o.Dropped() != dropped || o.Corrupt() != 0 {
		t.Fatalf("after restart: %d pending (want %d), dropped %d (want %d), corrupt %d",
			o.Len(), live, o.Dropped(), dropped, o.Corrupt())
	}
}

func TestOpenIsExclusive(t *testing.T) {
	dir := t.TempDir()
	mustOpen(t, dir, Options{})
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second Open: %v, want an in-use error", err)
	}
}

func TestAppendAfterClose(t *testing.T) {
	o := mustOpen(t, t.TempDir(), Options{})
	mustClose(t, o)
	if _, err := o.Append(richChange(1)); err == nil || !strings.Contains(err.Error(), "outbox closed") {
		t.Fatalf("append after close: %v", err)
	}
}

func TestTooLargeChangeRejected(t *testing.T) {
	o := mustOpen(t, t.TempDir(), Options{MaxBytes: 100})
	es, err := o.Append(richChange(1))
	if err == nil || len(es) != 0 || o.Len() != 0 {
		t.Fatalf("append of a change larger than the bound: %v %v", es, err)
	}
	if o.LastSeq() != 0 || o.Dropped() != 1 {
		t.Fatalf("a rejected change used seq %d, dropped %d (want 0, 1: counted, as it never reaches the controller)", o.LastSeq(), o.Dropped())
	}
}

func TestWriteErrorQueuesNothingAndCounts(t *testing.T) {
	o := mustOpen(t, t.TempDir(), Options{})
	o.Append(richChange(1))
	o.mu.Lock()
	o.disk.active().f.Close() // every write to it fails from now on
	o.mu.Unlock()
	es, err := o.Append(richChange(2), richChange(3))
	if err == nil || len(es) != 0 {
		t.Fatalf("append to a failing file: %v %v, want an error and nothing queued", es, err)
	}
	if o.LastSeq() != 1 || o.Len() != 1 || o.Bytes() <= 0 || o.Dropped() != 2 {
		t.Fatalf("after the failed append: last %d len %d bytes %d dropped %d, want 1 1 >0 2", o.LastSeq(), o.Len(), o.Bytes(), o.Dropped())
	}
}

// A drop record must live as long as the dropped event's file: here the
// segment holding the drop of seq 2 (in the first segment, which keeps a
// live event) loses all its own events, yet must not be deleted, or seq 2
// would come back after a restart.
func TestDropRecordsOutliveTheirSegment(t *testing.T) {
	dir := t.TempDir()
	size := int64(frameHeader + len(recordPayload(1, false, testFormat, richChange(1).Payload)))
	opts := Options{MaxEntries: 3, SegmentBytes: headerFrame + 2*size + 3*tombFrame}
	o := mustOpen(t, dir, opts)
	// Critical, info, info, info, critical, critical.
	for i, exp := range []bool{false, true, true, true, false, false} {
		c := richChange(i + 1)
		c.Expendable = exp
		if _, err := o.Append(c); err != nil {
			t.Fatal(err)
		}
	}
	// seg 1: [1 crit, 2 info]; seg 2: [3 info, drop 2, 4 info, drop 3];
	// seg 3: [5 crit, drop 4, 6 crit].
	if got := seqs(o.Pending(0, 0)); !equal(got, []uint64{1, 5, 6}) || o.Dropped() != 3 {
		t.Fatalf("pending %v dropped %d, want [1 5 6] 3", got, o.Dropped())
	}
	if n := len(segFiles(t, dir)); n != 3 {
		t.Fatalf("%d segment files, want 3 (the second holds the drop of seq 2)", n)
	}
	mustClose(t, o)
	o = mustOpen(t, dir, opts)
	if got := seqs(o.Pending(0, 0)); !equal(got, []uint64{1, 5, 6}) || o.Dropped() != 3 {
		t.Fatalf("after restart: pending %v dropped %d, want [1 5 6] 3 (a dropped event came back)", got, o.Dropped())
	}
	// Once seq 1 is acked, the first file goes, and with it the need for
	// the second.
	o.Ack(1)
	if n := len(segFiles(t, dir)); n != 2 {
		t.Fatalf("%d segment files after acking seq 1, want 2 (the third and the new active one)", n)
	}
}
