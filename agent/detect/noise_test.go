package detect

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netaiops/netaiops/collector"
)

// The noise benchmark (make bench-noise): scripted network scenarios fed to
// an engine with the shipped rules, counting the issues it raises.

// simIface is one interface of a simulated device.
type simIface struct {
	index    int
	name     string
	speedMb  float64 // ifHighSpeed
	base     float64 // mean inbound bytes/s at the daily peak
	in, out  float64 // raw counters
	wrap     float64 // counter modulus: 2^64, or 2^32 for an agent with 32-bit counters
	down     bool
	surge    float64 // factor on inbound traffic, 0: none
	lldpPeer string  // LLDP neighbour on this port, and its port
	peerPort string
	// lastIn, lastOut: the counters of the previous poll, for the rates.
	lastIn, lastOut float64
}

// simDevice is one simulated device.
type simDevice struct {
	name     string
	offset   time.Duration // phase of its polls within the interval
	bootedAt time.Time
	ifaces   []*simIface
	dead     bool // does not answer
	rng      *rand.Rand
	// What the collector keeps between polls to compute rates, and what
	// it did: counter wraps computed across, intervals left without a rate.
	polled             bool
	lastUptime         float64
	lastAt             time.Time
	wraps, discontinue int
}

// counterRate is what collector/snmp reports for an octet counter going
// from prev to cur over gap (collector/snmp/rate.go, tested there): the
// delta across one wrap of a Counter32; nothing for a Counter64 that went
// back (a reset) or for a rate beyond the interface's speed.
func (d *simDevice) counterRate(f *simIface, prev, cur float64, gap time.Duration) (float64, bool) {
	delta := cur - prev
	if delta < 0 {
		if f.wrap != 1<<32 {
			d.discontinue++
			return 0, false
		}
		delta += f.wrap
		d.wraps++
	}
	r := delta / gap.Seconds()
	if r*8 > f.speedMb*1e6*1.1 {
		d.discontinue++
		return 0, false
	}
	return r, true
}

// phase spreads devices over the interval as the agent does: by a hash of the name.
func phase(name string, interval time.Duration) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(name))
	return time.Duration(h.Sum64() % uint64(interval))
}

// diurnal is the share of the daily peak at t: low at night, peak in the afternoon.
func diurnal(t time.Time) float64 {
	h := float64(t.UTC().Hour()) + float64(t.UTC().Minute())/60
	return 0.55 + 0.45*math.Sin(2*math.Pi*(h-9)/24)
}

// poll advances the device's counters to t and returns what the SNMP
// collector would: sysUpTime, sysName, interface status, speed, octet
// counters, their rates and the interfaces' utilisation (none at the first
// poll or across a reboot), and the LLDP neighbours.
func (d *simDevice) poll(t time.Time, dt time.Duration) collector.Poll {
	p := collector.Poll{Target: collector.Target{Name: d.name}, Time: t}
	if d.dead {
		p.Err = fmt.Errorf("poll %s: request timeout", d.name)
		return p
	}
	add := func(metric string, kind collector.MetricKind, v float64, ls collector.Labels) {
		p.Samples = append(p.Samples, collector.Sample{Device: d.name, Metric: metric, Labels: ls, Value: v, Kind: kind, Time: t})
	}
	uptime := math.Floor(t.Sub(d.bootedAt).Seconds())
	add("sysUpTime", collector.Gauge, uptime, nil)
	rates := d.polled && uptime >= d.lastUptime
	if d.polled && !rates {
		d.discontinue += 2 * len(d.ifaces)
	}
	gap := t.Sub(d.lastAt)
	d.polled, d.lastUptime, d.lastAt = true, uptime, t
	add("sysName", collector.Info, 1, collector.NewLabels("sysName", d.name))
	for _, f := range d.ifaces {
		ls := collector.NewLabels("ifIndex", strconv.Itoa(f.index), "ifName", f.name, "ifDescr", f.name)
		oper := 1.0
		if f.down {
			oper = 2
		} else if f.base > 0 {
			noise := 1 + 0.15*d.rng.NormFloat64()
			rate := max(0, f.base*diurnal(t)*noise)
			in := rate
			if f.surge > 0 {
				in *= f.surge
			}
			f.in = math.Mod(f.in+in*dt.Seconds(), f.wrap)
			f.out = math.Mod(f.out+0.4*rate*dt.Seconds(), f.wrap)
		}
		add("ifAdminStatus", collector.Gauge, 1, ls)
		add("ifOperStatus", collector.Gauge, oper, ls)
		add("ifHighSpeed", collector.Gauge, f.speedMb, ls)
		in, out := math.Floor(f.in), math.Floor(f.out)
		add("ifHCInOctets", collector.Counter, in, ls)
		add("ifHCOutOctets", collector.Counter, out, ls)
		if rates {
			if r, ok := d.counterRate(f, f.lastIn, in, gap); ok {
				add("ifHCInOctets_rate", collector.Rate, r, ls)
				add(MetricInUtilization, collector.Rate, r*800/(f.speedMb*1e6), ls)
			}
			if r, ok := d.counterRate(f, f.lastOut, out, gap); ok {
				add("ifHCOutOctets_rate", collector.Rate, r, ls)
				add(MetricOutUtilization, collector.Rate, r*800/(f.speedMb*1e6), ls)
			}
		}
		f.lastIn, f.lastOut = in, out
		if f.lldpPeer != "" {
			add("lldpRemSysName", collector.Info, 1, collector.NewLabels("ifName", f.name, "lldpRemSysName", f.lldpPeer, "lldpRemPortId", f.peerPort))
		}
	}
	return p
}

