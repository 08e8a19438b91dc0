package agent_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/netaiops/netaiops/agent"
	"github.com/netaiops/netaiops/agent/config"
	"github.com/netaiops/netaiops/collector"
	"github.com/netaiops/netaiops/collector/snmp"
	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

// recordingPoller answers every poll with one sample and records when
// each target was polled; target "slow" answers only when its ctx ends.
type recordingPoller struct {
	mu        sync.Mutex
	polls     map[string][]time.Time
	forgotten []string
}

// Forget records the targets the agent told the poller to forget.
func (p *recordingPoller) Forget(o snmp.Options) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.forgotten = append(p.forgotten, o.Target.Name)
}

func (p *recordingPoller) Poll(ctx context.Context, o snmp.Options) collector.Poll {
	name := o.Target.Name
	now := time.Now()
	if name == "slow" {
		<-ctx.Done()
		return collector.Poll{Target: o.Target, Time: now, Err: ctx.Err()}
	}
	p.mu.Lock()
	if p.polls == nil {
		p.polls = map[string][]time.Time{}
	}
	p.polls[name] = append(p.polls[name], now)
	p.mu.Unlock()
	return collector.Poll{Target: o.Target, Time: now, Duration: time.Millisecond,
		Samples: []collector.Sample{{Device: name, Metric: "sysUpTime", Value: 4200, Kind: collector.Gauge, Time: now}}}
}

// count returns how often target was polled, and the first poll after since.
func (p *recordingPoller) count(target string, since time.Time) (n int, first time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, at := range p.polls[target] {
		n++
		if first.IsZero() && at.After(since) {
			first = at
		}
	}
	return n, first
}

