package detect

import (
	"fmt"
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
func (e *Engine) ObserveEvent(ev collector.Event) []Change {
	switch ev.Type {
	case EventColdStart, EventWarmStart, EventLinkDown, EventLinkUp:
	default:
		return nil
	}
	d := e.device(ev.Device)
	var c changes
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
