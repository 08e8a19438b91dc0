package controller

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/netaiops/netaiops/controller/server"
	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err == nil || !strings.Contains(err.Error(), "--tls-cert, --tls-key: required (TLS is the default)") {
		t.Errorf("defaults without certificates: got %v, want TLS required", err)
	}
	tlsOK := DefaultConfig()
	tlsOK.Listen, tlsOK.TLSCert, tlsOK.TLSKey, tlsOK.TokensFile = "0.0.0.0:7443", "s.crt", "s.key", "tokens"
	if err := tlsOK.Validate(); err != nil {
		t.Errorf("TLS on a remote address: %v", err)
	}
	tlsOK.TokensFile = ""
	if err := tlsOK.Validate(); err == nil || !strings.Contains(err.Error(), "--tokens, --client-ca: neither given") {
		t.Errorf("TLS without tokens or client CA: got %v", err)
	}
	ok := DefaultConfig()
	ok.Insecure = true
	if err := ok.Validate(); err != nil {
		t.Fatalf("defaults with --insecure: %v", err)
	}
	for _, listen := range []string{"127.0.0.1:0", "[::1]:7443", "localhost:7443", "127.1.2.3:9"} {
		c := ok
		c.Listen = listen
		if err := c.Validate(); err != nil {
			t.Errorf("listen %s: %v", listen, err)
		}
	}
	cases := []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Listen = "0.0.0.0:7443" }, `--listen: "0.0.0.0:7443" is not a loopback address`},
		{func(c *Config) { c.Listen = ":7443" }, "pass --insecure-allow-remote"},
		{func(c *Config) { c.Listen = "10.1.1.1:7443" }, "not a loopback address"},
		{func(c *Config) { c.Listen = "nonsense" }, `--listen: "nonsense" is not host:port`},
		{func(c *Config) { c.DBPath = "" }, "--db: empty"},
		{func(c *Config) { c.HeartbeatInterval = time.Millisecond }, "--heartbeat-interval: 1ms is below the minimum 1s"},
		{func(c *Config) { c.MaxBatchEvents = 0 }, "--max-batch-events: 0 is outside 1..10000"},
		{func(c *Config) { c.CRLFile = "agents.crl" }, "--crl-file: needs --client-ca and TLS"},
	}
	for _, tc := range cases {
		c := ok
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
	c := ok
	c.Listen, c.InsecureAllowRemote = "0.0.0.0:7443", true
	if err := c.Validate(); err != nil {
		t.Errorf("insecure-allow-remote: %v", err)
	}
}

type running struct {
	ctl    *Controller
	cancel context.CancelFunc
	done   chan error
	conn   *grpc.ClientConn
}

func run(t *testing.T, dbPath string) *running {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Insecure = true
	cfg.DBPath = dbPath
	return runConfig(t, cfg, insecure.NewCredentials())
}

