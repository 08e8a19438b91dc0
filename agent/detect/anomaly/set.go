package anomaly

import (
	"errors"
	"math/bits"
	"time"
	"unsafe"
)

// fullSweep bounds the search for an idle slot when a new series arrives and
// the set is full; the search goes on from where the last one stopped.
const fullSweep = 64

// ErrFull is returned by Set.Update when a new series arrives, the set holds
// its capacity of series and none of them has been idle long enough to evict.
var ErrFull = errors.New("anomaly: series set is full")

// Set holds the detectors of many series in one preallocated table, keyed by
// a 64-bit series key the caller derives (a hash of device, metric and
// labels). A series is evicted only to make room: when a new series arrives,
// the set is full and a held series has been idle for longer than the idle
// timeout. Memory is allocated up front, so forgetting a series while there
// is room would save nothing and lose what it learnt: a series sampled every
// 5 minutes, or one with a gap of a few hours, keeps its state. Idleness is
// |now - last| on sample time, where now is the time of the latest update
// (not the greatest seen), so one sample dated a year ahead, or a clock
// step, makes no series look idle for longer than until the next sample.
// A Set is not safe for concurrent use: one goroutine owns it.
//
// Memory is allocated once, in NewSet: StateBytes per series for the
// detector plus 24 bytes of key and time, rounded up to whole cache lines
// (SlotBytes), and 8 to 16 bytes of index.
type Set struct {
	idle   int64   // seconds
	index  []int32 // open addressing, linear probing: slot+1, 0 when empty
	mask   uint64  // len(index)-1
	slots  []slot
	free   []int32
	cursor int
	now    int64 // time of the latest update, unix seconds
	stats  SetStats
}

// slot is one series: its key and last sample time next to its detector,
// so that an update touches the detector's first cache lines and nothing
// else, padded to whole cache lines so no series straddles more lines than
// it needs.
type slot struct {
	slotHead
	det Detector
	_   [slotPad]byte
}

type slotHead struct {
	key  uint64
	last int64 // unix seconds of the series' last sample
	used bool
}

const (
	cacheLine = 64
	slotPad   = (cacheLine - (unsafe.Sizeof(slotHead{})+unsafe.Sizeof(Detector{}))%cacheLine) % cacheLine
)

// SetStats counts what a Set did.
type SetStats struct {
	Series  int    // series held now
	Evicted uint64 // series dropped after being idle
	Dropped uint64 // samples of new series refused because the set was full
}

// NewSet returns a Set for at most capacity series. When it is full, a new
// series takes the slot of one with no sample for longer than idle (on
// sample time), which, if it comes back, learns from scratch. An idle of
// zero never evicts: a full set refuses new series.
func NewSet(capacity int, idle time.Duration) *Set {
	capacity = max(capacity, 1)
	// At most half full, so probe sequences stay short.
	size := 1 << bits.Len(uint(2*capacity-1))
	s := &Set{
		idle:  int64((idle + time.Second - 1) / time.Second), // sample times are whole seconds
		index: make([]int32, size),
		mask:  uint64(size - 1),
		slots: make([]slot, capacity),
		free:  make([]int32, capacity),
	}
	for i := range s.free {
		s.free[i] = int32(capacity - 1 - i)
	}
	adviseHuge(s.slots)
	return s
}

// Update scores value v of series key at time t. A new series takes a free
// slot, or the slot of an idle series; when there is none the sample is
// counted as dropped and ErrFull returned.
func (s *Set) Update(key uint64, t time.Time, v float64) (Result, error) {
	ts := t.Unix()
	s.now = ts
	return s.apply(key, ts, v)
}

// apply is Update after the clock.
func (s *Set) apply(key uint64, ts int64, v float64) (Result, error) {
	i, pos := s.find(key)
	if i < 0 {
		if len(s.free) == 0 {
			s.sweep(fullSweep)
			if len(s.free) == 0 {
				s.stats.Dropped++
				return Result{}, ErrFull
			}
			// The sweep may have moved entries of the index.
			_, pos = s.find(key)
		}
		i = s.free[len(s.free)-1]
		s.free = s.free[:len(s.free)-1]
		s.slots[i] = slot{slotHead: slotHead{key: key, used: true}}
		s.index[pos] = i + 1
		s.stats.Series++
	}
	sl := &s.slots[i]
	sl.last = ts
	return sl.det.update(ts, v), nil
}

