// Package detect is the detection engine: it consumes polls (samples or a
// failure) and trap events in time order per device and emits issue changes
// (opened, updated, resolved). It is pure computation on the polls'
// timestamps: no I/O, no clock, no gRPC, so the same polls always give the
// same changes, ids included, whether live, replayed or in a test.
//
// The rules:
//   - device_unreachable (consecutive failed polls), device_rebooted
//     (sysUpTime went back, or a cold_start/warm_start trap),
//     interface_down (admin up, oper down; also from link_down traps);
//   - interface_flapping: the Nagios percent state change over the last 21
//     checks of an interface, opening at 20 % and resolving below 5 %;
//   - threshold rules (high_utilization, interface_errors, high_cpu,
//     high_memory, high_temperature, or any kind configured) with for and
//     keep_firing_for, per metric and per label or device match;
//   - metric_anomaly: the score of agent/detect/anomaly on a series stays
//     high (onset at min_score, held while out of band) for for;
//   - flow rules on the intervals of a capture point (ObserveFlows, see
//     flowrules.go): high_flow_count, port_scan, syn_flood, traffic_spike,
//     capture_drops.
//
// One issue per fingerprint (kind/device/object): a condition that holds
// updates its issue (severity, evidence) and never opens a second one.
// Issues another issue explains are suppressed (see correlate.go). Rules see
// gauges and the rates the collector computed (one place handles wraps,
// resets and reboots); raw counters are not rule values. Memory is bounded
// per device by what it reports: state of series and conditions not seen
// for StaleAfter is dropped, anomaly series live in a fixed-size set.
package detect

import (
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/netaiops/netaiops/agent/detect/anomaly"
	"github.com/netaiops/netaiops/collector"
)

// Issue kinds the engine raises.
const (
	KindDeviceUnreachable = "device_unreachable"
	KindInterfaceDown     = "interface_down"
	KindDeviceRebooted    = "device_rebooted"
)

// ClockStep is how far before a device's newest poll a poll must be to be
// taken as the clock stepping back (NTP, an operator, a poll dated ahead)
// rather than as a late poll, which is ignored. A device's polls come one
// at a time, so a late one is late by well under this.
const ClockStep = 10 * time.Minute

// DefaultUnreachableAfter is how many consecutive failed polls open
// device_unreachable when Options leave it 0.
const DefaultUnreachableAfter = 3

// Options tune the rules. The zero value runs the shipped defaults.
type Options struct {
	// UnreachableAfter is the number of consecutive failed polls that opens
	// device_unreachable; 0 or less means DefaultUnreachableAfter.
	UnreachableAfter int

	// Thresholds are the threshold rules; nil means DefaultThresholds(),
	// an empty non-nil slice none. For one kind and one series, the first
	// rule whose metric and match fit applies, so put overrides for some
	// devices or interfaces before the general rule.
	Thresholds []ThresholdRule
	// Anomalies are the anomaly rules; nil means DefaultAnomalies(), an
	// empty non-nil slice none.
	Anomalies []AnomalyRule
	// Flap tunes interface_flapping.
	Flap FlapOptions

	// Settle is how long after a device comes back (from unreachable or a
	// reboot), or after a root issue resolves, the issues it caused stay
	// suppressed: interfaces coming up and counters restarting are not
	// news. 0 means DefaultSettle.
	Settle time.Duration
	// CorrelationWait is how many more failed polls a device_unreachable
	// that no known cause explains waits while an upstream neighbour has
	// not been polled since, or is failing itself; 0 means
	// DefaultCorrelationWait, negative none.
	CorrelationWait int
	// Topology lists known parent/child links. With Roots, LLDP neighbour
	// samples add the links the configuration does not name.
	Topology []Link
	// Roots are the devices closest to the agent: LLDP adjacencies are
	// oriented away from them.
	Roots []string

	// Scorer scores metric series for metric_anomaly; nil means an
	// anomaly.Set of MaxAnomalySeries series, made at the first sample an
	// anomaly rule matches.
	Scorer Scorer
	// MaxAnomalySeries bounds the series scored; 0 means
	// DefaultMaxAnomalySeries.
	MaxAnomalySeries int
	// StaleAfter drops the state of a series or rule condition that got
	// no sample for that long (an open issue of it resolves with "no
	// data"); 0 means DefaultStaleAfter.
	StaleAfter time.Duration
	// Flows tunes the flow rules.
	Flows FlowOptions

	// MaxTrapDevices bounds the devices that traps from unknown senders
	// (not polled targets) bring into the engine; a trap from one more
	// is counted in Stats.TrapDevicesRefused and ignored. 0 means
	// DefaultMaxTrapDevices, negative none.
	MaxTrapDevices int
	// TrapDeviceQuiet is how long such a device is kept without a trap;
	// then it is forgotten and its open issues resolve. 0 means
	// DefaultTrapDeviceQuiet.
	TrapDeviceQuiet time.Duration
}