// runAgent runs an agent from a config document and returns a stop func.
func runAgent(t *testing.T, doc string, p agent.Poller) (a *agent.Agent, stop func()) {
	t.Helper()
	cfg, err := config.Parse([]byte(doc), "agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a, err = agent.New(cfg, testLogger(t).With("side", "agent"), agent.WithPoller(p))
	if err != nil {
		t.Fatal(err)
	}
	stop = startAgent(t, a)
	t.Cleanup(stop)
	return a, stop
}

func agentOf(t *testing.T, fc netaiopsv1.FleetServiceClient, id string) *netaiopsv1.Agent {
	t.Helper()
	resp, err := fc.ListAgents(context.Background(), &netaiopsv1.ListAgentsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range resp.GetAgents() {
		if a.GetId() == id {
			return a
		}
	}
	return nil
}

// TestConfigPushAndCommands: a pushed configuration takes effect within
// one interval and is ACKed; an invalid one is NACKed with the validation
// error while the agent keeps polling with the old one; the last good one
// survives a restart without the controller; PollTarget answers with
// samples, NotFound, DeadlineExceeded and Unavailable.
func TestConfigPushAndCommands(t *testing.T) {
	const interval = 400 * time.Millisecond
	addr, stopController := startController(t, "127.0.0.1:0")
	dataDir := t.TempDir()
	doc := `agent:
  id: edge-1
  data_dir: ` + dataDir + `
  labels: {site: lab}
controller:
  address: ` + addr + `
  insecure: true
snmp:
  interval: 400ms
  timeout: 100ms
targets:
  - name: a
    address: 10.0.0.1
    community: local-secret
`
	p := &recordingPoller{}
	a, stopAgent := runAgent(t, doc, p)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fc := netaiopsv1.NewFleetServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	waitFor(t, 5*time.Second, "agent connected and polling a", func() bool {
		n, _ := p.count("a", time.Time{})
		return a.Stats().Uplink.Connected && n > 0
	})

	// A valid push for the agent's label group: b starts within one interval.
	good := "targets:\n  - name: a\n    address: 10.0.0.1\n    community: local-secret\n" +
		"  - name: b\n    address: 10.0.0.2\n    community: pushed-secret\n  - name: slow\n    address: 10.0.0.3\n"
	set, err := fc.SetConfig(ctx, &netaiopsv1.SetConfigRequest{Selector: &netaiopsv1.ConfigSelector{Labels: map[string]string{"site": "lab"}}, Yaml: good})
	if err != nil {
		t.Fatal(err)
	}
	pushedAt := time.Now()
	if y := set.GetConfig().GetYaml(); strings.Contains(y, "pushed-secret") || !strings.Contains(y, "<secret>") {
		t.Errorf("SetConfig answer does not redact the community:\n%s", y)
	}
	waitFor(t, 5*time.Second, "the push ACKed", func() bool {
		ag := agentOf(t, fc, "edge-1")
		return ag.GetAppliedConfigHash() == set.GetConfig().GetHash() && ag.GetDesiredConfigHash() == set.GetConfig().GetHash()
	})
	waitFor(t, 5*time.Second, "b polled", func() bool { _, first := p.count("b", pushedAt); return !first.IsZero() })
	if _, first := p.count("b", pushedAt); first.Sub(pushedAt) > interval+200*time.Millisecond {
		t.Errorf("b first polled %s after the push, want within one interval (%s)", first.Sub(pushedAt), interval)
	}
	if ag := agentOf(t, fc, "edge-1"); ag.GetAppliedConfigVersion() != set.GetConfig().GetVersion() || ag.GetConfigError() != "" ||
		ag.GetDesiredConfigSource() != "labels/site=lab" || ag.GetTargetCount() != 3 {
		t.Errorf("agent after ACK: %v", ag)
	}

	// An invalid push for the agent alone: NACKed, the old config keeps running.
	bad := "targets:\n  - name: a\n    address: 10.0.0.1\n  - name: c\n    address: 10.0.0.4:99999\n"
	badSet, err := fc.SetConfig(ctx, &netaiopsv1.SetConfigRequest{Selector: &netaiopsv1.ConfigSelector{AgentId: "edge-1"}, Yaml: bad})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the NACK", func() bool { return agentOf(t, fc, "edge-1").GetConfigErrorHash() == badSet.GetConfig().GetHash() })
	ag := agentOf(t, fc, "edge-1")
	if want := `targets[1].address: bad address "10.0.0.4:99999": bad port "99999" (want 1-65535)`; !strings.Contains(ag.GetConfigError(), want) ||
		ag.GetAppliedConfigHash() != set.GetConfig().GetHash() || ag.GetDesiredConfigSource() != "agent/edge-1" {
		t.Errorf("agent after NACK: error %q applied %s desired %s", ag.GetConfigError(), ag.GetAppliedConfigHash(), ag.GetDesiredConfigSource())
	}
	// The same content again changes nothing and pushes nothing; the
	// NACKed hash is not pushed again on this stream.
	again, err := fc.SetConfig(ctx, &netaiopsv1.SetConfigRequest{Selector: &netaiopsv1.ConfigSelector{AgentId: "edge-1"}, Yaml: bad})
	if err != nil || again.GetConfig().GetVersion() != badSet.GetConfig().GetVersion() {
		t.Errorf("same content again: %v %v, want version %d", again, err, badSet.GetConfig().GetVersion())
	}
	nackAt := time.Now()
	waitFor(t, 5*time.Second, "a and b polled after the NACK", func() bool {
		_, fa := p.count("a", nackAt)
		_, fb := p.count("b", nackAt)
		return !fa.IsZero() && !fb.IsZero()
	})
	if n, _ := p.count("c", time.Time{}); n != 0 {
		t.Errorf("c of the rejected config was polled %d times", n)
	}
	if n := a.Stats().Uplink.ConfigPushes; n != 2 {
		t.Errorf("agent answered %d pushes, want 2 (the group's, the agent's rejected one)", n)
	}

	// Commands.
	pc := func(agentID, target string, timeout time.Duration) (*netaiopsv1.PollTargetResponse, error) {
		return fc.PollTarget(ctx, &netaiopsv1.PollTargetRequest{AgentId: agentID, Target: target, Timeout: durationpb.New(timeout)})
	}
	res, err := pc("edge-1", "b", 5*time.Second)
	if err != nil || res.GetResult().GetTarget() != "b" || len(res.GetResult().GetSamples()) != 1 || res.GetResult().GetSamples()[0].GetMetric() != "sysUpTime" {
		t.Errorf("PollTarget b: %v %v", res, err)
	}
	_, err = pc("edge-1", "nope", 5*time.Second)
	wantCode(t, "PollTarget unknown target", err, codes.NotFound)
	start := time.Now()
	_, err = pc("edge-1", "slow", 300*time.Millisecond)
	wantCode(t, "PollTarget slow target", err, codes.DeadlineExceeded)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("DeadlineExceeded after %s, want about 300ms", d)
	}
	_, err = pc("ghost", "a", time.Second)
	wantCode(t, "PollTarget unconnected agent", err, codes.Unavailable)

	// The last good configuration survives a restart without the controller.
	stopAgent()
	stopController()
	p2 := &recordingPoller{}
	restarted, _ := runAgent(t, doc, p2)
	waitFor(t, 5*time.Second, "b polled after a restart without the controller", func() bool { n, _ := p2.count("b", time.Time{}); return n > 0 })
	if st := restarted.State(); st.ConfigHash != set.GetConfig().GetHash() || len(st.Targets) != 3 {
		t.Errorf("restarted state: %+v", st)
	}
}

func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if status.Code(err) != want {
		t.Errorf("%s: got %v, want %s", what, err, want)
	}
}

