package detect

import (
	"testing"
	"time"

	"github.com/netaiops/netaiops/collector"
	"github.com/netaiops/netaiops/collector/flow"
)

// restart is what an agent does across a restart: save the open issues of
// e, start a new engine with the same options, restore them at time at.
func restart(e *Engine, o Options, at time.Time) *Engine {
	n := New("edge-1", o)
	n.Restore(e.OpenState(), at)
	return n
}

// onlyIDs returns the ids of the open issues by fingerprint.
func openIDs(e *Engine) map[string]string {
	out := map[string]string{}
	for _, is := range e.Open() {
		out[is.Fingerprint] = is.ID
	}
	return out
}

// A condition that still holds after a restart keeps its issue (same id,
// no second opening) and resolves as usual when it clears; one that cleared
// while the agent was down resolves at the next poll, with the same id.
func TestRestoreContinuesDeviceAndInterfaceIssues(t *testing.T) {
	o := noRules()
	e := New("edge-1", o)
	eth2Down := iface{3, "eth2", "Ethernet 2", 1, 2}
	eth2Up := iface{3, "eth2", "Ethernet 2", 1, 1}
	checkChanges(t, run(e, []collector.Poll{ok(0, 100, lo, eth1Down, eth2Down)}),
		[]string{"opened interface_down/core-sw1/eth1 @0", "opened interface_down/core-sw1/eth2 @0"})
	before := openIDs(e)

	// Restart; eth1 is still down, eth2 came up while the agent was away.
	e = restart(e, o, at(5))
	if got := openIDs(e); len(got) != 2 || got["interface_down/core-sw1/eth1"] != before["interface_down/core-sw1/eth1"] {
		t.Fatalf("restored %v; want %v", got, before)
	}
	cs := e.Observe(ok(6, 160, lo, eth1Down, eth2Up))
	checkChanges(t, describeAll(cs), []string{"resolved interface_down/core-sw1/eth2 @6"})
	if cs[0].Issue.ID != before["interface_down/core-sw1/eth2"] || cs[0].Issue.Attributes["resolution"] != "oper up" {
		t.Errorf("resolved %+v; want the restored issue, resolution oper up", cs[0].Issue)
	}
	cs = e.Observe(ok(7, 170, lo, eth1Up, eth2Up))
	checkChanges(t, describeAll(cs), []string{"resolved interface_down/core-sw1/eth1 @7"})
	if cs[0].Issue.ID != before["interface_down/core-sw1/eth1"] {
		t.Errorf("resolved id %s; want the restored %s", cs[0].Issue.ID, before["interface_down/core-sw1/eth1"])
	}

	// device_unreachable continues counting failures across the restart.
	e = New("edge-1", o)
	checkChanges(t, run(e, []collector.Poll{fail(10), fail(11), fail(12), fail(13), fail(14)}),
		[]string{"opened device_unreachable/core-sw1/ @12"})
	id := openIDs(e)["device_unreachable/core-sw1/"]
	e = restart(e, o, at(15))
	if cs := e.Observe(fail(16)); len(cs) != 0 {
		t.Fatalf("a failed poll after restart: %v", describeAll(cs))
	}
	if is := e.Open()[0]; is.ID != id || is.Attributes["failures"] != "6" {
		t.Errorf("after restart and a failed poll: %+v; want id %s, 6 failures", is, id)
	}
	cs = e.Observe(ok(17, 100, lo))
	if len(cs) != 1 || cs[0].Issue.ID != id || cs[0].Type != Resolved {
		t.Errorf("recovery: %v", describeAll(cs))
	}
}

func describeAll(cs []Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, describe(c))
	}
	return out
}

// Threshold conditions continue firing from their last sighting: still
// violating, the issue continues without waiting for "for" again; cleared,
// it resolves after keep_firing_for.
func TestRestoreContinuesThresholdIssues(t *testing.T) {
	o := noRules()
	o.Thresholds = []ThresholdRule{{Kind: KindHighCPU, Metric: "cpuUtilization", Threshold: 90, For: 30 * time.Second, KeepFiringFor: 20 * time.Second}}
	const fp = "high_cpu/core-sw1/"
	var polls []collector.Poll
	for i := range 4 {
		polls = append(polls, poll(dev, i, gauge("cpuUtilization", 95)))
	}
	for _, still := range []bool{true, false} {
		e := New("edge-1", o)
		checkChanges(t, observeAll(e, polls...), []string{"opened " + fp + " @3"})
		id := openIDs(e)[fp]
		e = restart(e, o, at(4))
		if still {
			if got := observeAll(e, poll(dev, 5, gauge("cpuUtilization", 96)), poll(dev, 6, gauge("cpuUtilization", 97))); len(got) != 0 {
				t.Errorf("still violating after restart: %v; want the issue to continue silently", got)
			}
			if got := openIDs(e)[fp]; got != id {
				t.Errorf("id after restart %s; want %s", got, id)
			}
			continue
		}
		cs := observeChanges(e, poll(dev, 5, gauge("cpuUtilization", 50)), poll(dev, 6, gauge("cpuUtilization", 50)))
		if len(cs) != 1 || cs[0].Type != Resolved || cs[0].Issue.ID != id || cs[0].Issue.Attributes["resolution"] != "cleared" {
			t.Errorf("cleared while the agent was down: %v", describeAll(cs))
		}
	}
}