// reboot restarts the device at t: uptime and counters from zero.
func (d *simDevice) reboot(t time.Time) {
	d.bootedAt = t
	for _, f := range d.ifaces {
		f.in, f.out = 0, 0
	}
}

// sim runs devices polled every interval, in time order, with a script
// called before each round of polls.
type sim struct {
	interval time.Duration
	devices  []*simDevice
	engine   *Engine
	changes  []Change
}

func (s *sim) run(from, to time.Time, script func(t time.Time)) {
	type due struct {
		d *simDevice
		t time.Time
	}
	for tick := from; tick.Before(to); tick = tick.Add(s.interval) {
		script(tick)
		var dues []due
		for _, d := range s.devices {
			dues = append(dues, due{d, tick.Add(d.offset)})
		}
		sort.Slice(dues, func(i, j int) bool { return dues[i].t.Before(dues[j].t) })
		for _, x := range dues {
			s.changes = append(s.changes, s.engine.Observe(x.d.poll(x.t, s.interval))...)
		}
	}
}

func (s *sim) event(ev collector.Event) {
	s.changes = append(s.changes, s.engine.ObserveEvent(ev)...)
}

// opened counts the opened changes by kind, and lists them.
func opened(cs []Change) (map[string]int, []string) {
	byKind := map[string]int{}
	var list []string
	for _, c := range cs {
		if c.Type == Opened {
			byKind[c.Issue.Kind]++
			list = append(list, c.Issue.Fingerprint+" @"+c.Time.UTC().Format("Mon 15:04:05"))
		}
	}
	return byKind, list
}

func newDevice(name string, interval time.Duration, boot time.Time, seed uint64) *simDevice {
	return &simDevice{name: name, offset: phase(name, interval), bootedAt: boot, rng: rand.New(rand.NewPCG(seed, 1))}
}

// TestNoiseIncident: core-sw1's ge-0/0/1 to dist-sw1 fails for 5 minutes;
// dist-sw1 and the 19 access switches behind it stop answering, and come
// back with their uplinks down and link_down traps; meanwhile ge-0/0/9 of
// core-sw1 flaps. Target: one root issue, the rest suppressed under it;
// the flapping interface one interface_flapping issue.
func TestNoiseIncident(t *testing.T) {
	s, devices, behind, fail, heal, outage := incident()
	again, _, _, _, _, _ := incident()
	if !reflect.DeepEqual(s.changes, again.changes) {
		t.Errorf("two runs of the same incident gave different changes")
	}
	report(t, s, devices, behind, fail, heal, outage)
}