// Scorer scores one value of a series for anomaly rules. *anomaly.Set is
// one; key identifies the series (device, metric and labels).
type Scorer interface {
	Update(key uint64, t time.Time, v float64) (anomaly.Result, error)
}

// Stats counts what the engine did beyond the changes it returned.
type Stats struct {
	Suppressed     uint64 // issues opened as caused by another issue, not returned
	Released       uint64 // suppressed issues that outlived their cause and were returned as opened
	Attributed     uint64 // returned issues later marked as caused by a root issue
	Deferred       uint64 // failed polls an unexplained device_unreachable waited for its upstream
	AnomalyDropped uint64 // samples not scored because the scorer was full
	Restored       uint64 // open issues loaded from an earlier run (Restore)
	ClockSteps     uint64 // polls taken as a clock step back (ClockStep) rather than ignored as late
	// Devices brought in by traps from unknown senders: held now, refused
	// (MaxTrapDevices reached), forgotten after TrapDeviceQuiet.
	TrapDevices          int
	TrapDevicesRefused   uint64
	TrapDevicesForgotten uint64
}

// Engine holds the state of every device it has seen. It is not safe for
// concurrent use: one goroutine owns it and feeds it polls and events.
type Engine struct {
	agentID    string
	opts       Options
	devices    map[string]*deviceState
	thresholds []thresholdRule
	anomalies  []anomalyRule
	scorer     Scorer
	topo       topology
	stats      Stats
	flows      map[string]*flowDevice // flow rule state by capture point
	traps      trapDevices            // devices of unknown trap senders (events.go)
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
	// held are the open issues caused by another issue and not returned
	// (suppressed); released when their cause is gone for Settle.
	held map[string]bool
	// ifaceOf names the interface an open issue concerns, for correlation.
	ifaceOf map[string]string
	// recent remembers resolved issues that can cause others, for Settle.
	recent map[string]recentRoot
	// quietUntil: issues of the device opening before it are caused by
	// quietCause (a reboot, a recovery from unreachable).
	quietUntil   time.Time
	quietCause   string
	trapRebootAt time.Time // last reboot reported by a trap

	bootAt  time.Time          // boot time of the last reboot seen by polls
	conds   map[string]*cond   // threshold and anomaly rule state by fingerprint
	flaps   map[string]*flap   // interface state history by object
	ifaces  map[string]ifKnown // interfaces of the last poll by object
	lldp    []neighbour        // LLDP neighbours of the last poll that had some
	sysName string
	// restoredAt is when issues of an earlier run were restored (zero:
	// none waiting); see Restore and sweepRestored.
	restoredAt time.Time
}

// recentRoot is a resolved issue that may still explain others.
type recentRoot struct {
	at   time.Time
	root string // its root fingerprint: itself or what caused it
}