// An issue no rule sees again (here interface_flapping of an interface
// that is now stable) resolves StaleAfter after the restore.
func TestRestoreResolvesUnconfirmed(t *testing.T) {
	o := noRules()
	o.StaleAfter = time.Minute
	e := New("edge-1", o)
	var got []string
	for i := range 12 {
		f := eth1Up
		if i%2 == 1 {
			f = eth1Down
		}
		got = append(got, describeAll(e.Observe(ok(i, float64(100+10*i), lo, f)))...)
	}
	fp := Fingerprint(KindInterfaceFlapping, dev, "eth1")
	id := openIDs(e)[fp]
	if id == "" {
		t.Fatalf("no flapping issue: %v", got)
	}
	e = restart(e, o, at(12))
	var cs []Change
	for i := 13; i < 20; i++ {
		cs = append(cs, e.Observe(ok(i, float64(100+10*i), lo, eth1Up))...)
	}
	if len(cs) != 1 || cs[0].Issue.ID != id || cs[0].Issue.Attributes["resolution"] != ResolutionUnconfirmed || cs[0].Time != at(18) {
		t.Fatalf("after restart: %v; want %s resolved as %q at @18", describeAll(cs), fp, ResolutionUnconfirmed)
	}
}

// A flow condition that holds after a restart continues its issue; one
// that cleared resolves after keep_firing_for.
func TestRestoreContinuesFlowIssues(t *testing.T) {
	o := Options{Flows: FlowOptions{HighFlowCount: HighFlowCountOptions{ActiveFlows: 1000, NewFlowsPerSecond: 50, NoAnomaly: true}}}
	busy := func(s *flow.Snapshot) { s.Active, s.NewFlows = 1500, 800 }
	for _, still := range []bool{true, false} {
		e := New("edge-1", o)
		cs := e.ObserveFlows(capDev, snap(0, busy))
		if len(cs) != 1 || cs[0].Type != Opened {
			t.Fatalf("opening: %v", describeAll(cs))
		}
		id := cs[0].Issue.ID
		e = restart(e, o, at(2))
		if still {
			cs = e.ObserveFlows(capDev, snap(3, busy))
			if len(cs) != 0 || openIDs(e)[cs0fp(id, e)] != id {
				t.Errorf("still busy after restart: %v, open %v; want the same issue, silently", describeAll(cs), openIDs(e))
			}
			continue
		}
		cs = nil
		for i := 3; i < 40; i++ {
			cs = append(cs, e.ObserveFlows(capDev, snap(i, nil))...)
		}
		if len(cs) != 1 || cs[0].Type != Resolved || cs[0].Issue.ID != id || cs[0].Issue.Attributes["resolution"] != "cleared" {
			t.Errorf("cleared while the agent was down: %v", describeAll(cs))
		}
	}
}

// cs0fp is the fingerprint of the open issue with id.
func cs0fp(id string, e *Engine) string {
	for fp, got := range openIDs(e) {
		if got == id {
			return fp
		}
	}
	return ""
}

// Suppressed issues stay suppressed across a restart: not announced, and
// released as opened when their cause is gone, as without a restart.
func TestRestoreKeepsSuppressed(t *testing.T) {
	o := noRules()
	e := New("edge-1", o)
	run(e, []collector.Poll{ok(0, 1000, lo, eth1Up)})
	// A reboot: the interface down just after it is caused by the reboot.
	cs := e.Observe(ok(1, 5, lo, eth1Down))
	if len(find(cs, KindInterfaceDown, "eth1")) != 0 || len(e.Suppressed()) != 1 {
		t.Fatalf("interface_down after a reboot not suppressed: %v", describeAll(cs))
	}
	e = restart(e, o, at(2))
	if len(e.Suppressed()) != 1 {
		t.Fatalf("suppressed after restart: %v", e.Suppressed())
	}
	var all []Change
	for i := 3; i < 20; i++ {
		all = append(all, e.Observe(ok(i, float64(5+10*i), lo, eth1Down))...)
	}
	if got := find(all, KindInterfaceDown, "eth1"); len(got) != 1 || got[0].Type != Opened {
		t.Errorf("released after settle: %v", describeAll(all))
	}
}

// One poll dated far ahead (a device or host clock gone wrong) must not
// silence the device until the clock catches up: a poll far older than the
// newest is a clock step back and is judged; a merely late one is ignored.
func TestPollDatedAheadDoesNotSilenceDevice(t *testing.T) {
	e := New("edge-1", noRules())
	run(e, []collector.Poll{ok(0, 100, lo, eth1Up)})
	ahead := ok(1, 110, lo, eth1Up)
	ahead.Time = ahead.Time.Add(365 * 24 * time.Hour)
	e.Observe(ahead)
	late := ok(2, 120, lo, eth1Down)
	late.Time = ahead.Time.Add(-time.Minute) // late by a minute: ignored
	if cs := e.Observe(late); len(cs) != 0 {
		t.Fatalf("a late poll was judged: %v", describeAll(cs))
	}
	checkChanges(t, describeAll(e.Observe(ok(3, 130, lo, eth1Down))), []string{"opened interface_down/core-sw1/eth1 @3"})
	if s := e.Stats(); s.ClockSteps != 1 {
		t.Errorf("ClockSteps = %d, want 1", s.ClockSteps)
	}
}
