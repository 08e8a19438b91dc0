package watch

import (
	"testing"

	"github.com/netaiops/netaiops/controller/store"
)

func change(id, device string, state store.State) store.Change {
	return store.Change{Type: store.EventUpdated, Issue: store.Issue{ID: id, Device: device, Kind: "interface_down", State: state}}
}

func TestFilterAndOrder(t *testing.T) {
	h := New(8)
	all := h.Subscribe(store.IssueFilter{})
	defer all.Close()
	sw1 := h.Subscribe(store.IssueFilter{Device: "sw1", State: store.StateOpen})
	defer sw1.Close()
	h.Publish(change("a", "sw1", store.StateOpen), change("b", "sw2", store.StateOpen), change("c", "sw1", store.StateResolved))
	for _, want := range []string{"a", "b", "c"} {
		if got := (<-all.Changes()).Issue.ID; got != want {
			t.Fatalf("all: got %s want %s", got, want)
		}
	}
	if got := (<-sw1.Changes()).Issue.ID; got != "a" {
		t.Fatalf("sw1: got %s", got)
	}
	select {
	case c := <-sw1.Changes():
		t.Fatalf("sw1 got unmatched change %+v", c)
	default:
	}
}

func TestSlowWatcherIsCutOffWithoutBlocking(t *testing.T) {
	h := New(2)
	slow := h.Subscribe(store.IssueFilter{})
	defer slow.Close()
	fast := h.Subscribe(store.IssueFilter{})
	defer fast.Close()
	for i := 0; i < 2; i++ {
		h.Publish(change("x", "sw1", store.StateOpen))
		<-fast.Changes()
	}
	// The third change does not fit the slow watcher's buffer: Publish
	// returns at once and the slow watcher is cut off.
	h.Publish(change("y", "sw1", store.StateOpen))
	select {
	case <-slow.Overflowed():
	default:
		t.Fatal("slow watcher not cut off")
	}
	select {
	case <-fast.Overflowed():
		t.Fatal("fast watcher cut off")
	default:
	}
	if got := (<-fast.Changes()).Issue.ID; got != "y" {
		t.Fatalf("fast got %s", got)
	}
	if h.Overflows() != 1 || h.Watchers() != 1 {
		t.Fatalf("overflows %d watchers %d", h.Overflows(), h.Watchers())
	}
	h.Publish(change("z", "sw1", store.StateOpen)) // must not panic on the closed channel
	slow.Close()
	slow.Close()
}
