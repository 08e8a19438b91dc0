package uplink_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/netaiops/netaiops/agent/detect"
	"github.com/netaiops/netaiops/agent/outbox"
	"github.com/netaiops/netaiops/agent/uplink"
	"github.com/netaiops/netaiops/agent/uplink/uplinktest"
	"github.com/netaiops/netaiops/collector"
	"github.com/netaiops/netaiops/controller"
	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func mkChange(i int) detect.Change {
	dev := fmt.Sprintf("sw%d", i%3)
	fp := detect.Fingerprint("interface_down", dev, fmt.Sprintf("eth%d", i))
	first := t0.Add(time.Duration(i) * time.Second)
	return detect.Change{
		Type: detect.Opened,
		Time: first,
		Issue: detect.Issue{
			ID:          detect.IssueID("agent-1", fp, first),
			Device:      dev,
			Kind:        "interface_down",
			Object:      fmt.Sprintf("eth%d", i),
			Fingerprint: fp,
			Severity:    detect.SeverityMajor,
			State:       detect.StateOpen,
			Summary:     fmt.Sprintf("eth%d on %s down", i, dev),
			FirstSeen:   first,
			LastSeen:    first,
			Attributes:  map[string]string{"ifIndex": fmt.Sprint(i)},
		},
	}
}

func appendN(t *testing.T, ob *outbox.Outbox, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if _, err := uplink.Append(ob, mkChange(i)); err != nil {
			t.Fatal(err)
		}
	}
}

func newOutbox(t *testing.T) *outbox.Outbox {
	t.Helper()
	ob, err := outbox.New(outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return ob
}

func startServer(t *testing.T, addr string, st *uplinktest.Store, opts uplinktest.Options) *uplinktest.Server {
	t.Helper()
	s, err := uplinktest.Start(addr, st, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// run starts u.Run and returns a function that stops it and checks that it
// returned nil promptly.
func run(t *testing.T, u *uplink.Uplink) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- u.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Run returned %v after cancel, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return within 5s of cancel")
		}
	}
	t.Cleanup(stop)
	return stop
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func contiguous(seqs []uint64, n int) error {
	if len(seqs) != n {
		return fmt.Errorf("%d events stored, want %d", len(seqs), n)
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			return fmt.Errorf("stored seq #%d is %d, want %d (loss or duplicate)", i, s, i+1)
		}
	}
	return nil
}

// ctl is a real controller (controller.New) on a real socket and SQLite file.
type ctl struct {
	c      *controller.Controller
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// startController runs the real controller on addr ("127.0.0.1:0" for a
// free port) with its database at db; heartbeats every second (the
// minimum); maxBatch 0 keeps the default batch limit.
func startController(t *testing.T, addr, db string, maxBatch int) *ctl {
	t.Helper()
	cfg := controller.DefaultConfig()
	cfg.Listen, cfg.DBPath, cfg.HeartbeatInterval = addr, db, time.Second
	cfg.Insecure = true
	if maxBatch > 0 {
		cfg.MaxBatchEvents = maxBatch
	}
	cfg.ShutdownTimeout = 2 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	c := &ctl{c: controller.New(cfg, testLogger(t).With("side", "controller")), cancel: cancel, done: make(chan error, 1)}
	go func() { c.done <- c.c.Run(ctx) }() // owned by stop, which waits on done
	select {
	case <-c.c.Ready():
	case err := <-c.done:
		t.Fatalf("controller on %s: %v", addr, err)
	}
	t.Cleanup(c.stop)
	return c
}

func (c *ctl) addr() string { return c.c.Addr().String() }

// stop shuts the controller down (it ends the agents' streams) and waits.
func (c *ctl) stop() {
	c.once.Do(func() {
		c.cancel()
		if err := <-c.done; err != nil {
			panic(fmt.Sprintf("controller run: %v", err))
		}
	})
}

// ctlClient opens a client to the controller's read APIs.
func ctlClient(t *testing.T, addr string) (netaiopsv1.IssueServiceClient, netaiopsv1.FleetServiceClient) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return netaiopsv1.NewIssueServiceClient(conn), netaiopsv1.NewFleetServiceClient(conn)
}

