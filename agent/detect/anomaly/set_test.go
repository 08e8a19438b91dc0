package anomaly

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

func TestSetEvictsIdleSeries(t *testing.T) {
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
	// Series 0 keeps reporting; after two hours the others are idle and
	// the per-update sweep evicts them.
	for i := range 130 {
		if _, err := s.Update(0, t0.Add(time.Duration(i)*time.Minute), 1); err != nil {
			t.Fatal(err)
		}
	}
	st := s.Stats()
	if st.Series != 1 || st.Evicted != 3 {
		t.Fatalf("stats %+v, want 1 series and 3 evicted", st)
	}
	// An evicted series that comes back learns from scratch.
	res, err := s.Update(1, t0.Add(131*time.Minute), 1)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Learning {
		t.Error("returning series is not learning from scratch")
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
