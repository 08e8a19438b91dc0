package anomaly

import (
	"errors"
	"time"
)

// sweepPerUpdate is how many slots each Update inspects for idleness, so
// eviction costs a constant amount per sample instead of a periodic pause.
// With two per update, every slot is looked at once per capacity/2 updates.
const sweepPerUpdate = 2

// fullSweep bounds the search for an idle slot when a new series arrives and
// the set is full.
const fullSweep = 64

// ErrFull is returned by Set.Update when a new series arrives, the set holds
// its capacity of series and none of them has been idle long enough to evict.
var ErrFull = errors.New("anomaly: series set is full")

// Set holds the detectors of many series in one preallocated table, keyed by
// a 64-bit series key the caller derives (a hash of device, metric and
// labels). Series idle for longer than the idle timeout, measured on sample
// timestamps, are evicted a few slots per update. A Set is not safe for
// concurrent use: one goroutine owns it.
type Set struct {
	idle   int64 // seconds
	index  map[uint64]int32
	meta   []slotMeta // apart from dets so the idle sweep reads little memory
	dets   []Detector
	free   []int32
	cursor int
	now    int64 // newest sample time seen, unix seconds
	stats  SetStats
}

type slotMeta struct {
	key  uint64
	last int64 // unix seconds of the series' last sample
	used bool
}

// SetStats counts what a Set did.
type SetStats struct {
	Series  int    // series held now
	Evicted uint64 // series dropped after being idle
	Dropped uint64 // samples of new series refused because the set was full
}

// NewSet returns a Set for at most capacity series; a series with no sample
// for idle (on sample time) is forgotten and, if it comes back, learns from
// scratch. All memory is allocated here.
func NewSet(capacity int, idle time.Duration) *Set {
	if capacity < 1 {
		capacity = 1
	}
	s := &Set{
		idle:  int64(idle / time.Second),
		index: make(map[uint64]int32, capacity),
		meta:  make([]slotMeta, capacity),
		dets:  make([]Detector, capacity),
		free:  make([]int32, capacity),
	}
	for i := range s.free {
		s.free[i] = int32(capacity - 1 - i)
	}
	return s
}

// Update scores value v of series key at time t. A new series takes a free
// slot, or the slot of an idle series; when there is none the sample is
// counted as dropped and ErrFull returned.
func (s *Set) Update(key uint64, t time.Time, v float64) (Result, error) {
	ts := t.Unix()
	if ts > s.now {
		s.now = ts
	}
	s.sweep(sweepPerUpdate)
	i, ok := s.index[key]
	if !ok {
		if len(s.free) == 0 {
			s.sweep(fullSweep)
		}
		if len(s.free) == 0 {
			s.stats.Dropped++
			return Result{}, ErrFull
		}
		i = s.free[len(s.free)-1]
		s.free = s.free[:len(s.free)-1]
		s.meta[i] = slotMeta{key: key, used: true}
		s.dets[i] = Detector{}
		s.index[key] = i
		s.stats.Series++
	}
	if m := &s.meta[i]; ts > m.last {
		m.last = ts
	}
	return s.dets[i].update(ts, v), nil
}

// Stats returns the counters of the set.
func (s *Set) Stats() SetStats { return s.stats }

// sweep inspects the next n slots and evicts those idle for too long.
func (s *Set) sweep(n int) {
	if s.idle <= 0 {
		return
	}
	for ; n > 0; n-- {
		sl := &s.meta[s.cursor]
		if sl.used && s.now-sl.last > s.idle {
			delete(s.index, sl.key)
			sl.used = false
			s.free = append(s.free, int32(s.cursor))
			s.stats.Series--
			s.stats.Evicted++
		}
		s.cursor++
		if s.cursor == len(s.meta) {
			s.cursor = 0
		}
	}
}
