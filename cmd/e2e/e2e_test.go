package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/netaiops/netaiops/collector/snmp/snmpdtest"
	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds the real binaries once per test run and returns their directory.
func binaries(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: skipped in -short mode")
	}
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "netaiops-e2e-bin-")
		if buildErr != nil {
			return
		}
		_, file, _, _ := runtime.Caller(0)
		cmd := exec.Command("go", "build", "-o", binDir+"/", "./cmd/netaiops-controller", "./cmd/netaiops-agent", "./cmd/netaiops-snmpsim")
		cmd.Dir = filepath.Join(filepath.Dir(file), "..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build binaries: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// proc is a child process whose output goes to the test log and a buffer.
type proc struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func start(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{name: filepath.Base(name), done: make(chan struct{})}
	p.cmd = exec.Command(name, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("--- output of %s ---\n%s", p.name, tail(p.output(), 60))
		}
	})
	return p
}

// stop ends the process with SIGTERM (SIGKILL after 10s) and waits for it.
func (p *proc) stop(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Errorf("%s did not stop within 10s of SIGTERM; killing it", p.name)
		p.cmd.Process.Kill()
		<-p.done
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// vethLink creates a veth pair whose host end stays in this namespace (where
// snmpd sees it in its ifTable) and whose peer lives in a new network
// namespace, so the test can take the link down by downing the peer.
type vethLink struct {
	host, peer, netns string
}

func newVethLink(t *testing.T) *vethLink {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("e2e: interface_down needs root to create network namespaces and veth pairs")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("e2e: iproute2's ip not installed (apt-get install iproute2)")
	}
	id := randHex(3)
	v := &vethLink{host: "naie" + id, peer: "naip" + id, netns: "nai-e2e-" + id}
	run(t, "ip", "netns", "add", v.netns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", v.netns).Run() })
	run(t, "ip", "link", "add", v.host, "type", "veth", "peer", "name", v.peer)
	t.Cleanup(func() { exec.Command("ip", "link", "del", v.host).Run() })
	run(t, "ip", "link", "set", v.peer, "netns", v.netns)
	run(t, "ip", "link", "set", v.host, "up")
	run(t, "ip", "-n", v.netns, "link", "set", v.peer, "up")
	return v
}

func (v *vethLink) setPeer(t *testing.T, state string) {
	run(t, "ip", "-n", v.netns, "link", "set", v.peer, state)
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// waitFor polls cond every 200ms until it returns true or the timeout ends.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return
		}
		lastErr = err
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s (last error: %v)", timeout, what, lastErr)
}

type controllerProc struct {
	addr string
	db   string
	p    *proc
}

