package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/credentials/insecure"

	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

// A word list of the communities people use; the real one is among them.
var communityGuesses = []string{"public", "private", "community", "snmp", "cisco", "admin", "manager", "monitor",
	"secret", "read", "write", "netman", "network", "default", "test", "router", "switch", "ILMI", "cable-docsis",
	"tivoli", "openview", "security", "system", "lab-ro-2026"}

const hashDocTemplate = "targets:\n  - name: a\n    address: 10.0.0.1\n    community: %s\n"

// The hash a viewer sees next to the redacted document cannot be
// reproduced from the redacted document (or the document's exact text)
// and a guessed community; it is stable across a controller restart, so
// an agent that applied it gets no push after either side restarts.
func TestConfigHashRevealsNothing(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "var", "controller.db")
	cfg := DefaultConfig()
	cfg.Listen, cfg.Insecure, cfg.DBPath, cfg.HeartbeatInterval = "127.0.0.1:0", true, dbPath, time.Second
	r := runConfig(t, cfg, insecure.NewCredentials())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	doc := strings.ReplaceAll(hashDocTemplate, "%s", "lab-ro-2026")
	sel := &netaiopsv1.ConfigSelector{AgentId: "edge-1"}
	if _, err := netaiopsv1.NewFleetServiceClient(r.conn).SetConfig(ctx, &netaiopsv1.SetConfigRequest{Selector: sel, Yaml: doc}); err != nil {
		t.Fatal(err)
	}
	got, err := netaiopsv1.NewFleetServiceClient(r.conn).GetConfig(ctx, &netaiopsv1.GetConfigRequest{Selector: sel})
	if err != nil {
		t.Fatal(err)
	}
	hash, redacted := got.GetConfig().GetHash(), got.GetConfig().GetYaml()
	if strings.Contains(redacted, "lab-ro-2026") || !strings.Contains(redacted, "<secret>") {
		t.Fatalf("not redacted:\n%s", redacted)
	}
	for _, guess := range communityGuesses {
		for _, candidate := range []string{strings.ReplaceAll(redacted, "<secret>", guess), strings.ReplaceAll(hashDocTemplate, "%s", guess)} {
			sum := sha256.Sum256([]byte(candidate))
			if hex.EncodeToString(sum[:]) == hash {
				t.Fatalf("the viewer-visible hash %s is the SHA-256 of the document with community %q", hash, guess)
			}
		}
	}

	// The agent applies the push once and acknowledges it.
	stream := openStream(t, ctx, r.conn, "edge-1")
	var push *netaiopsv1.ConfigPush
	for push == nil {
		m, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		push = m.GetConfig()
	}
	if push.GetHash() != hash || push.GetYaml() != doc {
		t.Fatalf("push %q with hash %s, want the document with hash %s", push.GetYaml(), push.GetHash(), hash)
	}
	if err := stream.Send(&netaiopsv1.ConnectRequest{Msg: &netaiopsv1.ConnectRequest_ConfigStatus{ConfigStatus: &netaiopsv1.ConfigStatus{
		Version: push.GetVersion(), Hash: push.GetHash()}}}); err != nil {
		t.Fatal(err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := stream.Recv(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}

	// Restart the controller (same database and key): the hash is the same
	// and an agent that says it runs it gets no push.
	r.stop(t)
	r = runConfig(t, cfg, insecure.NewCredentials())
	again, err := netaiopsv1.NewFleetServiceClient(r.conn).GetConfig(ctx, &netaiopsv1.GetConfigRequest{Selector: sel})
	if err != nil || again.GetConfig().GetHash() != hash {
		t.Fatalf("hash after a restart: %v %v, want %s", again, err, hash)
	}
	s2, err := netaiopsv1.NewControlServiceClient(r.conn).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Send(&netaiopsv1.ConnectRequest{Msg: &netaiopsv1.ConnectRequest_Hello{Hello: &netaiopsv1.Hello{
		AgentId: "edge-1", LogId: "log-edge-1", AppliedConfigHash: hash}}}); err != nil {
		t.Fatal(err)
	}
	// A push would follow the welcome at once; wait past one heartbeat.
	deadline := time.Now().Add(1500 * time.Millisecond)
	heartbeats := 0
	msgs := ended(func() error {
		m, err := s2.Recv()
		if err == nil && m.GetConfig() != nil {
			t.Errorf("pushed again after a restart: %v", m.GetConfig())
		}
		if m.GetHeartbeat() != nil {
			heartbeats++
		}
		return err
	})
	select {
	case err := <-msgs:
		t.Fatalf("stream ended: %v", err)
	case <-time.After(time.Until(deadline)):
	}
	r.stop(t)
	<-msgs
	if heartbeats == 0 {
		t.Error("no heartbeat within 1.5s: the stream was not read long enough to see a push")
	}
}
