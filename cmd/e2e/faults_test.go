package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netaiops/netaiops/collector/snmp/snmpdtest"
)

// faultRig is a simulator with a flapping load, a controller and an agent,
// all real processes on loopback, for the delivery fault tests.
type faultRig struct {
	load              flapLoad
	dir, db, dataDir  string
	ctlAddr, simAddr  string
	agentID, agentCfg string
	simStart          time.Time
	sim, ctl, agent   *proc
	procs             []*proc // every process started, for the failure dump
}

const faultAgentID = "fault-agent"

func newFaultRig(t *testing.T, load flapLoad) *faultRig {
	t.Helper()
	binaries(t)
	dir := t.TempDir()
	r := &faultRig{
		load:    load,
		dir:     dir,
		db:      filepath.Join(dir, "controller.db"),
		dataDir: filepath.Join(dir, "agent-data"),
		ctlAddr: fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t)),
		simAddr: fmt.Sprintf("127.0.0.1:%d", snmpdtest.FreePort(t)),
		agentID: faultAgentID,
	}
	// On failure, keep every process's whole output (the test log shows
	// only its tail).
	keep, err := os.MkdirTemp("", "netaiops-"+t.Name()+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			os.RemoveAll(keep)
			return
		}
		for i, p := range r.procs {
			os.WriteFile(filepath.Join(keep, fmt.Sprintf("%02d-%s.log", i, p.name)), []byte(p.output()), 0o600)
		}
		t.Logf("outputs of all processes kept in %s", keep)
	})
	r.agentCfg = filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(r.agentCfg, []byte(load.agentYAML(r.agentID, r.dataDir, r.ctlAddr, r.simAddr)), 0o600); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *faultRig) startSim(t *testing.T) {
	r.sim = start(t, filepath.Join(binDir, "netaiops-snmpsim"), nil,
		"--listen", r.simAddr, "--scenario", r.load.write(t, r.dir), "--stats-interval", "0")
	r.procs = append(r.procs, r.sim)
	r.simStart = time.Now()
}

// startController runs the controller with small batches, so that many
// batches are in flight when a fault hits.
func (r *faultRig) startController(t *testing.T, wrap ...string) {
	args := append(wrap, filepath.Join(binDir, "netaiops-controller"), "--listen", r.ctlAddr, "--insecure-allow-remote",
		"--db", r.db, "--heartbeat-interval", "1s", "--max-batch-events", "50", "--log-level", "debug")
	r.ctl = start(t, args[0], nil, args[1:]...)
	r.procs = append(r.procs, r.ctl)
}

func (r *faultRig) startAgent(t *testing.T, wrap ...string) {
	args := append(wrap, filepath.Join(binDir, "netaiops-agent"), "--config", r.agentCfg, "--log-level", "debug")
	r.agent = start(t, args[0], nil, args[1:]...)
	r.procs = append(r.procs, r.agent)
}

// finish waits until the load is over and everything is delivered, stops
// the processes and checks every event is stored exactly once.
func (r *faultRig) finish(t *testing.T, name string) {
	t.Helper()
	// A second past the last fault, the agent's polls (every 200ms) have
	// seen every interface up again.
	if rest := r.load.End() + time.Second - time.Since(r.simStart); rest > 0 {
		time.Sleep(rest)
	}
	// With the simulator gone, the agent's last changes are the devices
	// becoming unreachable; after that nothing can change, so a quiet
	// watermark means everything is delivered. (A device that times out
	// under load could otherwise open an issue just as the agent stops.)
	r.sim.stop(t)
	// The agent is connected to the controller running now once that one
	// logged its hello; the database's flag may be left over from a
	// controller killed before it could clear it.
	ctl := r.ctl
	connected := func() bool {
		out := ctl.output()
		return strings.Contains(out, `msg="agent connected"`) || strings.Contains(out, `msg="new agent connected"`)
	}
	waitDrained(t, r.db, r.agentID, connected, 6*time.Second, 2*time.Minute)
	r.agent.stop(t)
	r.ctl.stop(t)
	l := readLedger(t, r.db, r.agentID)
	check(t, name, readOutbox(t, r.dataDir), l)
	// The simulator is gone: every device is unreachable, and nothing else
	// holds (each interface was up again before the simulator stopped).
	var want []string
	for d := 1; d <= r.load.Devices; d++ {
		want = append(want, fmt.Sprintf("device_unreachable/fd%02d/", d))
	}
	checkOpen(t, name, l, want)
}