// issueIDs lists every issue the controller stored.
func issueIDs(t *testing.T, ic netaiopsv1.IssueServiceClient) map[string]*netaiopsv1.Issue {
	t.Helper()
	out := map[string]*netaiopsv1.Issue{}
	token := ""
	for {
		resp, err := ic.ListIssues(context.Background(), &netaiopsv1.ListIssuesRequest{PageSize: 1000, PageToken: token})
		if err != nil {
			t.Fatalf("ListIssues: %v", err)
		}
		for _, is := range resp.GetIssues() {
			out[is.GetId()] = is
		}
		if token = resp.GetNextPageToken(); token == "" {
			return out
		}
	}
}

func agentRecord(t *testing.T, fc netaiopsv1.FleetServiceClient, id string) *netaiopsv1.Agent {
	t.Helper()
	resp, err := fc.ListAgents(context.Background(), &netaiopsv1.ListAgentsRequest{})
	if err != nil {
		t.Fatalf("ListAgents: %v", err)
	}
	for _, a := range resp.GetAgents() {
		if a.GetId() == id {
			return a
		}
	}
	return nil
}

// checkAllStored checks that the controller holds issues 1..n of mkChange.
func checkAllStored(t *testing.T, ic netaiopsv1.IssueServiceClient, n int) {
	t.Helper()
	got := issueIDs(t, ic)
	if len(got) != n {
		t.Fatalf("controller holds %d issues, want %d", len(got), n)
	}
	for i := 1; i <= n; i++ {
		want := mkChange(i).Issue
		is := got[want.ID]
		if is == nil {
			t.Fatalf("issue of event %d (%s) missing", i, want.ID)
		}
		if is.GetSummary() != want.Summary || is.GetAgentId() != "agent-1" || !is.GetFirstSeen().AsTime().Equal(want.FirstSeen) {
			t.Fatalf("issue of event %d stored as %v, want %+v", i, is, want)
		}
	}
}

func fastConfig(addr string) uplink.Config {
	return uplink.Config{
		Address:    addr,
		Insecure:   true,
		AgentID:    "agent-1",
		Version:    "test",
		Hostname:   "host-1",
		Labels:     map[string]string{"site": "lab"},
		Targets:    []collector.Target{{Name: "sw0", Address: "127.0.0.1:161", Version: "2c"}},
		BackoffMin: 20 * time.Millisecond,
		BackoffMax: 200 * time.Millisecond,
	}
}

func TestConvertRoundTrip(t *testing.T) {
	c := mkChange(7)
	c.Type = detect.Resolved
	c.Issue.State = detect.StateResolved
	c.Issue.ResolvedAt = t0.Add(time.Minute)
	c.Issue.CausedBy = "device_unreachable/sw1/"
	e := uplink.Event{Seq: 42, Change: c}
	pb := uplink.ChangeToProto("agent-1", 42, c)
	if pb.GetIssue().GetAgentId() != "agent-1" || pb.GetType() != netaiopsv1.IssueEventType_ISSUE_EVENT_TYPE_RESOLVED ||
		pb.GetIssue().GetSeverity() != netaiopsv1.Severity_SEVERITY_MAJOR || pb.GetIssue().GetState() != netaiopsv1.IssueState_ISSUE_STATE_RESOLVED {
		t.Fatalf("proto: %v", pb)
	}
	back, agentID := uplink.EventFromProto(pb)
	if agentID != "agent-1" || !reflect.DeepEqual(back, e) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", back, e)
	}

	pb = uplink.ChangeToProto("agent-1", 1, mkChange(1))
	if pb.GetIssue().ResolvedAt != nil {
		t.Fatalf("zero resolved_at sent as %v, want unset", pb.GetIssue().ResolvedAt)
	}
	if back, _ := uplink.EventFromProto(pb); !back.Change.Issue.ResolvedAt.IsZero() {
		t.Fatalf("unset resolved_at read back as %v", back.Change.Issue.ResolvedAt)
	}
}