// Stats returns the counters of the set.
func (s *Set) Stats() SetStats { return s.stats }

// hash spreads a caller's key over the index (the finaliser of MurmurHash3),
// so keys that are small integers or share low bits do not collide.
func hash(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	return k
}

// find returns the slot of key, or -1 and the index position to insert it.
func (s *Set) find(key uint64) (int32, uint64) {
	for p := hash(key) & s.mask; ; p = (p + 1) & s.mask {
		e := s.index[p]
		if e == 0 {
			return -1, p
		}
		if s.slots[e-1].key == key {
			return e - 1, p
		}
	}
}

// remove deletes the index entry at position p by shifting later entries of
// the same probe run back, so lookups never need tombstones.
func (s *Set) remove(p uint64) {
	for q := (p + 1) & s.mask; ; q = (q + 1) & s.mask {
		e := s.index[q]
		if e == 0 {
			break
		}
		home := hash(s.slots[e-1].key) & s.mask
		// The entry at q may move to p only if its home is not in (p, q].
		if (q-home)&s.mask >= (q-p)&s.mask {
			s.index[p] = e
			p = q
		}
	}
	s.index[p] = 0
}

// sweep inspects up to n slots and evicts the first idle for too long.
// Idleness is the distance to now either way: a series whose last sample
// was dated in the future is as idle as one that went quiet.
func (s *Set) sweep(n int) {
	if s.idle <= 0 {
		return
	}
	for ; n > 0; n-- {
		m := &s.slots[s.cursor]
		if d := s.now - m.last; m.used && (d > s.idle || -d > s.idle) {
			_, p := s.find(m.key)
			s.remove(p)
			m.used = false
			s.free = append(s.free, int32(s.cursor))
			s.stats.Series--
			s.stats.Evicted++
			n = 1 // this was the last to inspect: one slot is all a new series needs
		}
		s.cursor++
		if s.cursor == len(s.slots) {
			s.cursor = 0
		}
	}
}

// SlotBytes is what a Set holds per series besides its index entry.
const SlotBytes = int(unsafe.Sizeof(slot{}))

// batchChunk is how many series UpdateBatch looks up before it updates them:
// enough independent cache misses in flight to hide most of their latency,
// few enough that the lines stay in the cache until used.
const batchChunk = 16

// UpdateBatch scores values[i] of series keys[i], all observed at t (one
// poll), into out[i], and returns how many samples were dropped because the
// set was full (their Result is zero). It gives the same results as calling
// Update for each sample in order, faster: it first looks up a chunk of
// series and touches the memory their updates will need, so that the cache
// misses of different series overlap instead of following one another.
func (s *Set) UpdateBatch(keys []uint64, t time.Time, values []float64, out []Result) int {
	n := min(len(keys), len(values), len(out))
	ts := t.Unix()
	b0, _, _ := slots(ts)
	wk := weekSlot(ts)
	var idx [batchChunk]int32
	dropped := 0
	for start := 0; start < n; start += batchChunk {
		end := min(start+batchChunk, n)
		// Phase 1: find each series and load the lines its update
		// reads (its head, and the day and week slots of t); sink keeps
		// the loads.
		var sink float32
		for j := start; j < end; j++ {
			i, _ := s.find(keys[j])
			idx[j-start] = i
			if i >= 0 {
				d := &s.slots[i].det
				sink += d.prev + d.slot[b0].mean + d.week[wk]
			}
		}
		batchSink = sink
		// Phase 2: update, in input order, exactly as Update would.
		s.now = ts
		for j := start; j < end; j++ {
			var err error
			if i := idx[j-start]; i >= 0 && s.slots[i].used && s.slots[i].key == keys[j] {
				sl := &s.slots[i]
				sl.last = ts
				out[j] = sl.det.update(ts, values[j])
			} else {
				// a new series, or its slot changed since phase 1
				out[j], err = s.apply(keys[j], ts, values[j])
			}
			if err != nil {
				dropped++
			}
		}
	}
	return dropped
}

// batchSink receives the sum of the loads of UpdateBatch's first phase so
// the compiler cannot drop them. It is written, never read, on purpose.
//
//lint:ignore U1000 a sink for the compiler, not for readers
var batchSink float32