func jitter(min, max time.Duration) time.Duration {
	return min + time.Duration(rand.Int64N(int64(max-min)))
}

// TestFaultControllerKilled kills the controller with SIGKILL again and
// again while the agent streams; every event must end up stored exactly
// once.
func TestFaultControllerKilled(t *testing.T) {
	t.Parallel() // mostly waiting: the three share the wall time
	r := newFaultRig(t, flapLoad{Devices: 8, Interfaces: 32, Flaps: 6, Start: 2 * time.Second, Period: 4 * time.Second})
	r.startSim(t)
	r.startController(t)
	r.startAgent(t)
	var wm uint64
	const kills = 4
	for i := 0; i < kills; i++ {
		waitStreaming(t, r.db, r.agentID, wm, time.Minute)
		time.Sleep(jitter(100*time.Millisecond, 700*time.Millisecond))
		r.ctl.kill(t)
		_, wm, _ = agentRow(r.db, r.agentID)
		t.Logf("kill -9 controller #%d at watermark %d", i+1, wm)
		time.Sleep(jitter(time.Millisecond, 100*time.Millisecond))
		r.startController(t)
	}
	r.finish(t, fmt.Sprintf("controller kill -9 ×%d", kills))
}

// TestFaultAgentKilled kills the agent with SIGKILL mid-stream, or stops it
// with SIGTERM, and starts it again on the same data directory, a few
// times while interfaces flap: every event is stored once, and the open
// issues afterwards are the conditions that hold (no orphan left open, no
// condition with two issues).
func TestFaultAgentKilled(t *testing.T) {
	t.Parallel() // mostly waiting: the three share the wall time
	r := newFaultRig(t, flapLoad{Devices: 8, Interfaces: 32, Flaps: 5, Start: 2 * time.Second, Period: 4 * time.Second})
	r.startSim(t)
	r.startController(t)
	r.startAgent(t)
	var wm uint64
	const restarts = 4
	for i := 0; i < restarts; i++ {
		waitStreaming(t, r.db, r.agentID, wm, time.Minute)
		time.Sleep(jitter(200*time.Millisecond, 1500*time.Millisecond))
		how := "kill -9"
		if i%2 == 1 {
			how = "SIGTERM"
			r.agent.stop(t)
		} else {
			r.agent.kill(t)
		}
		_, wm, _ = agentRow(r.db, r.agentID)
		t.Logf("%s agent #%d at watermark %d", how, i+1, wm)
		r.startAgent(t)
	}
	r.finish(t, fmt.Sprintf("agent kill -9 ×%d, SIGTERM ×%d", (restarts+1)/2, restarts/2))
}

// netnsPair is two network namespaces joined by a veth pair:
// 198.18.0.1/30 on the agent's side, 198.18.0.2/30 on the controller's.
// Each namespace has its own loopback, so the addresses clash with nothing.
type netnsPair struct {
	agentNS, ctlNS     string
	agentIf, ctlIf     string
	agentAddr, ctlAddr string
}