// incident runs the scripted incident; outage is what was suppressed while
// the link was down.
func incident() (s *sim, devices, behind []*simDevice, fail, heal time.Time, outage []Issue) {
	const interval = 10 * time.Second
	start := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	boot := start.Add(-40 * 24 * time.Hour)
	core := newDevice("core-sw1", interval, boot, 1)
	core.ifaces = []*simIface{
		{index: 1, name: "ge-0/0/1", speedMb: 10000, base: 300e6, wrap: 1 << 64, lldpPeer: "dist-sw1", peerPort: "xe-0/0/0"},
		{index: 9, name: "ge-0/0/9", speedMb: 1000, base: 20e6, wrap: 1 << 64},
		{index: 10, name: "ge-0/0/10", speedMb: 1000, base: 30e6, wrap: 1 << 64},
	}
	dist := newDevice("dist-sw1", interval, boot, 2)
	dist.ifaces = []*simIface{{index: 1, name: "xe-0/0/0", speedMb: 10000, base: 250e6, wrap: 1 << 64, lldpPeer: "core-sw1", peerPort: "ge-0/0/1"}}
	devices = []*simDevice{core, dist}
	behind = []*simDevice{dist}
	for i := 1; i <= 19; i++ {
		name := fmt.Sprintf("acc-sw%02d", i)
		port := fmt.Sprintf("ge-1/0/%d", i)
		dist.ifaces = append(dist.ifaces, &simIface{index: 100 + i, name: port, speedMb: 1000, base: 10e6, wrap: 1 << 64, lldpPeer: name, peerPort: "uplink"})
		acc := newDevice(name, interval, boot, uint64(10+i))
		acc.ifaces = []*simIface{
			{index: 1, name: "uplink", speedMb: 1000, base: 10e6, wrap: 1 << 64, lldpPeer: "dist-sw1", peerPort: port},
			{index: 2, name: "access-1", speedMb: 1000, base: 2e6, wrap: 1 << 64},
			{index: 3, name: "access-2", speedMb: 1000, base: 1e6, wrap: 1 << 64},
		}
		devices = append(devices, acc)
		behind = append(behind, acc)
	}
	s = &sim{interval: interval, devices: devices, engine: New("edge-1", Options{Roots: []string{"core-sw1"}})}

	fail = start.Add(40 * time.Minute)
	heal = fail.Add(5 * time.Minute)
	flapFrom, flapTo := start.Add(50*time.Minute), start.Add(56*time.Minute)
	s.run(start, start.Add(75*time.Minute), func(tick time.Time) {
		switch {
		case tick.Equal(fail):
			core.ifaces[0].down = true
			for _, d := range behind {
				d.dead = true
			}
		case tick.Equal(heal):
			outage = s.engine.Suppressed()
			core.ifaces[0].down = false
			for _, d := range behind {
				// Back, with the uplink still coming up, and the traps
				// the devices queued while cut off.
				d.dead = false
				d.ifaces[0].down = true
				s.event(collector.Event{Device: d.name, Type: EventLinkDown, Time: tick, Attrs: map[string]string{"ifIndex": "1"}})
			}
		case tick.Equal(heal.Add(interval)):
			for _, d := range behind {
				d.ifaces[0].down = false
				s.event(collector.Event{Device: d.name, Type: EventLinkUp, Time: tick, Attrs: map[string]string{"ifIndex": "1"}})
			}
		}
		if !tick.Before(flapFrom) && tick.Before(flapTo) {
			core.ifaces[1].down = (tick.Sub(flapFrom)/interval)%3 == 1
		} else {
			core.ifaces[1].down = false
		}
	})

	return s, devices, behind, fail, heal, outage
}

