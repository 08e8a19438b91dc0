package detect

import (
	"fmt"
	"sort"
	"time"

	"github.com/netaiops/netaiops/collector"
)

// Event types the engine understands; others are ignored.
const (
	EventColdStart = "cold_start"
	EventWarmStart = "warm_start"
	EventLinkDown  = "link_down"
	EventLinkUp    = "link_up"
)

// ObserveEvent runs the rules on one trap event and returns the changes it
// caused. cold_start and warm_start open device_rebooted (resolved by the
// next successful poll, which does not report the same reboot again);
// link_down and link_up (attributes ifIndex and, when known, ifName and
// ifAdminStatus) count as checks for flap detection and open or resolve
// interface_down at once, before the next poll confirms. Correlation
// applies as to polls: a link_down of a device that is rebooting is
// suppressed.
//
// A trap from an unknown sender (attribute unknown_source, set when the
// sender is no polled target) brings in a device only while fewer than
// MaxTrapDevices such devices are held; a device that sent no trap for
// TrapDeviceQuiet is forgotten, its open issues resolved (see
// sweepTrapDevices): nothing else would ever resolve them.
func (e *Engine) ObserveEvent(ev collector.Event) []Change {
	switch ev.Type {
	case EventColdStart, EventWarmStart, EventLinkDown, EventLinkUp:
	default:
		return nil
	}
	var c changes
	if ev.Attrs["unknown_source"] == "true" {
		if !e.traps.admit(e, ev.Device, ev.Time) {
			e.sweepTrapDevices(&c, ev.Time)
			return c
		}
	}
	d := e.device(ev.Device)
	switch ev.Type {
	case EventColdStart, EventWarmStart:
		e.rebootTrap(&c, d, ev)
	default:
		e.linkTrap(&c, d, ev)
	}
	e.settle(&c, d, ev.Device, ev.Time)
	return c
}

func (e *Engine) rebootTrap(c *changes, d *deviceState, ev collector.Event) {
	fp := Fingerprint(KindDeviceRebooted, ev.Device, "")
	if !d.bootAt.IsZero() && absDuration(ev.Time.Sub(d.bootAt)) <= 2*time.Minute {
		return // a late trap of a reboot a poll already reported
	}
	d.trapRebootAt = ev.Time
	d.quiet(ev.Time.Add(e.opts.Settle), fp)
	if d.open[fp] != nil {
		return
	}
	e.open(c, d, KindDeviceRebooted, ev.Device, "", SeverityWarning, ev.Time, ev.Time,
		fmt.Sprintf("%s rebooted (%s trap)", ev.Device, ev.Type),
		map[string]string{"source": "trap", "trap": ev.Type})
}

func (e *Engine) linkTrap(c *changes, d *deviceState, ev collector.Event) {
	if ev.Time.Before(d.lastPoll) {
		return // a poll after it already told the interface's state
	}
	index, name := ev.Attrs["ifIndex"], ev.Attrs["ifName"]
	object := name
	known, ok := d.ifaces[name]
	if name == "" {
		for o, k := range d.ifaces {
			if k.index == index && index != "" {
				object, known, ok = o, k, true
				break
			}
		}
	}
	if object == "" {
		if index == "" {
			return // no way to name the interface
		}
		object = "ifIndex." + index
	}
	admin := ev.Attrs["ifAdminStatus"]
	if admin == "" && ok && known.haveAdmin {
		admin = statusName(adminStatus, known.admin)
	}
	if admin != "" && admin != "up" && admin != "1" {
		return // a deliberate shutdown is not an issue
	}
	up := ev.Type == EventLinkUp
	e.flapCheck(c, d, ev.Device, object, up, ev.Time)
	fp := Fingerprint(KindInterfaceDown, ev.Device, object)
	is := d.open[fp]
	switch {
	case up && is != nil:
		is.Attributes["ifOperStatus"] = "up"
		c.resolve(d, is, ev.Time, "link_up trap")
	case !up && is == nil:
		attrs := map[string]string{"ifIndex": index, "ifName": name, "ifDescr": known.descr,
			"ifAdminStatus": "up", "ifOperStatus": "down", "source": "trap"}
		if attrs["ifIndex"] == "" {
			attrs["ifIndex"] = known.index
		}
		if attrs["ifName"] == "" {
			attrs["ifName"] = known.name
		}
		e.openIface(c, d, KindInterfaceDown, ev.Device, object, object, SeverityMajor, ev.Time, ev.Time,
			fmt.Sprintf("%s on %s down (link_down trap, admin up)", object, ev.Device), attrs)
	}
}

// trapDevices tracks the devices that traps from unknown senders brought
// into the engine, by the time of their last trap, so that a flood of
// traps from ever new addresses (spoofed, or a misdirected fleet) cannot
// grow the engine without bound.
type trapDevices struct {
	last      map[string]time.Time
	nextSweep time.Time
}

func (e *Engine) maxTrapDevices() int {
	switch n := e.opts.MaxTrapDevices; {
	case n == 0:
		return DefaultMaxTrapDevices
	case n < 0:
		return 0
	default:
		return n
	}
}

func (e *Engine) trapDeviceQuiet() time.Duration {
	if e.opts.TrapDeviceQuiet <= 0 {
		return DefaultTrapDeviceQuiet
	}
	return e.opts.TrapDeviceQuiet
}

// admit notes a trap from an unknown sender and reports whether the
// engine takes it: a device already known (polled, or admitted before)
// always, a new one while fewer than MaxTrapDevices are held.
func (t *trapDevices) admit(e *Engine, device string, at time.Time) bool {
	if last, ok := t.last[device]; ok {
		if at.After(last) {
			t.last[device] = at
		}
		return true
	}
	if _, ok := e.devices[device]; ok {
		return true // a device the engine knows otherwise is not the flood's
	}
	if len(t.last) >= e.maxTrapDevices() {
		e.stats.TrapDevicesRefused++
		return false
	}
	if t.last == nil {
		t.last = map[string]time.Time{}
	}
	t.last[device] = at
	e.stats.TrapDevices = len(t.last)
	return true
}

// sweepTrapDevices forgets the devices of unknown trap senders that sent
// no trap for TrapDeviceQuiet before at, resolving their open issues. It
// looks at most every eighth of that period (on sample time, driven by
// every poll, sample and trap), so a device goes between TrapDeviceQuiet
// and an eighth more after its last trap. A device polled since it came
// is no longer the sweep's.
func (e *Engine) sweepTrapDevices(c *changes, at time.Time) {
	t := &e.traps
	if len(t.last) == 0 || at.Before(t.nextSweep) {
		return
	}
	quiet := e.trapDeviceQuiet()
	t.nextSweep = at.Add(quiet / 8)
	var gone []string
	for dev, last := range t.last {
		if at.Sub(last) >= quiet {
			gone = append(gone, dev)
		}
	}
	sort.Strings(gone)
	for _, dev := range gone {
		delete(t.last, dev)
		if d := e.devices[dev]; d == nil || !d.lastPoll.IsZero() {
			continue
		}
		*c = append(*c, e.forget(dev, at, fmt.Sprintf("no trap from this unknown sender for %v: forgotten", quiet))...)
		e.stats.TrapDevicesForgotten++
	}
	e.stats.TrapDevices = len(t.last)
}
