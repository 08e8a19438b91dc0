package agent_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/netaiops/netaiops/agent"
	"github.com/netaiops/netaiops/agent/config"
	"github.com/netaiops/netaiops/collector"
	"github.com/netaiops/netaiops/collector/snmp/snmpdtest"
	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

const (
	v3User     = "netaiops"
	v3AuthPass = "agent-auth-secret"
	v3PrivPass = "agent-priv-secret"
)

// TestAgentSNMPv3TrapsAndMetrics runs the whole SNMP path of the agent as a
// user gets it from a config file: a v3 authPriv target on a real snmpd
// polled with the shipped profiles (samples, counter rates, and no issue),
// a linkDown trap sent with net-snmp's snmptrap to the agent's trap
// listener (interface_down at the controller), and /metrics with the
// poller's, the trap receiver's and the agent's own metrics.
func TestAgentSNMPv3TrapsAndMetrics(t *testing.T) {
	if _, err := exec.LookPath("snmptrap"); err != nil {
		t.Skip("net-snmp snmptrap not installed (apt-get install snmp)")
	}
	dev := snmpdtest.Start(t, snmpdtest.Config{SysName: "agent-test-device", Users: []snmpdtest.User{
		{Name: v3User, Auth: "SHA-256", AuthPassword: v3AuthPass, Priv: "AES", PrivPassword: v3PrivPass},
	}})
	ctlAddr, _ := startController(t, "127.0.0.1:0")

	yaml := fmt.Sprintf(`agent: {id: agent-v3, data_dir: %s}
controller: {address: %s, insecure: true}
snmp: {interval: 300ms, timeout: 250ms, retries: 1}
profiles:
  default: [system, if_mib, host_resources]
targets:
  - name: dev3
    address: 127.0.0.1:%d
    version: 3
    security_level: authPriv
    username: %s
    auth_protocol: SHA256
    auth_password: %s
    priv_protocol: AES
    priv_password: %s
traps:
  listen: 127.0.0.1:0
  communities: [public]
`, t.TempDir(), ctlAddr, dev.Port(), v3User, v3AuthPass, v3PrivPass)
	cfg, err := config.Parse([]byte(yaml), "agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(cfg, testLogger(t), agent.WithMetricsListen("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	if a.TrapAddr() == nil || a.MetricsAddr() == nil {
		t.Fatalf("trap listener %v, metrics listener %v: want both", a.TrapAddr(), a.MetricsAddr())
	}
	defer startAgent(t, a)()

	waitFor(t, 10*time.Second, "4 polls of dev3 and the controller connected", func() bool {
		s := a.Stats()
		return s.Polls >= 4 && s.Uplink.Connected
	})
	if s := a.Stats(); s.PollErrors != 0 {
		t.Fatalf("stats %+v: v3 authPriv polls failed", s)
	}
	// The same poller, asked by a controller command: samples of every
	// profile, and rates from the counters of the scheduled polls before.
	p, err := a.Poll(context.Background(), "dev3")
	if err != nil || p.Err != nil {
		t.Fatalf("poll dev3: %v, %v", err, p.Err)
	}
	metrics := map[string]int{}
	for _, s := range p.Samples {
		metrics[s.Metric]++
		if s.Kind == collector.Rate {
			metrics["kind=rate"]++
		}
	}
	for _, m := range []string{"sysUpTime", "ifOperStatus", "ifHCInOctets", "ifHCInOctets_rate", "hrStorageUsed", "kind=rate"} {
		if metrics[m] == 0 {
			t.Errorf("poll of dev3 has no %s sample (got %v)", m, metrics)
		}
	}

	conn, err := grpc.NewClient(ctlAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ic := netaiopsv1.NewIssueServiceClient(conn)
	resp, err := ic.ListIssues(context.Background(), &netaiopsv1.ListIssuesRequest{Device: "dev3", PageSize: 100})
	if err != nil {
		t.Fatalf("ListIssues: %v", err)
	}
	if len(resp.GetIssues()) != 0 {
		t.Fatalf("issues of a healthy device: %v", resp.GetIssues())
	}

	// linkDown of ifIndex 1 (lo, admin up) from the device's address: the
	// receiver names the target, the engine opens interface_down at once.
	cmd := snmpdtest.Command(t, "snmptrap", "-t", "1", "-r", "0", "-v", "2c", "-c", "public", a.TrapAddr().String(), "",
		"1.3.6.1.6.3.1.1.5.3", "1.3.6.1.2.1.2.2.1.1.1", "i", "1", "1.3.6.1.2.1.2.2.1.7.1", "i", "1", "1.3.6.1.2.1.2.2.1.8.1", "i", "2")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("snmptrap: %v\n%s", err, out)
	}
	var down *netaiopsv1.Issue
	waitFor(t, 10*time.Second, "interface_down of dev3 from the linkDown trap at the controller", func() bool {
		// Any state: the next poll, which sees lo up, resolves it.
		down = issue(t, ic, "interface_down", "dev3", netaiopsv1.IssueState_ISSUE_STATE_UNSPECIFIED)
		return down != nil
	})
	if down.GetObject() != "lo" || down.GetAttributes()["source"] != "trap" {
		t.Errorf("interface_down %v: want object lo from the trap", down)
	}
	if s := a.Stats(); s.TrapEvents != 1 {
		t.Errorf("trap events %d, want 1", s.TrapEvents)
	}

	body := scrape(t, a.MetricsAddr().String())
	for _, re := range []string{
		`(?m)^netaiops_snmp_polls_total\{result="ok",target="dev3"\} [1-9]`,
		`(?m)^netaiops_snmp_poll_duration_seconds_count\{target="dev3"\} [1-9]`,
		`(?m)^netaiops_snmp_poll_duration_seconds_bucket\{target="dev3",le="0.5"\} `,
		`(?m)^netaiops_snmp_traps_received_total 1$`,
		`(?m)^netaiops_snmp_trap_events_total 1$`,
		`(?m)^netaiops_agent_polls_total [1-9]`,
		`(?m)^netaiops_agent_polls_skipped_total `,
		`(?m)^netaiops_outbox_pending `,
		`(?m)^netaiops_uplink_connected 1$`,
		`(?m)^netaiops_detect_changes_total [1-9]`,
		`(?m)^netaiops_detect_trap_events_total 1$`,
	} {
		if !regexp.MustCompile(re).MatchString(body) {
			t.Errorf("/metrics does not match %s", re)
		}
	}
	if strings.Contains(body, "127.0.0.1") {
		t.Errorf("/metrics names an address:\n%s", body)
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s, %v", resp.Status, err)
	}
	return string(b)
}

// An issue a trap opened survives a restart of the agent on the same data
// directory: after the restart the controller still has the one issue,
// and the linkUp trap resolves that same issue.
func TestAgentTrapIssueSurvivesRestart(t *testing.T) {
	if _, err := exec.LookPath("snmptrap"); err != nil {
		t.Skip("net-snmp snmptrap not installed (apt-get install snmp)")
	}
	ctlAddr, _ := startController(t, "127.0.0.1:0")
	// The target's polls fail (nothing listens) and never count as
	// unreachable here: only the traps speak of it.
	yaml := fmt.Sprintf(`agent: {id: agent-traps, data_dir: %s}
controller: {address: %s, insecure: true}
snmp: {interval: 1s, timeout: 100ms, retries: 0, unreachable_after: 1000}
targets:
  - {name: trapdev, address: "127.0.0.1:%d", community: public}
traps:
  listen: 127.0.0.1:0
  communities: [public]
`, t.TempDir(), ctlAddr, snmpdtest.FreePort(t))
	cfg, err := config.Parse([]byte(yaml), "agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	run := func() (*agent.Agent, func()) {
		a, err := agent.New(cfg, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		stop := startAgent(t, a)
		t.Cleanup(stop)
		waitFor(t, 10*time.Second, "the agent connected", func() bool { return a.Stats().Uplink.Connected })
		return a, stop
	}
	trap := func(a *agent.Agent, oid string, oper string) {
		t.Helper()
		cmd := snmpdtest.Command(t, "snmptrap", "-t", "1", "-r", "0", "-v", "2c", "-c", "public", a.TrapAddr().String(), "",
			oid, "1.3.6.1.2.1.2.2.1.1.3", "i", "3", "1.3.6.1.2.1.2.2.1.7.3", "i", "1", "1.3.6.1.2.1.2.2.1.8.3", "i", oper)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("snmptrap: %v\n%s", err, out)
		}
	}
	conn, err := grpc.NewClient(ctlAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ic := netaiopsv1.NewIssueServiceClient(conn)
	downs := func() []*netaiopsv1.Issue {
		resp, err := ic.ListIssues(context.Background(), &netaiopsv1.ListIssuesRequest{Kind: "interface_down", Device: "trapdev", PageSize: 100})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetIssues()
	}

	a, stop := run()
	trap(a, "1.3.6.1.6.3.1.1.5.3", "2") // linkDown ifIndex 3
	waitFor(t, 10*time.Second, "interface_down from the linkDown trap", func() bool { return len(downs()) == 1 })
	first := downs()[0]
	stop()

	a, _ = run()
	time.Sleep(1500 * time.Millisecond) // the open-issue set is applied, a poll fails
	if got := downs(); len(got) != 1 || got[0].GetId() != first.GetId() || got[0].GetState() != netaiopsv1.IssueState_ISSUE_STATE_OPEN {
		t.Fatalf("after restart: %v; want the one open issue %s", got, first.GetId())
	}
	trap(a, "1.3.6.1.6.3.1.1.5.4", "1") // linkUp
	waitFor(t, 10*time.Second, "interface_down resolved by linkUp", func() bool {
		got := downs()
		return len(got) == 1 && got[0].GetState() == netaiopsv1.IssueState_ISSUE_STATE_RESOLVED
	})
	if got := downs()[0]; got.GetId() != first.GetId() {
		t.Errorf("resolved %s; want the restored %s", got.GetId(), first.GetId())
	}
}

// A trap from a sender that is no target brings in a device the engine
// counts against its bound for such devices (netaiops_detect_trap_devices),
// with its device_rebooted issue delivered.
func TestAgentUnknownTrapSenderCounted(t *testing.T) {
	if _, err := exec.LookPath("snmptrap"); err != nil {
		t.Skip("net-snmp snmptrap not installed (apt-get install snmp)")
	}
	ctlAddr, _ := startController(t, "127.0.0.1:0")
	cfg, err := config.Parse([]byte(fmt.Sprintf(`agent: {id: agent-traps, data_dir: %s}
controller: {address: %s, insecure: true}
traps:
  listen: 127.0.0.1:0
  communities: [public]
`, t.TempDir(), ctlAddr)), "agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(cfg, testLogger(t), agent.WithMetricsListen("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer startAgent(t, a)()
	cmd := snmpdtest.Command(t, "snmptrap", "-t", "1", "-r", "0", "-v", "2c", "-c", "public", a.TrapAddr().String(), "", "1.3.6.1.6.3.1.1.5.1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("snmptrap: %v\n%s", err, out)
	}
	waitFor(t, 10*time.Second, "the unknown sender held by the engine", func() bool { return a.Stats().Detect.TrapDevices == 1 })
	conn, err := grpc.NewClient(ctlAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ic := netaiopsv1.NewIssueServiceClient(conn)
	waitFor(t, 10*time.Second, "device_rebooted of the unknown sender at the controller", func() bool {
		return issue(t, ic, "device_rebooted", "127.0.0.1", netaiopsv1.IssueState_ISSUE_STATE_OPEN) != nil
	})
	body := scrape(t, a.MetricsAddr().String())
	for _, re := range []string{
		`(?m)^netaiops_detect_trap_devices 1$`,
		`(?m)^netaiops_detect_trap_devices_refused_total 0$`,
	} {
		if !regexp.MustCompile(re).MatchString(body) {
			t.Errorf("/metrics does not match %s", re)
		}
	}
}
