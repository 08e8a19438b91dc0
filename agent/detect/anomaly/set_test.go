package anomaly

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

func TestSetEvictsIdleSeriesOnlyForRoom(t *testing.T) {
	s := NewSet(4, time.Hour)
	for k := range uint64(4) {
		if _, err := s.Update(k, t0, 1); err != nil {
			t.Fatal(err)
		}
	}
	// Full: a fifth series is refused and counted while nobody is idle.
	if _, err := s.Update(5, t0.Add(time.Minute), 1); !errors.Is(err, ErrFull) {
		t.Fatalf("fifth series: err %v, want ErrFull", err)
	}
	if st := s.Stats(); st.Dropped != 1 || st.Series != 4 {
		t.Fatalf("stats %+v, want 4 series, 1 dropped", st)
	}
	// Series 0 keeps reporting; after two hours the others are idle but
	// keep their state: nothing needs their slots.
	for i := range 130 {
		if _, err := s.Update(0, t0.Add(time.Duration(i)*time.Minute), 1); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.Series != 4 || st.Evicted != 0 {
		t.Fatalf("stats %+v, want 4 series and none evicted", st)
	}
	// A new series takes the slot of one idle series, and only one.
	if _, err := s.Update(5, t0.Add(131*time.Minute), 1); err != nil {
		t.Fatalf("new series with idle ones to evict: %v", err)
	}
	if st := s.Stats(); st.Series != 4 || st.Evicted != 1 {
		t.Fatalf("stats %+v, want 4 series and 1 evicted", st)
	}
}

// TestSetKeepsSparseSeries: a series sampled every 5 minutes with gaps of
// hours (real data: NAB's files) keeps what it learnt; the old set forgot
// it after an hour without a sample and it learnt again from scratch.
func TestSetKeepsSparseSeries(t *testing.T) {
	s := NewSet(2, time.Hour) // the old per-update sweep saw every slot at every update
	at := t0
	for i := range 400 {
		if i == 300 {
			at = at.Add(5 * time.Hour) // a gap in the data
		}
		res, err := s.Update(7, at, 100+float64(i%3))
		if err != nil {
			t.Fatal(err)
		}
		if i > 300 && res.Learning {
			t.Fatalf("sample %d after a 5-hour gap: learning from scratch", i)
		}
		at = at.Add(5 * time.Minute)
	}
	if st := s.Stats(); st.Evicted != 0 || st.Series != 1 {
		t.Fatalf("stats %+v, want 1 series and none evicted", st)
	}
}

// TestSetFutureSampleAndClockStep: one sample dated a year ahead, then a
// clock step of a day, on a full set of live series: no series is
// evicted, and a new series is refused rather than evict a live one.
func TestSetFutureSampleAndClockStep(t *testing.T) {
	const n = 8
	s := NewSet(n, time.Hour)
	poll := func(at time.Time) {
		t.Helper()
		for k := range uint64(n) {
			if _, err := s.Update(k, at, 1); err != nil {
				t.Fatalf("series %d at %v: %v", k, at, err)
			}
		}
	}
	at := t0
	for range 200 { // past the warm-up
		poll(at)
		at = at.Add(step)
	}
	// One sample of series 3 dated a year ahead.
	if _, err := s.Update(3, at.Add(365*24*time.Hour), 1); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		poll(at)
		at = at.Add(step)
	}
	// A new series arrives: every series is live, none may go.
	if _, err := s.Update(100, at, 1); !errors.Is(err, ErrFull) {
		t.Fatalf("new series after a future sample: err %v, want ErrFull", err)
	}
	// The clock steps a day ahead: the first series polled after the
	// step sees the others' last samples a day old.
	at = at.Add(24 * time.Hour)
	for range 3 {
		poll(at)
		at = at.Add(step)
	}
	if st := s.Stats(); st.Evicted != 0 || st.Series != n {
		t.Fatalf("stats %+v, want %d series and none evicted", st, n)
	}
	for k := range uint64(n) {
		res, err := s.Update(k, at, 1)
		if err != nil || res.Learning {
			t.Fatalf("series %d after the clock step: learning %v, err %v: it was forgotten", k, res.Learning, err)
		}
	}
}

