package agent_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/netaiops/netaiops/agent"
	"github.com/netaiops/netaiops/agent/config"
	"github.com/netaiops/netaiops/agent/detect"
	"github.com/netaiops/netaiops/agent/uplink"
	"github.com/netaiops/netaiops/agent/uplink/uplinktest"
)

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// snmpd is net-snmp's agent on 127.0.0.1, the device under test.
type snmpd struct {
	t    *testing.T
	dir  string
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

func newSNMPD(t *testing.T) *snmpd {
	t.Helper()
	if _, err := os.Stat("/usr/sbin/snmpd"); err != nil {
		t.Skip("net-snmp snmpd not installed (apt-get install snmpd)")
	}
	s := &snmpd{t: t, dir: t.TempDir(), port: freeUDPPort(t)}
	conf := fmt.Sprintf("agentaddress udp:127.0.0.1:%d\nrocommunity public 127.0.0.1\nsysName agent-test-device\n", s.port)
	if err := os.WriteFile(filepath.Join(s.dir, "snmpd.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	return s
}

func (s *snmpd) start() {
	s.t.Helper()
	// The endpoint comes from agentaddress (naming it again on the command
	// line fails the second bind). The persistent dir must not hold our
	// config: snmpd writes its own snmpd.conf there, which a restart reads.
	s.cmd = exec.Command("/usr/sbin/snmpd", "-f", "-Lo", "-C", "-c", filepath.Join(s.dir, "snmpd.conf"),
		"-p", filepath.Join(s.dir, "snmpd.pid"))
	s.cmd.Env = append(os.Environ(), "SNMP_PERSISTENT_DIR="+filepath.Join(s.dir, "persist"), "MIBS=")
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start snmpd: %v", err)
	}
	s.done = make(chan struct{})
	go func() { s.cmd.Wait(); close(s.done) }() // owned by stop, which waits on done
}

func (s *snmpd) stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

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

// stored reports whether the controller stored a change of kind on device.
func stored(st *uplinktest.Store, kind, device string, typ detect.ChangeType) bool {
	for _, e := range st.Events() {
		c := e.Entry.Change
		if c.Issue.Kind == kind && c.Issue.Device == device && c.Type == typ {
			return true
		}
	}
	return false
}

// TestAgentPollsDetectsAndDelivers runs the agent against a real snmpd and a
// target where nothing answers, with a controller that is away at first:
// polling goes on, the issues wait in the outbox, and reach the controller
// when it appears. Then the device stops and comes back.
func TestAgentPollsDetectsAndDelivers(t *testing.T) {
	dev := newSNMPD(t)
	dev.start()

	// A controller address with nothing behind it yet.
	probe, err := uplinktest.Start("127.0.0.1:0", uplinktest.NewStore(), uplinktest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctlAddr := probe.Addr()
	probe.Stop()

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
`, t.TempDir(), ctlAddr, dev.port, freeUDPPort(t))
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
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return within 5s of cancel")
		}
	}()

	// The silent target becomes unreachable while the controller is away.
	waitFor(t, 10*time.Second, "device_unreachable for silent queued and dev polled", func() bool {
		s := a.Stats()
		return s.Pending > 0 && s.Polls >= 8 && s.PollErrors < s.Polls-2
	})
	if s := a.Stats(); s.Uplink.Connected || s.Uplink.Attempts < 2 {
		t.Fatalf("stats %+v: want attempts to reach the controller, and no connection", s)
	}

	st := uplinktest.NewStore()
	srv, err := uplinktest.Start(ctlAddr, st, uplinktest.Options{HeartbeatInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	waitFor(t, 10*time.Second, "device_unreachable for silent stored", func() bool {
		return stored(st, "device_unreachable", "silent", detect.Opened)
	})
	if stored(st, "device_unreachable", "dev", detect.Opened) {
		t.Fatal("device_unreachable for dev, which answers")
	}
	h := st.Hellos()[0]
	if h.AgentID != "agent-test" || h.Targets != 2 || h.Version != agent.Version {
		t.Fatalf("hello %+v", h)
	}

	dev.stop()
	waitFor(t, 10*time.Second, "device_unreachable for dev stored", func() bool {
		return stored(st, "device_unreachable", "dev", detect.Opened)
	})
	dev.start()
	waitFor(t, 10*time.Second, "device_unreachable for dev resolved", func() bool {
		return stored(st, "device_unreachable", "dev", detect.Resolved)
	})
	waitFor(t, 5*time.Second, "outbox drained", func() bool { return a.Stats().Pending == 0 })
	for _, e := range st.Events() {
		if e.AgentID != "agent-test" || e.Entry.Change.Issue.ID == "" {
			t.Fatalf("stored event %+v", e)
		}
	}
}
