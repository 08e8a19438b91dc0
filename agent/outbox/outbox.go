// Package outbox owns the queue of issue events awaiting the controller's
// ack. Every detect.Change appended gets the next sequence number of the
// outbox's event log (identified by LogID, chosen at random when the log is
// created); the uplink streams entries in seq order and deletes them only
// when the controller acks them, cumulatively.
//
// The queue is bounded. When it is full, an append first drops the oldest
// expendable entry (a resolve, or an info or warning severity change), else
// the oldest entry, and counts every drop; the controller sees the gap in
// the seq numbers.
//
// This implementation keeps the log in memory; the API (Append returning an
// error, LogID, OldestUnacked) is shaped so that a durable log on disk can
// replace it without changing callers.
package outbox

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"sync"

	"github.com/netaiops/netaiops/agent/detect"
)

// DefaultMaxEntries bounds an outbox built with a zero MaxEntries.
const DefaultMaxEntries = 100_000

// Entry is one numbered issue event.
type Entry struct {
	Seq    uint64
	Change detect.Change
}

// Options configure an Outbox.
type Options struct {
	// MaxEntries is the most unacked entries kept; 0 means DefaultMaxEntries.
	MaxEntries int
}

// item is an entry in the log; gone is set when it is acked or dropped, so
// the index of expendable items can skip it without a search.
type item struct {
	Entry
	gone bool
}

// Outbox is a bounded, numbered queue of issue events. It is safe for
// concurrent use: the detection goroutine appends, the uplink reads and
// acks.
type Outbox struct {
	logID string
	max   int

	mu      sync.Mutex
	items   []*item // seq order; may hold gone items (dropped) until compacted
	live    int     // items not gone
	exp     []*item // expendable items in seq order; may hold gone items
	nextSeq uint64
	dropped uint64
	notify  chan struct{}
}

// New creates an empty outbox with a fresh random log id.
func New(opts Options) (*Outbox, error) {
	if opts.MaxEntries < 0 {
		return nil, fmt.Errorf("create outbox: max entries %d is negative", opts.MaxEntries)
	}
	if opts.MaxEntries == 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("create outbox: log id: %w", err)
	}
	return &Outbox{
		logID:   hex.EncodeToString(b[:]),
		max:     opts.MaxEntries,
		nextSeq: 1,
		notify:  make(chan struct{}, 1),
	}, nil
}

// LogID identifies this outbox's event log; seq numbers are unique within it.
func (o *Outbox) LogID() string { return o.logID }

// Expendable reports whether a change is dropped before others when the
// outbox is full: resolves, and changes of info or warning severity.
func Expendable(c detect.Change) bool {
	return c.Type == detect.Resolved || c.Issue.Severity <= detect.SeverityWarning
}

// Append numbers the changes, queues them and returns the new entries. When
// the outbox is full, older entries are dropped to make room (see the
// package comment) and counted in Dropped.
func (o *Outbox) Append(changes ...detect.Change) ([]Entry, error) {
	if len(changes) == 0 {
		return nil, nil
	}
	o.mu.Lock()
	out := make([]Entry, 0, len(changes))
	for _, c := range changes {
		for o.live >= o.max {
			o.dropOneLocked()
			o.compactLocked()
		}
		it := &item{Entry: Entry{Seq: o.nextSeq, Change: c}}
		o.nextSeq++
		o.items = append(o.items, it)
		o.live++
		if Expendable(c) {
			o.exp = append(o.exp, it)
		}
		out = append(out, it.Entry)
	}
	o.compactLocked()
	o.mu.Unlock()
	select {
	case o.notify <- struct{}{}:
	default: // a wake-up is already pending
	}
	return out, nil
}

// dropOneLocked drops the oldest expendable live item, else the oldest live
// item.
func (o *Outbox) dropOneLocked() {
	for len(o.exp) > 0 {
		it := o.exp[0]
		o.exp[0] = nil
		o.exp = o.exp[1:]
		if !it.gone {
			it.gone = true
			o.live--
			o.dropped++
			return
		}
	}
	for _, it := range o.items {
		if !it.gone {
			it.gone = true
			o.live--
			o.dropped++
			return
		}
	}
}

// compactLocked trims gone items from the front and, when more than half of
// the log is gone, rebuilds it, so that drops and acks cost amortized O(1).
func (o *Outbox) compactLocked() {
	i := 0
	for i < len(o.items) && o.items[i].gone {
		o.items[i] = nil
		i++
	}
	o.items = o.items[i:]
	if len(o.items) > 64 && o.live < len(o.items)/2 {
		kept := make([]*item, 0, o.live)
		for _, it := range o.items {
			if !it.gone {
				kept = append(kept, it)
			}
		}
		o.items = kept
	}
	j := 0
	for j < len(o.exp) && o.exp[j].gone {
		o.exp[j] = nil
		j++
	}
	o.exp = o.exp[j:]
}

// Pending returns up to max entries with seq > afterSeq, in seq order. max <= 0
// means no limit. The entries' issues share attribute maps with the outbox;
// callers must not modify them.
func (o *Outbox) Pending(afterSeq uint64, max int) []Entry {
	o.mu.Lock()
	defer o.mu.Unlock()
	i := sort.Search(len(o.items), func(i int) bool { return o.items[i].Seq > afterSeq })
	var out []Entry
	for ; i < len(o.items); i++ {
		if max > 0 && len(out) >= max {
			break
		}
		if it := o.items[i]; !it.gone {
			out = append(out, it.Entry)
		}
	}
	return out
}

// Ack deletes every entry with seq <= seq: the controller stored them.
func (o *Outbox) Ack(seq uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, it := range o.items {
		if it.Seq > seq {
			break
		}
		if !it.gone {
			it.gone = true
			o.live--
		}
	}
	o.compactLocked()
}

// OldestUnacked returns the seq of the oldest entry still held, 0 when empty.
func (o *Outbox) OldestUnacked() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, it := range o.items {
		if !it.gone {
			return it.Seq
		}
	}
	return 0
}

// LastSeq returns the seq of the newest entry ever appended, 0 for none.
func (o *Outbox) LastSeq() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.nextSeq - 1
}

// Len returns how many entries await an ack.
func (o *Outbox) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.live
}

// Dropped returns how many entries were dropped because the outbox was full.
func (o *Outbox) Dropped() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.dropped
}

// Notify returns a channel that receives a value after entries are appended.
// Wake-ups coalesce: one receive may stand for many appends, so a reader
// calls Pending after each receive. It is meant for a single reader.
func (o *Outbox) Notify() <-chan struct{} { return o.notify }

// Close releases the outbox. The in-memory outbox holds nothing to release;
// a durable one closes its file.
func (o *Outbox) Close() error { return nil }
