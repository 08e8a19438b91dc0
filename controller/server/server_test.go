package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/netaiops/netaiops/controller/auth"
	"github.com/netaiops/netaiops/controller/store"
	"github.com/netaiops/netaiops/controller/watch"
	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

type env struct {
	srv    *Server
	store  *store.Store
	dbPath string
	conn   *grpc.ClientConn
	ctl    netaiopsv1.ControlServiceClient
	issues netaiopsv1.IssueServiceClient
	fleet  netaiopsv1.FleetServiceClient
}

// start runs the services on a real TCP listener over a real database file.
func start(t *testing.T, cfg Config, watchBuffer int) *env {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	dbPath := filepath.Join(t.TempDir(), "controller.db")
	st, err := store.Open(context.Background(), dbPath, logger)
	if err != nil {
		t.Fatal(err)
	}
	srv := New(cfg, st, watch.New(watchBuffer), logger)
	a := auth.New(nil, Policy(), ProtectedPrefixes, true)
	g := grpc.NewServer(grpc.ChainUnaryInterceptor(a.UnaryInterceptor()), grpc.ChainStreamInterceptor(a.StreamInterceptor()),
		grpc.MaxRecvMsgSize(DefaultMaxMsgSize), grpc.MaxSendMsgSize(DefaultMaxMsgSize)) // as the controller sets them
	srv.Register(g)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- g.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		srv.Shutdown()
		g.GracefulStop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		srv.Wait()
		st.Close()
	})
	return &env{srv: srv, store: st, dbPath: dbPath, conn: conn,
		ctl:    netaiopsv1.NewControlServiceClient(conn),
		issues: netaiopsv1.NewIssueServiceClient(conn),
		fleet:  netaiopsv1.NewFleetServiceClient(conn)}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// agent is a hand-written client of the Connect stream.
type agent struct {
	t      *testing.T
	stream grpc.BidiStreamingClient[netaiopsv1.ConnectRequest, netaiopsv1.ConnectResponse]
	cancel context.CancelFunc
}

func dial(t *testing.T, e *env) *agent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	stream, err := e.ctl.Connect(ctx)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	a := &agent{t: t, stream: stream, cancel: cancel}
	t.Cleanup(cancel)
	return a
}

func (a *agent) send(m *netaiopsv1.ConnectRequest) {
	a.t.Helper()
	if err := a.stream.Send(m); err != nil {
		a.t.Fatalf("send: %v", err)
	}
}

func hello(agentID, logID string) *netaiopsv1.ConnectRequest {
	return &netaiopsv1.ConnectRequest{Msg: &netaiopsv1.ConnectRequest_Hello{Hello: &netaiopsv1.Hello{
		AgentId: agentID, LogId: logID, Version: "test", Hostname: "edge-1",
		Targets: []*netaiopsv1.TargetInfo{{Name: "core-sw1", Address: "10.0.0.1:161", SnmpVersion: "2c"}},
		Labels:  map[string]string{"site": "lab"},
	}}}
}

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func event(seq uint64, id, device string) *netaiopsv1.IssueEvent {
	return &netaiopsv1.IssueEvent{Seq: seq, Type: netaiopsv1.IssueEventType_ISSUE_EVENT_TYPE_OPENED, Time: timestamppb.New(t0),
		Issue: &netaiopsv1.Issue{Id: id, Device: device, Kind: "interface_down", Severity: netaiopsv1.Severity_SEVERITY_MAJOR,
			State: netaiopsv1.IssueState_ISSUE_STATE_OPEN, Summary: "down " + id, FirstSeen: timestamppb.New(t0.Add(time.Duration(seq) * time.Second)),
			LastSeen: timestamppb.New(t0), Attributes: map[string]string{"ifName": "ge-0/0/1"}, Object: id, Fingerprint: "interface_down/" + device + "/" + id}}
}

func batch(logID string, evs ...*netaiopsv1.IssueEvent) *netaiopsv1.ConnectRequest {
	return &netaiopsv1.ConnectRequest{Msg: &netaiopsv1.ConnectRequest_Events{Events: &netaiopsv1.EventBatch{LogId: logID, Events: evs}}}
}