func TestDeliversAndAcks(t *testing.T) {
	c := startController(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "c.db"), 3)
	ic, fc := ctlClient(t, c.addr())
	ob := newOutbox(t)
	appendN(t, ob, 1, 10) // queued before the controller is reached
	u, err := uplink.New(fastConfig(c.addr()), ob, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, u)

	waitFor(t, 5*time.Second, "10 events acked", func() bool { return ob.Len() == 0 })
	checkAllStored(t, ic, 10)
	appendN(t, ob, 11, 5) // appended while connected
	waitFor(t, 5*time.Second, "15 events acked", func() bool { return ob.Len() == 0 && u.Stats().Acked == 15 })
	checkAllStored(t, ic, 15)
	if s := u.Stats(); !s.Connected || s.Sessions != 1 || s.Batches < 5 || s.Events != 15 {
		t.Fatalf("stats %+v: want connected, 1 session, ≥5 batches of ≤3 events, 15 events", s)
	}
	a := agentRecord(t, fc, "agent-1")
	if a == nil || !a.GetConnected() || a.GetLogId() != ob.LogID() || a.GetLastStoredSeq() != 15 ||
		a.GetTargetCount() != 1 || a.GetVersion() != "test" || a.GetHostname() != "host-1" || a.GetLabels()["site"] != "lab" {
		t.Fatalf("agent record %v", a)
	}
	// Heartbeats (every second) carry the pending and dropped counts.
	waitFor(t, 5*time.Second, "a heartbeat stored on the agent record", func() bool {
		a := agentRecord(t, fc, "agent-1")
		return a.GetLastSeen().AsTime().After(time.Now().Add(-1500*time.Millisecond)) && a.GetPendingEvents() == 0
	})
	stop()
	if u.Stats().Connected {
		t.Fatal("still connected after Run returned")
	}
	waitFor(t, 5*time.Second, "controller to mark the agent disconnected", func() bool { return !agentRecord(t, fc, "agent-1").GetConnected() })
}

// TestDroppedEventsReported: events dropped by a full outbox leave a gap the
// controller accepts, and heartbeats report the drops on the agent record.
func TestDroppedEventsReported(t *testing.T) {
	c := startController(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "c.db"), 0)
	_, fc := ctlClient(t, c.addr())
	ob, err := outbox.New(outbox.Options{MaxEntries: 5})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, ob, 1, 12) // seqs 1-7 dropped, 8-12 kept
	if ob.Dropped() != 7 {
		t.Fatalf("dropped %d, want 7", ob.Dropped())
	}
	u, err := uplink.New(fastConfig(c.addr()), ob, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	run(t, u)
	waitFor(t, 5*time.Second, "kept events acked", func() bool { return ob.Len() == 0 })
	waitFor(t, 5*time.Second, "a heartbeat with the drop count", func() bool {
		a := agentRecord(t, fc, "agent-1")
		return a.GetDroppedEvents() == 7 && a.GetLastStoredSeq() == 12
	})
}