func newNetnsPair(t *testing.T) *netnsPair {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("e2e: the network cut needs root to create network namespaces and a veth pair")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("e2e: iproute2's ip not installed (apt-get install iproute2)")
	}
	id := randHex(3)
	n := &netnsPair{agentNS: "nai-fa-" + id, ctlNS: "nai-fc-" + id, agentIf: "nfa" + id, ctlIf: "nfc" + id,
		agentAddr: "198.18.0.1", ctlAddr: "198.18.0.2"}
	for _, ns := range []string{n.agentNS, n.ctlNS} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	run(t, "ip", "link", "add", n.agentIf, "netns", n.agentNS, "type", "veth", "peer", "name", n.ctlIf, "netns", n.ctlNS)
	run(t, "ip", "-n", n.agentNS, "addr", "add", n.agentAddr+"/30", "dev", n.agentIf)
	run(t, "ip", "-n", n.ctlNS, "addr", "add", n.ctlAddr+"/30", "dev", n.ctlIf)
	n.link(t, "up")
	return n
}

// link sets both ends of the veth down or up.
func (n *netnsPair) link(t *testing.T, state string) {
	t.Helper()
	run(t, "ip", "-n", n.agentNS, "link", "set", n.agentIf, state)
	run(t, "ip", "-n", n.ctlNS, "link", "set", n.ctlIf, state)
}

// TestFaultNetworkCut puts the agent (with the simulator) and the
// controller in two network namespaces and takes the link between them
// down for a while: every event must arrive once the link is back, and the
// agent's reconnects must follow its backoff (1s doubling, each delay
// drawn from [base/2, base]).
func TestFaultNetworkCut(t *testing.T) {
	t.Parallel() // mostly waiting: the three share the wall time
	binaries(t)
	n := newNetnsPair(t)
	r := newFaultRig(t, flapLoad{Devices: 8, Interfaces: 32, Flaps: 6, Start: 2 * time.Second, Period: 4 * time.Second})
	r.ctlAddr = n.ctlAddr + ":7443"
	if err := os.WriteFile(r.agentCfg, []byte(r.load.agentYAML(r.agentID, r.dataDir, r.ctlAddr, r.simAddr)), 0o600); err != nil {
		t.Fatal(err)
	}
	r.startController(t, "ip", "netns", "exec", n.ctlNS)
	waitFor(t, 10*time.Second, "controller listening in its namespace", func() (bool, error) {
		return strings.Contains(r.ctl.output(), `msg="controller listening"`), nil
	})
	r.sim = start(t, "ip", nil, "netns", "exec", n.agentNS, filepath.Join(binDir, "netaiops-snmpsim"),
		"--listen", r.simAddr, "--scenario", r.load.write(t, r.dir), "--stats-interval", "0")
	r.simStart = time.Now()
	r.procs = append(r.procs, r.sim)
	r.startAgent(t, "ip", "netns", "exec", n.agentNS)

	waitStreaming(t, r.db, r.agentID, 0, time.Minute)
	time.Sleep(jitter(500*time.Millisecond, 1500*time.Millisecond))
	n.link(t, "down")
	time.Sleep(500 * time.Millisecond) // a batch already received is committed meanwhile
	_, wm, _ := agentRow(r.db, r.agentID)
	const cut = 12 * time.Second
	t.Logf("link down at watermark %d for %v", wm, cut)
	time.Sleep(cut)
	_, during, _ := agentRow(r.db, r.agentID)
	n.link(t, "up")
	upAt := time.Now()
	t.Logf("link up; watermark %d", during)
	if during != wm {
		t.Errorf("watermark moved from %d to %d while the link was down", wm, during)
	}
	waitStreaming(t, r.db, r.agentID, during, time.Minute)
	t.Logf("agent streaming again %v after the link came up", time.Since(upAt).Round(100*time.Millisecond))

	// Every failed attempt since the cut waited a delay drawn from
	// [base/2, base], the base doubling from 1s; no earlier failure. (An
	// attempt made while the link is down can hang on the dead TCP
	// connection until the handshake timeout or the link's return, so a
	// 12s cut shows two or more attempts, not one per backoff step.)
	delays := retryDelays(t, r.agent.output())
	t.Logf("agent's retry delays: %v", delays)
	if len(delays) < 2 {
		t.Errorf("%d reconnect attempts during a %v cut, want at least 2", len(delays), cut)
	}
	base := time.Second
	const slack = 5 * time.Millisecond // the log rounds to milliseconds
	for i, d := range delays {
		if d < base/2-slack || d > base+slack {
			t.Errorf("retry %d waited %v, want within [%v, %v] (backoff doubling from 1s)", i+1, d, base/2, base)
		}
		base = min(2*base, 30*time.Second)
	}
	r.finish(t, "network cut "+cut.String())
}

