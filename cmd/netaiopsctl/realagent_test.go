package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/netaiops/netaiops/agent"
	"github.com/netaiops/netaiops/agent/config"
	"github.com/netaiops/netaiops/agent/uplink"
	"github.com/netaiops/netaiops/collector/snmpsim"
)

// TestRealAgent drives netaiopsctl against the real pieces: the bundled
// SNMP device simulator (its demo scenario, as make run serves it), a real
// agent polling it and the controller. The demo's core-sw1 has an
// interface down from the start.
func TestRealAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("real agent and simulator: skipped with -short")
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := snmpsim.NewServer(snmpsim.DefaultScenario(), snmpsim.Options{Logger: logger,
		// The demo's interface fault begins 20s after the start: 1s from now.
		Start: time.Now().Add(-19 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	simDone := make(chan error, 1)
	go func() { simDone <- srv.Serve(ctx, conn) }() // owned: cleanup waits
	t.Cleanup(func() {
		cancel()
		<-simDone
		conn.Close()
	})

	addr, _ := startController(t, "", "", false)
	cfg, err := config.Parse([]byte(fmt.Sprintf(`agent:
  id: real-agent
  data_dir: %s
  labels: {site: lab}
controller:
  address: %s
  insecure: true
snmp:
  interval: 500ms
  timeout: 300ms
  retries: 0
targets:
  - name: core-sw1
    address: %s
    version: 2c
    community: core-sw1
`, t.TempDir(), addr, conn.LocalAddr())), "agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ag, err := agent.New(cfg, logger, agent.WithUplinkConfig(func(c *uplink.Config) {
		c.BackoffMin, c.BackoffMax = 20*time.Millisecond, 200*time.Millisecond
	}))
	if err != nil {
		t.Fatal(err)
	}
	agentDone := make(chan error, 1)
	go func() { agentDone <- ag.Run(ctx) }() // owned: cleanup waits
	t.Cleanup(func() {
		cancel()
		if err := <-agentDone; err != nil {
			t.Errorf("agent: %v", err)
		}
	})

	env := map[string]string{"NETAIOPS_ADDRESS": addr}
	var issues []issueView
	deadline := time.Now().Add(20 * time.Second)
	for len(issues) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no interface_down on core-sw1 from the real agent")
		}
		time.Sleep(200 * time.Millisecond)
		code, out, _ := ctl(t, env, "--insecure", "issues", "list", "--kind", "interface_down", "--device", "core-sw1", "-o", "json")
		if code != exitOK {
			t.Fatalf("issues list: exit %d", code)
		}
		if err := json.Unmarshal([]byte(out), &issues); err != nil {
			t.Fatal(err)
		}
	}
	id := issues[0].ID
	code, out, _ := ctl(t, env, "--insecure", "issues", "get", id)
	if code != exitOK || !strings.Contains(out, "ifOperStatus") || !strings.Contains(out, "opened") || !strings.Contains(out, "real-agent") {
		t.Errorf("issues get %s: exit %d\n%s", id, code, out)
	}
	if code, out, _ = ctl(t, env, "--insecure", "issues", "ack", id, "--comment", "looking"); code != exitOK || !strings.Contains(out, "looking") {
		t.Errorf("issues ack: exit %d %q", code, out)
	}
	code, out, _ = ctl(t, env, "--insecure", "agents", "list")
	if code != exitOK || !strings.Contains(out, "real-agent") || !strings.Contains(out, "yes") || !strings.Contains(out, "local file") {
		t.Errorf("agents list: exit %d\n%s", code, out)
	}
	code, out, _ = ctl(t, env, "--insecure", "poll", "core-sw1", "--agent", "real-agent", "-o", "json")
	var pv pollView
	if err := json.Unmarshal([]byte(out), &pv); err != nil || code != exitOK || pv.Error != "" || len(pv.Samples) < 10 {
		t.Fatalf("poll core-sw1: exit %d, %d samples, %v", code, len(pv.Samples), err)
	}
	found := false
	for _, s := range pv.Samples {
		found = found || (s.Metric == "ifOperStatus" && s.Value == 2)
	}
	if !found {
		t.Error("poll core-sw1: no interface with ifOperStatus down(2)")
	}
	if code, _, _ = ctl(t, env, "--insecure", "poll", "edge-sw9", "--agent", "real-agent"); code != exitNotFound {
		t.Errorf("poll of a target the agent does not poll: exit %d, want %d", code, exitNotFound)
	}
}
