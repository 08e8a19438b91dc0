// Package detect is the detection engine: it consumes polls (samples or a
// failure) in time order per device and emits issue changes (opened,
// updated, resolved). It is pure computation on the polls' timestamps: no
// I/O, no clock, no gRPC, so the same polls always give the same changes,
// ids included, whether live, replayed or in a test.
package detect

import (
	"fmt"
	"maps"
	"sort"
	"strconv"
	"time"

	"github.com/netaiops/netaiops/collector"
)

// Issue kinds the engine raises.
const (
	KindDeviceUnreachable = "device_unreachable"
	KindInterfaceDown     = "interface_down"
	KindDeviceRebooted    = "device_rebooted"
)

// DefaultUnreachableAfter is how many consecutive failed polls open
// device_unreachable when Options leave it 0.
const DefaultUnreachableAfter = 3

// Options tune the rules.
type Options struct {
	// UnreachableAfter is the number of consecutive failed polls that opens
	// device_unreachable; 0 or less means DefaultUnreachableAfter.
	UnreachableAfter int
}

// Engine holds the state of every device it has seen. It is not safe for
// concurrent use: one goroutine owns it and feeds it polls.
type Engine struct {
	agentID string
	opts    Options
	devices map[string]*deviceState
}

// deviceState is what the rules remember of one device between polls.
type deviceState struct {
	lastPoll     time.Time // newest poll observed; older ones are ignored
	failures     int       // consecutive failed polls
	firstFailure time.Time
	lastError    string
	lastSuccess  time.Time

	uptime     float64 // sysUpTime of the last successful poll that had one
	uptimeAt   time.Time
	haveUptime bool

	open map[string]*Issue // open issues by fingerprint
}

// New returns an engine whose issue ids are derived from agentID.
func New(agentID string, opts Options) *Engine {
	if opts.UnreachableAfter <= 0 {
		opts.UnreachableAfter = DefaultUnreachableAfter
	}
	return &Engine{agentID: agentID, opts: opts, devices: map[string]*deviceState{}}
}

// Observe runs the rules on one poll and returns the changes it caused, in a
// fixed order: device_unreachable, device_rebooted, then interfaces by
// ifIndex and vanished interfaces by name. A poll older than the newest one
// already observed for its device is ignored (nil): rules only move forward
// in time.
func (e *Engine) Observe(p collector.Poll) []Change {
	name := p.Target.Name
	d := e.devices[name]
	if d == nil {
		d = &deviceState{open: map[string]*Issue{}}
		e.devices[name] = d
	}
	if !d.lastPoll.IsZero() && p.Time.Before(d.lastPoll) {
		return nil
	}
	d.lastPoll = p.Time
	var ch changes
	if p.Err != nil {
		e.failed(&ch, d, name, p)
	} else {
		e.succeeded(&ch, d, name, p)
	}
	return ch
}

// Open returns copies of the currently open issues, ordered by device and
// fingerprint.
func (e *Engine) Open() []Issue {
	var out []Issue
	for _, d := range e.devices {
		for _, is := range d.open {
			out = append(out, clone(is))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Device != out[j].Device {
			return out[i].Device < out[j].Device
		}
		return out[i].Fingerprint < out[j].Fingerprint
	})
	return out
}

// Forget drops a device the agent no longer polls (removed from the
// configuration), resolving its open issues at time at with resolution
// "target removed", ordered by fingerprint.
func (e *Engine) Forget(device string, at time.Time) []Change {
	d := e.devices[device]
	if d == nil {
		return nil
	}
	delete(e.devices, device)
	var ch changes
	for _, fp := range sortedKeys(d.open) {
		ch.resolve(d, d.open[fp], at, "target removed")
	}
	return ch
}

// changes collects one poll's changes.
type changes []Change

func (c *changes) add(t ChangeType, at time.Time, is *Issue) {
	*c = append(*c, Change{Type: t, Time: at, Issue: clone(is)})
}

func (c *changes) resolve(d *deviceState, is *Issue, at time.Time, resolution string) {
	is.State = StateResolved
	is.ResolvedAt = at
	is.LastSeen = at
	is.Attributes["resolution"] = resolution
	delete(d.open, is.Fingerprint)
	c.add(Resolved, at, is)
}

