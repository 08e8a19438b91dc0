package agent_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/netaiops/netaiops/agent"
	"github.com/netaiops/netaiops/agent/config"
	"github.com/netaiops/netaiops/agent/uplink"
	"github.com/netaiops/netaiops/collector/flow/synth"
	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

// runFlowAgent starts an agent from a config document and returns it; the
// test's end stops it and checks that Run returned nil.
func runFlowAgent(t *testing.T, doc string, opts ...agent.Option) *agent.Agent {
	t.Helper()
	cfg, err := config.Parse([]byte(doc), "agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	opts = append(opts, agent.WithUplinkConfig(func(c *uplink.Config) {
		c.BackoffMin, c.BackoffMax = 20*time.Millisecond, 200*time.Millisecond
	}))
	a, err := agent.New(cfg, testLogger(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(startAgent(t, a))
	return a
}

// controllerClient starts the real controller on a free port and returns
// its address and an issue client.
func controllerClient(t *testing.T) (string, netaiopsv1.IssueServiceClient) {
	t.Helper()
	addr := freeTCPAddr(t)
	startController(t, addr)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return addr, netaiopsv1.NewIssueServiceClient(conn)
}

func freeTCPAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// issuesOf lists the controller's issues of kind on device, any state.
func issuesOf(t *testing.T, ic netaiopsv1.IssueServiceClient, kind, device string) []*netaiopsv1.Issue {
	t.Helper()
	resp, err := ic.ListIssues(context.Background(), &netaiopsv1.ListIssuesRequest{Kind: kind, Device: device, PageSize: 100})
	if err != nil {
		t.Fatalf("ListIssues: %v", err)
	}
	return resp.GetIssues()
}

func withObject(list []*netaiopsv1.Issue, object string) *netaiopsv1.Issue {
	for _, is := range list {
		if is.GetObject() == object {
			return is
		}
	}
	return nil
}

// The committed captures replayed through the real agent, with no SNMP
// target, to the real controller: the generator's scan and SYN flood and
// the scan recorded on a veth arrive as port_scan and syn_flood with their
// evidence, on the capture point's device, and resolve when the file ends.
// The pcap and pcapng copies of the same packets give the same issues.
func TestAgentReplaysFlowFixtures(t *testing.T) {
	addr, ic := controllerClient(t)
	const id = "flow-test"
	reg := prometheus.NewRegistry()
	a := runFlowAgent(t, fmt.Sprintf(`agent: {id: %s, data_dir: %s}
controller: {address: "%s", insecure: true}
targets: []
flows:
  pcap_files:
    - ../testdata/flow/mixed-small.pcap
    - ../testdata/flow/mixed-small.pcapng
    - ../testdata/flow/veth-capture.pcap
  rules:
    port_scan: {dst_ports: 30}
`, id, t.TempDir(), addr), agent.WithRegistry(reg))

	mixed := []string{agent.FlowDevice(id, "mixed-small.pcap"), agent.FlowDevice(id, "mixed-small.pcapng")}
	veth := agent.FlowDevice(id, "veth-capture.pcap")
	resolved := netaiopsv1.IssueState_ISSUE_STATE_RESOLVED
	waitFor(t, 20*time.Second, "port_scan and syn_flood of every replay stored and resolved", func() bool {
		for _, dev := range mixed {
			s := withObject(issuesOf(t, ic, "port_scan", dev), synth.Scanner.String())
			f := withObject(issuesOf(t, ic, "syn_flood", dev), synth.FloodVictim.String())
			if s == nil || f == nil || s.GetState() != resolved || f.GetState() != resolved {
				return false
			}
		}
		s := withObject(issuesOf(t, ic, "port_scan", veth), "198.18.7.1")
		return s != nil && s.GetState() == resolved
	})
	var scans []*netaiopsv1.Issue
	for _, dev := range mixed {
		s := withObject(issuesOf(t, ic, "port_scan", dev), synth.Scanner.String())
		a := s.GetAttributes()
		ports, _ := strconv.ParseFloat(a["dst_ports"], 64)
		if s.GetAgentId() != id || ports < 100 || a["src"] != synth.Scanner.String() || a["threshold_dst_ports"] != "30" ||
			a["top_sources"] == "" || a["resolution"] != "capture ended" || s.GetSeverity() != netaiopsv1.Severity_SEVERITY_WARNING {
			t.Errorf("port_scan on %s: %v", dev, s)
		}
		f := withObject(issuesOf(t, ic, "syn_flood", dev), synth.FloodVictim.String())
		fa := f.GetAttributes()
		syns, _ := strconv.Atoi(fa["syns"])
		halfOpen, _ := strconv.Atoi(fa["half_open"])
		if syns < 100 || halfOpen < 100 || fa["sources"] == "" || fa["threshold_syns"] != "100" || f.GetSeverity() != netaiopsv1.Severity_SEVERITY_MAJOR {
			t.Errorf("syn_flood on %s: %v", dev, f)
		}
		if n := len(issuesOf(t, ic, "syn_flood", dev)); n != 1 {
			t.Errorf("%d syn_flood issues on %s, want 1 (the scanned host is no flood victim)", n, dev)
		}
		scans = append(scans, s)
	}
	if a, b := scans[0], scans[1]; !a.GetFirstSeen().AsTime().Equal(b.GetFirstSeen().AsTime()) ||
		a.GetAttributes()["dst_ports"] != b.GetAttributes()["dst_ports"] || a.GetAttributes()["flows"] != b.GetAttributes()["flows"] {
		t.Errorf("pcap and pcapng replays differ:\n%v\n%v", a, b)
	}
	// Packet time, not the wall clock: the generator's traffic starts 2026-01-01.
	if fs := scans[0].GetFirstSeen().AsTime(); fs.Before(synth.SmallMix().Start) || fs.After(synth.SmallMix().Start.Add(time.Minute)) {
		t.Errorf("first_seen %s is not the capture's time", fs)
	}
	if s := withObject(issuesOf(t, ic, "port_scan", veth), "198.18.7.1"); s.GetAttributes()["dst_addrs"] != "1.00" {
		t.Errorf("veth port_scan %v", s)
	}
	if st := a.FlowStats(); st.Failures != 0 || st.Intervals < 9 {
		t.Errorf("flow stats %+v", st)
	}
	// The capture's counters at /metrics: the generator wrote 1500 frames;
	// the veth capture holds 148, of which 2 do not decode.
	for _, m := range []struct {
		name, capture string
		want          float64
	}{
		{"netaiops_flow_packets_total", "mixed-small.pcap", 1500}, {"netaiops_flow_packets_total", "mixed-small.pcapng", 1500},
		{"netaiops_flow_packets_total", "veth-capture.pcap", 146}, {"netaiops_flow_decode_errors_total", "veth-capture.pcap", 2},
		{"netaiops_flow_kernel_drops_total", "mixed-small.pcap", 0}, {"netaiops_flow_capture_failures_total", "", 0},
	} {
		if got, ok := gathered(t, reg, m.name, m.capture); !ok || got != m.want {
			t.Errorf("%s{capture=%q} = %v (found %v), want %v", m.name, m.capture, got, ok, m.want)
		}
	}
	if got, _ := gathered(t, reg, "netaiops_flow_intervals_total", ""); got < 9 {
		t.Errorf("netaiops_flow_intervals_total = %v", got)
	}
}

// gathered returns the value of metric name (with label capture, unless
// "") from reg.
func gathered(t *testing.T, reg *prometheus.Registry, name, capture string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			got := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "capture" {
					got = l.GetValue()
				}
			}
			if got != capture {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue(), true
			}
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// A replay whose file is missing is counted and logged; the agent runs on.
func TestAgentFlowReplayMissingFile(t *testing.T) {
	addr := freeTCPAddr(t)
	a := runFlowAgent(t, fmt.Sprintf("agent: {id: f1, data_dir: %s}\ncontroller: {address: \"%s\", insecure: true}\ntargets: []\n"+
		"flows: {pcap_files: [%s/missing.pcap]}\n", t.TempDir(), addr, t.TempDir()))
	waitFor(t, 5*time.Second, "the failure counted", func() bool { return a.FlowStats().Failures == 1 })
}