// TestControllerRestartNoLoss restarts the controller on the same address
// and database while events stream and while more are appended; afterwards
// every event is stored and acked.
func TestControllerRestartNoLoss(t *testing.T) {
	db := filepath.Join(t.TempDir(), "c.db")
	c := startController(t, "127.0.0.1:0", db, 40)
	addr := c.addr()
	ob := newOutbox(t)
	u, err := uplink.New(fastConfig(addr), ob, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	run(t, u)

	const total = 3000
	n := 0
	for n < 1000 {
		appendN(t, ob, n+1, 50)
		n += 50
	}
	waitFor(t, 10*time.Second, "some events acked", func() bool { return u.Stats().Acked > 100 })
	c.stop() // mid-stream: the controller ends the stream, batches in flight go unacked
	for n < 2000 {
		appendN(t, ob, n+1, 50)
		n += 50
	}
	if u.Stats().Acked >= 2000 {
		t.Fatalf("acked %d while the controller was down", u.Stats().Acked)
	}
	time.Sleep(100 * time.Millisecond)
	startController(t, addr, db, 40) // stopped by its cleanup
	for n < total {
		appendN(t, ob, n+1, 50)
		n += 50
	}
	waitFor(t, 60*time.Second, "all events acked after restart", func() bool { return ob.Len() == 0 && u.Stats().Acked == total })
	ic, fc := ctlClient(t, addr)
	checkAllStored(t, ic, total)
	if a := agentRecord(t, fc, "agent-1"); a.GetLastStoredSeq() != total || !a.GetConnected() {
		t.Fatalf("agent record %v: want last_stored_seq %d, connected", a, total)
	}
	if ob.Dropped() != 0 {
		t.Fatalf("dropped %d", ob.Dropped())
	}
	if s := u.Stats(); s.Sessions < 2 {
		t.Fatalf("stats %+v: want a second session after the restart", s)
	}
}

// TestBackoffGrowsAndResets: streams the controller refuses are retried with
// growing delays; a stream that lived past ResetAfter resets them.
func TestBackoffGrowsAndResets(t *testing.T) {
	st := uplinktest.NewStore()
	srv := startServer(t, "127.0.0.1:0", st, uplinktest.Options{HeartbeatInterval: 50 * time.Millisecond, RejectStreams: true})
	ob := newOutbox(t)
	cfg := fastConfig(srv.Addr())
	cfg.BackoffMin, cfg.BackoffMax, cfg.ResetAfter = 40*time.Millisecond, 1280*time.Millisecond, 250*time.Millisecond
	u, err := uplink.New(cfg, ob, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	run(t, u)

	// Base delays 40, 80, 160, 320, 640 ms; each drawn from [base/2, base].
	waitFor(t, 10*time.Second, "6 refused streams", func() bool { return len(st.Hellos()) >= 6 })
	hs := st.Hellos()
	var gaps []time.Duration
	for i := 1; i < 6; i++ {
		gaps = append(gaps, hs[i].At.Sub(hs[i-1].At))
	}
	t.Logf("gaps between refused streams: %v", gaps)
	for i, base := range []time.Duration{40, 80, 160, 320, 640} {
		if lo := base * time.Millisecond / 2; gaps[i] < lo {
			t.Errorf("gap %d = %v, want ≥ %v", i, gaps[i], lo)
		}
	}
	if gaps[4] < 4*gaps[0] {
		t.Errorf("backoff did not grow: first gap %v, fifth %v", gaps[0], gaps[4])
	}

	srv.SetRejectStreams(false)
	waitFor(t, 5*time.Second, "a welcomed stream", func() bool { return u.Stats().Connected })
	time.Sleep(2 * cfg.ResetAfter) // the stream lives past ResetAfter
	n := len(st.Hellos())
	replace(t, srv.Addr(), "agent-1") // ends the uplink's stream with Aborted
	waitFor(t, 5*time.Second, "reconnect after replacement", func() bool { return len(st.Hellos()) > n+1 })
	hs = st.Hellos()
	// hs[n] is the replacing stream, hs[n+1] the uplink's next one.
	if gap := hs[n+1].At.Sub(hs[n].At); gap > 400*time.Millisecond {
		t.Errorf("reconnect %v after a long-lived stream ended, want the reset delay (≤ 40ms plus overhead), not ≥ 640ms", gap)
	}
}

// replace opens a stream as agentID, which makes the controller end the
// agent's current stream with Aborted, and then closes it.
func replace(t *testing.T, addr, agentID string) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := netaiopsv1.NewControlServiceClient(conn).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&netaiopsv1.ConnectRequest{Msg: &netaiopsv1.ConnectRequest_Hello{Hello: &netaiopsv1.Hello{AgentId: agentID, LogId: "intruder"}}}); err != nil {
		t.Fatal(err)
	}
	if m, err := stream.Recv(); err != nil || m.GetWelcome() == nil {
		t.Fatalf("replacing stream: %v %v", m, err)
	}
}

func TestReplacedStreamReconnects(t *testing.T) {
	c := startController(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "c.db"), 0)
	ob := newOutbox(t)
	u, err := uplink.New(fastConfig(c.addr()), ob, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	run(t, u)
	appendN(t, ob, 1, 3)
	waitFor(t, 5*time.Second, "first events acked", func() bool { return ob.Len() == 0 })

	replace(t, c.addr(), "agent-1") // the controller ends the uplink's stream with Aborted
	waitFor(t, 5*time.Second, "second session", func() bool { return u.Stats().Sessions >= 2 && u.Stats().Connected })
	appendN(t, ob, 4, 3)
	waitFor(t, 5*time.Second, "events after replacement acked", func() bool { return ob.Len() == 0 })
	ic, _ := ctlClient(t, c.addr())
	checkAllStored(t, ic, 6)
}

