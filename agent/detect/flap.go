package detect

import (
	"fmt"
	"strconv"
	"time"
)

// flap is the recent state history of one interface: up or not, one bit
// per check, newest in bit 0. Window is at most 64 checks.
type flap struct {
	bits     uint64
	n        int // checks recorded, up to the window
	flapping bool
}

// maxFlapWindow is the longest history a flap keeps.
const maxFlapWindow = 64

// record adds one check and returns the weighted percent state change over
// the window, the Nagios way: each of the window-1 transitions weighs from
// 0.8 (oldest) to 1.2 (newest), and the sum is taken over window-1.
func (f *flap) record(up bool, window int) (pct float64, transitions int) {
	window = min(window, maxFlapWindow)
	f.bits <<= 1
	if up {
		f.bits |= 1
	}
	if f.n < window {
		f.n++
	}
	slots := window - 1
	var sum float64
	// Transition j (0 newest) is between checks j and j+1.
	for j := 0; j+1 < f.n; j++ {
		if (f.bits>>j)&1 != (f.bits>>(j+1))&1 {
			transitions++
			w := 1.2
			if slots > 1 {
				w = 1.2 - 0.4*float64(j)/float64(slots-1)
			}
			sum += w
		}
	}
	return 100 * sum / float64(slots), transitions
}

// flapCheck records one check of an administratively up interface and
// opens or resolves interface_flapping with hysteresis: it opens at the
// high threshold and resolves only below the low one.
// Checks while the device settles after a reboot or an outage are not
// recorded: interfaces coming up then are not flapping.
func (e *Engine) flapCheck(c *changes, d *deviceState, device, object string, up bool, at time.Time) {
	if at.Before(d.quietUntil) || d.open[Fingerprint(KindDeviceUnreachable, device, "")] != nil {
		return
	}
	f := d.flaps[object]
	if f == nil {
		f = &flap{}
		d.flaps[object] = f
	}
	o := e.opts.Flap
	pct, transitions := f.record(up, o.Window)
	fp := Fingerprint(KindInterfaceFlapping, device, object)
	attrs := func() map[string]string {
		return map[string]string{
			"percent_state_change": strconv.FormatFloat(pct, 'f', 1, 64),
			"transitions":          strconv.Itoa(transitions),
			"window":               strconv.Itoa(min(o.Window, maxFlapWindow)),
			"checks":               strconv.Itoa(f.n),
			"high_threshold":       formatFloat(o.High),
			"low_threshold":        formatFloat(o.Low),
			"state":                map[bool]string{true: "up", false: "down"}[up],
		}
	}
	summary := func() string {
		return fmt.Sprintf("%s on %s flapping: %.0f%% state change over the last %d checks (%d transitions)",
			object, device, pct, f.n, transitions)
	}
	switch {
	case !f.flapping && pct >= o.High:
		f.flapping = true
		e.openIface(c, d, KindInterfaceFlapping, device, object, object, SeverityWarning, at, at, summary(), attrs())
		// A down already announced is now part of the flapping (unless
		// this check is the up that resolves it).
		if is := d.open[Fingerprint(KindInterfaceDown, device, object)]; !up && is != nil && !d.held[is.Fingerprint] && is.CausedBy == "" {
			if fl := d.open[fp]; fl != nil {
				is.CausedBy = rootOf(fl)
				c.update(d, is, at)
			}
		}
	case f.flapping && pct < o.Low:
		f.flapping = false
		if is := d.open[fp]; is != nil {
			is.Attributes = carried(is, attrs())
			c.resolve(d, is, at, "stable")
		}
	case f.flapping:
		if is := d.open[fp]; is != nil {
			is.LastSeen = at
			is.Attributes = carried(is, attrs())
			is.Summary = summary()
		}
	}
}
