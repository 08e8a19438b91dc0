// Package watch fans issue changes out to the controller's watchers. The
// hub keeps the newest changes in one ring shared by every watcher, each
// change numbered by its store position; a watcher is only a cursor into
// it, so an idle watcher costs a few bytes and Publish never blocks or
// waits for a watcher. A watcher that falls further behind than the ring
// holds is told so (ErrBehind) and catches up from the store by position
// (store.ChangesAfter), then continues from the ring: falling behind never
// loses a change and never ends a watch.
package watch

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/netaiops/netaiops/controller/store"
)

// DefaultBuffer is how many of the newest changes the hub keeps in memory.
const DefaultBuffer = 8192

// ErrBehind means changes after the watcher's position are no longer in
// memory: read them from the store (store.ChangesAfter), then call Next
// again with the position reached.
var ErrBehind = errors.New("watch: changes after this position are no longer in memory")

// ErrStopped means the stop channel given to Next was closed.
var ErrStopped = errors.New("watch: stopped")

// Hub is the ring of recent changes and the count of watchers. The zero
// value is not usable; use New.
type Hub struct {
	mu    sync.Mutex
	ring  []store.Change // circular, oldest at start
	start int
	n     int
	head  uint64        // position of the newest change published (or Start's)
	wake  chan struct{} // closed (and replaced) by every Publish

	watchers  atomic.Int64
	published atomic.Uint64
	late      atomic.Uint64
	behind    atomic.Uint64
}

// New returns a hub that keeps the newest buffer changes (DefaultBuffer if
// buffer <= 0).
func New(buffer int) *Hub {
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	return &Hub{ring: make([]store.Change, buffer), wake: make(chan struct{})}
}

// Start sets the position of the newest change stored before the hub
// started; a watcher that starts from it sees only later changes. It is
// ignored once changes were published.
func (h *Hub) Start(head uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == 0 && head > h.head {
		h.head = head
	}
}

// Publish appends changes to the ring and wakes the watchers. It never
// blocks on a watcher. Changes must come in increasing position order (the
// store publishes under its commit lock); one at or below the newest
// position already published is ignored and counted as late.
func (h *Hub) Publish(changes ...store.Change) {
	h.mu.Lock()
	added := 0
	for _, c := range changes {
		if c.Pos <= h.head {
			h.late.Add(1)
			continue
		}
		i := (h.start + h.n) % len(h.ring)
		if h.n == len(h.ring) {
			h.start = (h.start + 1) % len(h.ring)
		} else {
			h.n++
		}
		h.ring[i] = c
		h.head = c.Pos
		added++
	}
	if added > 0 {
		close(h.wake)
		h.wake = make(chan struct{})
	}
	h.mu.Unlock()
	h.published.Add(uint64(added))
}

// Head returns the position of the newest change published.
func (h *Hub) Head() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.head
}

// Watcher reads the changes that match its filter. It holds no buffer of
// its own: its position is the caller's.
type Watcher struct {
	hub    *Hub
	filter store.IssueFilter
	closed atomic.Bool
}

// Subscribe adds a watcher for changes matching f. The caller must call
// Close when done.
func (h *Hub) Subscribe(f store.IssueFilter) *Watcher {
	h.watchers.Add(1)
	return &Watcher{hub: h, filter: f}
}

// Close removes the watcher. It is safe to call more than once.
func (w *Watcher) Close() {
	if w.closed.CompareAndSwap(false, true) {
		w.hub.watchers.Add(-1)
	}
}

// Next returns up to limit changes after position pos that match the
// watcher's filter, oldest first, and the position they reach (the newest
// examined, matching or not), to pass as pos to the next call. It blocks
// until a matching change is published or stop is closed (ErrStopped). It
// returns ErrBehind when changes after pos have left the ring.
func (w *Watcher) Next(stop <-chan struct{}, pos uint64, limit int) ([]store.Change, uint64, error) {
	h := w.hub
	if limit <= 0 {
		limit = 1
	}
	for {
		h.mu.Lock()
		if pos < h.head {
			oldest := h.head // when the ring is empty
			if h.n > 0 {
				oldest = h.ring[h.start].Pos
			}
			if pos+1 < oldest {
				h.mu.Unlock()
				h.behind.Add(1)
				return nil, pos, ErrBehind
			}
			var out []store.Change
			// Skip what the caller has seen: the ring's positions increase.
			i := h.find(pos)
			for ; i < h.n && len(out) < limit; i++ {
				c := h.ring[(h.start+i)%len(h.ring)]
				pos = c.Pos
				if w.filter.Match(c.Issue) {
					out = append(out, c)
				}
			}
			if i == h.n {
				pos = max64(pos, h.head)
			}
			h.mu.Unlock()
			if len(out) > 0 {
				return out, pos, nil
			}
			continue // examined to the head without a match: wait
		}
		wake := h.wake
		h.mu.Unlock()
		select {
		case <-wake:
		case <-stop:
			return nil, pos, ErrStopped
		}
	}
}

// find returns the ring index of the first change after pos (binary search;
// h.mu held).
func (h *Hub) find(pos uint64) int {
	lo, hi := 0, h.n
	for lo < hi {
		mid := (lo + hi) / 2
		if h.ring[(h.start+mid)%len(h.ring)].Pos <= pos {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

func max64(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// Watchers returns how many watchers are subscribed.
func (h *Hub) Watchers() int { return int(h.watchers.Load()) }

// Behind counts the times a watcher fell further behind than the ring and
// had to catch up from the store.
func (h *Hub) Behind() uint64 { return h.behind.Load() }

// Late counts changes published out of position order (ignored).
func (h *Hub) Late() uint64 { return h.late.Load() }

// Published counts changes added to the ring.
func (h *Hub) Published() uint64 { return h.published.Load() }
