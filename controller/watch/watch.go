// Package watch fans issue changes out to the controller's watchers. Publish
// never blocks: each watcher has a bounded buffer, and a watcher that falls
// behind is cut off (its Overflowed channel closes) and counted, so a slow
// operator's stream can never hold up ingest from agents.
package watch

import (
	"sync"
	"sync/atomic"

	"github.com/netaiops/netaiops/controller/store"
)

// DefaultBuffer is how many changes a watcher may have queued.
const DefaultBuffer = 256

// Hub is the set of current watchers. The zero value is not usable; use New.
type Hub struct {
	buffer int

	mu       sync.Mutex
	watchers map[*Watcher]struct{}

	overflows atomic.Uint64
	published atomic.Uint64
}

// New returns a hub whose watchers buffer up to buffer changes (DefaultBuffer
// if buffer <= 0).
func New(buffer int) *Hub {
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	return &Hub{buffer: buffer, watchers: map[*Watcher]struct{}{}}
}

// Watcher receives the changes that match its filter.
type Watcher struct {
	hub        *Hub
	filter     store.IssueFilter
	ch         chan store.Change
	overflowed chan struct{}
}

// Subscribe adds a watcher for changes matching f. The caller must call
// Close when done.
func (h *Hub) Subscribe(f store.IssueFilter) *Watcher {
	w := &Watcher{hub: h, filter: f, ch: make(chan store.Change, h.buffer), overflowed: make(chan struct{})}
	h.mu.Lock()
	h.watchers[w] = struct{}{}
	h.mu.Unlock()
	return w
}

// Changes delivers matching changes in publish order.
func (w *Watcher) Changes() <-chan store.Change { return w.ch }

// Overflowed is closed when the watcher fell more than the buffer behind;
// it then receives nothing more and should end.
func (w *Watcher) Overflowed() <-chan struct{} { return w.overflowed }

// Close removes the watcher. It is safe to call more than once.
func (w *Watcher) Close() {
	w.hub.mu.Lock()
	delete(w.hub.watchers, w)
	w.hub.mu.Unlock()
}

// Publish offers the changes to every watcher whose filter matches. It never
// blocks: a watcher whose buffer is full is removed and its Overflowed
// channel closed.
func (h *Hub) Publish(changes ...store.Change) {
	if len(changes) == 0 {
		return
	}
	h.published.Add(uint64(len(changes)))
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers {
		for _, c := range changes {
			if !w.filter.Match(c.Issue) {
				continue
			}
			select {
			case w.ch <- c:
			default:
				delete(h.watchers, w)
				close(w.overflowed)
				h.overflows.Add(1)
			}
			if _, still := h.watchers[w]; !still {
				break
			}
		}
	}
}

// Watchers returns how many watchers are subscribed.
func (h *Hub) Watchers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.watchers)
}

// Overflows counts watchers cut off for falling behind.
func (h *Hub) Overflows() uint64 { return h.overflows.Load() }

// Published counts changes offered to the hub.
func (h *Hub) Published() uint64 { return h.published.Load() }
