package uplink_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netaiops/netaiops/agent/uplink"
	"github.com/netaiops/netaiops/controller"
)

// runCtl runs the real controller with mod applied to its config.
func runCtl(t *testing.T, mod func(*controller.Config)) *controller.Controller {
	t.Helper()
	cfg := controller.DefaultConfig()
	cfg.Listen, cfg.Insecure, cfg.DBPath = "127.0.0.1:0", true, filepath.Join(t.TempDir(), "c.db")
	cfg.HeartbeatInterval, cfg.ShutdownTimeout = time.Second, 2*time.Second
	mod(&cfg)
	c := controller.New(cfg, testLogger(t).With("side", "controller"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("controller: %v", err)
		}
	})
	select {
	case <-c.Ready():
	case err := <-done:
		t.Fatal(err)
	}
	return c
}

// The agent pings no more often than the controller tolerates.
func TestKeepaliveWithinPolicy(t *testing.T) {
	if uplink.KeepaliveTime < controller.KeepaliveMinTime {
		t.Fatalf("agent pings every %s, controller tolerates one ping per %s", uplink.KeepaliveTime, controller.KeepaliveMinTime)
	}
}

// TestBatchesBoundedByBytes: 330 events of 14 KB each (4.6 MB; an event
// may have at most limits.MaxIssueBytes of text) reach a controller that
// takes messages of at most 2 MiB, because the agent cuts batches at the
// welcome's max_batch_bytes (1 MiB), not only at max_batch_events (500).
func TestBatchesBoundedByBytes(t *testing.T) {
	c := runCtl(t, func(cfg *controller.Config) { cfg.MaxRecvMsgSize = 2 << 20 })
	_, fc := ctlClient(t, c.Addr().String())
	ob := newOutbox(t)
	const n = 330
	big := strings.Repeat("x", 3500)
	for i := 1; i <= n; i++ {
		ch := mkChange(i)
		ch.Issue.Attributes = map[string]string{"ifIndex": "1", "e1": big, "e2": big, "e3": big, "e4": big}
		if _, err := uplink.Append(ob, ch); err != nil {
			t.Fatal(err)
		}
	}
	u, err := uplink.New(fastConfig(c.Addr().String()), ob, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	run(t, u)
	waitFor(t, 20*time.Second, "330 big events acked", func() bool { return u.Stats().Acked == n })
	if s := u.Stats(); s.Sessions != 1 || s.Batches < 5 {
		t.Errorf("stats %+v: want one session and at least 5 batches of at most 1 MiB", s)
	}
	if got := agentRecord(t, fc, "agent-1").GetLastStoredSeq(); got != n {
		t.Errorf("controller stored up to seq %d, want %d", got, n)
	}
}

// TestMaxConnectionAge: the controller ends connections after
// MaxConnectionAge (+grace); the agent reconnects at once and loses
// nothing.
func TestMaxConnectionAge(t *testing.T) {
	c := runCtl(t, func(cfg *controller.Config) {
		cfg.MaxConnectionAge, cfg.MaxConnectionAgeGrace = time.Second, 500*time.Millisecond
	})
	ic, _ := ctlClient(t, c.Addr().String())
	ob := newOutbox(t)
	u, err := uplink.New(fastConfig(c.Addr().String()), ob, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	run(t, u)
	n := 0
	deadline := time.Now().Add(20 * time.Second)
	for u.Stats().Sessions < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("after 20s: %+v, want 3 sessions (the connection ends every ~1.5s)", u.Stats())
		}
		n++
		appendN(t, ob, n, 1)
		time.Sleep(50 * time.Millisecond)
	}
	waitFor(t, 10*time.Second, "every event acked", func() bool { return ob.Len() == 0 })
	checkAllStored(t, ic, n)
}
