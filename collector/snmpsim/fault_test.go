package snmpsim

import (
	"reflect"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
)

const (
	oidIfOper3     = ".1.3.6.1.2.1.2.2.1.8.3"
	oidIfAdmin3    = ".1.3.6.1.2.1.2.2.1.7.3"
	oidIfLastCh3   = ".1.3.6.1.2.1.2.2.1.9.3"
	oidIfHCIn3     = ".1.3.6.1.2.1.31.1.1.1.6.3"
	oidIfHCIn1     = ".1.3.6.1.2.1.31.1.1.1.6.1"
	oidIfIn1       = ".1.3.6.1.2.1.2.2.1.10.1"
	oidSysUpTime0  = ".1.3.6.1.2.1.1.3.0"
	oidSysUpTimeSt = ".1.3.6.1.2.1.1.3"
)

func TestInterfaceDownFault(t *testing.T) {
	_, clk, addr := demo(t)
	g := client(t, addr, "core-sw1", gosnmp.Version2c)
	type obs struct {
		oper, admin int
		last        uint32
		hcIn        uint64
	}
	at := func(d time.Duration) obs {
		clk.Set(d)
		vs := mustGet(t, g, oidIfOper3, oidIfAdmin3, oidIfLastCh3, oidIfHCIn3)
		return obs{vs[0].Value.(int), vs[1].Value.(int), uint32(u64(vs[2].Value)), u64(vs[3].Value)}
	}
	before := at(19 * time.Second)
	if before.oper != 1 || before.last != 0 {
		t.Fatalf("at 19s: %+v, want oper up and no change since boot", before)
	}
	down := at(21 * time.Second)
	if down.oper != 2 || down.admin != 1 {
		t.Fatalf("at 21s: oper %d admin %d, want down(2) with admin up(1)", down.oper, down.admin)
	}
	if down.last == 0 {
		t.Errorf("at 21s: ifLastChange still 0 after going down")
	}
	later := at(79 * time.Second)
	if later.oper != 2 || later.hcIn != down.hcIn {
		t.Errorf("at 79s: oper %d, in-octets %d -> %d; want down and frozen counters", later.oper, down.hcIn, later.hcIn)
	}
	up := at(81 * time.Second)
	if up.oper != 1 || up.last-down.last != 6000 {
		t.Errorf("at 81s: oper %d, ifLastChange moved %d ticks; want up after exactly 60s", up.oper, up.last-down.last)
	}
	grown := at(90 * time.Second)
	if grown.hcIn <= up.hcIn {
		t.Errorf("counters did not grow after the link came back: %d -> %d", up.hcIn, grown.hcIn)
	}
	// The fault repeats every 180s.
	if again := at(205 * time.Second); again.oper != 2 {
		t.Errorf("at 205s: oper %d, want down again (period 180s)", again.oper)
	}
	if after := at(261 * time.Second); after.oper != 1 {
		t.Errorf("at 261s: oper %d, want up", after.oper)
	}
	// Other interfaces are untouched.
	clk.Set(30 * time.Second)
	if vs := mustGet(t, g, ".1.3.6.1.2.1.2.2.1.8.4"); vs[0].Value != 1 {
		t.Errorf("ifOperStatus.4 = %v during the fault on 3, want up", vs[0].Value)
	}
}

func TestUnreachableFault(t *testing.T) {
	srv, clk, addr := demo(t)
	g := client(t, addr, "edge-sw1", gosnmp.Version2c)
	g.Timeout = 200 * time.Millisecond
	for _, tc := range []struct {
		at     time.Duration
		answer bool
	}{{29 * time.Second, true}, {31 * time.Second, false}, {119 * time.Second, false}, {121 * time.Second, true},
		{271 * time.Second, false}, {361 * time.Second, true}} {
		clk.Set(tc.at)
		_, err := g.Get([]string{".1.3.6.1.2.1.1.5.0"})
		if (err == nil) != tc.answer {
			t.Errorf("at %v: err %v, want answered=%v", tc.at, err, tc.answer)
		}
	}
	if got := srv.Stats().DroppedSilent; got != 3 {
		t.Errorf("silent drops = %d, want 3", got)
	}
	// Other devices keep answering while edge-sw1 is silent.
	clk.Set(40 * time.Second)
	mustGet(t, client(t, addr, "edge-sw2", gosnmp.Version2c), ".1.3.6.1.2.1.1.5.0")
}

