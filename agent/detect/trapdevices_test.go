package detect

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/netaiops/netaiops/collector"
)

func unknownColdStart(addr string, at time.Time) collector.Event {
	return collector.Event{Device: addr, Type: EventColdStart, Time: at,
		Attrs: map[string]string{"source": addr + ":162", "unknown_source": "true"}}
}

// 100 000 cold-start traps from distinct unknown senders: the engine holds
// at most MaxTrapDevices of them (the rest counted as refused), and once
// they are quiet for TrapDeviceQuiet they are forgotten and their
// device_rebooted issues resolve. Before, every sender became a device
// for good, with an issue that nothing resolved.
func TestUnknownTrapSendersBounded(t *testing.T) {
	e := New("edge-1", Options{})
	start := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	opened := map[string]bool{}
	const n = 100_000
	for i := 0; i < n; i++ {
		addr := fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&0xff, i&0xff)
		for _, c := range e.ObserveEvent(unknownColdStart(addr, start.Add(time.Duration(i)*time.Millisecond))) {
			if c.Type != Opened || c.Issue.Kind != KindDeviceRebooted {
				t.Fatalf("trap %d: %s %s", i, c.Type, c.Issue.Fingerprint)
			}
			opened[c.Issue.Fingerprint] = true
		}
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	st := e.Stats()
	if len(e.devices) != DefaultMaxTrapDevices || len(opened) != DefaultMaxTrapDevices || st.TrapDevices != DefaultMaxTrapDevices {
		t.Fatalf("%d devices, %d issues opened, %d trap devices held; want %d each", len(e.devices), len(opened), st.TrapDevices, DefaultMaxTrapDevices)
	}
	if st.TrapDevicesRefused != n-DefaultMaxTrapDevices {
		t.Fatalf("refused %d, want %d", st.TrapDevicesRefused, n-DefaultMaxTrapDevices)
	}
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 16<<20 {
		t.Fatalf("heap grew by %d MiB for %d devices", grown>>20, DefaultMaxTrapDevices)
	}

	// A known sender keeps sending: not forgotten. The others fall quiet.
	last := start.Add(n * time.Millisecond)
	kept := "10.0.0.5"
	var resolved []Change
	for tick := last; tick.Before(last.Add(DefaultTrapDeviceQuiet + DefaultTrapDeviceQuiet/4)); tick = tick.Add(time.Minute) {
		resolved = append(resolved, e.ObserveEvent(unknownColdStart(kept, tick))...)
	}
	if len(resolved) != DefaultMaxTrapDevices-1 {
		t.Fatalf("%d issues resolved after the quiet period, want %d", len(resolved), DefaultMaxTrapDevices-1)
	}
	for _, c := range resolved {
		if c.Type != Resolved || c.Issue.Kind != KindDeviceRebooted || c.Issue.Device == kept ||
			!strings.Contains(c.Issue.Attributes["resolution"], "no trap from this unknown sender for 1h0m0s") {
			t.Fatalf("change after the quiet period: %s %s resolution %q", c.Type, c.Issue.Fingerprint, c.Issue.Attributes["resolution"])
		}
	}
	st = e.Stats()
	if len(e.devices) != 1 || st.TrapDevices != 1 || st.TrapDevicesForgotten != DefaultMaxTrapDevices-1 {
		t.Fatalf("after the quiet period: %d devices, %d held, %d forgotten; want 1 1 %d", len(e.devices), st.TrapDevices,
			st.TrapDevicesForgotten, DefaultMaxTrapDevices-1)
	}
	// Room again for new senders.
	if ch := e.ObserveEvent(unknownColdStart("192.0.2.1", last.Add(2*DefaultTrapDeviceQuiet))); len(ch) != 1 || ch[0].Type != Opened {
		t.Fatalf("a new sender after the sweep: %v", ch)
	}
}

// Polls drive the sweep too (an agent whose flood stopped), and devices of
// polled targets are never the sweep's; the bound and the period are
// options.
func TestTrapDevicesSweptByPollsOptions(t *testing.T) {
	e := New("edge-1", Options{MaxTrapDevices: 2, TrapDeviceQuiet: 10 * time.Minute})
	t0 := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	for i, addr := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"} {
		e.ObserveEvent(unknownColdStart(addr, t0.Add(time.Duration(i)*time.Second)))
	}
	if st := e.Stats(); st.TrapDevices != 2 || st.TrapDevicesRefused != 1 {
		t.Fatalf("held %d refused %d, want 2 1", st.TrapDevices, st.TrapDevicesRefused)
	}
	// A polled target's trap (known sender) is not counted against the bound.
	e.Observe(collector.Poll{Target: collector.Target{Name: "core-sw1"}, Time: t0})
	e.ObserveEvent(collector.Event{Device: "core-sw1", Type: EventColdStart, Time: t0.Add(time.Second)})
	var resolved []Change
	for m := 1; m <= 12; m++ {
		resolved = append(resolved, e.Observe(collector.Poll{Target: collector.Target{Name: "core-sw1"}, Time: t0.Add(time.Duration(m) * time.Minute)})...)
	}
	var gone []string
	for _, c := range resolved {
		if c.Type == Resolved && strings.Contains(c.Issue.Attributes["resolution"], "unknown sender for 10m0s") {
			gone = append(gone, c.Issue.Device)
		}
	}
	if strings.Join(gone, " ") != "10.0.0.1 10.0.0.2" {
		t.Fatalf("resolved by the sweep: %v, want the two trap devices", gone)
	}
	if _, ok := e.devices["core-sw1"]; !ok || len(e.devices) != 1 || e.Stats().TrapDevicesForgotten != 2 {
		t.Fatalf("devices %d (core-sw1 kept: %v), forgotten %d", len(e.devices), ok, e.Stats().TrapDevicesForgotten)
	}
}