func report(t *testing.T, s *sim, devices, behind []*simDevice, fail, heal time.Time, outage []Issue) {
	warm := 0
	for _, c := range s.changes {
		if c.Time.Before(fail) {
			warm++
		}
	}
	byKind, list := opened(s.changes)
	st := s.engine.Stats()
	var roots, flapDowns, other []string
	for _, l := range list {
		switch {
		case strings.HasPrefix(l, "interface_down/core-sw1/ge-0/0/1 "):
			roots = append(roots, l)
		case strings.Contains(l, "core-sw1/ge-0/0/9 "):
			flapDowns = append(flapDowns, l)
		default:
			other = append(other, l)
		}
	}
	during := map[string]int{}
	causes := map[string]bool{}
	for _, is := range outage {
		during[is.Kind]++
		causes[is.CausedBy] = true
	}
	fmt.Printf("noise incident: %d devices, 1 link down for %s, %d devices behind it, 1 flapping interface\n", len(devices), heal.Sub(fail), len(behind))
	fmt.Printf("  issues raised (opened): %d  by kind: %v\n", len(list), byKind)
	fmt.Printf("  root issues:            %d  %v\n", len(roots), roots)
	fmt.Printf("  suppressed children:    %d  (released %d, attributed later %d, deferred polls %d)\n", st.Suppressed, st.Released, st.Attributed, st.Deferred)
	fmt.Printf("  suppressed at the end of the outage: %v, caused by %v\n", during, keys(causes))
	for _, c := range s.changes {
		if c.Type == Resolved && len(roots) == 1 && strings.HasPrefix(roots[0], c.Issue.Fingerprint+" ") {
			fmt.Printf("  root resolved after %s, attributes: suppressed=%s\n", c.Issue.Attributes["duration"], c.Issue.Attributes["suppressed"])
		}
	}
	fmt.Printf("  flapping interface:     %v\n", flapDowns)
	fmt.Printf("  other issues:           %d  %v\n", len(other), other)
	if warm != 0 {
		t.Errorf("%d changes before the incident", warm)
	}
	if len(roots) != 1 || len(other) != 0 {
		t.Errorf("want one root issue and nothing else, got roots %v, other %v", roots, other)
	}
	if byKind[KindInterfaceFlapping] != 1 || len(flapDowns) > 3 {
		t.Errorf("flapping interface raised %v, want one interface_flapping (and at most two downs before it)", flapDowns)
	}
	// 20 device_unreachable, 20 uplinks down after the recovery (poll or
	// trap: one issue each), all under the root.
	if st.Suppressed < 40 || st.Released != 0 {
		t.Errorf("suppressed %d, released %d; want at least 40 suppressed, none released", st.Suppressed, st.Released)
	}
	if during[KindDeviceUnreachable] != len(behind) || len(causes) != 1 || !causes[roots[0][:strings.Index(roots[0], " ")]] {
		t.Errorf("during the outage: suppressed %v caused by %v, want %d device_unreachable under the root", during, keys(causes), len(behind))
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestNoiseWeek: a week of diurnal traffic with noise on healthy devices,
// some with 32-bit counters that wrap every few minutes and one 64-bit
// counter wrap, and one device reboot. Target: no issue but the reboot, and
// the one real anomaly injected (inbound traffic x4 for 30 minutes), so
// that silence is not blindness.
func TestNoiseWeek(t *testing.T) {
	if testing.Short() {
		t.Skip("a simulated week")
	}
	const interval = 30 * time.Second
	start := time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC)
	boot := start.Add(-100 * 24 * time.Hour)
	var devices []*simDevice
	for i := 0; i < 8; i++ {
		d := newDevice(fmt.Sprintf("sw%d", i), interval, boot, uint64(100+i))
		wrap := float64(1 << 64)
		if i%2 == 1 {
			wrap = 1 << 32 // 32-bit agent: wraps every few minutes at these rates
		}
		for j := 1; j <= 4; j++ {
			f := &simIface{index: j, name: fmt.Sprintf("ge-0/0/%d", j), speedMb: 1000, base: float64(j) * 20e6, wrap: wrap}
			if i == 0 && j == 1 {
				f.in = wrap - 5e12 // wraps on the second day
			}
			d.ifaces = append(d.ifaces, f)
		}
		devices = append(devices, d)
	}
	s := &sim{interval: interval, devices: devices, engine: New("edge-1", Options{})}
	rebootAt := start.Add(3*24*time.Hour + 14*time.Hour)
	surgeAt := start.Add(5*24*time.Hour + 11*time.Hour)
	s.run(start, start.Add(7*24*time.Hour), func(tick time.Time) {
		switch {
		case tick.Equal(surgeAt):
			devices[2].ifaces[0].surge = 4
		case tick.Equal(surgeAt.Add(30 * time.Minute)):
			devices[2].ifaces[0].surge = 0
		}
		d := devices[4]
		switch {
		case tick.Equal(rebootAt):
			d.dead = true
		case tick.Equal(rebootAt.Add(2 * interval)):
			d.dead = false
			d.reboot(tick)
			for _, f := range d.ifaces {
				f.down = true // interfaces still coming up at the first poll
			}
		case tick.Equal(rebootAt.Add(3 * interval)):
			for _, f := range d.ifaces {
				f.down = false
			}
		}
	})
	byKind, list := opened(s.changes)
	st := s.engine.Stats()
	spurious := len(list) - byKind[KindDeviceRebooted]
	found := 0
	for _, c := range s.changes {
		if c.Type == Opened && c.Issue.Fingerprint == "metric_anomaly/sw2/ge-0/0/1:ifHCInOctets_rate" &&
			!c.Time.Before(surgeAt) && c.Time.Before(surgeAt.Add(30*time.Minute)) {
			found++
			spurious--
			fmt.Printf("  injected anomaly found:  %s after %s: %s\n", c.Issue.Fingerprint, c.Time.Sub(surgeAt).Round(time.Second), c.Issue.Summary)
		}
	}
	fmt.Printf("noise week: %d devices x 4 interfaces, %s polls, 7 days of diurnal traffic, counter wraps, 1 reboot\n", len(devices), interval)
	fmt.Printf("  issues raised (opened): %d  by kind: %v\n", len(list), byKind)
	fmt.Printf("  spurious:               %d  %v\n", spurious, list)
	wraps, discontinue := 0, 0
	for _, d := range devices {
		wraps, discontinue = wraps+d.wraps, discontinue+d.discontinue
	}
	fmt.Printf("  counter wraps rated across: %d, intervals without a rate: %d, suppressed: %d\n", wraps, discontinue, st.Suppressed)
	if byKind[KindDeviceRebooted] != 1 || spurious != 0 || found != 1 {
		t.Errorf("want the reboot and the injected anomaly, got %v", list)
	}
	if wraps < 100 || discontinue < 9 {
		t.Errorf("%d wraps, %d intervals without a rate: the wraps, the 64-bit reset and the reboot were not simulated", wraps, discontinue)
	}
}