// runConfig runs a controller with cfg; r.conn dials it with creds.
func runConfig(t *testing.T, cfg Config, creds credentials.TransportCredentials) *running {
	t.Helper()
	cfg.ShutdownTimeout = 5 * time.Second
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctl := New(cfg, logger)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{ctl: ctl, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- ctl.Run(ctx) }()
	select {
	case <-ctl.Ready():
	case err := <-r.done:
		t.Fatalf("Run: %v", err)
	}
	conn, err := grpc.NewClient(ctl.Addr().String(), grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	r.conn = conn
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	r.conn.Close()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run returned %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

type agentStream = grpc.BidiStreamingClient[netaiopsv1.ConnectRequest, netaiopsv1.ConnectResponse]

// connectAgent says hello, sends one batch with the given issue ids and
// waits for its ack.
func connectAgent(t *testing.T, conn *grpc.ClientConn, ctx context.Context, ids ...string) agentStream {
	t.Helper()
	stream, err := netaiopsv1.NewControlServiceClient(conn).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&netaiopsv1.ConnectRequest{Msg: &netaiopsv1.ConnectRequest_Hello{Hello: &netaiopsv1.Hello{
		AgentId: "edge-1", LogId: "log-1", Version: "test", Hostname: "edge-1.lab"}}}); err != nil {
		t.Fatal(err)
	}
	m, err := stream.Recv()
	if err != nil || m.GetWelcome() == nil {
		t.Fatalf("want welcome: %v %v", m, err)
	}
	b := &netaiopsv1.EventBatch{LogId: "log-1"}
	seq := m.GetWelcome().GetLastStoredSeq()
	for _, id := range ids {
		seq++
		ts := timestamppb.New(time.Date(2026, 11, 24, 12, 0, int(seq), 0, time.UTC))
		b.Events = append(b.Events, &netaiopsv1.IssueEvent{Seq: seq, Type: netaiopsv1.IssueEventType_ISSUE_EVENT_TYPE_OPENED, Time: ts,
			Issue: &netaiopsv1.Issue{Id: id, Device: "core-sw1", Kind: "interface_down", Object: id, Fingerprint: "interface_down/core-sw1/" + id, State: netaiopsv1.IssueState_ISSUE_STATE_OPEN,
				Severity: netaiopsv1.Severity_SEVERITY_MAJOR, Summary: "ge-0/0/1 down", FirstSeen: ts, LastSeen: ts}})
	}
	if err := stream.Send(&netaiopsv1.ConnectRequest{Msg: &netaiopsv1.ConnectRequest_Events{Events: b}}); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := stream.Recv()
		if err != nil {
			t.Fatalf("want ack: %v", err)
		}
		if m.GetAck() != nil {
			if m.GetAck().GetAckedSeq() != seq {
				t.Fatalf("acked %d, want %d", m.GetAck().GetAckedSeq(), seq)
			}
			return stream
		}
	}
}

func TestRunHealthShutdownRestart(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "var", "controller.db")
	r := run(t, dbPath)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	health := healthpb.NewHealthClient(r.conn)
	for _, svc := range append([]string{""}, server.ServiceNames...) {
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health %q = %v, %v", svc, resp, err)
		}
	}
	stream := connectAgent(t, r.conn, ctx, "issue-a", "issue-b")
	hw, err := health.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := hw.Recv(); err != nil || m.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health watch = %v, %v", m, err)
	}
	watchCtx, watchCancel := context.WithCancel(ctx)
	defer watchCancel()
	issueWatch, err := netaiopsv1.NewIssueServiceClient(r.conn).WatchIssues(watchCtx, &netaiopsv1.WatchIssuesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := issueWatch.Header(); err != nil {
		t.Fatal(err)
	}

	// Shutdown: NOT_SERVING first, then open streams end with Unavailable.
	r.cancel()
	if m, err := hw.Recv(); err != nil || m.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health watch during shutdown = %v, %v", m, err)
	}
	for {
		if _, err := stream.Recv(); err != nil {
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("agent stream ended with %v, want Unavailable", err)
			}
			break
		}
	}
	if _, err := issueWatch.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("issue watch ended with %v, want Unavailable", err)
	}
	watchCancel()
	cancel() // ends the health watch, which a graceful stop would wait for
	start := time.Now()
	r.cancel = func() {}
	r.stop(t)
	t.Logf("stopped in %s", time.Since(start))

	// Restart on the same file: issues and watermark survive, the agent is
	// no longer connected.
	r2 := run(t, dbPath)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	list, err := netaiopsv1.NewIssueServiceClient(r2.conn).ListIssues(ctx2, &netaiopsv1.ListIssuesRequest{})
	if err != nil || len(list.GetIssues()) != 2 || list.GetIssues()[0].GetId() != "issue-b" {
		t.Fatalf("issues after restart = %v, %v", list, err)
	}
	agents, err := netaiopsv1.NewFleetServiceClient(r2.conn).ListAgents(ctx2, &netaiopsv1.ListAgentsRequest{})
	if err != nil || len(agents.GetAgents()) != 1 || agents.GetAgents()[0].GetConnected() || agents.GetAgents()[0].GetLastStoredSeq() != 2 {
		t.Fatalf("agents after restart = %v, %v", agents, err)
	}
	s := connectAgent(t, r2.conn, ctx2, "issue-c") // resumes at seq 3
	s.CloseSend()
}

