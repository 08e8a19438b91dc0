package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
		simAddr: fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t)),
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
	if rest := r.load.End() - time.Since(r.simStart); rest > 0 {
		time.Sleep(rest)
	}
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
	check(t, name, readOutbox(t, r.dataDir), readLedger(t, r.db, r.agentID))
}

func jitter(min, max time.Duration) time.Duration {
	return min + time.Duration(rand.Int64N(int64(max-min)))
}

// TestFaultControllerKilled kills the controller with SIGKILL again and
// again while the agent streams; every event must end up stored exactly
// once.
func TestFaultControllerKilled(t *testing.T) {
	r := newFaultRig(t, flapLoad{Devices: 8, Interfaces: 32, Flaps: 6, Start: 2 * time.Second, Period: 4 * time.Second})
	r.startSim(t)
	r.startController(t)
	r.startAgent(t)
	var wm uint64
	const kills = 4
	for i := 0; i < kills; i++ {
		wm = waitStreaming(t, r.db, r.agentID, wm, time.Minute)
		time.Sleep(jitter(100*time.Millisecond, 700*time.Millisecond))
		r.ctl.kill(t)
		_, wm, _ = agentRow(r.db, r.agentID)
		t.Logf("kill -9 controller #%d at watermark %d", i+1, wm)
		time.Sleep(jitter(100*time.Millisecond, 500*time.Millisecond))
		r.startController(t)
	}
	r.finish(t, fmt.Sprintf("controller kill -9 ×%d", kills))
}

// TestFaultAgentKilled kills the agent with SIGKILL mid-stream and starts
// it again on the same data directory, a few times.
func TestFaultAgentKilled(t *testing.T) {
	r := newFaultRig(t, flapLoad{Devices: 8, Interfaces: 32, Flaps: 5, Start: 2 * time.Second, Period: 4 * time.Second})
	r.startSim(t)
	r.startController(t)
	r.startAgent(t)
	var wm uint64
	const kills = 3
	for i := 0; i < kills; i++ {
		wm = waitStreaming(t, r.db, r.agentID, wm, time.Minute)
		time.Sleep(jitter(200*time.Millisecond, 1500*time.Millisecond))
		r.agent.kill(t)
		_, wm, _ = agentRow(r.db, r.agentID)
		t.Logf("kill -9 agent #%d at watermark %d", i+1, wm)
		r.startAgent(t)
	}
	r.finish(t, fmt.Sprintf("agent kill -9 ×%d", kills))
}
