package uplink_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"runtime"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/netaiops/netaiops/agent/detect"
	"github.com/netaiops/netaiops/agent/outbox"
	"github.com/netaiops/netaiops/agent/uplink"
	"github.com/netaiops/netaiops/agent/uplink/uplinktest"
	"github.com/netaiops/netaiops/collector"
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
		if _, err := ob.Append(mkChange(i)); err != nil {
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
	e := outbox.Entry{Seq: 42, Change: c}
	pb := uplink.EventToProto("agent-1", e)
	if pb.GetIssue().GetAgentId() != "agent-1" || pb.GetType() != netaiopsv1.IssueEventType_ISSUE_EVENT_TYPE_RESOLVED ||
		pb.GetIssue().GetSeverity() != netaiopsv1.Severity_SEVERITY_MAJOR || pb.GetIssue().GetState() != netaiopsv1.IssueState_ISSUE_STATE_RESOLVED {
		t.Fatalf("proto: %v", pb)
	}
	back, agentID := uplink.EventFromProto(pb)
	if agentID != "agent-1" || !reflect.DeepEqual(back, e) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", back, e)
	}

	open := outbox.Entry{Seq: 1, Change: mkChange(1)}
	pb = uplink.EventToProto("agent-1", open)
	if pb.GetIssue().ResolvedAt != nil {
		t.Fatalf("zero resolved_at sent as %v, want unset", pb.GetIssue().ResolvedAt)
	}
	if back, _ := uplink.EventFromProto(pb); !back.Change.Issue.ResolvedAt.IsZero() {
		t.Fatalf("unset resolved_at read back as %v", back.Change.Issue.ResolvedAt)
	}
}

func TestDeliversAndAcks(t *testing.T) {
	st := uplinktest.NewStore()
	srv := startServer(t, "127.0.0.1:0", st, uplinktest.Options{HeartbeatInterval: 50 * time.Millisecond, MaxBatchEvents: 3})
	ob := newOutbox(t)
	appendN(t, ob, 1, 10) // queued before the controller is reached
	u, err := uplink.New(fastConfig(srv.Addr()), ob, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, u)

	waitFor(t, 5*time.Second, "10 events acked", func() bool { return ob.Len() == 0 })
	if err := contiguous(st.Seqs(ob.LogID()), 10); err != nil {
		t.Fatal(err)
	}
	appendN(t, ob, 11, 5) // appended while connected
	waitFor(t, 5*time.Second, "15 events acked", func() bool { return ob.Len() == 0 && u.Stats().Acked == 15 })
	if err := contiguous(st.Seqs(ob.LogID()), 15); err != nil {
		t.Fatal(err)
	}
	if s := u.Stats(); !s.Connected || s.Sessions != 1 || s.Batches < 5 {
		t.Fatalf("stats %+v: want connected, 1 session, ≥5 batches of ≤3 events", s)
	}
	// The stored event is the change that was appended.
	got := st.Events()[11]
	if want := mkChange(12); got.AgentID != "agent-1" || !reflect.DeepEqual(got.Entry.Change, want) {
		t.Fatalf("stored event 12:\n got %+v\nwant %+v", got.Entry.Change, want)
	}
	h := st.Hellos()
	if len(h) != 1 || h[0].AgentID != "agent-1" || h[0].LogID != ob.LogID() || h[0].Oldest != 1 || h[0].Targets != 1 || h[0].Version != "test" {
		t.Fatalf("hellos %+v", h)
	}
	waitFor(t, 5*time.Second, "agent heartbeats", func() bool { n, _, _ := st.Heartbeats(); return n >= 2 })
	if _, pending, dropped := st.Heartbeats(); pending != 0 || dropped != 0 {
		t.Fatalf("heartbeat pending %d dropped %d, want 0 0", pending, dropped)
	}
	stop()
	if u.Stats().Connected {
		t.Fatal("still connected after Run returned")
	}
}

// TestControllerRestartNoLoss crashes the controller while events stream and
// while more are appended; after it comes back on the same address and
// store, every event is stored exactly once and acked.
func TestControllerRestartNoLoss(t *testing.T) {
	st := uplinktest.NewStore()
	opts := uplinktest.Options{HeartbeatInterval: 100 * time.Millisecond, MaxBatchEvents: 7}
	srv, err := uplinktest.Start("127.0.0.1:0", st, opts)
	if err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr()
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
	waitFor(t, 5*time.Second, "some events acked", func() bool { return u.Stats().Acked > 100 })
	srv.Stop() // mid-stream: batches in flight are lost with the connection
	for n < 2000 {
		appendN(t, ob, n+1, 50)
		n += 50
	}
	if u.Stats().Acked >= 2000 {
		t.Fatalf("acked %d while the controller was down", u.Stats().Acked)
	}
	time.Sleep(100 * time.Millisecond)
	srv2, err := uplinktest.Start(addr, st, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv2.Stop)
	for n < total {
		appendN(t, ob, n+1, 50)
		n += 50
	}
	waitFor(t, 20*time.Second, "all events acked after restart", func() bool { return ob.Len() == 0 && u.Stats().Acked == total })
	if err := contiguous(st.Seqs(ob.LogID()), total); err != nil {
		t.Fatal(err)
	}
	if st.Gaps() != 0 || ob.Dropped() != 0 {
		t.Fatalf("gaps %d dropped %d, want none", st.Gaps(), ob.Dropped())
	}
	if s := u.Stats(); s.Sessions < 2 {
		t.Fatalf("stats %+v: want a second session after the restart", s)
	}
	hs := st.Hellos()
	if last := hs[len(hs)-1]; last.LogID != ob.LogID() || last.Oldest == 0 {
		t.Fatalf("hello after restart %+v: want same log id and the oldest unacked seq", last)
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
	st := uplinktest.NewStore()
	srv := startServer(t, "127.0.0.1:0", st, uplinktest.Options{HeartbeatInterval: 50 * time.Millisecond})
	ob := newOutbox(t)
	u, err := uplink.New(fastConfig(srv.Addr()), ob, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	run(t, u)
	appendN(t, ob, 1, 3)
	waitFor(t, 5*time.Second, "first events acked", func() bool { return ob.Len() == 0 })

	replace(t, srv.Addr(), "agent-1")
	waitFor(t, 5*time.Second, "second session", func() bool { return u.Stats().Sessions >= 2 && u.Stats().Connected })
	appendN(t, ob, 4, 3)
	waitFor(t, 5*time.Second, "events after replacement acked", func() bool { return ob.Len() == 0 })
	if err := contiguous(st.Seqs(ob.LogID()), 6); err != nil {
		t.Fatal(err)
	}
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

func TestControllerAbsentThenAppears(t *testing.T) {
	// Reserve a port, then free it: nothing listens there at first.
	srv, err := uplinktest.Start("127.0.0.1:0", uplinktest.NewStore(), uplinktest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr()
	srv.Stop()

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
	st := uplinktest.NewStore()
	startServer(t, addr, st, uplinktest.Options{HeartbeatInterval: 50 * time.Millisecond})
	waitFor(t, 10*time.Second, "events acked once the controller appears", func() bool { return ob.Len() == 0 })
	if err := contiguous(st.Seqs(ob.LogID()), 5); err != nil {
		t.Fatal(err)
	}
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