// TestDeadStreamReconnects: a controller that welcomes and then says nothing
// (no acks, no heartbeats) is given up after 3 heartbeat intervals; the
// unacked events stay in the outbox until a welcome says they are stored.
func TestDeadStreamReconnects(t *testing.T) {
	st := uplinktest.NewStore()
	hb := 100 * time.Millisecond
	srv := startServer(t, "127.0.0.1:0", st, uplinktest.Options{HeartbeatInterval: hb, Silent: true})
	ob := newOutbox(t)
	u, err := uplink.New(fastConfig(srv.Addr()), ob, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	run(t, u)
	appendN(t, ob, 1, 4)
	waitFor(t, 5*time.Second, "a second stream", func() bool { return len(st.Hellos()) >= 2 })
	hs := st.Hellos()
	if gap := hs[1].At.Sub(hs[0].At); gap < 3*hb {
		t.Fatalf("gave up on the stream after %v, want ≥ 3 heartbeat intervals (%v)", gap, 3*hb)
	}
	if hs[1].Oldest != 1 {
		t.Fatalf("second hello oldest %d: the unacked events must stay in the outbox", hs[1].Oldest)
	}
	// The silent controller did store them: the next welcome's
	// last_stored_seq acks them.
	waitFor(t, 5*time.Second, "welcome to ack the stored events", func() bool { return ob.Len() == 0 })
	if err := contiguous(st.Seqs(ob.LogID()), 4); err != nil {
		t.Fatal(err)
	}
}

// TestStuckControllerReconnects: a controller that welcomes and then stops
// reading makes the agent's Send block on flow control; the silence
// watchdog still ends the stream and the agent connects again.
func TestStuckControllerReconnects(t *testing.T) {
	st := uplinktest.NewStore()
	hb := 100 * time.Millisecond
	srv := startServer(t, "127.0.0.1:0", st, uplinktest.Options{HeartbeatInterval: hb, Stuck: true})
	ob := newOutbox(t)
	big := strings.Repeat("x", 4096)
	for i := 1; i <= 2000; i++ { // ~8 MB: far beyond the HTTP/2 windows
		c := mkChange(i)
		c.Issue.Attributes["evidence"] = big // within limits.MaxAttributeValueBytes: sent whole
		if _, err := uplink.Append(ob, c); err != nil {
			t.Fatal(err)
		}
	}
	u, err := uplink.New(fastConfig(srv.Addr()), ob, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, u)
	waitFor(t, 10*time.Second, "three streams", func() bool { return len(st.Hellos()) >= 3 })
	if ob.Len() != 2000 {
		t.Fatalf("outbox len %d, want all 2000 unacked", ob.Len())
	}
	// Each stream could take a full window of 4 batches if sends did not
	// block; fewer completed sends show the watchdog freed blocked ones.
	if s := u.Stats(); s.Batches >= 4*s.Attempts {
		t.Fatalf("stats %+v: sends never blocked, the test proves nothing", s)
	}
	stop() // Run must return although a Send may be blocked
}

func TestControllerAbsentThenAppears(t *testing.T) {
	// Reserve a port, then free it: nothing listens there at first.
	probe, err := uplinktest.Start("127.0.0.1:0", uplinktest.NewStore(), uplinktest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	addr := probe.Addr()
	probe.Stop()

	ob := newOutbox(t)
	appendN(t, ob, 1, 5)
	u, err := uplink.New(fastConfig(addr), ob, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	run(t, u)
	waitFor(t, 5*time.Second, "several failed attempts", func() bool { return u.Stats().Attempts >= 3 })
	if ob.Len() != 5 {
		t.Fatalf("outbox len %d while the controller is away, want 5", ob.Len())
	}
	startController(t, addr, filepath.Join(t.TempDir(), "c.db"), 0)
	waitFor(t, 10*time.Second, "events acked once the controller appears", func() bool { return ob.Len() == 0 })
	ic, _ := ctlClient(t, addr)
	checkAllStored(t, ic, 5)
}

func TestNoGoroutinesLeft(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		st := uplinktest.NewStore()
		srv, err := uplinktest.Start("127.0.0.1:0", st, uplinktest.Options{HeartbeatInterval: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Stop()
		ob := newOutbox(t)
		u, err := uplink.New(fastConfig(srv.Addr()), ob, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- u.Run(ctx) }()
		appendN(t, ob, 1, 20)
		waitFor(t, 5*time.Second, "events acked", func() bool { return ob.Len() == 0 })
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}()
	waitFor(t, 5*time.Second, fmt.Sprintf("goroutines back to %d", before), func() bool { return runtime.NumGoroutine() <= before })
}

func TestNewRejectsBadConfig(t *testing.T) {
	ob := newOutbox(t)
	for _, tc := range []struct {
		cfg  uplink.Config
		want string
	}{
		{uplink.Config{AgentID: "a"}, "create uplink: controller address is empty"},
		{uplink.Config{Address: "127.0.0.1:1"}, "create uplink: agent id is empty"},
	} {
		if _, err := uplink.New(tc.cfg, ob, nil); err == nil || err.Error() != tc.want {
			t.Errorf("New(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}