func TestRebootFault(t *testing.T) {
	_, clk, addr := demo(t)
	g := client(t, addr, "edge-sw2", gosnmp.Version2c)
	at := func(d time.Duration) (uint32, uint64, uint32) {
		clk.Set(d)
		vs := mustGet(t, g, oidSysUpTime0, oidIfHCIn1, oidIfIn1)
		return uint32(u64(vs[0].Value)), u64(vs[1].Value), uint32(u64(vs[2].Value))
	}
	up1, hc1, c1 := at(149 * time.Second)
	if up1 < 86400*100 {
		t.Errorf("uptime before the reboot = %d ticks, want at least a day", up1)
	}
	if uint32(hc1) != c1 {
		t.Errorf("ifInOctets %d is not ifHCInOctets %d mod 2^32", c1, hc1)
	}
	up2, hc2, _ := at(151 * time.Second)
	if up2 != 100 {
		t.Errorf("uptime 1s after the reboot = %d ticks, want 100", up2)
	}
	if hc2 >= hc1 {
		t.Errorf("ifHCInOctets after reboot %d, want restarted below %d", hc2, hc1)
	}
	up3, hc3, _ := at(449 * time.Second)
	if up3 != 29900 || hc3 <= hc2 {
		t.Errorf("at 449s: uptime %d (want 29900), counter %d -> %d (want growth)", up3, hc2, hc3)
	}
	if up4, _, _ := at(451 * time.Second); up4 != 100 {
		t.Errorf("uptime 1s after the second reboot (450s) = %d, want 100", up4)
	}
}

func TestCountersDeterministic(t *testing.T) {
	a := newServer(t, DefaultScenario(), newFakeClock(), Options{})
	b := newServer(t, DefaultScenario(), newFakeClock(), Options{})
	da, db := a.devices["core-sw1"], b.devices["core-sw1"]
	for _, now := range []float64{0, 1, 3600, 86400 * 3} {
		sa, sb := da.snapshot(now), db.snapshot(now)
		for i := range da.tab.entries {
			_, va := da.value(&da.tab.entries[i], sa)
			_, vb := db.value(&db.tab.entries[i], sb)
			if !reflect.DeepEqual(va, vb) {
				t.Fatalf("at %vs %s: %v vs %v from the same seed", now, da.tab.entries[i].name, va, vb)
			}
		}
	}
	// HC counters are monotonic over a day of samples and follow the rate.
	d := da
	var last uint64
	for s := 0.0; s < day; s += 600 {
		e := &d.tab.entries[mustIndex(t, d, oidIfHCIn1)]
		_, v := d.value(e, d.snapshot(s))
		if v.(uint64) < last {
			t.Fatalf("ifHCInOctets.1 went backwards at %vs: %d < %d", s, v, last)
		}
		last = v.(uint64)
	}
}

// u64 reads the unsigned types gosnmp decodes (uint for Counter32, Gauge32
// and TimeTicks, uint64 for Counter64).
func u64(v any) uint64 {
	switch x := v.(type) {
	case uint:
		return uint64(x)
	case uint32:
		return uint64(x)
	case uint64:
		return x
	}
	return 1<<64 - 1
}

func mustIndex(t *testing.T, d *device, name string) int {
	t.Helper()
	o, err := ParseOID(name)
	if err != nil {
		t.Fatal(err)
	}
	i, ok := d.tab.search(o)
	if !ok {
		t.Fatalf("%s not in table", name)
	}
	return i
}

func TestFaultWindows(t *testing.T) {
	f := Fault{Kind: InterfaceDown, Interface: 1, At: 20 * time.Second, Duration: 60 * time.Second, Every: 180 * time.Second}
	for _, tc := range []struct {
		now, down float64
		active    bool
	}{{0, 0, false}, {20, 0, true}, {50, 30, true}, {80, 60, false}, {199, 60, false}, {200, 60, true}, {400, 140, true}, {450, 180, false}} {
		if got := active(f, tc.now); got != tc.active {
			t.Errorf("active at %v = %v, want %v", tc.now, got, tc.active)
		}
		if got := downBefore(f, tc.now); got != tc.down {
			t.Errorf("downBefore %v = %v, want %v", tc.now, got, tc.down)
		}
	}
	once := Fault{Kind: Unreachable, At: 10 * time.Second, Duration: 5 * time.Second}
	if !active(once, 12) || active(once, 15) || active(once, 1e6) {
		t.Errorf("one-shot window wrong")
	}
}

// TestDiurnalCurve: traffic is higher in the UTC afternoon than at night on
// every interface, and the rate stays within the interface speed.
func TestDiurnalCurve(t *testing.T) {
	srv := newServer(t, DefaultScenario(), newFakeClock(), Options{}) // start 12:00 UTC
	d := srv.devices["core-sw1"]
	rate := func(slot int, at float64) float64 {
		e := &d.tab.entries[mustIndex(t, d, ".1.3.6.1.2.1.31.1.1.1.6."+itoa(slot+1))]
		_, a := d.value(e, d.snapshot(at))
		_, b := d.value(e, d.snapshot(at+600))
		return float64(b.(uint64)-a.(uint64)) / 600
	}
	for slot := range d.ifs {
		if slot == 2 {
			continue // interface 3 has a scripted outage
		}
		day, night := rate(slot, 2*3600), rate(slot, 14*3600) // 14:00 and 02:00 UTC
		if day < 1.5*night {
			t.Errorf("interface %d: %.0f B/s at 14:00, %.0f B/s at 02:00; want a daily swing", slot+1, day, night)
		}
		if max := float64(d.ifs[slot].speed) / 8; day > max {
			t.Errorf("interface %d: %.0f B/s exceeds its speed (%.0f B/s)", slot+1, day, max)
		}
	}
}