// TestFaultOutboxFull keeps the controller away while the agent detects
// far more than its 64 KiB outbox holds: the agent drops (resolves and
// low severities first, then the oldest) and counts every drop; once the
// controller is up, what it stored plus what the agent dropped is every
// event the agent numbered, nothing twice, and the controller raised
// agent_events_dropped for the agent.
func TestFaultOutboxFull(t *testing.T) {
	t.Parallel()
	r := newFaultRig(t, flapLoad{Devices: 8, Interfaces: 32, Flaps: 3, Start: time.Second, Period: 4 * time.Second})
	if err := os.WriteFile(r.agentCfg, []byte(r.load.agentYAML(r.agentID, r.dataDir, r.ctlAddr, r.simAddr,
		"  outbox_max_bytes: 65536\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	r.startSim(t)
	r.startAgent(t) // no controller yet
	time.Sleep(r.load.End() - time.Since(r.simStart))
	r.startController(t)
	r.sim.stop(t)
	ctl := r.ctl
	connected := func() bool { return strings.Contains(ctl.output(), `msg="new agent connected"`) }
	waitDrained(t, r.db, r.agentID, connected, 6*time.Second, 2*time.Minute)
	r.agent.stop(t)
	r.ctl.stop(t)

	ob := readOutbox(t, r.dataDir)
	l := readLedger(t, r.db, r.agentID)
	stored := l.logs[ob.logID]
	missing := uint64(len(l.missing[ob.logID]))
	// An event may be dropped from the full outbox after it was sent but
	// before its ack came back (the simulator still produces changes while
	// the agent drains): then it is both stored and counted as dropped. So
	// every seq must be stored or missing, and every missing seq dropped.
	lost := int64(ob.lastSeq) - int64(stored) - int64(missing) + max(0, int64(missing)-int64(ob.dropped))
	t.Logf("outbox full: events sent %d, stored %d, dropped %d (of which stored anyway, dropped after sending: %d), duplicates stored %d, lost %d, seqs missing at the controller %d",
		ob.lastSeq, stored, ob.dropped, int64(ob.dropped)-int64(missing), l.dupSeq+l.dupEvent, lost, missing)
	if ob.dropped == 0 || ob.lastSeq < 1000 {
		t.Fatalf("dropped %d of %d: the load did not overflow the outbox", ob.dropped, ob.lastSeq)
	}
	if stored+missing != ob.lastSeq || missing > ob.dropped {
		t.Errorf("stored %d + missing %d != sent %d, or missing seqs %d > dropped %d: events lost", stored, missing, ob.lastSeq, missing, ob.dropped)
	}
	if l.dupSeq != 0 || l.dupEvent != 0 || len(l.logs) != 1 || ob.pending != 0 {
		t.Errorf("duplicates %d/%d, logs %d, pending %d", l.dupSeq, l.dupEvent, len(l.logs), ob.pending)
	}
	if len(l.dropped) != 1 {
		t.Fatalf("%d agent_events_dropped issues, want 1", len(l.dropped))
	}
	is := l.droppedIssue
	if is.device != r.agentID || is.state != 1 || is.attrs["dropped_events"] != fmt.Sprint(ob.dropped) ||
		is.attrs["missing_events"] != fmt.Sprint(missing) {
		t.Errorf("agent_events_dropped issue %+v, want device %s, open, dropped_events %d, missing_events %d",
			is, r.agentID, ob.dropped, missing)
	}
}