func (e *Engine) open(c *changes, d *deviceState, kind, device, object string, sev Severity, firstSeen, at time.Time, summary string, attrs map[string]string) {
	fp := Fingerprint(kind, device, object)
	is := &Issue{
		ID:          IssueID(e.agentID, fp, firstSeen),
		Device:      device,
		Kind:        kind,
		Object:      object,
		Fingerprint: fp,
		Severity:    sev,
		State:       StateOpen,
		Summary:     summary,
		FirstSeen:   firstSeen,
		LastSeen:    at,
		Attributes:  attrs,
	}
	d.open[fp] = is
	c.add(Opened, at, is)
}

// failed runs device_unreachable on a failed poll. Interface and reboot
// state is unknown while the device does not answer, so their issues stay
// as they are.
func (e *Engine) failed(c *changes, d *deviceState, device string, p collector.Poll) {
	if d.failures == 0 {
		d.firstFailure = p.Time
	}
	d.failures++
	d.lastError = p.Err.Error()
	fp := Fingerprint(KindDeviceUnreachable, device, "")
	if is := d.open[fp]; is != nil {
		// Still unreachable: keep the evidence current for Open and the
		// eventual resolution, but say nothing (no update per failed poll).
		is.LastSeen = p.Time
		is.Attributes["failures"] = strconv.Itoa(d.failures)
		is.Attributes["last_error"] = d.lastError
		return
	}
	if d.failures < e.opts.UnreachableAfter {
		return
	}
	lastSuccess := "never"
	if !d.lastSuccess.IsZero() {
		lastSuccess = formatTime(d.lastSuccess)
	}
	e.open(c, d, KindDeviceUnreachable, device, "", SeverityCritical, d.firstFailure, p.Time,
		fmt.Sprintf("%s unreachable: %d consecutive polls failed", device, d.failures),
		map[string]string{
			"failures":      strconv.Itoa(d.failures),
			"first_failure": formatTime(d.firstFailure),
			"last_error":    d.lastError,
			"last_success":  lastSuccess,
		})
}

func (e *Engine) succeeded(c *changes, d *deviceState, device string, p collector.Poll) {
	d.failures = 0
	d.lastError = ""
	d.lastSuccess = p.Time
	if is := d.open[Fingerprint(KindDeviceUnreachable, device, "")]; is != nil {
		c.resolve(d, is, p.Time, "poll succeeded")
	}
	e.reboot(c, d, device, p)
	e.interfaces(c, d, device, p)
}

// uptimeWrap is where sysUpTime (TimeTicks, 32 bits of 1/100 s) wraps:
// after about 497 days.
const uptimeWrap = float64(1<<32) / 100

// reboot runs device_rebooted: sysUpTime lower than at the previous
// successful poll, unless the counter merely wrapped. The issue is an event:
// it resolves at the next successful poll.
func (e *Engine) reboot(c *changes, d *deviceState, device string, p collector.Poll) {
	if is := d.open[Fingerprint(KindDeviceRebooted, device, "")]; is != nil {
		c.resolve(d, is, p.Time, "next poll")
	}
	uptime, ok := 0.0, false
	for _, s := range p.Samples {
		if s.Metric == "sysUpTime" {
			uptime, ok = s.Value, true
			break
		}
	}
	if !ok {
		return
	}
	if d.haveUptime && uptime < d.uptime && !wrapped(d.uptime, uptime, p.Time.Sub(d.uptimeAt)) {
		e.open(c, d, KindDeviceRebooted, device, "", SeverityWarning, p.Time, p.Time,
			fmt.Sprintf("%s rebooted (up %s, was up %s)", device, seconds(uptime), seconds(d.uptime)),
			map[string]string{
				"previous_uptime": formatFloat(d.uptime),
				"uptime":          formatFloat(uptime),
			})
	}
	d.uptime, d.uptimeAt, d.haveUptime = uptime, p.Time, true
}

// wrapped reports whether sysUpTime going from prev to now over elapsed is
// the 32-bit counter wrapping rather than a restart: the value expected
// from the elapsed time, less the wrap, matches within a minute or 10%.
func wrapped(prev, now float64, elapsed time.Duration) bool {
	expected := prev + elapsed.Seconds()
	if expected < uptimeWrap {
		return false
	}
	tolerance := max(60, elapsed.Seconds()/10)
	diff := now - (expected - uptimeWrap)
	return diff <= tolerance && diff >= -tolerance
}

