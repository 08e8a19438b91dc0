package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netaiops/netaiops/collector/snmp/snmpdtest"
	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

// TestAgentKilledKeepsTrapAndFlowIssues: a real agent process receives a
// linkDown trap and captures a SYN flood on a veth; it is killed with
// SIGKILL and started again on the same data directory while both
// conditions hold. Afterwards the controller has exactly one issue per
// condition, with the ids from before the kill, and the linkUp trap and
// the end of the flood resolve those same issues: nothing is orphaned,
// nothing duplicated.
func TestAgentKilledKeepsTrapAndFlowIssues(t *testing.T) {
	binaries(t)
	link := newVethLink(t)
	const (
		hostIP = "198.19.77.1"
		peerIP = "198.19.77.2"
		holeIP = "198.19.77.5" // no host: SYNs to it stay half-open
	)
	run(t, "ip", "addr", "add", hostIP+"/29", "dev", link.host)
	run(t, "ip", "-n", link.netns, "addr", "add", peerIP+"/29", "dev", link.peer)
	ifi, err := net.InterfaceByName(link.host)
	if err != nil {
		t.Fatal(err)
	}
	// The hole's frames go to the host end, where the agent captures.
	run(t, "ip", "-n", link.netns, "neigh", "add", holeIP, "lladdr", ifi.HardwareAddr.String(), "dev", link.peer, "nud", "permanent")

	dir := t.TempDir()
	ctlAddr := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	startController(t, ctlAddr, filepath.Join(dir, "controller.db"))
	trapAddr := fmt.Sprintf("127.0.0.1:%d", snmpdtest.FreePort(t))
	cfgPath := filepath.Join(dir, "agent.yaml")
	// trapdev's polls fail (nothing listens) and never count as
	// unreachable here: only its traps speak of it.
	cfg := fmt.Sprintf(`agent: {id: e2e-restart, data_dir: %s}
controller: {address: %s, insecure: true}
snmp: {interval: 1s, timeout: 100ms, retries: 0, unreachable_after: 1000}
targets:
  - {name: trapdev, address: "127.0.0.1:%d", community: public}
traps: {listen: "%s", communities: [public]}
flows:
  interfaces: [%s]
  bpf: "ip"
  interval: 1s
  rules:
    keep_firing_for: 4s
    syn_flood: {syns: 50, half_open: 50}
`, filepath.Join(dir, "agent-data"), ctlAddr, snmpdtest.FreePort(t), trapAddr, link.host)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	startAgent := func() *proc {
		return start(t, filepath.Join(binDir, "netaiops-agent"), nil, "--config", cfgPath, "--log-level", "debug",
			"--metrics-listen", "off")
	}
	agent := startAgent()

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ic := netaiopsv1.NewIssueServiceClient(dial(t, ctlAddr))
	// issues returns every issue of kind (any state).
	issues := func(kind string) []*netaiopsv1.Issue {
		resp, err := ic.ListIssues(ctx, &netaiopsv1.ListIssuesRequest{AgentId: "e2e-restart", Kind: kind, PageSize: 100})
		if err != nil {
			t.Fatalf("ListIssues: %v", err)
		}
		return resp.GetIssues()
	}
	one := func(kind string, state netaiopsv1.IssueState) func() (bool, error) {
		return func() (bool, error) {
			got := issues(kind)
			return len(got) == 1 && got[0].GetState() == state, fmt.Errorf("%s issues: %v", kind, got)
		}
	}
	trap := func(oid, oper string) {
		t.Helper()
		cmd := snmpdtest.Command(t, "snmptrap", "-t", "1", "-r", "0", "-v", "2c", "-c", "public", trapAddr, "",
			oid, "1.3.6.1.2.1.2.2.1.1.3", "i", "3", "1.3.6.1.2.1.2.2.1.7.3", "i", "1", "1.3.6.1.2.1.2.2.1.8.3", "i", oper)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("snmptrap: %v\n%s", err, out)
		}
	}
	open := netaiopsv1.IssueState_ISSUE_STATE_OPEN
	waitFor(t, 30*time.Second, "the controller serving", func() (bool, error) {
		_, err := ic.ListIssues(ctx, &netaiopsv1.ListIssuesRequest{})
		return err == nil, err
	})

	waitFor(t, 30*time.Second, "the agent's trap receiver", func() (bool, error) {
		trap("1.3.6.1.6.3.1.1.5.3", "2") // linkDown ifIndex 3; UDP: resent until seen
		return len(issues("interface_down")) == 1, nil
	})
	stopFlood := synFlood(t, link.netns, holeIP, 150)
	waitFor(t, 30*time.Second, "syn_flood stored", one("syn_flood", open))
	down, flood := issues("interface_down")[0], issues("syn_flood")[0]

	// The agent saves its open issues at most a second after a change.
	time.Sleep(1500 * time.Millisecond)
	agent.kill(t)
	agent = startAgent()
	// The flood goes on (the kernel retransmits the SYNs): after the
	// restart, the same two issues, open, and no other.
	time.Sleep(4 * time.Second)
	for _, want := range []*netaiopsv1.Issue{down, flood} {
		got := issues(want.GetKind())
		if len(got) != 1 || got[0].GetId() != want.GetId() || got[0].GetState() != open {
			t.Fatalf("%s after kill -9 and restart: %v; want the one issue %s, open", want.GetKind(), got, want.GetId())
		}
	}

	trap("1.3.6.1.6.3.1.1.5.4", "1") // linkUp
	waitFor(t, 30*time.Second, "interface_down resolved by linkUp", one("interface_down", netaiopsv1.IssueState_ISSUE_STATE_RESOLVED))
	stopFlood()
	waitFor(t, 30*time.Second, "syn_flood resolved after the flood", one("syn_flood", netaiopsv1.IssueState_ISSUE_STATE_RESOLVED))
	for _, want := range []*netaiopsv1.Issue{down, flood} {
		if got := issues(want.GetKind())[0]; got.GetId() != want.GetId() {
			t.Errorf("%s resolved %s; want the issue from before the kill, %s", want.GetKind(), got.GetId(), want.GetId())
		}
	}
	resp, err := ic.ListIssues(ctx, &netaiopsv1.ListIssuesRequest{AgentId: "e2e-restart", State: open})
	if err != nil || len(resp.GetIssues()) != 0 {
		t.Errorf("open issues at the end: %v, %v; want none", resp.GetIssues(), err)
	}
	agent.stop(t)
}

// synFlood opens n non-blocking TCP connections from namespace ns to
// dst:80: each sends a SYN, which the kernel retransmits while the socket
// lives. stop closes them (it also runs when the test ends).
func synFlood(t *testing.T, ns, dst string, n int) (stop func()) {
	t.Helper()
	ip := net.ParseIP(dst).To4()
	var addr [4]byte
	copy(addr[:], ip)
	errc := make(chan error, 1)
	var fds []int
	go func() {
		// This thread moves to ns and dies with the goroutine (never
		// unlocked), so no other goroutine runs in the wrong namespace.
		runtime.LockOSThread()
		f, err := os.Open("/var/run/netns/" + ns)
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		for range n {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				errc <- err
				return
			}
			fds = append(fds, fd)
			if err := unix.Connect(fd, &unix.SockaddrInet4{Port: 80, Addr: addr}); err != nil && !errors.Is(err, unix.EINPROGRESS) {
				errc <- fmt.Errorf("connect %s:80: %w", dst, err)
				return
			}
		}
		errc <- nil
	}()
	err := <-errc
	closed := false
	stop = func() {
		if closed {
			return
		}
		closed = true
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	t.Cleanup(stop)
	if err != nil {
		t.Fatal(err)
	}
	return stop
}
