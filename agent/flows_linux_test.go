package agent_test

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netaiops/netaiops/agent"
	"github.com/netaiops/netaiops/agent/config"
	"github.com/netaiops/netaiops/agent/uplink"
	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// Addresses of the live test: the agent's side of the veth (in the test's
// own namespace), the peer in a namespace of its own, and an address that
// the peer sends to but nobody answers (a neighbour entry points it at the
// agent's side, which does not forward it).
var (
	liveLocal = [4]byte{198, 18, 97, 1}
	livePeer  = [4]byte{198, 18, 97, 2}
	liveHole  = [4]byte{198, 18, 97, 5}
)

func ip4(a [4]byte) string { return net.IP(a[:]).String() }

// newPeerNetns makes a namespace joined to this one by a veth pair and
// returns the namespace and the local end's name; both go when the test
// ends.
func newPeerNetns(t *testing.T) (ns, local string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("live flow test needs root (network namespaces, AF_PACKET)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("live flow test needs the ip command (iproute2)")
	}
	var b [3]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	ns, local, peer := "nai-agent-"+id, "na"+id+"l", "na"+id+"p"
	ipCmd(t, "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	ipCmd(t, "link", "add", local, "type", "veth", "peer", "name", peer, "netns", ns)
	t.Cleanup(func() { exec.Command("ip", "link", "del", local).Run() })
	ipCmd(t, "addr", "add", ip4(liveLocal)+"/29", "dev", local)
	ipCmd(t, "link", "set", local, "up")
	ipCmd(t, "-n", ns, "addr", "add", ip4(livePeer)+"/29", "dev", peer)
	ipCmd(t, "-n", ns, "link", "set", peer, "up")
	ipCmd(t, "-n", ns, "link", "set", "lo", "up")
	ifi, err := net.InterfaceByName(local)
	if err != nil {
		t.Fatal(err)
	}
	ipCmd(t, "-n", ns, "neigh", "add", ip4(liveHole), "lladdr", ifi.HardwareAddr.String(), "dev", peer, "nud", "permanent")
	return ns, local
}

// connectFrom opens a non-blocking TCP connection from namespace ns to
// each port of dst and returns at once: each sends its SYN. The sockets
// are closed when the test ends.
func connectFrom(t *testing.T, ns string, dst [4]byte, ports []int) {
	t.Helper()
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
		for _, p := range ports {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				errc <- err
				return
			}
			fds = append(fds, fd)
			if err := unix.Connect(fd, &unix.SockaddrInet4{Port: p, Addr: dst}); err != nil && !errors.Is(err, unix.EINPROGRESS) {
				errc <- fmt.Errorf("connect %s:%d: %w", ip4(dst), p, err)
				return
			}
		}
		errc <- nil
	}()
	err := <-errc
	t.Cleanup(func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The agent captures live on a veth (targets: []): a port scan from the
// peer namespace (closed ports answer RST) raises port_scan, then SYNs to
// an address that never answers raise syn_flood, both at the real
// controller with their evidence, and the scanned host gets no syn_flood.
func TestAgentLiveFlows(t *testing.T) {
	ns, dev := newPeerNetns(t)
	addr, ic := controllerClient(t)
	const id = "flow-live"
	a := runFlowAgent(t, fmt.Sprintf(`agent: {id: %s, data_dir: %s}
controller: {address: "%s", insecure: true}
targets: []
flows:
  interfaces: [%s]
  bpf: "ip"
  interval: 1s
  rules:
    port_scan: {dst_ports: 25}
    syn_flood: {syns: 50, half_open: 50}
`, id, t.TempDir(), addr, dev))
	// Run opens the capture points before it starts the uplink.
	waitFor(t, 10*time.Second, "the agent connected", func() bool { return a.Stats().Uplink.Connected })
	if st := a.FlowStats(); st.Failures != 0 {
		t.Fatalf("flow stats %+v", st)
	}

	var scan []int
	for p := 20000; p < 20060; p++ {
		scan = append(scan, p)
	}
	connectFrom(t, ns, liveLocal, scan)
	device := agent.FlowDevice(id, dev)
	waitFor(t, 15*time.Second, "port_scan stored", func() bool {
		return withObject(issuesOf(t, ic, "port_scan", device), ip4(livePeer)) != nil
	})
	// Two intervals apart, so the flood's source is no longer seen scanning.
	time.Sleep(2500 * time.Millisecond)
	flood := make([]int, 150)
	for i := range flood {
		flood[i] = 80
	}
	connectFrom(t, ns, liveHole, flood)
	waitFor(t, 15*time.Second, "syn_flood stored", func() bool {
		return withObject(issuesOf(t, ic, "syn_flood", device), ip4(liveHole)) != nil
	})

	s := withObject(issuesOf(t, ic, "port_scan", device), ip4(livePeer))
	sa := s.GetAttributes()
	ports, _ := strconv.ParseFloat(sa["dst_ports"], 64)
	if s.GetAgentId() != id || ports < 25 || ports > 63 || sa["dst_addrs"] != "1.00" || sa["capture"] != dev || sa["interval"] != "1s" ||
		!strings.Contains(sa["top_sources"], ip4(livePeer)) {
		t.Errorf("port_scan %v", s)
	}
	// Live time is the packets' time: now, give or take the interval.
	if d := time.Since(s.GetFirstSeen().AsTime()); d < 0 || d > time.Minute {
		t.Errorf("port_scan first_seen %s", s.GetFirstSeen().AsTime())
	}
	f := withObject(issuesOf(t, ic, "syn_flood", device), ip4(liveHole))
	fa := f.GetAttributes()
	syns, _ := strconv.Atoi(fa["syns"])
	halfOpen, _ := strconv.Atoi(fa["half_open"])
	if f.GetState() != netaiopsv1.IssueState_ISSUE_STATE_OPEN || syns < 50 || syns > 150 || halfOpen < 50 || fa["sources"] != "1.00" {
		t.Errorf("syn_flood %v", f)
	}
	if is := withObject(issuesOf(t, ic, "syn_flood", device), ip4(liveLocal)); is != nil {
		t.Errorf("the scanned host got syn_flood: %v", is)
	}
}

// A live capture's issues survive a restart of the agent on the same data
// directory: the flood still going on continues its syn_flood issue (same
// id, no second issue at the controller), and once it stops the issue
// resolves after keep_firing_for, nothing left open.
func TestAgentLiveFlowsRestart(t *testing.T) {
	ns, dev := newPeerNetns(t)
	addr, ic := controllerClient(t)
	const id = "flow-restart"
	doc := fmt.Sprintf(`agent: {id: %s, data_dir: %s}
controller: {address: "%s", insecure: true}
targets: []
flows:
  interfaces: [%s]
  bpf: "ip"
  interval: 1s
  rules:
    keep_firing_for: 3s
    syn_flood: {syns: 50, half_open: 50}
`, id, t.TempDir(), addr, dev)
	cfg, err := config.Parse([]byte(doc), "agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	run := func() (*agent.Agent, func()) {
		a, err := agent.New(cfg, testLogger(t), agent.WithUplinkConfig(func(c *uplink.Config) {
			c.BackoffMin, c.BackoffMax = 20*time.Millisecond, 200*time.Millisecond
		}))
		if err != nil {
			t.Fatal(err)
		}
		stop := startAgent(t, a)
		t.Cleanup(stop)
		waitFor(t, 10*time.Second, "the agent connected", func() bool { return a.Stats().Uplink.Connected })
		return a, stop
	}
	flood := func() {
		ports := make([]int, 150)
		for i := range ports {
			ports[i] = 80
		}
		connectFrom(t, ns, liveHole, ports)
	}
	device := agent.FlowDevice(id, dev)
	floods := func() []*netaiopsv1.Issue {
		var out []*netaiopsv1.Issue
		for _, is := range issuesOf(t, ic, "syn_flood", device) {
			if is.GetObject() == ip4(liveHole) {
				out = append(out, is)
			}
		}
		return out
	}

	_, stop := run()
	flood()
	waitFor(t, 15*time.Second, "syn_flood stored", func() bool { return len(floods()) == 1 })
	first := floods()[0]
	stop() // as SIGTERM does: the capture stops, its issue stays open

	a, _ := run()
	if a.Stats().Detect.Restored == 0 {
		t.Fatalf("nothing restored: %+v", a.Stats().Detect)
	}
	flood() // still flooding after the restart
	time.Sleep(2500 * time.Millisecond)
	if got := floods(); len(got) != 1 || got[0].GetId() != first.GetId() || got[0].GetState() != netaiopsv1.IssueState_ISSUE_STATE_OPEN {
		t.Fatalf("syn_flood after restart: %v; want the one issue %s, open", got, first.GetId())
	}
	// Quiet now: the capture's intervals see no flood, the issue resolves.
	waitFor(t, 20*time.Second, "syn_flood resolved", func() bool {
		got := floods()
		return len(got) == 1 && got[0].GetState() == netaiopsv1.IssueState_ISSUE_STATE_RESOLVED
	})
	if got := floods()[0]; got.GetId() != first.GetId() || got.GetAttributes()["resolution"] != "cleared" {
		t.Errorf("resolved %v; want %s, cleared", got, first.GetId())
	}
}