// New returns an engine whose issue ids are derived from agentID.
// Invalid rules (see Options.Validate) are left out.
func New(agentID string, opts Options) *Engine {
	if opts.UnreachableAfter <= 0 {
		opts.UnreachableAfter = DefaultUnreachableAfter
	}
	if opts.Settle <= 0 {
		opts.Settle = DefaultSettle
	}
	if opts.CorrelationWait == 0 {
		opts.CorrelationWait = DefaultCorrelationWait
	} else if opts.CorrelationWait < 0 {
		opts.CorrelationWait = 0
	}
	if opts.MaxAnomalySeries <= 0 {
		opts.MaxAnomalySeries = DefaultMaxAnomalySeries
	}
	if opts.StaleAfter <= 0 {
		opts.StaleAfter = DefaultStaleAfter
	}
	if opts.Flap.Window < 2 {
		opts.Flap.Window = DefaultFlapWindow
	}
	if opts.Flap.High <= 0 {
		opts.Flap.High, opts.Flap.Low = DefaultFlapHigh, DefaultFlapLow
	}
	opts.Flows.defaults()
	th, an, _ := compileRules(opts)
	e := &Engine{agentID: agentID, opts: opts, devices: map[string]*deviceState{}, thresholds: th, anomalies: an,
		scorer: opts.Scorer}
	e.topo.dirty = true
	return e
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats { return e.stats }

func (e *Engine) device(name string) *deviceState {
	d := e.devices[name]
	if d == nil {
		d = &deviceState{open: map[string]*Issue{}, held: map[string]bool{}, ifaceOf: map[string]string{},
			recent: map[string]recentRoot{}, conds: map[string]*cond{}, flaps: map[string]*flap{}, ifaces: map[string]ifKnown{}}
		e.devices[name] = d
		e.topo.dirty = true
	}
	return d
}

// Observe runs the rules on one poll and returns the changes it caused, in a
// fixed order: device_unreachable, device_rebooted, then interfaces by
// ifIndex (flapping before down) and vanished interfaces by name, then
// metric rules by fingerprint, then suppressed issues released and issues
// of other devices attributed to a root this poll opened. A poll older than
// the newest one already observed for its device, by less than ClockStep,
// is ignored (nil): rules only move forward in time. One older by more is
// a clock step back and observed.
//
// Issues caused by another (interfaces and metrics of a device that is
// unreachable or just rebooted, a device behind a link that went down) are
// suppressed: kept open with CausedBy set, visible in Open and Suppressed,
// but not returned. The device-level rules run before the others, so a
// child never fires in the same poll as its cause.
func (e *Engine) Observe(p collector.Poll) []Change {
	name := p.Target.Name
	d := e.device(name)
	if !d.lastPoll.IsZero() && p.Time.Before(d.lastPoll) {
		if d.lastPoll.Sub(p.Time) < ClockStep {
			return nil // late: an older poll says nothing new
		}
		// Far older than the newest: the clock stepped back, or that poll
		// was dated ahead. Time goes on from this poll, or one bad
		// timestamp would silence the device until the clock caught up.
		e.stats.ClockSteps++
	}
	d.lastPoll = p.Time
	var ch changes
	if p.Err != nil {
		e.failed(&ch, d, name, p)
	} else {
		e.succeeded(&ch, d, name, p)
	}
	e.settle(&ch, d, name, p.Time)
	return ch
}

// ObserveSamples runs the rules on samples of one device that did not come
// from a whole poll (flow features, a partial walk): metric rules only.
// Samples must be of one device, in time order, at one time.
func (e *Engine) ObserveSamples(device string, at time.Time, samples []collector.Sample) []Change {
	d := e.device(device)
	var ch changes
	e.metrics(&ch, d, device, at, samples)
	e.settle(&ch, d, device, at)
	return ch
}

// Open returns copies of the currently open issues, suppressed ones
// included (CausedBy set), ordered by device and fingerprint.
func (e *Engine) Open() []Issue { return e.list(false) }

// Suppressed returns copies of the open issues that were never returned
// because another issue caused them, ordered by device and fingerprint.
func (e *Engine) Suppressed() []Issue { return e.list(true) }

func (e *Engine) list(heldOnly bool) []Issue {
	var out []Issue
	for _, d := range e.devices {
		for fp, is := range d.open {
			if !heldOnly || d.held[fp] {
				out = append(out, clone(is))
			}
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
	return e.forget(device, at, "target removed")
}

func (e *Engine) forget(device string, at time.Time, resolution string) []Change {
	delete(e.flows, device)
	d := e.devices[device]
	if d == nil {
		return nil
	}
	delete(e.devices, device)
	e.topo.dirty = true
	var ch changes
	for _, fp := range sortedKeys(d.open) {
		ch.resolve(d, d.open[fp], at, resolution)
	}
	return ch
}

// changes collects one poll's changes.
type changes []Change

func (c *changes) add(t ChangeType, at time.Time, is *Issue) {
	ch := Change{Type: t, Time: at, Issue: clone(is)}
	fit(&ch.Issue)
	*c = append(*c, ch)
}

// resolve closes an open issue; a suppressed one goes silently, as it was
// never announced.
func (c *changes) resolve(d *deviceState, is *Issue, at time.Time, resolution string) {
	is.State = StateResolved
	is.ResolvedAt = at
	is.LastSeen = at
	is.Attributes["resolution"] = resolution
	is.Attributes["duration"] = at.Sub(is.FirstSeen).Round(time.Second).String()
	fp := is.Fingerprint
	delete(d.open, fp)
	delete(d.ifaceOf, fp)
	if canCause(is.Kind) {
		d.recent[fp] = recentRoot{at: at, root: rootOf(is)}
	}
	if d.held[fp] {
		delete(d.held, fp)
		return
	}
	c.add(Resolved, at, is)
}

// update announces a changed open issue, unless it is suppressed.
func (c *changes) update(d *deviceState, is *Issue, at time.Time) {
	if !d.held[is.Fingerprint] {
		c.add(Updated, at, is)
	}
}

// open opens an issue of an interface or the device (iface ""), suppressed
// when another issue causes it.
func (e *Engine) open(c *changes, d *deviceState, kind, device, object string, sev Severity, firstSeen, at time.Time, summary string, attrs map[string]string) {
	e.openIface(c, d, kind, device, object, "", sev, firstSeen, at, summary, attrs)
}

func (e *Engine) openIface(c *changes, d *deviceState, kind, device, object, iface string, sev Severity, firstSeen, at time.Time, summary string, attrs map[string]string) {
	fp := Fingerprint(kind, device, object)
	if is := d.open[fp]; is != nil {
		// One issue per condition: an issue restored from an earlier run
		// (or still open for another reason) continues, with its id and
		// first sighting, rather than a second issue opening.
		carry(is.Attributes, attrs)
		is.Severity, is.Summary, is.LastSeen, is.Attributes = sev, summary, at, attrs
		if iface != "" {
			d.ifaceOf[fp] = iface
		}
		c.update(d, is, at)
		return
	}
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
	if iface != "" {
		d.ifaceOf[fp] = iface
	}
	if cause := e.cause(d, kind, device, iface, at); cause != "" {
		is.CausedBy = cause
		d.held[fp] = true
		e.stats.Suppressed++
		e.countSuppressed(cause)
		return
	}
	c.add(Opened, at, is)
}

// carry keeps in fresh evidence what the engine, not the rule, added to
// an issue's attributes.
func carry(old, fresh map[string]string) {
	if n, ok := old["suppressed"]; ok {
		fresh["suppressed"] = n
	}
}

// countSuppressed counts on the root issue, silently (it shows in Open and
// in the root's next change), how many issues it suppressed.
func (e *Engine) countSuppressed(root string) {
	_, rest, _ := strings.Cut(root, "/")
	device, _, _ := strings.Cut(rest, "/") // device names hold no "/"
	if d := e.devices[device]; d != nil {
		if is := d.open[root]; is != nil {
			n, _ := strconv.Atoi(is.Attributes["suppressed"])
			is.Attributes["suppressed"] = strconv.Itoa(n + 1)
		}
	}
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
	// Wait a little for an upstream cause that may not be known yet (the
	// parent not polled since, or failing itself), so that the order in
	// which devices are polled does not decide what is the root.
	if d.failures < e.opts.UnreachableAfter+e.opts.CorrelationWait &&
		e.upstreamCause(device, p.Time) == "" && e.upstreamUndecided(device, d.firstFailure) {
		e.stats.Deferred++
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
		// Interfaces coming back and counters restarting are part of the
		// recovery, not news: hold them for Settle.
		d.quiet(p.Time.Add(e.opts.Settle), rootOf(is))
		c.resolve(d, is, p.Time, "poll succeeded")
	}
	e.reboot(c, d, device, p)
	e.interfaces(c, d, device, p)
	e.neighbours(d, device, p.Samples)
	e.metrics(c, d, device, p.Time, p.Samples)
}

// quiet makes the device's issues opening before until caused by cause.
func (d *deviceState) quiet(until time.Time, cause string) {
	if until.After(d.quietUntil) {
		d.quietUntil, d.quietCause = until, cause
	}
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
		fp := Fingerprint(KindDeviceRebooted, device, "")
		d.quiet(p.Time.Add(e.opts.Settle), fp)
		boot := p.Time.Add(-time.Duration(uptime * float64(time.Second)))
		d.bootAt = boot
		if !d.trapRebootAt.IsZero() && absDuration(boot.Sub(d.trapRebootAt)) <= 2*time.Minute {
			// A cold_start trap already reported this reboot.
			d.uptime, d.uptimeAt = uptime, p.Time
			return
		}
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
	ifaces := make(map[string]ifKnown, len(list))
	for _, st := range list {
		object := st.name
		if object == "" || seen[object] {
			// No name, or a name two interfaces share: the index tells them apart.
			object = "ifIndex." + st.index
		}
		seen[object] = true
		ifaces[object] = ifKnown{index: st.index, name: st.name, descr: st.descr, admin: st.admin, haveAdmin: st.haveAdmin}
		if !st.haveAdmin || !st.haveOper {
			continue // not enough to judge; leave any issue as it is
		}
		if st.admin == 1 {
			// Flapping first: the down that makes an interface flap is
			// part of the flapping, not an issue of its own.
			e.flapCheck(c, d, device, object, st.oper == 1, p.Time)
		} else {
			// Shut down: whatever it did before is no longer an issue.
			delete(d.flaps, object)
			if is := d.open[Fingerprint(KindInterfaceFlapping, device, object)]; is != nil {
				c.resolve(d, is, p.Time, "admin "+statusName(adminStatus, st.admin))
			}
		}
		fp := Fingerprint(KindInterfaceDown, device, object)
		is := d.open[fp]
		down := st.admin == 1 && (st.oper == 2 || st.oper == 7)
		if !down && is == nil {
			continue // up and no issue: the common case, nothing to build
		}
		attrs := map[string]string{
			"ifIndex":       st.index,
			"ifName":        st.name,
			"ifDescr":       st.descr,
			"ifAdminStatus": statusName(adminStatus, st.admin),
			"ifOperStatus":  statusName(operStatus, st.oper),
		}
		switch {
		case down && is == nil:
			e.openIface(c, d, KindInterfaceDown, device, object, object, SeverityMajor, p.Time, p.Time,
				fmt.Sprintf("%s on %s down (oper %s, admin %s)", object, device, attrs["ifOperStatus"], attrs["ifAdminStatus"]),
				attrs)
		case down:
			is.LastSeen = p.Time
			carry(is.Attributes, attrs)
			if !maps.Equal(is.Attributes, attrs) {
				is.Attributes = attrs
				is.Summary = fmt.Sprintf("%s on %s down for %s (oper %s, admin %s)", object, device,
					p.Time.Sub(is.FirstSeen).Round(time.Second), attrs["ifOperStatus"], attrs["ifAdminStatus"])
				c.update(d, is, p.Time)
			}
		case is != nil:
			carry(is.Attributes, attrs)
			is.Attributes = attrs
			resolution := "oper " + attrs["ifOperStatus"]
			if st.admin != 1 {
				resolution = "admin " + attrs["ifAdminStatus"]
			}
			c.resolve(d, is, p.Time, resolution)
		}
	}

	d.ifaces = ifaces
	for object := range d.flaps {
		if !seen[object] {
			delete(d.flaps, object)
		}
	}
	var gone []string
	for fp, is := range d.open {
		if (is.Kind == KindInterfaceDown || is.Kind == KindInterfaceFlapping) && !seen[is.Object] {
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

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// seconds renders an uptime in seconds as a duration: 3d is 72h0m0s.
func seconds(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Second).String()
}