func TestSetFullEvictsOnDemand(t *testing.T) {
	s := NewSet(2, time.Minute)
	s.Update(1, t0, 1)
	s.Update(2, t0, 1)
	// Both are idle by the time series 3 arrives: it takes a slot.
	if _, err := s.Update(3, t0.Add(time.Hour), 1); err != nil {
		t.Fatalf("new series with idle ones to evict: %v", err)
	}
	if st := s.Stats(); st.Dropped != 0 || st.Evicted == 0 {
		t.Fatalf("stats %+v, want an eviction and no drop", st)
	}
}

// TestSetIndexUnderChurn drives series in and out of a small set and checks
// after every update that the index and the slots agree: every held series
// is found, every index entry names a held series, nothing is lost.
func TestSetIndexUnderChurn(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	s := NewSet(64, 30*time.Second)
	now := t0
	for n := range 20000 {
		now = now.Add(time.Duration(r.IntN(500)) * time.Millisecond)
		key := uint64(r.IntN(200)) << (r.IntN(2) * 40) // some keys share low bits
		_, err := s.Update(key, now, 1)
		if err != nil && !errors.Is(err, ErrFull) {
			t.Fatal(err)
		}
		held := 0
		for i, m := range s.slots {
			if !m.used {
				continue
			}
			held++
			if got, _ := s.find(m.key); got != int32(i) {
				t.Fatalf("update %d: series %x in slot %d is found in slot %d", n, m.key, i, got)
			}
		}
		entries := 0
		for _, e := range s.index {
			if e != 0 {
				entries++
				if !s.slots[e-1].used {
					t.Fatalf("update %d: index names free slot %d", n, e-1)
				}
			}
		}
		if held != entries || held != s.Stats().Series || held+len(s.free) != len(s.slots) {
			t.Fatalf("update %d: %d held, %d index entries, %d counted, %d free", n, held, entries, s.Stats().Series, len(s.free))
		}
	}
	if st := s.Stats(); st.Evicted == 0 || st.Dropped == 0 {
		t.Fatalf("stats %+v: the test should exercise eviction and refusal", st)
	}
}

func TestSlotIsWholeCacheLines(t *testing.T) {
	if SlotBytes%cacheLine != 0 || SlotBytes < StateBytes {
		t.Fatalf("a slot is %d bytes, want a multiple of %d holding %d bytes of state", SlotBytes, cacheLine, StateBytes)
	}
	t.Logf("slot: %d bytes per series", SlotBytes)
}

// TestUpdateBatchMatchesUpdate: a batch gives the results, counters and
// evictions of the same samples fed one by one, also while series come, go
// and overflow the set, and when a batch names a series twice.
func TestUpdateBatchMatchesUpdate(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	one, batch := NewSet(50, 20*time.Second), NewSet(50, 20*time.Second)
	now := t0
	for round := range 3000 {
		now = now.Add(time.Duration(r.IntN(3)) * time.Second)
		n := r.IntN(40)
		keys := make([]uint64, n)
		values := make([]float64, n)
		for j := range keys {
			keys[j] = uint64(r.IntN(120))
			values[j] = r.NormFloat64()
		}
		want := make([]Result, n)
		wantDropped := 0
		for j := range keys {
			var err error
			if want[j], err = one.Update(keys[j], now, values[j]); err != nil {
				wantDropped++
			}
		}
		got := make([]Result, n)
		if d := batch.UpdateBatch(keys, now, values, got); d != wantDropped {
			t.Fatalf("round %d: %d dropped, want %d", round, d, wantDropped)
		}
		for j := range got {
			if got[j] != want[j] {
				t.Fatalf("round %d sample %d: %+v, want %+v", round, j, got[j], want[j])
			}
		}
		if one.Stats() != batch.Stats() {
			t.Fatalf("round %d: stats %+v, want %+v", round, batch.Stats(), one.Stats())
		}
	}
	if st := one.Stats(); st.Evicted == 0 || st.Dropped == 0 {
		t.Fatalf("stats %+v: the test should exercise eviction and refusal", st)
	}
}
