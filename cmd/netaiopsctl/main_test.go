package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/netaiops/netaiops/controller"
	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

// Tokens of the controller that runs with authentication.
const (
	viewerToken   = "viewer-token-0123456789"
	operatorToken = "operator-token-0123456789"
	adminToken    = "admin-token-0123456789abc"
	agentToken    = "agent-token-0123456789abc"
)

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// startController runs a real controller in-process on a loopback port,
// plaintext, over a SQLite file in dbPath (a temporary one when empty);
// with tokens, authentication is on. It returns the address and a stop
// function (also run at cleanup).
func startController(t *testing.T, addr, dbPath string, tokens bool) (string, func()) {
	t.Helper()
	cfg := controller.DefaultConfig()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if dbPath == "" {
		dbPath = filepath.Join(t.TempDir(), "c.db")
	}
	cfg.Listen, cfg.Insecure, cfg.DBPath = addr, true, dbPath
	cfg.HeartbeatInterval, cfg.ShutdownTimeout = time.Second, 2*time.Second
	if tokens {
		f := filepath.Join(t.TempDir(), "tokens")
		doc := fmt.Sprintf("viewer vera %s\noperator olga %s\nadmin ada %s\nagent edge-1 %s\n", viewerToken, operatorToken, adminToken, agentToken)
		if err := os.WriteFile(f, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg.TokensFile = f
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	}
	c := controller.New(cfg, logger)
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

// scriptedAgent is a Connect client that plays an agent: it sends issue
// events, acknowledges configuration pushes (NACKs a document containing
// "nack-me") and answers polls of core-sw1.
type scriptedAgent struct {
	t      *testing.T
	id     string
	mu     sync.Mutex // serialises Send
	stream grpc.BidiStreamingClient[netaiopsv1.ConnectRequest, netaiopsv1.ConnectResponse]
	acks   chan uint64
	seq    uint64
	cancel context.CancelFunc
	done   chan struct{}
}

func startAgent(t *testing.T, addr, id, token string) *scriptedAgent {
	t.Helper()
	return startAgentLabels(t, addr, id, token, map[string]string{"site": "lab"})
}

func startAgentLabels(t *testing.T, addr, id, token string, labels map[string]string) *scriptedAgent {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	stream, err := netaiopsv1.NewControlServiceClient(conn).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a := &scriptedAgent{t: t, id: id, stream: stream, acks: make(chan uint64, 100), cancel: cancel, done: make(chan struct{})}
	a.send(&netaiopsv1.ConnectRequest{Msg: &netaiopsv1.ConnectRequest_Hello{Hello: &netaiopsv1.Hello{
		AgentId: id, LogId: "log-1", Version: "v9.9-test", Hostname: "edge-host",
		Labels:  labels,
		Targets: []*netaiopsv1.TargetInfo{{Name: "core-sw1", Address: "10.0.0.1:161", SnmpVersion: "2c"}},
	}}})
	m, err := stream.Recv()
	if err != nil || m.GetWelcome() == nil {
		t.Fatalf("want welcome, got %v, %v", m, err)
	}
	go a.read() // owned: stop waits for it
	t.Cleanup(func() {
		a.stop()
		conn.Close()
	})
	return a
}

func (a *scriptedAgent) stop() {
	a.cancel()
	<-a.done
}

func (a *scriptedAgent) send(m *netaiopsv1.ConnectRequest) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.stream.Send(m); err != nil && !errors.Is(err, io.EOF) {
		a.t.Errorf("agent send: %v", err)
	}
}

func (a *scriptedAgent) read() {
	defer close(a.done)
	for {
		m, err := a.stream.Recv()
		if err != nil {
			return
		}
		switch {
		case m.GetAck() != nil:
			a.acks <- m.GetAck().GetAckedSeq()
		case m.GetConfig() != nil:
			p := m.GetConfig()
			st := &netaiopsv1.ConfigStatus{Version: p.GetVersion(), Hash: p.GetHash()}
			if strings.Contains(p.GetYaml(), "nack-me") {
				st.Error = "targets[0].address: missing port"
			}
			a.send(&netaiopsv1.ConnectRequest{Msg: &netaiopsv1.ConnectRequest_ConfigStatus{ConfigStatus: st}})
		case m.GetCommand() != nil:
			cmd := m.GetCommand()
			res := &netaiopsv1.CommandResult{Id: cmd.GetId()}
			if cmd.GetPoll().GetTarget() == "core-sw1" {
				res.Poll = &netaiopsv1.PollResult{Target: "core-sw1", Time: timestamppb.Now(), Duration: durationpb.New(12 * time.Millisecond),
					Samples: []*netaiopsv1.Sample{{Metric: "ifOperStatus", Labels: map[string]string{"ifName": "ge-0/0/1"}, Value: 1, Kind: "gauge"}}}
			} else {
				res.Code, res.Message = 5, "no target "+cmd.GetPoll().GetTarget()
			}
			a.send(&netaiopsv1.ConnectRequest{Msg: &netaiopsv1.ConnectRequest_CommandResult{CommandResult: res}})
		}
	}
}

// event sends one issue event and waits for its ack.
func (a *scriptedAgent) event(typ netaiopsv1.IssueEventType, is *netaiopsv1.Issue, at time.Time) {
	a.t.Helper()
	a.seq++
	a.send(&netaiopsv1.ConnectRequest{Msg: &netaiopsv1.ConnectRequest_Events{Events: &netaiopsv1.EventBatch{LogId: "log-1",
		Events: []*netaiopsv1.IssueEvent{{Seq: a.seq, Type: typ, Time: timestamppb.New(at), Issue: is}}}}})
	timeout := time.After(10 * time.Second)
	for {
		select {
		case s := <-a.acks:
			if s >= a.seq {
				return
			}
		case <-timeout:
			a.t.Fatalf("no ack for seq %d", a.seq)
		}
	}
}

func testIssue(id, kind, device string, sev netaiopsv1.Severity, firstSeen time.Time, summary string) *netaiopsv1.Issue {
	return &netaiopsv1.Issue{Id: id, Device: device, Kind: kind, Severity: sev, State: netaiopsv1.IssueState_ISSUE_STATE_OPEN,
		Summary: summary, FirstSeen: timestamppb.New(firstSeen), LastSeen: timestamppb.New(firstSeen),
		Attributes: map[string]string{"ifName": "ge-0/0/1", "ifAdminStatus": "up"}, Object: "ifIndex=" + id,
		Fingerprint: kind + "/" + device + "/ifIndex=" + id}
}

// ctl runs netaiopsctl in-process with env (nothing else of the
// environment: no HOME, so no config file unless given).
func ctl(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return ctlCtx(t, context.Background(), env, args...)
}

func ctlCtx(t *testing.T, ctx context.Context, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(ctx, args, func(k string) string { return env[k] }, &out, &errb, false)
	t.Logf("netaiopsctl %s -> %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
	return code, out.String(), errb.String()
}