func heartbeat(pending, dropped uint64) *netaiopsv1.ConnectRequest {
	return &netaiopsv1.ConnectRequest{Msg: &netaiopsv1.ConnectRequest_Heartbeat{Heartbeat: &netaiopsv1.Heartbeat{
		Time: timestamppb.Now(), PendingEvents: pending, DroppedEvents: dropped}}}
}

// recv returns the next non-heartbeat message.
func (a *agent) recv() (*netaiopsv1.ConnectResponse, error) {
	for {
		m, err := a.stream.Recv()
		if err != nil || m.GetHeartbeat() == nil {
			return m, err
		}
	}
}

func (a *agent) welcome(agentID, logID string) *netaiopsv1.Welcome {
	a.t.Helper()
	a.send(hello(agentID, logID))
	m, err := a.recv()
	if err != nil || m.GetWelcome() == nil {
		a.t.Fatalf("want welcome, got %v, %v", m, err)
	}
	return m.GetWelcome()
}

func (a *agent) ack() uint64 {
	a.t.Helper()
	m, err := a.recv()
	if err != nil || m.GetAck() == nil {
		a.t.Fatalf("want ack, got %v, %v", m, err)
	}
	return m.GetAck().GetAckedSeq()
}

// finalStatus closes the send side and returns how the server ended the stream.
func (a *agent) end() error {
	a.t.Helper()
	if err := a.stream.CloseSend(); err != nil {
		a.t.Fatal(err)
	}
	return a.drain()
}

