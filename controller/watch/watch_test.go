package watch

import (
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/netaiops/netaiops/controller/store"
)

func change(pos uint64, id, device string, state store.State) store.Change {
	return store.Change{Pos: pos, Type: store.EventUpdated, Issue: store.Issue{ID: id, Device: device, Kind: "interface_down", State: state}}
}

func ids(cs []store.Change) string {
	s := ""
	for _, c := range cs {
		s += fmt.Sprintf("%s@%d ", c.Issue.ID, c.Pos)
	}
	return s
}

func TestFilterAndOrder(t *testing.T) {
	h := New(8)
	h.Start(10)
	all := h.Subscribe(store.IssueFilter{})
	defer all.Close()
	sw1 := h.Subscribe(store.IssueFilter{Device: "sw1", State: store.StateOpen})
	defer sw1.Close()
	h.Publish(change(11, "a", "sw1", store.StateOpen), change(12, "b", "sw2", store.StateOpen), change(13, "c", "sw1", store.StateResolved))
	got, next, err := all.Next(nil, 10, 10)
	if err != nil || ids(got) != "a@11 b@12 c@13 " || next != 13 {
		t.Fatalf("all: %s next %d err %v", ids(got), next, err)
	}
	// A position in the middle continues after it; the limit holds.
	got, next, err = all.Next(nil, 11, 1)
	if err != nil || ids(got) != "b@12 " || next != 12 {
		t.Fatalf("all from 11: %s next %d err %v", ids(got), next, err)
	}
	// The filtered watcher reaches the head although c did not match.
	got, next, err = sw1.Next(nil, 10, 10)
	if err != nil || ids(got) != "a@11 " || next != 13 {
		t.Fatalf("sw1: %s next %d err %v", ids(got), next, err)
	}
	if h.Watchers() != 2 {
		t.Fatalf("watchers %d", h.Watchers())
	}
	all.Close()
	all.Close()
	if h.Watchers() != 1 {
		t.Fatalf("watchers after close %d", h.Watchers())
	}
}

// A batch larger than the ring never blocks Publish and never ends a
// watcher: the one that fell behind is told to catch up from the store.
func TestLaggingWatcherIsBehindNotCutOff(t *testing.T) {
	h := New(4)
	w := h.Subscribe(store.IssueFilter{})
	defer w.Close()
	var cs []store.Change
	for i := uint64(1); i <= 300; i++ {
		cs = append(cs, change(i, fmt.Sprint(i), "sw1", store.StateOpen))
	}
	h.Publish(cs...)
	if _, pos, err := w.Next(nil, 0, 10); !errors.Is(err, ErrBehind) || pos != 0 {
		t.Fatalf("Next(0) = %d, %v; want ErrBehind", pos, err)
	}
	// From the position just before the ring's oldest, the ring serves.
	got, next, err := w.Next(nil, 296, 10)
	if err != nil || ids(got) != "297@297 298@298 299@299 300@300 " || next != 300 {
		t.Fatalf("Next(296) = %s, %d, %v", ids(got), next, err)
	}
	if h.Behind() != 1 || h.Published() != 300 {
		t.Fatalf("behind %d published %d", h.Behind(), h.Published())
	}
}

func TestNextWaitsForAMatchAndStops(t *testing.T) {
	h := New(8)
	w := h.Subscribe(store.IssueFilter{Device: "sw9"})
	defer w.Close()
	type result struct {
		cs   []store.Change
		next uint64
		err  error
	}
	res := make(chan result, 1)
	go func() {
		cs, next, err := w.Next(nil, 0, 10)
		res <- result{cs, next, err}
	}()
	h.Publish(change(1, "x", "sw1", store.StateOpen)) // no match: keeps waiting
	select {
	case r := <-res:
		t.Fatalf("Next returned on a change that does not match: %+v", r)
	case <-time.After(50 * time.Millisecond):
	}
	h.Publish(change(2, "y", "sw9", store.StateOpen))
	if r := <-res; r.err != nil || ids(r.cs) != "y@2 " || r.next != 2 {
		t.Fatalf("Next = %s, %d, %v", ids(r.cs), r.next, r.err)
	}
	stop := make(chan struct{})
	go func() {
		cs, next, err := w.Next(stop, 2, 10)
		res <- result{cs, next, err}
	}()
	close(stop)
	if r := <-res; !errors.Is(r.err, ErrStopped) || r.next != 2 {
		t.Fatalf("Next after stop = %+v", r)
	}
}

func TestLatePublishIsIgnored(t *testing.T) {
	h := New(8)
	h.Start(5)
	h.Publish(change(5, "old", "sw1", store.StateOpen), change(6, "a", "sw1", store.StateOpen), change(6, "dup", "sw1", store.StateOpen))
	if h.Head() != 6 || h.Late() != 2 || h.Published() != 1 {
		t.Fatalf("head %d late %d published %d", h.Head(), h.Late(), h.Published())
	}
}

// A watcher is a cursor, not a buffer: 10 000 idle watchers cost the hub
// next to nothing (each used to hold a 256-change buffer, ~85 KiB).
func TestIdleWatcherIsSmall(t *testing.T) {
	h := New(0)
	const n = 10000
	ws := make([]*Watcher, 0, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range n {
		ws = append(ws, h.Subscribe(store.IssueFilter{Device: "sw1"}))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%.0f bytes of heap per idle watcher", per)
	if per > 512 {
		t.Fatalf("%.0f bytes of heap per idle watcher, want at most 512", per)
	}
	for _, w := range ws {
		w.Close()
	}
	if h.Watchers() != 0 {
		t.Fatalf("watchers %d", h.Watchers())
	}
}