// ifState is one interface as a poll reports it.
type ifState struct {
	index               string
	name, descr         string
	admin, oper         float64
	haveAdmin, haveOper bool
}

// interfaces runs interface_down: admin up and oper down or
// lowerLayerDown. It resolves when oper leaves those states, when admin is
// no longer up (a deliberate shutdown is not an issue), or when the
// interface is gone from a successful poll.
func (e *Engine) interfaces(c *changes, d *deviceState, device string, p collector.Poll) {
	byIndex := map[string]*ifState{}
	for _, s := range p.Samples {
		if s.Metric != "ifAdminStatus" && s.Metric != "ifOperStatus" {
			continue
		}
		idx := s.Labels.Get("ifIndex")
		st := byIndex[idx]
		if st == nil {
			st = &ifState{index: idx, name: s.Labels.Get("ifName"), descr: s.Labels.Get("ifDescr")}
			byIndex[idx] = st
		}
		if s.Metric == "ifAdminStatus" {
			st.admin, st.haveAdmin = s.Value, true
		} else {
			st.oper, st.haveOper = s.Value, true
		}
	}
	list := make([]*ifState, 0, len(byIndex))
	for _, st := range byIndex {
		list = append(list, st)
	}
	sort.Slice(list, func(i, j int) bool { return indexLess(list[i].index, list[j].index) })

	seen := map[string]bool{} // objects present in this poll
	for _, st := range list {
		object := st.name
		if object == "" || seen[object] {
			// No name, or a name two interfaces share: the index tells them apart.
			object = "ifIndex." + st.index
		}
		seen[object] = true
		if !st.haveAdmin || !st.haveOper {
			continue // not enough to judge; leave any issue as it is
		}
		fp := Fingerprint(KindInterfaceDown, device, object)
		is := d.open[fp]
		down := st.admin == 1 && (st.oper == 2 || st.oper == 7)
		attrs := map[string]string{
			"ifIndex":       st.index,
			"ifName":        st.name,
			"ifDescr":       st.descr,
			"ifAdminStatus": statusName(adminStatus, st.admin),
			"ifOperStatus":  statusName(operStatus, st.oper),
		}
		switch {
		case down && is == nil:
			e.open(c, d, KindInterfaceDown, device, object, SeverityMajor, p.Time, p.Time,
				fmt.Sprintf("%s on %s down (oper %s, admin %s)", object, device, attrs["ifOperStatus"], attrs["ifAdminStatus"]),
				attrs)
		case down:
			is.LastSeen = p.Time
			if !maps.Equal(is.Attributes, attrs) {
				is.Attributes = attrs
				is.Summary = fmt.Sprintf("%s on %s down (oper %s, admin %s)", object, device, attrs["ifOperStatus"], attrs["ifAdminStatus"])
				c.add(Updated, p.Time, is)
			}
		case is != nil:
			is.Attributes = attrs
			resolution := "oper " + attrs["ifOperStatus"]
			if st.admin != 1 {
				resolution = "admin " + attrs["ifAdminStatus"]
			}
			c.resolve(d, is, p.Time, resolution)
		}
	}

	var gone []string
	for fp, is := range d.open {
		if is.Kind == KindInterfaceDown && !seen[is.Object] {
			gone = append(gone, fp)
		}
	}
	sort.Strings(gone)
	for _, fp := range gone {
		c.resolve(d, d.open[fp], p.Time, "interface gone")
	}
}

// indexLess orders ifIndex labels numerically, odd ones after, by text.
func indexLess(a, b string) bool {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	switch {
	case errA == nil && errB == nil:
		return x < y
	case errA == nil || errB == nil:
		return errA == nil
	}
	return a < b
}

var (
	adminStatus = map[float64]string{1: "up", 2: "down", 3: "testing"}
	operStatus  = map[float64]string{1: "up", 2: "down", 3: "testing", 4: "unknown", 5: "dormant", 6: "notPresent", 7: "lowerLayerDown"}
)

func statusName(names map[float64]string, v float64) string {
	if n, ok := names[v]; ok {
		return n
	}
	return formatFloat(v)
}

func clone(is *Issue) Issue {
	c := *is
	c.Attributes = maps.Clone(is.Attributes)
	return c
}

func sortedKeys(m map[string]*Issue) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// seconds renders an uptime in seconds as a duration: 3d is 72h0m0s.
func seconds(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Second).String()
}