// failingPoller fails every poll of target "down" and answers the others.
type failingPoller struct{ recordingPoller }

func (p *failingPoller) Poll(ctx context.Context, o snmp.Options) collector.Poll {
	if o.Target.Name == "down" {
		return collector.Poll{Target: o.Target, Time: time.Now(), Err: context.DeadlineExceeded}
	}
	return p.recordingPoller.Poll(ctx, o)
}

// TestConfigPushKeepsState: adding a target leaves the detection state of
// the others alone (an open device_unreachable stays open, same issue);
// removing a target resolves its issues ("target removed").
func TestConfigPushKeepsState(t *testing.T) {
	addr, _ := startController(t, "127.0.0.1:0")
	doc := `agent:
  id: edge-2
  data_dir: ` + t.TempDir() + `
controller:
  address: ` + addr + `
  insecure: true
snmp:
  interval: 200ms
  timeout: 100ms
  unreachable_after: 2
targets:
  - name: down
    address: 10.0.0.1
  - name: a
    address: 10.0.0.2
`
	p := &failingPoller{}
	runAgent(t, doc, p)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fc, ic := netaiopsv1.NewFleetServiceClient(conn), netaiopsv1.NewIssueServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	unreachable := func() []*netaiopsv1.Issue {
		resp, err := ic.ListIssues(ctx, &netaiopsv1.ListIssuesRequest{Kind: "device_unreachable", Device: "down"})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetIssues()
	}
	waitFor(t, 10*time.Second, "device_unreachable on down", func() bool { return len(unreachable()) == 1 })
	first := unreachable()[0]

	set := func(yaml string) string {
		t.Helper()
		r, err := fc.SetConfig(ctx, &netaiopsv1.SetConfigRequest{Selector: &netaiopsv1.ConfigSelector{AgentId: "edge-2"}, Yaml: yaml})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "the ACK", func() bool { return agentOf(t, fc, "edge-2").GetAppliedConfigHash() == r.GetConfig().GetHash() })
		return r.GetConfig().GetHash()
	}
	addedAt := time.Now()
	set("targets:\n  - name: down\n    address: 10.0.0.1\n  - name: a\n    address: 10.0.0.2\n  - name: b\n    address: 10.0.0.3\n")
	waitFor(t, 5*time.Second, "b polled", func() bool { _, f := p.count("b", addedAt); return !f.IsZero() })
	time.Sleep(600 * time.Millisecond) // three more polls of down
	if got := unreachable(); len(got) != 1 || got[0].GetId() != first.GetId() || got[0].GetState() != netaiopsv1.IssueState_ISSUE_STATE_OPEN {
		t.Fatalf("after adding b, down's issue changed: %v (was %v)", got, first)
	}

	set("targets:\n  - name: a\n    address: 10.0.0.2\n  - name: b\n    address: 10.0.0.3\n")
	waitFor(t, 5*time.Second, "down's issue resolved", func() bool {
		got := unreachable()
		return len(got) == 1 && got[0].GetState() == netaiopsv1.IssueState_ISSUE_STATE_RESOLVED
	})
	if got := unreachable()[0]; got.GetId() != first.GetId() || !strings.Contains(strings.Join(mapValues(got.GetAttributes()), " "), "target removed") {
		t.Errorf("resolved issue %v: want the same id and resolution \"target removed\"", got)
	}
	p.mu.Lock()
	if !slices.Equal(p.forgotten, []string{"down"}) {
		t.Errorf("poller told to forget %v, want [down] (its engine id, keys and counter state)", p.forgotten)
	}
	p.mu.Unlock()

	// A profile the agent does not know is a NACK; the targets keep running.
	r, err := fc.SetConfig(ctx, &netaiopsv1.SetConfigRequest{Selector: &netaiopsv1.ConfigSelector{AgentId: "edge-2"},
		Yaml: "targets:\n  - name: a\n    address: 10.0.0.2\n    profiles: [no_such_profile]\n"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the NACK", func() bool { return agentOf(t, fc, "edge-2").GetConfigErrorHash() == r.GetConfig().GetHash() })
	if msg := agentOf(t, fc, "edge-2").GetConfigError(); !strings.Contains(msg, `target a: plan [no_such_profile]: unknown profile "no_such_profile"`) {
		t.Errorf("config error %q: want the target and the unknown profile named", msg)
	}
	since := time.Now()
	waitFor(t, 5*time.Second, "b still polled", func() bool { _, f := p.count("b", since); return !f.IsZero() })
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
