package outbox

import (
	"testing"
)

// testFormat stands for the caller's encoding: the outbox never reads it.
const testFormat uint8 = 2

// change is a record whose payload names it; exp marks it expendable.
func change(exp bool, name string) Record {
	return Record{Format: testFormat, Payload: []byte(name), Expendable: exp}
}

func seqs(es []Entry) []uint64 {
	out := make([]uint64, len(es))
	for i, e := range es {
		out[i] = e.Seq
	}
	return out
}

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func mustNew(t *testing.T, max int) *Outbox {
	t.Helper()
	o, err := New(Options{MaxEntries: max})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestAppendNumbersFromOne(t *testing.T) {
	o := mustNew(t, 0)
	if o.OldestUnacked() != 0 || o.Len() != 0 {
		t.Fatalf("empty outbox: oldest %d len %d", o.OldestUnacked(), o.Len())
	}
	got, err := o.Append(change(false, "a"), change(false, "b"))
	if err != nil {
		t.Fatal(err)
	}
	if !equal(seqs(got), []uint64{1, 2}) {
		t.Fatalf("seqs %v, want [1 2]", seqs(got))
	}
	got, _ = o.Append(change(false, "c"))
	if !equal(seqs(got), []uint64{3}) || string(got[0].Payload) != "c" || got[0].Format != testFormat {
		t.Fatalf("third append %+v", got)
	}
	if o.Len() != 3 || o.OldestUnacked() != 1 || o.LastSeq() != 3 {
		t.Fatalf("len %d oldest %d last %d", o.Len(), o.OldestUnacked(), o.LastSeq())
	}
}

func TestLogIDRandom(t *testing.T) {
	a, b := mustNew(t, 0), mustNew(t, 0)
	if len(a.LogID()) != 32 || a.LogID() == b.LogID() {
		t.Fatalf("log ids %q %q: want two different 32-hex ids", a.LogID(), b.LogID())
	}
}

func TestPendingAndAck(t *testing.T) {
	o := mustNew(t, 0)
	for i := 0; i < 10; i++ {
		o.Append(change(false, "d"))
	}
	if got := seqs(o.Pending(0, 4)); !equal(got, []uint64{1, 2, 3, 4}) {
		t.Fatalf("pending(0,4) = %v", got)
	}
	if got := seqs(o.Pending(8, 0)); !equal(got, []uint64{9, 10}) {
		t.Fatalf("pending(8,0) = %v", got)
	}
	o.Ack(5)
	if o.Len() != 5 || o.OldestUnacked() != 6 {
		t.Fatalf("after ack 5: len %d oldest %d", o.Len(), o.OldestUnacked())
	}
	if got := seqs(o.Pending(0, 2)); !equal(got, []uint64{6, 7}) {
		t.Fatalf("pending after ack = %v", got)
	}
	o.Ack(3) // a stale ack changes nothing
	if o.Len() != 5 {
		t.Fatalf("stale ack removed entries: len %d", o.Len())
	}
	o.Ack(10)
	if o.Len() != 0 || o.OldestUnacked() != 0 || len(o.Pending(0, 0)) != 0 {
		t.Fatalf("after ack 10: len %d oldest %d", o.Len(), o.OldestUnacked())
	}
	got, _ := o.Append(change(false, "d"))
	if got[0].Seq != 11 {
		t.Fatalf("seq after full ack = %d, want 11 (numbering never restarts)", got[0].Seq)
	}
	// Beyond the last seq: the controller holds seqs this log lost; new
	// events must not reuse them, or the controller would take them for
	// replays.
	o.Ack(100)
	got, _ = o.Append(change(false, "d"))
	if got[0].Seq != 101 || o.Len() != 1 {
		t.Fatalf("seq after ack 100 = %d (len %d), want 101", got[0].Seq, o.Len())
	}
}

func TestFullDropsExpendableFirst(t *testing.T) {
	o := mustNew(t, 4)
	o.Append(
		change(false, "1"), // seq 1
		change(true, "2"),  // seq 2: expendable (resolve)
		change(false, "3"), // seq 3
		change(true, "4"),  // seq 4: expendable (info)
	)
	o.Append(change(false, "5"))
	if got := seqs(o.Pending(0, 0)); !equal(got, []uint64{1, 3, 4, 5}) {
		t.Fatalf("after first overflow: %v, want resolve seq 2 dropped", got)
	}
	o.Append(change(false, "6"))
	if got := seqs(o.Pending(0, 0)); !equal(got, []uint64{1, 3, 5, 6}) {
		t.Fatalf("after second overflow: %v, want info seq 4 dropped", got)
	}
	o.Append(change(false, "7"))
	if got := seqs(o.Pending(0, 0)); !equal(got, []uint64{3, 5, 6, 7}) {
		t.Fatalf("after third overflow: %v, want oldest seq 1 dropped", got)
	}
	if o.Dropped() != 3 || o.Len() != 4 || o.OldestUnacked() != 3 {
		t.Fatalf("dropped %d len %d oldest %d, want 3 4 3", o.Dropped(), o.Len(), o.OldestUnacked())
	}
	if got := seqs(o.Pending(3, 0)); !equal(got, []uint64{5, 6, 7}) {
		t.Fatalf("pending(3) across a gap = %v", got)
	}
}

func TestAckedExpendableIsNotDroppedAgain(t *testing.T) {
	o := mustNew(t, 2)
	o.Append(change(true, "1"), change(false, "2"))
	o.Ack(1)
	o.Append(change(false, "3"))
	if o.Dropped() != 0 || !equal(seqs(o.Pending(0, 0)), []uint64{2, 3}) {
		t.Fatalf("dropped %d pending %v: an acked entry must not count as dropped", o.Dropped(), seqs(o.Pending(0, 0)))
	}
}

func TestSustainedOverflowStaysBounded(t *testing.T) {
	o := mustNew(t, 1000)
	const n = 200_000
	for i := 0; i < n; i++ {
		o.Append(change(i%3 == 0, "d"))
	}
	if o.Len() != 1000 || o.Dropped() != n-1000 {
		t.Fatalf("len %d dropped %d", o.Len(), o.Dropped())
	}
	p := o.Pending(0, 0)
	if len(p) != 1000 || p[len(p)-1].Seq != n {
		t.Fatalf("pending %d entries, last %d", len(p), p[len(p)-1].Seq)
	}
	for i := 1; i < len(p); i++ {
		if p[i].Seq <= p[i-1].Seq {
			t.Fatalf("pending out of order at %d: %d after %d", i, p[i].Seq, p[i-1].Seq)
		}
	}
	if len(o.items) > 2*1000+64 {
		t.Fatalf("log holds %d items for 1000 live: compaction missing", len(o.items))
	}
}

func TestNotifyCoalesces(t *testing.T) {
	o := mustNew(t, 0)
	select {
	case <-o.Notify():
		t.Fatal("notify before any append")
	default:
	}
	o.Append(change(false, "a"))
	o.Append(change(false, "b"))
	select {
	case <-o.Notify():
	default:
		t.Fatal("no notify after append")
	}
	select {
	case <-o.Notify():
		t.Fatal("two appends gave two wake-ups; want one")
	default:
	}
}

func TestNewRejectsNegativeMax(t *testing.T) {
	if _, err := New(Options{MaxEntries: -1}); err == nil || err.Error() != "create outbox: max entries -1 is negative" {
		t.Fatalf("err = %v", err)
	}
}

func TestAppendRefusesReservedFormats(t *testing.T) {
	o := mustNew(t, 0)
	for _, tc := range []struct {
		r    Record
		want string
	}{
		{Record{Format: 0, Payload: []byte("x")}, "append to outbox: record 0: format 0 is reserved"},
		{Record{Format: LegacyFormat, Payload: []byte("x")}, "append to outbox: record 0: format 1 is reserved"},
		{Record{Format: testFormat}, "append to outbox: record 0: empty payload"},
	} {
		if es, err := o.Append(tc.r); err == nil || err.Error() != tc.want || len(es) != 0 {
			t.Errorf("append %+v: %v %v, want %q", tc.r, es, err, tc.want)
		}
	}
	if o.LastSeq() != 0 || o.Dropped() != 0 {
		t.Fatalf("refused records used seqs (%d) or counted as dropped (%d)", o.LastSeq(), o.Dropped())
	}
}