func startController(t *testing.T, addr, db string) *controllerProc {
	t.Helper()
	c := &controllerProc{addr: addr, db: db}
	c.p = start(t, filepath.Join(binDir, "netaiops-controller"), nil,
		"--listen", addr, "--insecure", "--db", db, "--heartbeat-interval", "1s", "--log-level", "debug")
	return c
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func findIssue(ctx context.Context, ic netaiopsv1.IssueServiceClient, kind, device string, state netaiopsv1.IssueState, match func(*netaiopsv1.Issue) bool) (*netaiopsv1.Issue, error) {
	resp, err := ic.ListIssues(ctx, &netaiopsv1.ListIssuesRequest{Kind: kind, Device: device, State: state, PageSize: 1000})
	if err != nil {
		return nil, err
	}
	for _, is := range resp.GetIssues() {
		if match == nil || match(is) {
			return is, nil
		}
	}
	return nil, nil
}

// watcher records every change a WatchIssues stream delivers.
type watcher struct {
	mu      sync.Mutex
	changes []*netaiopsv1.WatchIssuesResponse
	err     error
}

func watch(ctx context.Context, t *testing.T, ic netaiopsv1.IssueServiceClient) *watcher {
	t.Helper()
	stream, err := ic.WatchIssues(ctx, &netaiopsv1.WatchIssuesRequest{})
	if err != nil {
		t.Fatalf("WatchIssues: %v", err)
	}
	w := &watcher{}
	go func() {
		for {
			msg, err := stream.Recv()
			w.mu.Lock()
			if err != nil {
				w.err = err
				w.mu.Unlock()
				return
			}
			w.changes = append(w.changes, msg)
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *watcher) saw(kind string, typ netaiopsv1.IssueEventType) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.changes {
		if c.GetIssue().GetKind() == kind && c.GetType() == typ {
			return true
		}
	}
	return false
}

// TestEndToEnd is the walking skeleton's acceptance test: real snmpd, real
// controller and agent processes, real gRPC sockets, the real database file.
func TestEndToEnd(t *testing.T) {
	binaries(t)
	link := newVethLink(t)
	dev := snmpdtest.Start(t, snmpdtest.Config{SysName: "e2e-device"})

	dir := t.TempDir()
	ctlAddr := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	db := filepath.Join(dir, "controller.db")
	ctl := startController(t, ctlAddr, db)

	cfgPath := filepath.Join(dir, "agent.yaml")
	cfg := fmt.Sprintf(`agent:
  id: e2e-agent
  data_dir: %s
controller:
  address: %s
  insecure: true
snmp:
  interval: 1s
  timeout: 400ms
  retries: 0
targets:
  - name: e2e-dev
    address: 127.0.0.1:%d
    version: 2c
    community: public
`, filepath.Join(dir, "agent-data"), ctlAddr, dev.Port())
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	agent := start(t, filepath.Join(binDir, "netaiops-agent"), nil, "--config", cfgPath, "--log-level", "debug")

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	conn := dial(t, ctlAddr)
	fc := netaiopsv1.NewFleetServiceClient(conn)
	ic := netaiopsv1.NewIssueServiceClient(conn)

	// The agent appears in ListAgents, connected, with its target.
	waitFor(t, 30*time.Second, "agent e2e-agent connected in ListAgents", func() (bool, error) {
		resp, err := fc.ListAgents(ctx, &netaiopsv1.ListAgentsRequest{})
		if err != nil {
			return false, err
		}
		for _, a := range resp.GetAgents() {
			if a.GetId() == "e2e-agent" && a.GetConnected() && a.GetTargetCount() == 1 {
				return true, nil
			}
		}
		return false, fmt.Errorf("agents: %v", resp.GetAgents())
	})
	w := watch(ctx, t, ic)

	// The veth's host end is up in snmpd's ifTable; no interface_down for it yet.
	onLink := func(is *netaiopsv1.Issue) bool { return is.GetAttributes()["ifName"] == link.host }
	time.Sleep(3 * time.Second)
	if is, err := findIssue(ctx, ic, "interface_down", "e2e-dev", netaiopsv1.IssueState_ISSUE_STATE_OPEN, onLink); err != nil || is != nil {
		t.Fatalf("interface_down for %s before the link went down: %v %v", link.host, is, err)
	}

	// Link down: the peer in the other namespace goes down, the host end loses carrier.
	link.setPeer(t, "down")
	waitFor(t, 60*time.Second, "interface_down open for "+link.host, func() (bool, error) {
		is, err := findIssue(ctx, ic, "interface_down", "e2e-dev", netaiopsv1.IssueState_ISSUE_STATE_OPEN, onLink)
		return is != nil, err
	})
	link.setPeer(t, "up")
	waitFor(t, 60*time.Second, "interface_down resolved for "+link.host, func() (bool, error) {
		is, err := findIssue(ctx, ic, "interface_down", "e2e-dev", netaiopsv1.IssueState_ISSUE_STATE_RESOLVED, onLink)
		return is != nil, err
	})

	// Device stops answering: device_unreachable within a few poll intervals.
	dev.Stop()
	stoppedAt := time.Now()
	waitFor(t, 20*time.Second, "device_unreachable open", func() (bool, error) {
		is, err := findIssue(ctx, ic, "device_unreachable", "e2e-dev", netaiopsv1.IssueState_ISSUE_STATE_OPEN, nil)
		return is != nil, err
	})
	t.Logf("device_unreachable opened %v after snmpd stopped (interval 1s, 3 failures)", time.Since(stoppedAt).Round(100*time.Millisecond))
	dev.Start()
	waitFor(t, 30*time.Second, "device_unreachable resolved", func() (bool, error) {
		is, err := findIssue(ctx, ic, "device_unreachable", "e2e-dev", netaiopsv1.IssueState_ISSUE_STATE_RESOLVED, nil)
		return is != nil, err
	})

	// The watch stream saw every change.
	waitFor(t, 10*time.Second, "WatchIssues to deliver the changes", func() (bool, error) {
		for _, c := range []struct {
			kind string
			typ  netaiopsv1.IssueEventType
		}{
			{"interface_down", netaiopsv1.IssueEventType_ISSUE_EVENT_TYPE_OPENED},
			{"interface_down", netaiopsv1.IssueEventType_ISSUE_EVENT_TYPE_RESOLVED},
			{"device_unreachable", netaiopsv1.IssueEventType_ISSUE_EVENT_TYPE_OPENED},
			{"device_unreachable", netaiopsv1.IssueEventType_ISSUE_EVENT_TYPE_RESOLVED},
		} {
			if !w.saw(c.kind, c.typ) {
				return false, fmt.Errorf("no %s %s on the watch stream (stream error: %v)", c.kind, c.typ, w.err)
			}
		}
		return true, nil
	})

	before, err := ic.ListIssues(ctx, &netaiopsv1.ListIssuesRequest{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}

	// The controller restarts on the same database: the issues are still there
	// and the agent reconnects.
	ctl.p.stop(t)
	startController(t, ctlAddr, db) // stopped by its cleanup
	waitFor(t, 30*time.Second, "issues after controller restart", func() (bool, error) {
		after, err := ic.ListIssues(ctx, &netaiopsv1.ListIssuesRequest{PageSize: 1000})
		if err != nil {
			return false, err
		}
		have := map[string]bool{}
		for _, is := range after.GetIssues() {
			have[is.GetId()] = true
		}
		for _, is := range before.GetIssues() {
			if !have[is.GetId()] {
				return false, fmt.Errorf("issue %s (%s) missing after restart", is.GetId(), is.GetKind())
			}
		}
		return true, nil
	})
	waitFor(t, 60*time.Second, "agent reconnected after controller restart", func() (bool, error) {
		resp, err := fc.ListAgents(ctx, &netaiopsv1.ListAgentsRequest{})
		if err != nil {
			return false, err
		}
		for _, a := range resp.GetAgents() {
			if a.GetId() == "e2e-agent" && a.GetConnected() {
				return true, nil
			}
		}
		return false, nil
	})
	if strings.Contains(agent.output(), "panic") {
		t.Errorf("agent output contains a panic:\n%s", tail(agent.output(), 40))
	}
}