// syncBuffer collects a child process's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// waitUntil polls cond: the test waits on an external process it cannot
// synchronise with otherwise.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// grpcurlPath finds the pinned grpcurl in the module's .bin, or on PATH.
func grpcurlPath(t *testing.T) string {
	t.Helper()
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			p := filepath.Join(d, ".bin", "grpcurl")
			if _, err := os.Stat(p); err == nil {
				return p
			}
			break
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	if p, err := exec.LookPath("grpcurl"); err == nil {
		return p
	}
	t.Skip("grpcurl not found in .bin/ or PATH (make tools installs it)")
	return ""
}

func TestGrpcurl(t *testing.T) {
	grpcurl := grpcurlPath(t)
	r := run(t, filepath.Join(t.TempDir(), "controller.db"))
	addr := r.ctl.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	agent := connectAgent(t, r.conn, ctx, "issue-1", "issue-2")
	defer agent.CloseSend()

	call := func(args ...string) (string, error) {
		t.Helper()
		cmd := exec.CommandContext(ctx, grpcurl, append([]string{"-plaintext"}, args...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	mustCall := func(args ...string) string {
		t.Helper()
		out, err := call(args...)
		if err != nil {
			t.Fatalf("grpcurl %v: %v\n%s", args, err, out)
		}
		return out
	}

	out := mustCall(addr, "list")
	for _, svc := range []string{"netaiops.v1.ControlService", "netaiops.v1.IssueService", "netaiops.v1.FleetService", "grpc.health.v1.Health"} {
		if !strings.Contains(out, svc) {
			t.Errorf("list lacks %s:\n%s", svc, out)
		}
	}
	out = mustCall(addr, "describe", "netaiops.v1.IssueService")
	if !strings.Contains(out, "rpc WatchIssues") || !strings.Contains(out, "rpc AcknowledgeIssue") {
		t.Errorf("describe IssueService:\n%s", out)
	}
	out = mustCall(addr, "describe", "netaiops.v1.Issue")
	if !strings.Contains(out, "acknowledged_by") {
		t.Errorf("describe Issue:\n%s", out)
	}
	out = mustCall("-d", `{"service":""}`, addr, "grpc.health.v1.Health/Check")
	if !strings.Contains(out, "SERVING") {
		t.Errorf("health: %s", out)
	}

	var list struct {
		Issues []struct {
			ID           string `json:"id"`
			State        string `json:"state"`
			Acknowledged bool   `json:"acknowledged"`
		} `json:"issues"`
		NextPageToken string `json:"nextPageToken"`
	}
	out = mustCall("-d", `{"state":"ISSUE_STATE_OPEN","page_size":1}`, addr, "netaiops.v1.IssueService/ListIssues")
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Issues) != 1 || list.Issues[0].ID != "issue-2" || list.NextPageToken == "" {
		t.Fatalf("ListIssues: %v\n%s", err, out)
	}
	out = mustCall("-d", `{"page_token":"`+list.NextPageToken+`","state":"ISSUE_STATE_OPEN","page_size":1}`, addr, "netaiops.v1.IssueService/ListIssues")
	if !strings.Contains(out, `"issue-1"`) {
		t.Fatalf("ListIssues page 2:\n%s", out)
	}
	out = mustCall("-d", `{"id":"issue-1"}`, addr, "netaiops.v1.IssueService/GetIssue")
	if !strings.Contains(out, `"device": "core-sw1"`) {
		t.Fatalf("GetIssue:\n%s", out)
	}
	out, err := call("-d", `{"id":"missing"}`, addr, "netaiops.v1.IssueService/GetIssue")
	if err == nil || !strings.Contains(out, "NotFound") {
		t.Fatalf("GetIssue missing: %v\n%s", err, out)
	}
	out, err = call("-d", `{"page_token":"not-a-token"}`, addr, "netaiops.v1.IssueService/ListIssues")
	if err == nil || !strings.Contains(out, "InvalidArgument") || !strings.Contains(out, "page_token") {
		t.Fatalf("ListIssues bad token: %v\n%s", err, out)
	}

	// A short WatchIssues sees the acknowledgement made while it runs; it is
	// ended once it printed it (or by -max-time on a very slow machine).
	watchCtx, watchCancel := context.WithCancel(ctx)
	defer watchCancel()
	watch := exec.CommandContext(watchCtx, grpcurl, "-plaintext", "-max-time", "30", "-d", `{"device":"core-sw1"}`, addr, "netaiops.v1.IssueService/WatchIssues")
	var watchOut syncBuffer
	watch.Stdout, watch.Stderr = &watchOut, &watchOut
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, "grpcurl WatchIssues to subscribe", func() bool { return r.ctl.Stats().Watchers > 0 })
	out = mustCall("-d", `{"id":"issue-2","by":"alice"}`, addr, "netaiops.v1.IssueService/AcknowledgeIssue")
	if !strings.Contains(out, `"acknowledgedBy": "alice"`) {
		t.Fatalf("AcknowledgeIssue:\n%s", out)
	}
	waitUntil(t, 20*time.Second, "grpcurl WatchIssues to print the acknowledgement", func() bool {
		w := watchOut.String()
		return strings.Contains(w, `"ISSUE_EVENT_TYPE_UPDATED"`) && strings.Contains(w, `"acknowledgedBy": "alice"`)
	})
	watchCancel()
	_ = watch.Wait() // killed: its exit status says nothing

	out = mustCall(addr, "netaiops.v1.FleetService/ListAgents")
	if !strings.Contains(out, `"id": "edge-1"`) || !strings.Contains(out, `"connected": true`) || !strings.Contains(out, `"lastStoredSeq": "2"`) {
		t.Fatalf("ListAgents:\n%s", out)
	}

	// Configuration and commands are grpcurl-able too.
	out = mustCall("-d", `{"selector":{"agent_id":"edge-1"},"yaml":"targets:\n  - name: core-sw1\n    address: 10.0.0.1\n    community: s3cret-c\n"}`,
		addr, "netaiops.v1.FleetService/SetConfig")
	if !strings.Contains(out, `"source": "agent/edge-1"`) || !strings.Contains(out, `"version": "1"`) || strings.Contains(out, "s3cret-c") {
		t.Fatalf("SetConfig:\n%s", out)
	}
	out = mustCall(addr, "netaiops.v1.FleetService/ListAgents")
	if !strings.Contains(out, `"desiredConfigSource": "agent/edge-1"`) {
		t.Fatalf("ListAgents after SetConfig:\n%s", out)
	}
	// This test's agent never answers commands: the call ends at its timeout.
	out, err = call("-d", `{"agent_id":"edge-1","target":"core-sw1","timeout":"0.5s"}`, addr, "netaiops.v1.FleetService/PollTarget")
	if err == nil || !strings.Contains(out, "DeadlineExceeded") {
		t.Fatalf("PollTarget of a silent agent: %v\n%s", err, out)
	}
	out, err = call("-d", `{"agent_id":"edge-9","target":"core-sw1"}`, addr, "netaiops.v1.FleetService/PollTarget")
	if err == nil || !strings.Contains(out, "Unavailable") {
		t.Fatalf("PollTarget of an unknown agent: %v\n%s", err, out)
	}
}
