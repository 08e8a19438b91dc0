package uplink

import (
	"testing"
	"time"
)

func TestBackoffSequence(t *testing.T) {
	b := newBackoff(time.Second, 30*time.Second)
	r := 1.0
	b.rand = func() float64 { return r }
	var got []time.Duration
	for range 7 {
		got = append(got, b.Next())
	}
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("delays %v, want %v seconds (capped at 30s)", got, want)
		}
	}
	r = 0
	if d := b.Next(); d != 15*time.Second {
		t.Fatalf("jitter low end = %v, want half the base (15s)", d)
	}
	b.Reset()
	if d := b.Next(); d != 500*time.Millisecond {
		t.Fatalf("after reset = %v, want 500ms (half of min, jitter 0)", d)
	}
}