// drain reads until the stream ends; nil for a clean end.
func (a *agent) drain() error {
	for {
		if _, err := a.stream.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func wantCode(t *testing.T, err error, code codes.Code, substr string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code || !strings.Contains(st.Message(), substr) {
		t.Fatalf("got %v, want %s containing %q", err, code, substr)
	}
}

func getAgent(t *testing.T, e *env, id string) *netaiopsv1.Agent {
	t.Helper()
	resp, err := e.fleet.ListAgents(context.Background(), &netaiopsv1.ListAgentsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range resp.GetAgents() {
		if a.GetId() == id {
			return a
		}
	}
	t.Fatalf("agent %s not listed", id)
	return nil
}

func TestConnectHelloWelcomeBatchAck(t *testing.T) {
	e := start(t, Config{HeartbeatInterval: time.Hour, MaxBatchEvents: 50}, 0)
	ctx := context.Background()
	a := dial(t, e)
	w := a.welcome("a1", "L1")
	if w.GetLastStoredSeq() != 0 || w.GetHeartbeatInterval().AsDuration() != time.Hour || w.GetMaxBatchEvents() != 50 {
		t.Fatalf("welcome = %v", w)
	}
	a.send(batch("L1", event(1, "i1", "sw1"), event(2, "i2", "sw1"), event(3, "i3", "sw2")))
	if got := a.ack(); got != 3 {
		t.Fatalf("ack = %d, want 3", got)
	}
	// Replaying the batch is acked with the same watermark and stores nothing.
	a.send(batch("L1", event(2, "i2", "sw1"), event(3, "i3", "sw2")))
	if got := a.ack(); got != 3 {
		t.Fatalf("replay ack = %d", got)
	}
	a.send(heartbeat(5, 1))
	// Messages are handled in order: once an empty batch is acked, the
	// heartbeat before it is stored.
	a.send(batch("L1"))
	if got := a.ack(); got != 3 {
		t.Fatalf("empty batch ack = %d", got)
	}
	ag := getAgent(t, e, "a1")
	if !ag.GetConnected() || ag.GetPendingEvents() != 5 || ag.GetDroppedEvents() != 1 || ag.GetLastStoredSeq() != 3 ||
		ag.GetLogId() != "L1" || ag.GetTargetCount() != 1 || ag.GetLabels()["site"] != "lab" || ag.GetLastSeen() == nil {
		t.Fatalf("agent = %v", ag)
	}
	got, err := e.issues.GetIssue(ctx, &netaiopsv1.GetIssueRequest{Id: "i3"})
	if err != nil {
		t.Fatal(err)
	}
	if is := got.GetIssue(); is.GetAgentId() != "a1" || is.GetDevice() != "sw2" || is.GetUpdateTime() == nil || is.GetAttributes()["ifName"] != "ge-0/0/1" {
		t.Fatalf("issue = %v", is)
	}
	if err := a.end(); err != nil {
		t.Fatalf("clean close ended with %v", err)
	}
	if getAgent(t, e, "a1").GetConnected() {
		t.Fatal("agent still connected after its stream ended")
	}

	// A reconnect learns the highest stored seq; a new log starts at 0.
	b := dial(t, e)
	if w := b.welcome("a1", "L1"); w.GetLastStoredSeq() != 3 {
		t.Fatalf("reconnect last_stored_seq = %d, want 3", w.GetLastStoredSeq())
	}
	b.end()
	c := dial(t, e)
	if w := c.welcome("a1", "L2"); w.GetLastStoredSeq() != 0 {
		t.Fatalf("new log last_stored_seq = %d, want 0", w.GetLastStoredSeq())
	}
	c.send(batch("L2", event(1, "i9", "sw1")))
	if got := c.ack(); got != 1 {
		t.Fatalf("new log ack = %d", got)
	}
	c.end()
}

func TestSecondStreamReplacesFirst(t *testing.T) {
	e := start(t, Config{HeartbeatInterval: time.Hour}, 0)
	first := dial(t, e)
	first.welcome("a1", "L1")
	first.send(batch("L1", event(1, "i1", "sw1")))
	first.ack()
	second := dial(t, e)
	if w := second.welcome("a1", "L1"); w.GetLastStoredSeq() != 1 {
		t.Fatalf("second welcome = %v", w)
	}
	wantCode(t, first.drain(), codes.Aborted, "replaced by a newer stream")
	// The replaced stream's end does not mark the agent disconnected.
	second.send(batch("L1", event(2, "i2", "sw1")))
	if got := second.ack(); got != 2 {
		t.Fatalf("ack on second stream = %d", got)
	}
	if !getAgent(t, e, "a1").GetConnected() {
		t.Fatal("agent disconnected although its newer stream is open")
	}
	if s := e.srv.Stats(); s.ReplacedStreams != 1 || s.ConnectedAgents != 1 {
		t.Fatalf("stats = %+v", s)
	}
	second.end()
	if getAgent(t, e, "a1").GetConnected() {
		t.Fatal("agent connected after its last stream ended")
	}
}

func TestConnectRejectsBadInput(t *testing.T) {
	e := start(t, Config{HeartbeatInterval: time.Hour, MaxBatchEvents: 3, HelloTimeout: 200 * time.Millisecond}, 0)
	cases := []struct {
		name  string
		msgs  []*netaiopsv1.ConnectRequest
		code  codes.Code
		field string
	}{
		{"heartbeat first", []*netaiopsv1.ConnectRequest{heartbeat(0, 0)}, codes.InvalidArgument, "the first message must be a hello, got heartbeat"},
		{"events first", []*netaiopsv1.ConnectRequest{batch("L1", event(1, "i", "d"))}, codes.InvalidArgument, "got events"},
		{"empty first", []*netaiopsv1.ConnectRequest{{}}, codes.InvalidArgument, "got an empty message"},
		{"no agent id", []*netaiopsv1.ConnectRequest{hello("", "L1")}, codes.InvalidArgument, "hello.agent_id"},
		{"no log id", []*netaiopsv1.ConnectRequest{hello("a1", "")}, codes.InvalidArgument, "hello.log_id"},
		{"closed before hello", nil, codes.InvalidArgument, "stream closed before the first message"},
	}
	for _, c := range cases {
		a := dial(t, e)
		for _, m := range c.msgs {
			a.send(m)
		}
		t.Run(c.name, func(t *testing.T) { wantCode(t, a.end(), c.code, c.field) })
	}

	silent := dial(t, e)
	wantCode(t, silent.drain(), codes.DeadlineExceeded, "no hello within")

	noKind := event(2, "i2", "sw1")
	noKind.Issue.Kind = ""
	noIssue := event(2, "i2", "sw1")
	noIssue.Issue = nil
	after := []struct {
		name  string
		msg   *netaiopsv1.ConnectRequest
		field string
	}{
		{"other log", batch("L9", event(1, "i1", "sw1")), `events.log_id: "L9" is not the hello's log_id "L1"`},
		{"missing kind", batch("L1", event(1, "i1", "sw1"), noKind), "seq 2: issue.kind: required"},
		{"missing issue", batch("L1", event(1, "i1", "sw1"), noIssue), "seq 2: issue: required"},
		{"unordered", batch("L1", event(2, "i1", "sw1"), event(1, "i2", "sw1")), "seq 1: not greater than the previous seq 2"},
		{"too many", batch("L1", event(1, "a", "d"), event(2, "b", "d"), event(3, "c", "d"), event(4, "e", "d")), "more than max_batch_events 3"},
		{"second hello", hello("a1", "L1"), "hello: sent twice"},
		{"empty message", &netaiopsv1.ConnectRequest{}, "msg: empty ConnectRequest"},
	}
	for _, c := range after {
		a := dial(t, e)
		a.welcome("a1", "L1")
		a.send(c.msg)
		t.Run(c.name, func(t *testing.T) { wantCode(t, a.drain(), codes.InvalidArgument, c.field) })
	}
	// Nothing of a rejected batch was stored.
	if wm, _ := e.store.Watermark(context.Background(), "a1", "L1"); wm != 0 {
		t.Fatalf("watermark after rejected batches = %d", wm)
	}
	if _, err := e.issues.GetIssue(context.Background(), &netaiopsv1.GetIssueRequest{Id: "i1"}); status.Code(err) != codes.NotFound {
		t.Fatalf("issue of a rejected batch: %v", err)
	}
}

func TestControllerHeartbeats(t *testing.T) {
	e := start(t, Config{HeartbeatInterval: 20 * time.Millisecond}, 0)
	a := dial(t, e)
	a.welcome("a1", "L1")
	for range 2 {
		m, err := a.stream.Recv()
		if err != nil || m.GetHeartbeat() == nil || m.GetHeartbeat().GetTime() == nil {
			t.Fatalf("want heartbeat, got %v, %v", m, err)
		}
	}
	a.end()
}

func TestSilentAgentIsCutOff(t *testing.T) {
	e := start(t, Config{HeartbeatInterval: 30 * time.Millisecond}, 0)
	a := dial(t, e)
	a.welcome("a1", "L1")
	start := time.Now()
	wantCode(t, a.drain(), codes.DeadlineExceeded, "no message from the agent")
	if d := time.Since(start); d < 90*time.Millisecond {
		t.Fatalf("cut off after %s, before 3 heartbeat intervals", d)
	}
	if getAgent(t, e, "a1").GetConnected() {
		t.Fatal("silent agent still connected")
	}

	// An agent that heartbeats stays connected past the limit.
	b := dial(t, e)
	b.welcome("a2", "L1")
	for range 10 {
		b.send(heartbeat(0, 0))
		time.Sleep(15 * time.Millisecond)
	}
	b.send(batch("L1"))
	b.ack()
	b.end()
}

func TestWatchIssuesSeesIngestAndAck(t *testing.T) {
	e := start(t, Config{HeartbeatInterval: time.Hour}, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	watch, err := e.issues.WatchIssues(ctx, &netaiopsv1.WatchIssuesRequest{Device: "sw2"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Header(); err != nil { // subscribed from here on
		t.Fatal(err)
	}
	a := dial(t, e)
	a.welcome("a1", "L1")
	a.send(batch("L1", event(1, "i1", "sw1"), event(2, "i2", "sw2")))
	a.ack()
	m, err := watch.Recv()
	if err != nil || m.GetIssue().GetId() != "i2" || m.GetType() != netaiopsv1.IssueEventType_ISSUE_EVENT_TYPE_OPENED {
		t.Fatalf("watch got %v, %v; want i2 opened", m, err)
	}
	if _, err := e.issues.AcknowledgeIssue(ctx, &netaiopsv1.AcknowledgeIssueRequest{Id: "i1", By: "alice"}); err != nil {
		t.Fatal(err) // i1 is on sw1: filtered out
	}
	resp, err := e.issues.AcknowledgeIssue(ctx, &netaiopsv1.AcknowledgeIssueRequest{Id: "i2", By: "alice"})
	if err != nil || !resp.GetIssue().GetAcknowledged() || resp.GetIssue().GetAcknowledgedBy() != "alice" || resp.GetIssue().GetAcknowledgedAt() == nil {
		t.Fatalf("ack = %v, %v", resp, err)
	}
	m, err = watch.Recv()
	if err != nil || m.GetIssue().GetId() != "i2" || !m.GetIssue().GetAcknowledged() || m.GetType() != netaiopsv1.IssueEventType_ISSUE_EVENT_TYPE_UPDATED {
		t.Fatalf("watch got %v, %v; want i2 acknowledged", m, err)
	}
	a.end()
}

func TestIssueAndFleetBadRequests(t *testing.T) {
	e := start(t, Config{HeartbeatInterval: time.Hour}, 0)
	ctx := context.Background()
	a := dial(t, e)
	a.welcome("a1", "L1")
	var evs []*netaiopsv1.IssueEvent
	for i := 1; i <= 5; i++ {
		evs = append(evs, event(uint64(i), fmt.Sprintf("i%d", i), "sw1"))
	}
	a.send(batch("L1", evs...))
	a.ack()

	_, err := e.issues.GetIssue(ctx, &netaiopsv1.GetIssueRequest{})
	wantCode(t, err, codes.InvalidArgument, "id: required")
	_, err = e.issues.GetIssue(ctx, &netaiopsv1.GetIssueRequest{Id: "nope"})
	wantCode(t, err, codes.NotFound, `"nope"`)
	_, err = e.issues.AcknowledgeIssue(ctx, &netaiopsv1.AcknowledgeIssueRequest{By: "x"})
	wantCode(t, err, codes.InvalidArgument, "id: required")
	_, err = e.issues.AcknowledgeIssue(ctx, &netaiopsv1.AcknowledgeIssueRequest{Id: "i1"})
	wantCode(t, err, codes.InvalidArgument, "by: required")
	_, err = e.issues.AcknowledgeIssue(ctx, &netaiopsv1.AcknowledgeIssueRequest{Id: "nope", By: "x"})
	wantCode(t, err, codes.NotFound, `"nope"`)
	_, err = e.issues.ListIssues(ctx, &netaiopsv1.ListIssuesRequest{PageToken: "garbage!"})
	wantCode(t, err, codes.InvalidArgument, "page_token")
	_, err = e.issues.ListIssues(ctx, &netaiopsv1.ListIssuesRequest{PageSize: -1})
	wantCode(t, err, codes.InvalidArgument, "page_size")
	_, err = e.issues.ListIssues(ctx, &netaiopsv1.ListIssuesRequest{State: 42})
	wantCode(t, err, codes.InvalidArgument, "state: unknown value 42")
	_, err = e.issues.ListIssues(ctx, &netaiopsv1.ListIssuesRequest{Severity: 9})
	wantCode(t, err, codes.InvalidArgument, "severity")
	_, err = e.fleet.ListAgents(ctx, &netaiopsv1.ListAgentsRequest{PageToken: "@@"})
	wantCode(t, err, codes.InvalidArgument, "page_token")
	w, err := e.issues.WatchIssues(ctx, &netaiopsv1.WatchIssuesRequest{State: 7})
	if err == nil {
		_, err = w.Recv()
	}
	wantCode(t, err, codes.InvalidArgument, "state")

	// Paging over gRPC: 5 issues, 2 a page, newest first.
	var ids []string
	tok := ""
	for {
		resp, err := e.issues.ListIssues(ctx, &netaiopsv1.ListIssuesRequest{PageSize: 2, PageToken: tok, State: netaiopsv1.IssueState_ISSUE_STATE_OPEN})
		if err != nil {
			t.Fatal(err)
		}
		for _, is := range resp.GetIssues() {
			ids = append(ids, is.GetId())
		}
		if tok = resp.GetNextPageToken(); tok == "" {
			break
		}
	}
	if strings.Join(ids, ",") != "i5,i4,i3,i2,i1" {
		t.Fatalf("paged ids = %v", ids)
	}
	a.end()
}
