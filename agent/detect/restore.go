package detect

import (
	"maps"
	"sort"
	"strconv"
	"time"
)

// ResolutionUnconfirmed is the resolution of an issue restored after a
// restart whose condition no rule saw again within StaleAfter: it cleared
// while the agent was down, or nothing reports on it any more.
const ResolutionUnconfirmed = "not seen again since the agent restarted"

// OpenIssue is an open issue with what the engine needs to continue it
// after a restart.
type OpenIssue struct {
	Issue
	// Held: suppressed by its cause (CausedBy) and never announced.
	Held bool
}

// OpenState returns copies of every open issue, suppressed ones included,
// ordered by device and fingerprint: what an agent saves so that a restart
// continues its issues (Restore) instead of opening them anew.
func (e *Engine) OpenState() []OpenIssue {
	var out []OpenIssue
	for _, d := range e.devices {
		for fp, is := range d.open {
			out = append(out, OpenIssue{Issue: clone(is), Held: d.held[fp]})
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

// Restore loads the open issues of an earlier run (OpenState), at time at.
// A condition that still holds continues its issue: same id, same first
// seen, and no second opening. Threshold, anomaly and flow conditions
// continue firing from the issue's last sighting, so one that cleared
// while the agent was down resolves as its rule says (after
// keep_firing_for); device and interface conditions are judged again by the
// next poll. An issue no rule sees again within StaleAfter of at resolves
// with ResolutionUnconfirmed. Call it on a new engine, before the first
// observation; issues already open are kept and win.
func (e *Engine) Restore(issues []OpenIssue, at time.Time) {
	for _, oi := range issues {
		is := oi.Issue
		if is.Device == "" || is.Fingerprint == "" || is.State != StateOpen {
			continue
		}
		d := e.device(is.Device)
		if d.open[is.Fingerprint] != nil {
			continue
		}
		is.Attributes = maps.Clone(is.Attributes)
		if is.Attributes == nil {
			is.Attributes = map[string]string{}
		}
		d.open[is.Fingerprint] = &is
		if oi.Held {
			d.held[is.Fingerprint] = true
		}
		if iface := restoredIface(is); iface != "" {
			d.ifaceOf[is.Fingerprint] = iface
		}
		d.restoredAt = at
		e.stats.Restored++
		since := is.FirstSeen
		if t, err := time.Parse(time.RFC3339Nano, is.Attributes["since"]); err == nil {
			since = t
		}
		switch {
		case is.Kind == KindDeviceUnreachable:
			// Continue counting failures rather than start again at one.
			d.failures, _ = strconv.Atoi(is.Attributes["failures"])
			d.firstFailure = is.FirstSeen
			d.lastError = is.Attributes["last_error"]
		case isFlowKind(is.Kind):
			if e.flows == nil {
				e.flows = map[string]*flowDevice{}
			}
			fd := e.flows[is.Device]
			if fd == nil {
				fd = &flowDevice{conds: map[string]*flowCond{}}
				e.flows[is.Device] = fd
			}
			fd.conds[is.Fingerprint] = &flowCond{
				cond: cond{activeSince: since, lastTrue: is.LastSeen, lastEval: at, firing: true},
				kind: is.Kind, object: is.Object, sev: is.Severity, summary: is.Summary, attrs: maps.Clone(is.Attributes),
			}
		case e.condKind(is.Kind):
			c := &cond{activeSince: since, lastTrue: is.LastSeen, lastEval: at, firing: true}
			if is.Kind == KindMetricAnomaly {
				c.peak, _ = strconv.ParseFloat(is.Attributes["peak_score"], 64)
				c.onset.Expected, _ = strconv.ParseFloat(is.Attributes["expected"], 64)
				c.onset.Lower, _ = strconv.ParseFloat(is.Attributes["lower"], 64)
				c.onset.Upper, _ = strconv.ParseFloat(is.Attributes["upper"], 64)
			}
			d.conds[is.Fingerprint] = c
		}
	}
}

// restoredIface is the interface a restored issue concerns, for
// correlation: the object of interface issues, the ifName of metric ones.
func restoredIface(is Issue) string {
	switch {
	case is.Kind == KindInterfaceDown || is.Kind == KindInterfaceFlapping:
		return is.Object
	case is.Attributes["ifName"] != "":
		return is.Attributes["ifName"]
	}
	return ""
}

func isFlowKind(kind string) bool {
	switch kind {
	case KindHighFlowCount, KindPortScan, KindSYNFlood, KindTrafficSpike, KindCaptureDrops:
		return true
	}
	return false
}

// condKind reports whether issues of kind come from a threshold or anomaly
// rule condition.
func (e *Engine) condKind(kind string) bool {
	if kind == KindMetricAnomaly {
		return true
	}
	for i := range e.thresholds {
		if e.thresholds[i].Kind == kind {
			return true
		}
	}
	return false
}

// sweepRestored resolves, StaleAfter after a restore, the device's
// restored issues that no rule saw since.
func (e *Engine) sweepRestored(c *changes, d *deviceState, at time.Time) {
	if d.restoredAt.IsZero() || at.Sub(d.restoredAt) < e.opts.StaleAfter {
		return
	}
	restoredAt := d.restoredAt
	d.restoredAt = time.Time{}
	for _, fp := range sortedKeys(d.open) {
		if is := d.open[fp]; is.LastSeen.Before(restoredAt) {
			delete(d.conds, fp)
			c.resolve(d, is, at, ResolutionUnconfirmed)
		}
	}
}
