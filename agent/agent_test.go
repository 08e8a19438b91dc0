package agent_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/netaiops/netaiops/agent"
	"github.com/netaiops/netaiops/agent/config"
	"github.com/netaiops/netaiops/agent/uplink"
	"github.com/netaiops/netaiops/collector/snmp/snmpdtest"
	"github.com/netaiops/netaiops/controller"
	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startController runs the real controller, plaintext on loopback as the
// agent configs say, on addr ("127.0.0.1:0" for a free port) with a fresh
// database. It returns the address it listens on and a function that stops
// it and waits, which also runs when the test ends.
func startController(t *testing.T, addr string) (string, func()) {
	t.Helper()
	cfg := controller.DefaultConfig()
	cfg.Listen, cfg.Insecure, cfg.DBPath = addr, true, filepath.Join(t.TempDir(), "c.db")
	cfg.HeartbeatInterval, cfg.ShutdownTimeout = time.Second, 2*time.Second
	c := controller.New(cfg, testLogger(t).With("side", "controller"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }() // owned by stop
	select {
	case <-c.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("controller: %v", err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("controller: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return c.Addr().String(), stop
}

// issue returns the controller's issue of kind on device in state, or nil.
func issue(t *testing.T, ic netaiopsv1.IssueServiceClient, kind, device string, state netaiopsv1.IssueState) *netaiopsv1.Issue {
	t.Helper()
	resp, err := ic.ListIssues(context.Background(), &netaiopsv1.ListIssuesRequest{Kind: kind, Device: device, State: state, PageSize: 100})
	if err != nil {
		t.Fatalf("ListIssues: %v", err)
	}
	if len(resp.GetIssues()) == 0 {
		return nil
	}
	return resp.GetIssues()[0]
}

// TestAgentPollsDetectsAndDelivers runs the agent against a real snmpd and a
// target where nothing answers, with a controller that is away at first:
// polling goes on, the issues wait in the outbox, and reach the controller
// when it appears. Then the device stops and comes back.
func TestAgentPollsDetectsAndDelivers(t *testing.T) {
	dev := snmpdtest.Start(t, snmpdtest.Config{SysName: "agent-test-device"})

	// A controller address with nothing behind it yet.
	ctlAddr := freeTCPAddr(t)

	yaml := fmt.Sprintf(`agent:
  id: agent-test
  data_dir: %s
  labels: {site: lab}
controller:
  address: %s
  insecure: true
snmp:
  interval: 300ms
  timeout: 100ms
  retries: 0
  unreachable_after: 2
targets:
  - name: dev
    address: 127.0.0.1:%d
  - name: silent
    address: 127.0.0.1:%d
`, t.TempDir(), ctlAddr, dev.Port(), snmpdtest.FreePort(t))
	cfg, err := config.Parse([]byte(yaml), "agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(cfg, testLogger(t), agent.WithUplinkConfig(func(c *uplink.Config) {
		c.BackoffMin, c.BackoffMax = 20*time.Millisecond, 200*time.Millisecond
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer startAgent(t, a)()

	// The silent target becomes unreachable while the controller is away.
	waitFor(t, 10*time.Second, "device_unreachable for silent queued and dev polled", func() bool {
		s := a.Stats()
		return s.Pending > 0 && s.Polls >= 8 && s.PollErrors < s.Polls-2
	})
	if s := a.Stats(); s.Uplink.Connected || s.Uplink.Attempts < 2 {
		t.Fatalf("stats %+v: want attempts to reach the controller, and no connection", s)
	}

	startController(t, ctlAddr)
	conn, err := grpc.NewClient(ctlAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ic, fc := netaiopsv1.NewIssueServiceClient(conn), netaiopsv1.NewFleetServiceClient(conn)
	const (
		unreachable = "device_unreachable"
		open        = netaiopsv1.IssueState_ISSUE_STATE_OPEN
		resolved    = netaiopsv1.IssueState_ISSUE_STATE_RESOLVED
	)
	waitFor(t, 10*time.Second, "device_unreachable for silent stored", func() bool {
		return issue(t, ic, unreachable, "silent", open) != nil
	})
	if is := issue(t, ic, unreachable, "dev", open); is != nil {
		t.Fatalf("device_unreachable for dev, which answers: %v", is)
	}
	agents, err := fc.ListAgents(context.Background(), &netaiopsv1.ListAgentsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(agents.GetAgents()) != 1 {
		t.Fatalf("agents %v", agents.GetAgents())
	}
	if ag := agents.GetAgents()[0]; ag.GetId() != "agent-test" || ag.GetTargetCount() != 2 || ag.GetVersion() != agent.Version || ag.GetLabels()["site"] != "lab" {
		t.Fatalf("agent record %v", ag)
	}

	dev.Stop()
	waitFor(t, 10*time.Second, "device_unreachable for dev stored", func() bool {
		return issue(t, ic, unreachable, "dev", open) != nil
	})
	opened := issue(t, ic, unreachable, "dev", open)
	dev.Start()
	waitFor(t, 10*time.Second, "device_unreachable for dev resolved", func() bool {
		return issue(t, ic, unreachable, "dev", resolved) != nil
	})
	if r := issue(t, ic, unreachable, "dev", resolved); r.GetId() != opened.GetId() || r.GetAgentId() != "agent-test" || r.GetResolvedAt() == nil {
		t.Fatalf("resolved issue %v, want the opened one (%s) with resolved_at", r, opened.GetId())
	}
	waitFor(t, 5*time.Second, "outbox drained", func() bool { return a.Stats().Pending == 0 })
}

// TestRunLeavesNoGoroutines: with the controller away and a device that
// never answers, Run still returns promptly on cancel and leaves nothing
// running.
func TestRunLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	ctlAddr := freeTCPAddr(t)
	yaml := fmt.Sprintf("agent: {id: a1, data_dir: %s}\ncontroller: {address: %s, insecure: true}\n"+
		"snmp: {interval: 200ms, timeout: 150ms, retries: 0}\ntargets:\n  - {name: d1, address: 127.0.0.1:%d}\n  - {name: d2, address: 127.0.0.1:%d}\n",
		t.TempDir(), ctlAddr, snmpdtest.FreePort(t), snmpdtest.FreePort(t))
	cfg, err := config.Parse([]byte(yaml), "agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx) }()
	waitFor(t, 5*time.Second, "failed polls", func() bool { return a.Stats().PollErrors >= 4 })
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return within 2s of cancel (a poll in flight must end with ctx)")
	}
	waitFor(t, 5*time.Second, fmt.Sprintf("goroutines back to %d", before), func() bool { return runtime.NumGoroutine() <= before })
}

// startAgent runs a in the background. The returned stop (idempotent)
// cancels it and fails the test unless Run returns nil within 5s of that.
func startAgent(t *testing.T, a *agent.Agent) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx) }() // owned by stop
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-errc:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Error("Run did not return within 5s of cancel")
			}
		})
	}
}

// A data_dir belongs to one agent id: another id must not continue its
// outbox log (the controller would take the jump of its seqs for lost
// events and raise a false agent_events_dropped).
func TestDataDirOfAnotherAgentRefused(t *testing.T) {
	dir := t.TempDir()
	doc := func(id string) *config.Config {
		cfg, err := config.Parse([]byte(fmt.Sprintf("agent: {id: %s, data_dir: %s}\ncontroller: {address: %s, insecure: true}\n",
			id, dir, freeTCPAddr(t))), "agent.yaml")
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	a, err := agent.New(doc("edge-1"), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	startAgent(t, a)() // runs and stops: the outbox is closed
	_, err = agent.New(doc("edge-2"), testLogger(t))
	want := fmt.Sprintf(`create agent edge-2: open outbox %s: belongs to agent "edge-1", not to agent "edge-2"`, filepath.Join(dir, "outbox"))
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("New with another agent's data_dir: %v\nwant %s...", err, want)
	}
	a, err = agent.New(doc("edge-1"), testLogger(t))
	if err != nil {
		t.Fatalf("the owner again: %v", err)
	}
	startAgent(t, a)()
}
